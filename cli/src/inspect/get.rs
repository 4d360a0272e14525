//! `seglog get DIR POSITION`: the one event at a position, every field,
//! payload and metadata whole: what an operator looks at after `dump`,
//! `tail` or a service's log named a position.

use clap::Args;
use seglog::Position;

use super::LogArgs;
use super::event::{self, PayloadArg};
use crate::failure::Failure;
use crate::out::{Out, units};

// The flags of `seglog get` (its help is the variant's doc comment in
// main.rs).
#[derive(Args)]
pub(crate) struct GetCommand {
    #[command(flatten)]
    log: LogArgs,
    /// The event's position, as the tool prints it (`OFFSET:INDEX`, or
    /// `OFFSET` for the first event of a frame).
    #[arg(value_parser = units::parse_position)]
    position: Position,
    /// How the payload and metadata are shown.
    #[arg(long, value_enum, default_value_t)]
    payload: PayloadArg,
}

impl GetCommand {
    pub(crate) fn run(&self, out: &mut Out) -> Result<(), Failure> {
        let dir = &self.log.dir;
        let reader = self.log.open()?;
        let log_error = |e| Failure::from_log(dir, e);
        let end = reader.refresh().map_err(log_error)?;
        let at = self.position;
        let no_event = |why: String| {
            Failure::failed(format!(
                "no event at position {at} in {}: {why}",
                dir.display()
            ))
        };
        if at >= end {
            return Err(no_event(format!("the log ends at {end}")));
        }
        // A read from a position proves it names an event, or starts at
        // the first event after it (a position before a segment's first
        // frame): the event read must be at the position asked for.
        let found = reader.read_all(at).map_err(log_error)?.next();
        let e = match found {
            None => return Err(no_event(format!("the log ends at {end}"))),
            Some(Err(e)) => return Err(log_error(e)),
            Some(Ok(e)) if e.position() != at => {
                return Err(no_event(format!("the next event is at {}", e.position())));
            }
            Some(Ok(e)) => e,
        };
        if out.json() {
            out.object(&event::to_json(&e, self.payload))
        } else {
            event::print_fields(out, &e, self.payload)
        }
    }
}
