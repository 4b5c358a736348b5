//! Fault drills (`docs/failures.md`): a part killed, frozen or cut off
//! while traffic flows; nothing acknowledged is lost, repeated or reordered.

use super::*;

/// Drill (issue "fault drills", item 2): the message service is killed with
/// SIGKILL in the middle of a stream of sends and started again. A client
/// sends through gateway A, retrying each send with its `client_id` as a real
/// client does; the other participant listens on gateway B. At the end,
/// what was acknowledged is compared with history and with what was heard:
/// nothing lost, nothing twice, nothing out of order, and every send made
/// during the outage answered promptly (503), never left hanging.
#[tokio::test]
async fn drill_the_message_service_killed_mid_stream_loses_and_repeats_nothing() {
    let total = drill_messages();
    let mut cluster = Cluster::start(0).await;
    let patience = std::time::Duration::from_secs(60 + total / 10);
    let mut stream = Stream::start(&cluster, total, &[503, 429], patience).await;

    // A third of the way in, the message service dies without a word and
    // comes back two seconds later.
    stream.acknowledged(total / 3).await;
    cluster.service_mut(Part::Message).kill().await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    cluster.restart(Part::Message).await;
    let sent = stream.finish(&cluster).await;

    // Refusals came fast: a send never waits past the internal deadline.
    assert!(sent.slowest < std::time::Duration::from_secs(6), "a send took {:?}", sent.slowest);
    println!(
        "[drill] message service killed: acknowledged {total}, lost 0, duplicated 0, out of order 0, \
         refused {:?}, slowest answer {:?}, back after {:?}",
        sent.refused, sent.slowest, sent.longest_outage
    );
}

/// Drill (fault drills, item 3): a gateway is killed with SIGKILL while a
/// client listens on it. The client reconnects to the other gateway and
/// resumes from the last message it has; in the end it holds every message
/// once. `CHATTERBOX_DRILL_MESSAGES` sizes it.
#[tokio::test]
async fn drill_a_killed_gateways_client_resumes_on_the_other_and_misses_nothing() {
    let total = drill_messages();
    let mut cluster = Cluster::start(0).await;
    let Listening { client, ann_token, conversation, bob_user, mut socket } = bob_listens_on_a(&cluster).await;
    let sender = ann_writes_through_b(&cluster, &client, &ann_token, &conversation, total);

    let mut received: Vec<u64> = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60 + total / 10);
    let mut killed_at = None;
    let mut resumed_after = None;
    while (received.len() as u64) < total || (1..=total).any(|s| !received.contains(&s)) {
        assert!(tokio::time::Instant::now() < deadline, "{} of {total} after {:?}", received.len(), killed_at);
        match socket.next_unless_gone(std::time::Duration::from_millis(500)).await {
            Ok(Some(frame)) if frame["type"] == "message.new" => {
                received.push(frame["message"]["seq"].as_u64().unwrap());
                if killed_at.is_none() && received.len() as u64 >= total / 3 {
                    // Gateway A dies without a word.
                    cluster.a.kill().await;
                    killed_at = Some(std::time::Instant::now());
                }
            }
            Ok(Some(frame)) if frame["type"] == "resumed" => {
                resumed_after = killed_at.map(|at| at.elapsed());
            }
            Ok(_) => {}
            Err(()) => socket = resume_elsewhere(&cluster.b, &bob_user, &conversation, &received).await,
        }
    }
    sender.await.unwrap();
    // Anything repeated would arrive right behind.
    while let Ok(Some(frame)) = socket.next_unless_gone(std::time::Duration::from_millis(500)).await {
        if frame["type"] == "message.new" {
            received.push(frame["message"]["seq"].as_u64().unwrap());
        }
    }
    assert!(killed_at.is_some() && resumed_after.is_some(), "the gateway was killed and the client resumed");
    assert_each_arrived_once(&received, total);
    println!(
        "[drill] gateway killed: {total} messages, lost 0, duplicated 0, resumed on the other gateway {:?} after the kill",
        resumed_after.unwrap()
    );
}

/// Drill (fault drills, item 4): a gateway is frozen (SIGSTOP) while a
/// client listens on it, as a stuck node would freeze it, and thawed
/// (SIGCONT) ten seconds later. The client, hearing nothing (its pings
/// unanswered), moves to the other gateway and resumes; it ends with every
/// message once, in order. Thawed, the gateway serves again: a client that
/// connects to it then hears what is sent next, once, like the moved one.
/// `CHATTERBOX_DRILL_MESSAGES` sizes it.
#[tokio::test]
async fn drill_a_frozen_gateways_client_moves_on_and_the_thawed_gateway_serves_again() {
    use std::time::{Duration, Instant};
    let total = drill_messages();
    const FROZEN_FOR: Duration = Duration::from_secs(10);
    // Silence after which the client pings, and after which it gives up on the connection.
    const QUIET: Duration = Duration::from_secs(1);
    const DEAD: Duration = Duration::from_secs(3);
    let cluster = Cluster::start(0).await;
    let Listening { client, ann_token, conversation, bob_user, mut socket } = bob_listens_on_a(&cluster).await;
    let sender = ann_writes_through_b(&cluster, &client, &ann_token, &conversation, total);

    let mut received: Vec<u64> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60 + total / 10);
    let (mut frozen_at, mut moved_after, mut last_heard) = (None::<Instant>, None, Instant::now());
    let mut thaw = None;
    while (1..=total).any(|s| !received.contains(&s)) {
        assert!(tokio::time::Instant::now() < deadline, "{} of {total}", received.len());
        let gone = match socket.next_unless_gone(Duration::from_millis(250)).await {
            Ok(Some(frame)) => {
                last_heard = Instant::now();
                if frame["type"] == "message.new" {
                    received.push(frame["message"]["seq"].as_u64().unwrap());
                    if frozen_at.is_none() && received.len() as u64 >= total / 3 {
                        cluster.a.signal("STOP");
                        frozen_at = Some(Instant::now());
                        let pid = cluster.a.child.id().unwrap();
                        thaw = Some(tokio::spawn(async move {
                            tokio::time::sleep(FROZEN_FOR).await;
                            send_signal(pid, "CONT");
                        }));
                    }
                } else if frame["type"] == "resumed" {
                    moved_after = frozen_at.map(|at| at.elapsed());
                }
                false
            }
            Ok(None) if last_heard.elapsed() > DEAD => true,
            Ok(None) => {
                if last_heard.elapsed() > QUIET {
                    // As a client does when its connection goes quiet.
                    socket.send(json!({"type": "ping", "id": "alive"})).await;
                }
                false
            }
            Err(()) => true,
        };
        if gone {
            socket = resume_elsewhere(&cluster.b, &bob_user, &conversation, &received).await;
            last_heard = Instant::now();
        }
    }
    sender.await.unwrap();
    assert!(frozen_at.is_some() && moved_after.is_some(), "the gateway froze and the client resumed elsewhere");
    assert_each_arrived_once(&received, total);
    let ahead_of_replay = received.windows(2).filter(|w| w[0] > w[1]).count();

    // Thawed, gateway A sheds the stale session and serves a new one.
    thaw.unwrap().await.unwrap();
    let thawed = Instant::now();
    let mut on_thawed = loop {
        let ready = client.get(format!("http://{}/readyz", cluster.a.addr)).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break crate::ws_client::ws_at(cluster.a.addr, &bob_user).await;
        }
        assert!(thawed.elapsed() < Duration::from_secs(30), "gateway A serves again after the thaw");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let back_after = thawed.elapsed();
    on_thawed.sync().await;
    let url = format!("http://{}/api/v1/conversations/{conversation}/messages", cluster.b.addr);
    let mut slowest = Duration::ZERO;
    send_one(&client, &url, &ann_token, &format!("drill-{total}"), &[], &mut slowest).await;
    for ws in [&mut socket, &mut on_thawed] {
        let frame = ws.expect("message.new").await;
        assert_eq!(frame["message"]["seq"].as_u64(), Some(total + 1));
        // Nothing else, and nothing twice.
        while let Some(frame) = ws.try_next(Duration::from_millis(500)).await {
            assert_ne!(frame["type"], "message.new", "{frame}");
        }
    }
    println!(
        "[drill] gateway frozen {FROZEN_FOR:?}: acknowledged {}, lost 0, duplicated 0, live ahead of the replay \
         {ahead_of_replay}, 5xx 0, \
         client resumed elsewhere {:?} after the freeze, thawed gateway serving {back_after:?} after SIGCONT",
        total + 1,
        moved_after.unwrap()
    );
}

/// Drill (fault drills, item 5): the database goes away for ten seconds in
/// the middle of a stream of sends and comes back; nothing is restarted. A
/// client sends through gateway A, retrying each send with its `client_id`;
/// the other participant listens on gateway B. While the database is gone
/// sends answer 503 promptly and `/readyz` names the services that cannot
/// reach it as degraded (the gateways stay in rotation); once it is back traffic resumes by itself, and history holds
/// every acknowledged message once, in order, as heard on B.
/// `CHATTERBOX_DRILL_MESSAGES` sizes it.
#[tokio::test]
async fn drill_the_database_gone_for_ten_seconds_loses_and_repeats_nothing() {
    use std::time::{Duration, Instant};
    let total = drill_messages();
    const GONE_FOR: Duration = Duration::from_secs(10);
    let mut ferret = OwnServer::ferretdb().await;
    let cluster = Cluster::start_on(0, chatterbox_testkit::redis_url(), &[("MONGODB_URI", ferret.mongodb_uri())]).await;
    let mut stream = Stream::start(&cluster, total, &[503], Duration::from_secs(90 + total / 10)).await;
    let client = stream.client.clone();

    // A third of the way in, the database goes away; the gateways say so.
    stream.acknowledged(total / 3).await;
    ferret.kill().await;
    let gone_at = Instant::now();
    let readyz = format!("http://{}/readyz", cluster.b.addr);
    // Still in rotation (no gateway can bring the database back), saying
    // which services cannot work.
    loop {
        let answer = client.get(&readyz).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "the gateway stays in rotation");
        let ready: Value = answer.json().await.unwrap();
        let degraded = ready["degraded"].as_array().cloned().unwrap_or_default();
        if degraded.iter().any(|d| d.as_str().is_some_and(|d| d.contains("MessageService: NOT_SERVING"))) {
            break;
        }
        assert!(gone_at.elapsed() < GONE_FOR, "/readyz never said the message service cannot work: {ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let said_after = gone_at.elapsed();
    // Behind it, the services' health: not serving, yet alive (a restart
    // would not bring the database back).
    let health = |service: &str| {
        let channel = chatterbox_runtime::connect(
            &format!("http://{}", cluster.service(Part::Message).addr),
            Duration::from_secs(2),
            None,
        )
        .unwrap();
        let request = tonic_health::pb::HealthCheckRequest { service: service.to_owned() };
        async move {
            let answer = tonic_health::pb::health_client::HealthClient::new(channel).check(request).await.unwrap();
            answer.into_inner().status()
        }
    };
    use tonic_health::pb::health_check_response::ServingStatus;
    while health("chatterbox.message.v1.MessageService").await != ServingStatus::NotServing {
        assert!(gone_at.elapsed() < GONE_FOR, "the message service never said it cannot reach its database");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(health("").await, ServingStatus::Serving, "the process is alive");
    tokio::time::sleep(GONE_FOR.saturating_sub(gone_at.elapsed())).await;
    ferret.restart().await;
    let back_at = Instant::now();
    let sent = stream.finish(&cluster).await;
    // Whole again by itself.
    loop {
        let ready: Value = client.get(&readyz).send().await.unwrap().json().await.unwrap();
        if ready["status"] == "ready" && ready.get("degraded").is_none() {
            break;
        }
        assert!(back_at.elapsed() < Duration::from_secs(30), "/readyz stays degraded after the database is back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert!(sent.refused.get(&503).is_some_and(|n| *n > 0), "sends met the outage: {:?}", sent.refused);
    assert!(sent.slowest < Duration::from_secs(6), "a send took {:?}", sent.slowest);
    println!(
        "[drill] database gone {GONE_FOR:?}: acknowledged {total}, lost 0, duplicated 0, out of order 0, \
         5xx {:?} (all 503), slowest answer {:?}, /readyz named it {said_after:?} after, \
         sends back {:?} after the first refusal",
        sent.refused, sent.slowest, sent.longest_outage
    );
}

/// Drill (fault drills, item 6): the network between the services goes bad.
/// Every call to the message and conversation services passes a proxy that
/// first adds 200 ms each way, then swallows everything for longer than the
/// calls' deadline, then cuts every connection, then cuts them twice more. A
/// client sends through gateway A with `client_id` retries; the other
/// listens on gateway B. Deadlines fire (503, never a hang past them),
/// retries make no copies, and in the end history and what B heard are
/// exactly what was acknowledged, in order.
#[tokio::test]
async fn drill_a_bad_network_between_services_loses_and_repeats_nothing() {
    use crate::fault_proxy::Fault;
    use std::time::Duration;
    let total = drill_messages();
    let cluster =
        Cluster::start_with(0, chatterbox_testkit::redis_url(), &[], &[Part::Message, Part::Conversation]).await;
    let mut stream = Stream::start(&cluster, total, &[503], Duration::from_secs(120 + total / 10)).await;
    let every_proxy = |act: &dyn Fn(&crate::fault_proxy::FaultProxy)| cluster.proxies.values().for_each(act);

    stream.acknowledged(total / 5).await;
    every_proxy(&|p| p.set(Fault::Latency(Duration::from_millis(200))));
    // Every hop is slow now: a twentieth of the sends is enough to see it.
    stream.acknowledged(total / 5 + total / 20).await;
    // Longer than the 5 s deadline of every internal call.
    every_proxy(&|p| p.set(Fault::Blackhole));
    tokio::time::sleep(Duration::from_secs(7)).await;
    every_proxy(&|p| p.set(Fault::None));
    every_proxy(&|p| p.reset_all());
    stream.acknowledged(total * 3 / 5).await;
    every_proxy(&|p| p.reset_all());
    stream.acknowledged(total * 4 / 5).await;
    every_proxy(&|p| p.reset_all());
    let sent = stream.finish(&cluster).await;
    assert!(sent.refused.get(&503).is_some_and(|n| *n > 0), "deadlines fired: {:?}", sent.refused);
    // The gateway's own deadline bounds every answer.
    assert!(sent.slowest < Duration::from_secs(7), "a send took {:?}", sent.slowest);
    println!(
        "[drill] bad network between services (200 ms latency, 7 s blackhole, 3 cuts): acknowledged {total}, \
         lost 0, duplicated 0, out of order 0, 5xx {:?} (all 503), slowest answer {:?}, back {:?} after the \
         first refusal",
        sent.refused, sent.slowest, sent.longest_outage
    );
}

/// Drill (fault drills, item 1): a soak. `CHATTERBOX_SOAK_CLIENTS` users
/// (200) in groups of ten, each listening on a WebSocket to one of the two
/// gateways, while messages go to the groups at `CHATTERBOX_SOAK_RATE` per
/// second (20) for `CHATTERBOX_SOAK_SECS` (20), through both gateways with
/// `client_id` retries, and `CHATTERBOX_SOAK_LOGINS` logins per second (5)
/// run alongside. In the end every member of every group heard every
/// acknowledged message of it once, in order, and history holds exactly
/// what was acknowledged; delivery percentiles are printed (`make bench`
/// runs it larger).
#[tokio::test]
async fn drill_a_soak_of_groups_delivers_every_message_once_in_order() {
    println!("{}", soak(&mut Cluster::start(0).await, None).await);
}

/// Drill (fault drills, item 2): the soak above, with the message service
/// killed with SIGKILL halfway through and started again two seconds later:
/// sends meet 503 meanwhile and are retried with their `client_id`; still
/// every message once, in order, for every member, and no copies in history.
#[tokio::test]
async fn drill_the_message_service_killed_during_a_soak_loses_and_repeats_nothing() {
    println!("{}", soak(&mut Cluster::start(0).await, Some(Part::Message)).await);
}
