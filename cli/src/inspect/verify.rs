//! `seglog verify DIR`: every check the library's verification makes
//! (CRCs, the hash chain against each sealed segment's record, the index
//! files against their segments, an earlier digest), exit status 0 when
//! intact and 1 at the first damage, located.

use std::path::PathBuf;

use clap::Args;
use seglog::ed25519_dalek::VerifyingKey;
use seglog::{Digest, FailureKind, SignedDigest, Verification};
use serde_json::json;

use crate::failure::{Failure, check_log_dir};
use crate::out::{Out, Paint, Progress, units};

use super::hex;

// The flags of `seglog verify` (its help is the variant's doc comment in
// main.rs).
#[derive(Args)]
pub(crate) struct VerifyCommand {
    /// The log's directory.
    dir: PathBuf,
    /// An earlier digest the log must still hold exactly: its line
    /// (`seglog-digest 1 ...`, signed or not) or a file whose first line
    /// it is.
    #[arg(long, value_name = "DIGEST|FILE")]
    digest: Option<String>,
    /// The public key (64 hex digits) a signed digest must be signed
    /// with; a signed digest is refused without it.
    #[arg(long, value_name = "HEX")]
    public_key: Option<String>,
}

impl VerifyCommand {
    pub(crate) fn run(&self, out: &mut Out) -> Result<(), Failure> {
        let against = self.against()?;
        check_log_dir(&self.dir)?;
        let mut progress = Progress::bytes(0, "verify");
        let report =
            seglog::verify_with_progress(&self.dir, against.as_ref(), &mut |done, total| {
                progress.set_len(total);
                progress.set(done);
            })
            .map_err(|e| Failure::from_log(&self.dir, e))?;
        progress.finish();
        if out.json() {
            out.object(&to_json(&report))?;
        } else {
            print(out, &report)?;
        }
        match &report.failure {
            None => Ok(()),
            // Said above, in the form asked for: only the status remains.
            Some(_) => Err(Failure::damage(String::new())),
        }
    }

    /// The digest given, its signature checked when it has one.
    fn against(&self) -> Result<Option<Digest>, Failure> {
        let Some(given) = &self.digest else {
            return Ok(None);
        };
        let line = match std::fs::read_to_string(given) {
            Ok(text) => text.lines().next().unwrap_or("").to_string(),
            Err(_) => given.clone(),
        };
        if line.split_ascii_whitespace().count() <= 6 {
            let digest = line
                .parse::<Digest>()
                .map_err(|e| Failure::usage(format!("--digest: {e}")))?;
            return Ok(Some(digest));
        }
        let signed = line
            .parse::<SignedDigest>()
            .map_err(|e| Failure::usage(format!("--digest: {e}")))?;
        let key = self.public_key.as_deref().ok_or_else(|| {
            Failure::usage("--digest is signed: give --public-key, the key it must be signed with")
        })?;
        let key = hex(key)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or_else(|| {
                Failure::usage("--public-key: not an Ed25519 public key in 64 hex digits")
            })?;
        signed
            .verify_signature(&key)
            .map_err(|e| Failure::damage(format!("--digest: {e}")))?;
        Ok(Some(signed.digest))
    }
}

fn print(out: &mut Out, r: &Verification) -> Result<(), Failure> {
    out.line(&format!(
        "checked   {} segments, {} frames, {} events, {}",
        units::count(r.segments),
        units::count(r.frames),
        units::count(r.events),
        units::bytes(r.bytes)
    ))?;
    out.line(&format!(
        "chain     {} segment records held (sealed segments', a clean close's)",
        units::count(r.chain_records)
    ))?;
    out.line(&format!(
        "indexes   {} files ({} unreadable: rebuilt at the next open)",
        units::count(r.index_files),
        units::count(r.index_files_unreadable)
    ))?;
    if r.start.links > 0 {
        out.line(&format!(
            "start     {} ({} links before it, removed by retention)",
            r.start.position,
            units::count(r.start.links)
        ))?;
    }
    out.line(&format!("head      {}", r.head))?;
    if let Some(d) = &r.against {
        out.line(&format!("digest    held: {d}"))?;
    }
    match &r.failure {
        None => out.line(&out.paint("intact", Paint::Good)),
        Some(f) => out.line(&format!(
            "{} {} check failed in {} at offset {} (position {}): {}",
            out.paint("DAMAGE", Paint::Bad),
            kind_name(f.kind),
            f.segment.display(),
            f.offset,
            f.position,
            f.reason
        )),
    }
}

fn to_json(r: &Verification) -> serde_json::Value {
    json!({
        "intact": r.is_intact(),
        "log_id": format!("{:032x}", r.log_id),
        "segments": r.segments,
        "frames": r.frames,
        "events": r.events,
        "bytes": r.bytes,
        "chain_records": r.chain_records,
        "index_files": r.index_files,
        "index_files_unreadable": r.index_files_unreadable,
        "start": r.start.to_string(),
        "head": r.head.to_string(),
        "against": r.against.map(|d| d.to_string()),
        "failure": r.failure.as_ref().map(|f| json!({
            "kind": kind_name(f.kind),
            "segment": f.segment.display().to_string(),
            "offset": f.offset,
            "position": f.position.to_string(),
            "reason": f.reason,
        })),
    })
}

/// A failure's kind in words, as the output names it.
fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Frame => "frame",
        FailureKind::ChainRecord => "chain record",
        FailureKind::IndexFile => "index file",
        FailureKind::Layout => "segment layout",
        FailureKind::Digest => "digest",
    }
}
