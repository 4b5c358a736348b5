//! The suite on a Redis Cluster (`REDIS_MODE=cluster`): events over sharded
//! pub/sub, limits and presence on hash-tagged keys, and a primary killed
//! mid-conversation.

use super::*;

/// A Redis Cluster of the test's own (three primaries, three replicas, from
/// `scripts/redis-cluster.sh`), so a drill can kill one of its nodes; every
/// node is stopped when it is dropped.
struct OwnRedisCluster {
    dir: tempfile::TempDir,
    /// The seed list, as `REDIS_URL` takes it.
    seeds: String,
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/redis-cluster.sh");

impl OwnRedisCluster {
    /// Starts it; a silent primary is replaced by its replica after about
    /// `node_timeout`.
    fn start(node_timeout: std::time::Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(SCRIPT)
            .arg("start")
            .arg(dir.path())
            .env("CLUSTER_NODE_TIMEOUT_MS", node_timeout.as_millis().to_string())
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "the Redis Cluster starts");
        let seeds = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Self { dir, seeds }
    }

    /// The ports of the nodes.
    fn ports(&self) -> Vec<u16> {
        self.seeds
            .split(',')
            .map(|url| url.trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap())
            .collect()
    }

    /// `CLUSTER NODES` as seen by the first node of `ports` that answers.
    async fn nodes(ports: &[u16]) -> Option<String> {
        for port in ports {
            let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else { continue };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else { continue };
            if let Ok(nodes) = redis::cmd("CLUSTER").arg("NODES").query_async::<String>(&mut conn).await {
                return Some(nodes);
            }
        }
        None
    }

    /// The port of the primary serving `key`'s slot, as `ports` see it.
    async fn primary_of(ports: &[u16], key: &str) -> Option<u16> {
        let slot = {
            let client = redis::Client::open(format!("redis://127.0.0.1:{}/", ports[0])).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async::<u16>(&mut conn).await.ok()?
        };
        let nodes = Self::nodes(ports).await?;
        nodes.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let is_primary = fields.get(2)?.split(',').any(|f| f == "master") && !fields[2].contains("fail");
            let serves = fields.iter().skip(8).any(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                matches!((from.parse::<u16>(), to.parse::<u16>()), (Ok(f), Ok(t)) if (f..=t).contains(&slot))
            });
            (is_primary && serves).then(|| fields[1].split('@').next()?.rsplit(':').next()?.parse().ok()).flatten()
        })
    }

    /// Kills the node on `port` outright (SIGKILL), as a crashed machine.
    fn kill(&self, port: u16) {
        let pid = std::fs::read_to_string(self.dir.path().join(port.to_string()).join("redis.pid")).unwrap();
        send_signal(pid.trim().parse().unwrap(), "KILL");
    }
}

impl Drop for OwnRedisCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(SCRIPT).arg("stop").arg(self.dir.path()).status();
    }
}

/// Drill (Redis Cluster): two gateways and every service on a cluster; the
/// primary that carries the conversation's events is killed with SIGKILL in
/// the middle of it, and its replica takes over. Every send is acknowledged
/// (the limits fail open while the shard is away), and every client on
/// either gateway gets every acknowledged message once, in order: the bus
/// reports the gap, resubscribes on the promoted replica, and the gateways
/// fill the gap from history.
#[tokio::test]
async fn drill_a_redis_cluster_primary_killed_mid_stream_loses_and_repeats_nothing() {
    let redis = OwnRedisCluster::start(std::time::Duration::from_millis(1000));
    let prefix = chatterbox_testkit::fresh_key_prefix();
    let settings = [
        ("REDIS_MODE", "cluster".to_owned()),
        ("CHATTERBOX_REDIS_KEY_PREFIX", prefix.clone()),
        ("CHATTERBOX_METRICS_ADDR", "127.0.0.1:0".to_owned()),
    ];
    let cluster = Cluster::start_on(1_000, redis.seeds.clone(), &settings).await;
    let client = reqwest::Client::new();
    let (ann, ann_token) = register(&client, &cluster.a, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.b, "bob").await;
    let id = direct(&client, &cluster.a, &ann_token, &bob).await;

    let (ann_user, bob_user) = (test_user(&ann, &ann_token), test_user(&bob, &bob_token));
    const TOTAL: u64 = 40;
    let readers = [
        tokio::spawn(collect_messages(crate::ws_client::ws_at(cluster.a.addr, &ann_user).await, TOTAL)),
        tokio::spawn(collect_messages(crate::ws_client::ws_at(cluster.b.addr, &bob_user).await, TOTAL)),
        tokio::spawn(collect_messages(crate::ws_client::ws_at(cluster.a.addr, &bob_user).await, TOTAL)),
    ];

    let ports = redis.ports();
    let channel = format!("{prefix}:events:conversation:{id}");
    let victim = OwnRedisCluster::primary_of(&ports, &channel).await.expect("a primary serves the channel");
    let survivors: Vec<u16> = ports.iter().copied().filter(|p| *p != victim).collect();
    let mut killed_at = None;
    let mut promoted_after = None;
    for n in 1..=TOTAL {
        if n == 10 {
            redis.kill(victim);
            killed_at = Some(std::time::Instant::now());
        }
        if let (Some(at), None) = (killed_at, promoted_after)
            && OwnRedisCluster::primary_of(&survivors, &channel).await.is_some_and(|p| p != victim)
        {
            promoted_after = Some(at.elapsed());
        }
        let (gateway, token) = if n % 2 == 0 { (&cluster.a, &ann_token) } else { (&cluster.b, &bob_token) };
        let sent = client
            .post(format!("http://{}/api/v1/conversations/{id}/messages", gateway.addr))
            .bearer_auth(token)
            .json(&json!({"content": format!("message {n}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), StatusCode::CREATED, "message {n} is acknowledged while the shard fails over");
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    let promoted_after = match promoted_after {
        Some(after) => after,
        None => {
            chatterbox_testkit::eventually("a replica takes over", std::time::Duration::from_secs(30), || async {
                match OwnRedisCluster::primary_of(&survivors, &channel).await {
                    Some(p) if p != victim => Ok(()),
                    other => Err(format!("the channel's primary: {other:?}")),
                }
            })
            .await;
            killed_at.unwrap().elapsed()
        }
    };

    let expected: Vec<u64> = (1..=TOTAL).collect();
    for reader in readers {
        let seqs = reader.await.unwrap();
        assert_eq!(seqs, expected, "every acknowledged message exactly once, in order");
    }
    // Each gateway noticed: the loss was the bus's to report, not luck.
    let mut gaps = Vec::new();
    for gateway in [&cluster.a, &cluster.b] {
        let metrics = client.get(format!("http://{}/metrics", gateway.metrics_addr.unwrap())).send().await.unwrap();
        let metrics = metrics.text().await.unwrap();
        let reported = metrics
            .lines()
            .find(|l| l.starts_with("events_bus_gaps_total{") && l.contains(r#"bus="redis""#))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        assert!(reported >= 1.0, "the gateway's bus reported the gap: {metrics}");
        gaps.push(reported);
    }
    println!(
        "[drill] Redis Cluster primary killed: acknowledged {TOTAL}, lost 0, duplicated 0, out of order 0, \
         replica promoted within {promoted_after:?}, gaps reported by the gateways {gaps:?}"
    );
}
