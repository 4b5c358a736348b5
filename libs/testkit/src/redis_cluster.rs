//! A Redis Cluster of a test's own (three primaries, three replicas, from
//! `scripts/redis-cluster.sh`), so a drill can kill one of its nodes.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

/// `scripts/redis-cluster.sh` of the checkout under test.
fn script() -> std::path::PathBuf {
    crate::workspace_root().join("scripts/redis-cluster.sh")
}

/// The cluster; every node is stopped when it is dropped.
#[derive(Debug)]
pub struct OwnRedisCluster {
    dir: tempfile::TempDir,
    /// The seed list, as `REDIS_URL` takes it.
    pub seeds: String,
    killed: Mutex<BTreeSet<u16>>,
}

impl OwnRedisCluster {
    /// Starts it, every replica synced; a silent primary is replaced by its
    /// replica after about `node_timeout`.
    pub fn start(node_timeout: Duration) -> Self {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let out = std::process::Command::new(script())
            .arg("start")
            .arg(dir.path())
            .env("CLUSTER_NODE_TIMEOUT_MS", node_timeout.as_millis().to_string())
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("scripts/redis-cluster.sh runs");
        assert!(out.status.success(), "the Redis Cluster starts");
        let seeds = String::from_utf8(out.stdout).expect("seed URLs").trim().to_owned();
        Self { dir, seeds, killed: Mutex::new(BTreeSet::new()) }
    }

    /// The ports of the nodes not killed.
    fn alive(&self) -> Vec<u16> {
        let killed = self.killed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.seeds
            .split(',')
            .filter_map(|url| url.trim_end_matches('/').rsplit(':').next()?.parse().ok())
            .filter(|port| !killed.contains(port))
            .collect()
    }

    /// The port of the primary serving `key`'s slot, as the first live node
    /// that answers sees it.
    pub async fn primary_of(&self, key: &str) -> Option<u16> {
        for port in self.alive() {
            let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else { continue };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else { continue };
            let Ok(slot) = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async::<u16>(&mut conn).await else {
                continue;
            };
            let Ok(nodes) = redis::cmd("CLUSTER").arg("NODES").query_async::<String>(&mut conn).await else { continue };
            return nodes.lines().find_map(|line| primary_serving(line, slot));
        }
        None
    }

    /// Kills the node on `port` outright (SIGKILL), as a crashed machine.
    pub fn kill(&self, port: u16) {
        let pid = std::fs::read_to_string(self.dir.path().join(port.to_string()).join("redis.pid"))
            .expect("the node's pid file");
        let status = std::process::Command::new("kill").arg("-KILL").arg(pid.trim()).status().expect("kill runs");
        assert!(status.success(), "kill -KILL {pid}");
        self.killed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(port);
    }
}

/// The port of the node a `CLUSTER NODES` line describes, if it is a live
/// primary serving `slot`.
fn primary_serving(line: &str, slot: u16) -> Option<u16> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let flags = fields.get(2)?;
    if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
        return None;
    }
    let serves = fields.iter().skip(8).any(|range| {
        let (from, to) = range.split_once('-').unwrap_or((range, range));
        matches!((from.parse::<u16>(), to.parse::<u16>()), (Ok(f), Ok(t)) if (f..=t).contains(&slot))
    });
    if !serves {
        return None;
    }
    fields[1].split('@').next()?.rsplit(':').next()?.parse().ok()
}

impl Drop for OwnRedisCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script()).arg("stop").arg(self.dir.path()).status();
    }
}

#[cfg(test)]
mod tests {
    use super::primary_serving;

    #[test]
    fn a_primary_line_names_its_port_for_its_slots_only() {
        let line = "ab12 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 7000";
        assert_eq!(primary_serving(line, 0), Some(7001));
        assert_eq!(primary_serving(line, 7000), Some(7001));
        assert_eq!(primary_serving(line, 5461), None);
        let failed = "ab12 127.0.0.1:7001@17001 master,fail - 0 0 1 connected 0-5460";
        assert_eq!(primary_serving(failed, 0), None);
        let replica = "cd34 127.0.0.1:7004@17004 slave ab12 0 0 1 connected";
        assert_eq!(primary_serving(replica, 0), None);
    }
}
