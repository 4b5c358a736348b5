//! The suite under test, as separate processes (so its memory and CPU are
//! its own), and what `/proc` says about them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// One running process and what it logged about itself.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// Where it serves HTTP (a gateway or the all-in-one run).
    pub http: Option<SocketAddr>,
    /// gRPC services it serves, by full name, and where.
    pub grpc: Vec<(String, SocketAddr)>,
}

impl Process {
    /// Its pid, for `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Where it serves the gRPC service whose name ends with `suffix`.
    pub fn grpc(&self, suffix: &str) -> Option<SocketAddr> {
        self.grpc.iter().find(|(name, _)| name.ends_with(suffix)).map(|(_, addr)| *addr)
    }
}

/// The `chatterbox` binary next to this one (the same build).
fn binary() -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("chatterbox");
    anyhow::ensure!(path.exists(), "{} is missing: build it first (make bench does)", path.display());
    Ok(path)
}

/// Starts `chatterbox <args>` with `env`; returns once it serves what
/// `ready` says it will (HTTP, or one gRPC service per part).
async fn spawn(args: &[&str], env: &[(String, String)], grpc_count: usize, http: bool) -> anyhow::Result<Process> {
    let mut child = Command::new(binary()?)
        .args(args)
        .env_clear()
        .env("CHATTERBOX_LOG_JSON", "true")
        .env("CHATTERBOX_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut process = Process { child, http: None, grpc: Vec::new() };
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        while process.grpc.len() < grpc_count || (http && process.http.is_none()) {
            let line = lines.next_line().await?.context("the process exited while starting")?;
            let Ok(entry) = serde_json::from_str::<Value>(&line) else { continue };
            let fields = &entry["fields"];
            let addr = || fields["addr"].as_str().and_then(|a| a.parse::<SocketAddr>().ok());
            match fields["message"].as_str().unwrap_or_default() {
                "serving HTTP" => process.http = addr(),
                "serving gRPC" => {
                    let names = fields["services"].as_str().unwrap_or_default().to_owned();
                    if let Some(addr) = addr() {
                        process.grpc.push((names, addr));
                    }
                }
                _ => {}
            }
        }
        anyhow::Ok(())
    })
    .await;
    started.context("the process did not start within 30 s")??;
    // Keep draining its output so the pipe never fills.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(process)
}

/// The suite under test.
#[derive(Debug)]
pub struct Suite {
    /// Every process of it.
    pub processes: Vec<Process>,
    /// Gateways' HTTP addresses.
    pub gateways: Vec<SocketAddr>,
    /// The user service (to mint users without paying for password hashing).
    pub user_service: SocketAddr,
    _data: tempfile::TempDir,
}

/// Settings every process of a run shares.
fn common_env(data: &Path, keys: &Path) -> Vec<(String, String)> {
    [
        ("CHATTERBOX_DATA_DIR", data.display().to_string()),
        ("CHATTERBOX_HTTP_ADDR", "127.0.0.1:0".into()),
        ("CHATTERBOX_GRPC_ADDR", "127.0.0.1:0".into()),
        ("CHATTERBOX_HTTP_RATE_LIMIT", "0".into()),
        // The bench drives some users far above 10 frames per second.
        ("CHATTERBOX_WS_RATE_LIMIT", "0".into()),
        ("CHATTERBOX_ACCESS_TOKEN_TTL_SECS", "7200".into()),
        ("CHATTERBOX_JWT_PRIVATE_KEY_FILE", keys.join("jwt-private.pem").display().to_string()),
        ("CHATTERBOX_JWT_PUBLIC_KEY_FILE", keys.join("jwt-public.pem").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Suite {
    /// `chatterbox all`: one process, SQLite, the in-process bus.
    pub async fn embedded(keys: &Path) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let all = spawn(&["all"], &common_env(data.path(), keys), 4, true).await?;
        let gateways = vec![all.http.context("no HTTP address")?];
        let user_service = all.grpc("UserService\"]").context("no user service")?;
        Ok(Self { processes: vec![all], gateways, user_service, _data: data })
    }

    /// One process per service and `gateways` gateways, on MongoDB and Redis.
    pub async fn distributed(keys: &Path, mongodb: &str, redis: &str, gateways: usize) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let mut env = common_env(data.path(), keys);
        env.push(("MONGODB_URI".into(), mongodb.into()));
        env.push(("CHATTERBOX_MONGODB_DATABASE".into(), format!("bench{}", ulid::Ulid::new())));
        env.push(("REDIS_URL".into(), redis.into()));
        env.push(("CHATTERBOX_REDIS_KEY_PREFIX".into(), format!("bench-{}", ulid::Ulid::new())));
        let with = |extra: &[(&str, String)]| {
            let mut e = env.clone();
            e.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            e
        };
        let user = spawn(&["run", "user"], &env, 1, false).await?;
        let user_url = format!("http://{}", user.grpc[0].1);
        let auth = spawn(&["run", "auth"], &with(&[("CHATTERBOX_USER_URL", user_url.clone())]), 1, false).await?;
        let conversation =
            spawn(&["run", "conversation"], &with(&[("CHATTERBOX_USER_URL", user_url.clone())]), 1, false).await?;
        let conversation_url = format!("http://{}", conversation.grpc[0].1);
        let message =
            spawn(&["run", "message"], &with(&[("CHATTERBOX_CONVERSATION_URL", conversation_url.clone())]), 1, false)
                .await?;
        let gateway_env = with(&[
            ("CHATTERBOX_AUTH_URL", format!("http://{}", auth.grpc[0].1)),
            ("CHATTERBOX_USER_URL", user_url),
            ("CHATTERBOX_CONVERSATION_URL", conversation_url),
            ("CHATTERBOX_MESSAGE_URL", format!("http://{}", message.grpc[0].1)),
        ]);
        let user_service = user.grpc[0].1;
        let mut processes = vec![user, auth, conversation, message];
        let mut addrs = Vec::new();
        for _ in 0..gateways {
            let g = spawn(&["run", "gateway"], &gateway_env, 0, true).await?;
            addrs.push(g.http.context("no HTTP address")?);
            processes.push(g);
        }
        Ok(Self { processes, gateways: addrs, user_service, _data: data })
    }

    /// Resident memory of every process, in bytes.
    pub fn rss(&self) -> u64 {
        self.processes.iter().map(|p| rss(p.pid())).sum()
    }

    /// CPU time used so far by every process.
    pub fn cpu(&self) -> Duration {
        self.processes.iter().map(|p| cpu(p.pid())).sum()
    }
}

/// `VmRSS` of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// User + system CPU time of `pid` (Linux clock ticks of 1/100 s).
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
