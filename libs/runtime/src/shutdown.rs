//! Graceful shutdown: one token cancelled on SIGINT/SIGTERM (or by a test),
//! observed by every server in the process.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A cloneable shutdown switch. Cancelling it asks every server to stop
/// accepting work and finish what is in flight within the drain timeout.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    /// How long in-flight requests may run after the switch is thrown.
    drain: Duration,
}

impl Shutdown {
    /// A switch whose servers drain for at most `drain`.
    pub fn new(drain: Duration) -> Self {
        Self { token: CancellationToken::new(), drain }
    }

    /// Throws the switch.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Resolves once the switch is thrown.
    pub async fn requested(&self) {
        self.token.cancelled().await;
    }

    /// Whether the switch has been thrown.
    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The drain timeout.
    pub fn drain(&self) -> Duration {
        self.drain
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}
