//! Why a command failed, and the exit status that says so to a script.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | done; for `verify`, the log is intact |
//! | 1 | damage found: `verify`'s findings, a read that met a damaged frame, or bad data in an `import`'s input (a malformed or overlong line, a gap in a stream's versions, a conflicting event id) |
//! | 2 | usage: a flag, a position or a time that does not parse |
//! | 3 | the command could not run: no such directory, not a log, a log held by a writer, an I/O error, something asked for that is not there |

use std::fmt;
use std::io;
use std::path::Path;

use seglog::Error;

/// Exit status: damage found.
pub(crate) const DAMAGE: u8 = 1;
/// Exit status: a usage error (clap's own errors exit with it too).
pub(crate) const USAGE: u8 = 2;
/// Exit status: the command could not run.
pub(crate) const FAILED: u8 = 3;

/// A failed command: what to tell the person, and the exit status.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: u8,
    pub(crate) message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Failure {
    /// The command could not run, for the reason given.
    pub(crate) fn failed(message: impl Into<String>) -> Failure {
        Failure {
            status: FAILED,
            message: message.into(),
        }
    }

    /// A usage error: the reason, said as a person can fix it.
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            status: USAGE,
            message: message.into(),
        }
    }

    /// Damage found.
    pub(crate) fn damage(message: impl Into<String>) -> Failure {
        Failure {
            status: DAMAGE,
            message: message.into(),
        }
    }

    /// Writing the output failed. A closed pipe (`seglog dump | head`) is
    /// not a failure: the reader has what it wanted, the command stops
    /// quietly with status 0.
    pub(crate) fn output(e: io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Failure {
                status: 0,
                message: String::new(),
            };
        }
        Failure::failed(format!("cannot write the output: {e}"))
    }

    /// A library error met while working on the log in `dir`, said as a
    /// person can act on it.
    pub(crate) fn from_log(dir: &Path, error: Error) -> Failure {
        match error {
            Error::Corrupt {
                segment,
                offset,
                reason,
            } => Failure::damage(format!(
                "damaged file {} at offset {offset}: {reason} (run `seglog verify {}`)",
                segment.display(),
                dir.display()
            )),
            Error::UnsupportedFormat { path, reason } => Failure::damage(format!(
                "{} is not a seglog file this tool reads: {reason}",
                path.display()
            )),
            Error::Locked { .. } => Failure::failed(format!(
                "{} is held by a writer (a running service?): stop it first, this command changes the log",
                dir.display()
            )),
            Error::NoMasterKey => Failure::failed(
                "the log holds encrypted events: give the master key with --master-key-file",
            ),
            Error::Io { path, source } if source.kind() == io::ErrorKind::NotFound => {
                Failure::failed(format!("{}: no such file or directory", path.display()))
            }
            Error::Io { path, source } => Failure::failed(format!("{}: {source}", path.display())),
            Error::InvalidPosition { position } => Failure::failed(format!(
                "no event at position {position} in {}: give a position as the tool prints it (`seglog dump`)",
                dir.display()
            )),
            Error::BeforeLogStart {
                position,
                log_start,
            } => Failure::failed(format!(
                "position {position} was removed by retention: the log in {} now starts at {log_start}",
                dir.display()
            )),
            Error::StreamBeforeLogStart {
                stream,
                version,
                first_version,
                ..
            } => Failure::failed(format!(
                "version {version} of stream {stream} was removed by retention: its first version kept is {first_version} (give --from-version {first_version})"
            )),
            Error::StreamDeleted { stream } => Failure::failed(format!(
                "stream {stream} in {} is deleted: it is read no more (`seglog dump` shows its events until retention removes them)",
                dir.display()
            )),
            other => Failure::failed(other.to_string()),
        }
    }
}

/// `dir` is a directory holding a seglog log (a segment file), before the
/// library is asked to open it: a missing directory or a directory of
/// something else gets a message naming what is wrong, not an I/O error.
pub(crate) fn check_log_dir(dir: &Path) -> Result<(), Failure> {
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Failure::failed(format!("{}: no such directory", dir.display())),
        _ => Failure::failed(format!("{}: {e}", dir.display())),
    })?;
    if !meta.is_dir() {
        return Err(Failure::failed(format!(
            "{} is not a directory: give the log's directory",
            dir.display()
        )));
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?;
    let has_segment = entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        name.len() == 24 && name.ends_with(".seg") && name[..20].bytes().all(|b| b.is_ascii_digit())
    });
    if has_segment {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "{} is not a seglog log: it holds no segment file (NNNNNNNNNNNNNNNNNNNN.seg)",
            dir.display()
        )))
    }
}
