//! What the run loops share: how long they wait (after failures, when
//! caught up) and how they see that the server is away.

use std::time::Duration;

/// The wait after `failures` failed attempts in a row: from 50 ms,
/// doubling, at most 5 s.
pub fn backoff(failures: u32) -> Duration {
    let ms = 50u64.saturating_mul(1 << failures.clamp(1, 8).saturating_sub(1));
    Duration::from_millis(ms.min(5_000))
}

/// The longest a caught-up loop waits for new events before it looks at
/// its stop signal again: bounds how long a stop takes.
pub(crate) const IDLE_WAIT: Duration = Duration::from_millis(200);

/// Why the server cannot be reached, while it cannot: a caught-up loop
/// makes no request that would fail to say so, and the client rides out
/// the outage by itself.
pub(crate) fn unreachable(js: &async_nats::jetstream::Context) -> Option<String> {
    let state = js.client().connection_state();
    (state != async_nats::connection::State::Connected)
        .then(|| format!("the NATS server is unreachable ({state})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_50_ms_to_at_most_5_s() {
        let ms: Vec<u128> = (0..12).map(|f| backoff(f).as_millis()).collect();
        assert_eq!(
            ms,
            [
                50, 50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000
            ]
        );
    }
}
