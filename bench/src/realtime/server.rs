//! The suite under test, as separate processes (so its memory and CPU are
//! its own), and what `/proc` says about them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chatterbox::Part;
use chatterbox_testkit::process::{Spawned, spawn_logged};

/// One running process and what it logged about itself.
#[derive(Debug)]
pub struct Process {
    spawned: Spawned,
}

impl Process {
    /// Its pid, for `/proc`.
    pub fn pid(&self) -> u32 {
        self.spawned.child.id().unwrap_or(0)
    }

    /// Where it serves HTTP (a gateway or the all-in-one run).
    pub fn http(&self) -> Option<SocketAddr> {
        self.spawned.listening.http
    }

    /// Where it serves the gRPC service whose logged name list ends with `suffix`.
    pub fn grpc(&self, suffix: &str) -> Option<SocketAddr> {
        self.spawned.listening.grpc.iter().find(|(name, _)| name.ends_with(suffix)).map(|(_, addr)| *addr)
    }

    /// Where it serves its (only) gRPC service.
    fn only_grpc(&self) -> anyhow::Result<SocketAddr> {
        self.spawned.listening.grpc.first().map(|(_, addr)| *addr).context("no gRPC address")
    }
}

/// The `chatterbox` binary next to this one (the same build).
fn binary() -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("chatterbox");
    anyhow::ensure!(path.exists(), "{} is missing: build it first (make bench does)", path.display());
    Ok(path)
}

/// Starts `chatterbox <args>` with `env`; returns once it serves what it
/// should (HTTP, and `grpc_count` gRPC servers).
async fn spawn(args: &[&str], env: &[(String, String)], grpc_count: usize, http: bool) -> anyhow::Result<Process> {
    let spawned =
        spawn_logged(&binary()?, args, env, |l| l.grpc.len() >= grpc_count && (!http || l.http.is_some())).await?;
    Ok(Process { spawned })
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
        // Every gRPC service of `chatterbox all` has logged where it listens.
        let all = spawn(&["all"], &common_env(data.path(), keys), 6, true).await?;
        let gateways = vec![all.http().context("no HTTP address")?];
        let user_service = all.grpc("UserService\"]").context("no user service")?;
        Ok(Self { processes: vec![all], gateways, user_service, _data: data })
    }

    /// One process per service and `gateways` gateways over Redis; the
    /// services on MongoDB, or on their own SQLite files without it.
    pub async fn distributed(keys: &Path, mongodb: Option<&str>, redis: &str, gateways: usize) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let mut env = common_env(data.path(), keys);
        if let Some(mongodb) = mongodb {
            env.push(("MONGODB_URI".into(), mongodb.into()));
            env.push(("CHATTERBOX_MONGODB_DATABASE".into(), format!("bench{}", ulid::Ulid::new())));
        }
        env.push(("REDIS_URL".into(), redis.into()));
        env.push(("CHATTERBOX_REDIS_KEY_PREFIX".into(), format!("bench-{}", ulid::Ulid::new())));
        // Which part calls which, and so the URLs each is given, comes from
        // the table of parts.
        let mut layout = chatterbox::Layout::new(|| std::net::TcpListener::bind("127.0.0.1:0")?.local_addr())?;
        // Media on disk under the data dir: the bench sends no files.
        let started = layout
            .start_services(
                |_| env.clone(),
                async |part, env| {
                    let process = spawn(&["run", part.name()], &env, 1, false).await?;
                    let addr = process.only_grpc()?;
                    Ok((process, addr))
                },
            )
            .await?;
        let user_service = started
            .iter()
            .find(|(part, _)| *part == Part::User)
            .map(|(_, p)| p.only_grpc())
            .context("the table starts no user service")??;
        let mut processes: Vec<Process> = started.into_iter().map(|(_, p)| p).collect();
        let gateway_env = layout.gateway_env(env.clone());
        let mut addrs = Vec::new();
        for _ in 0..gateways {
            let g = spawn(&["run", Part::Gateway.name()], &gateway_env, 0, true).await?;
            addrs.push(g.http().context("no HTTP address")?);
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
        self.processes.iter().map(|p| crate::cpu::of_process(p.pid())).sum()
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
