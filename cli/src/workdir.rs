//! Where a command's log goes: the directory given, or a temporary one
//! removed when the command ends.

use std::path::{Path, PathBuf};

/// Runs `run` on `dir`, or on a new temporary directory (removed after)
/// when `dir` is `None`.
pub(crate) fn with_dir(
    dir: Option<PathBuf>,
    run: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    match dir {
        Some(dir) => run(&dir),
        None => tempfile::tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))
            .and_then(|tmp| run(tmp.path())),
    }
}
