//! A `chatterbox` process started for a test or a benchmark: spawned with
//! JSON logs, awaited until it says where it serves, its output drained
//! afterwards (warnings and errors go to stderr, named after the process).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// What a started process said it serves.
#[derive(Debug, Default, Clone)]
pub struct Listening {
    /// Its HTTP address (a gateway, or the all-in-one run).
    pub http: Option<SocketAddr>,
    /// Its gRPC services, as logged (a list of full names), and their address.
    pub grpc: Vec<(String, SocketAddr)>,
    /// Its own `/metrics` address, if it serves one.
    pub metrics: Option<SocketAddr>,
}

/// A running process; killed when dropped.
#[derive(Debug)]
pub struct Spawned {
    /// The process.
    pub child: Child,
    /// Where it serves.
    pub listening: Listening,
}

/// Runs `bin args` with only `env` (plus JSON logs at info) and returns once
/// `ready` holds for what it has logged, or fails after 30 s.
pub async fn spawn_logged(
    bin: &Path,
    args: &[&str],
    env: &[(String, String)],
    ready: impl Fn(&Listening) -> bool,
) -> anyhow::Result<Spawned> {
    let name = args.last().copied().unwrap_or("chatterbox").to_owned();
    let mut child = Command::new(bin)
        .args(args)
        .env_clear()
        .env("CHATTERBOX_LOG_JSON", "true")
        .env("CHATTERBOX_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let mut listening = Listening::default();
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        while !ready(&listening) {
            let line = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("{name} exited while starting"))?;
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            let fields = &entry["fields"];
            let addr = fields["addr"].as_str().and_then(|a| a.parse::<SocketAddr>().ok());
            match (fields["message"].as_str().unwrap_or_default(), addr) {
                ("serving HTTP", Some(addr)) => listening.http = Some(addr),
                ("serving metrics", Some(addr)) => listening.metrics = Some(addr),
                ("serving gRPC", Some(addr)) => {
                    listening.grpc.push((fields["services"].as_str().unwrap_or_default().to_owned(), addr));
                }
                _ => {}
            }
        }
        anyhow::Ok(())
    })
    .await;
    started.map_err(|_| anyhow::anyhow!("{name} did not start within 30 s"))??;
    // Keep draining its output so the pipe never fills.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(r#""level":"WARN""#) || line.contains(r#""level":"ERROR""#) {
                eprintln!("[{name}] {line}");
            }
        }
    });
    Ok(Spawned { child, listening })
}
