//! When a running bridge stops: Ctrl-C (SIGINT) or SIGTERM, as a terminal
//! or a service manager sends them.

use std::future::Future;

/// A future that completes at the first SIGINT or SIGTERM. The handlers
/// are installed by this call, not on the future's first poll: a signal
/// that arrives while the log opens stops the bridge cleanly at its start
/// instead of killing the process by the default action.
#[cfg(unix)]
pub(crate) fn stop_signal() -> Result<impl Future<Output = ()>, String> {
    use tokio::signal::unix::{SignalKind, signal};

    let install = |kind: SignalKind| {
        signal(kind).map_err(|e| format!("cannot install a signal handler: {e}"))
    };
    let mut interrupt = install(SignalKind::interrupt())?;
    let mut terminate = install(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// A future that completes at the first Ctrl-C. Should the handler fail to
/// install, Ctrl-C keeps its default action (ending the process), so the
/// future then never completes rather than stopping the bridge at once.
#[cfg(not(unix))]
pub(crate) fn stop_signal() -> Result<impl Future<Output = ()>, String> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}
