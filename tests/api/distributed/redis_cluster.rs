//! The suite on a Redis Cluster (`REDIS_MODE=cluster`): events over sharded
//! pub/sub, limits and presence on hash-tagged keys, and a primary killed
//! mid-conversation.

use super::*;

use chatterbox_testkit::redis_cluster::OwnRedisCluster;

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
    const TOTAL: u64 = 40;
    let BothListening { client, ann_token, bob_token, conversation: id, readers } = both_listen(&cluster, TOTAL).await;

    let channel = format!("{prefix}:events:conversation:{id}");
    let victim = redis.primary_of(&channel).await.expect("a primary serves the channel");
    let mut killed_at = None;
    let mut promoted_after = None;
    for n in 1..=TOTAL {
        if n == 10 {
            redis.kill(victim);
            killed_at = Some(std::time::Instant::now());
        }
        if let (Some(at), None) = (killed_at, promoted_after)
            && redis.primary_of(&channel).await.is_some_and(|p| p != victim)
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
                match redis.primary_of(&channel).await {
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
