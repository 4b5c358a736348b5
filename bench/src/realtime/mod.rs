//! The real-time scenarios of `make bench`: idle connections, groups,
//! one big room, direct pairs, and two gateways over Redis. The suite runs
//! as its own processes; this one only drives clients, so memory and CPU
//! figures are the suite's own.

mod fleet;
mod population;
mod server;

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fleet::Fleet;
use population::{Member, Populator, chunks};
use server::Suite;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct RealtimeArgs {
    /// Which scenarios to run (all by default).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Scenario::all())]
    pub scenarios: Vec<Scenario>,
    /// Idle connection counts to measure, ascending (one gateway).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1_000, 5_000, 10_000, 19_000])]
    pub idle: Vec<usize>,
    /// Groups in the group scenario.
    #[arg(long, default_value_t = 1_000)]
    pub groups: usize,
    /// Members per group.
    #[arg(long, default_value_t = 10)]
    pub members: usize,
    /// Members of the one room.
    #[arg(long, default_value_t = 5_000)]
    pub room: usize,
    /// Direct conversations in the pairs scenario.
    #[arg(long, default_value_t = 5_000)]
    pub pairs: usize,
    /// Groups of `members` in the two-gateway scenario (MongoDB + Redis).
    #[arg(long, default_value_t = 100)]
    pub distributed_groups: usize,
    /// Seconds of traffic per rate step.
    #[arg(long, default_value_t = 5)]
    pub step_secs: u64,
    /// Latency goal: the sweep stops once p99 passes it (milliseconds).
    #[arg(long, default_value_t = 100)]
    pub p99_goal_ms: u64,
}

/// The real-time scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Idle connections: memory per connection.
    Idle,
    /// Many small groups, one sender each.
    Groups,
    /// One big room, one sender.
    Room,
    /// Many direct conversations, one sender each.
    Pairs,
    /// The groups split across two gateways over Redis, services on SQLite:
    /// what the Redis hop costs.
    Split,
    /// Two gateways over Redis, on MongoDB.
    Distributed,
}

impl Scenario {
    fn all() -> Vec<Self> {
        vec![Self::Idle, Self::Groups, Self::Room, Self::Pairs, Self::Split, Self::Distributed]
    }
}

/// Where a scenario sends from: a connection and its conversation.
struct Senders {
    from: Vec<(usize, String)>,
    /// Connections that receive each message (its conversation's members).
    fanout: u64,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs every scenario and prints its figures.
pub async fn run(args: &RealtimeArgs, mongodb_redis: Option<(String, String)>) -> anyhow::Result<()> {
    let keys = tempfile::tempdir()?;
    let pair = chatterbox_identity::generate_keypair()?;
    std::fs::write(keys.path().join("jwt-private.pem"), &pair.private_pem)?;
    std::fs::write(keys.path().join("jwt-public.pem"), &pair.public_pem)?;
    println!("\n== real time: WebSocket clients against the suite in separate processes ==");
    println!(
        "(send-to-deliver latency: from the client writing message.send to a member's socket reading message.new; \
         the message is durable before it is delivered)"
    );

    let runs = |scenario| args.scenarios.contains(&scenario);
    if runs(Scenario::Idle) {
        idle(args, keys.path(), &pair.private_pem).await?;
    }
    if runs(Scenario::Groups) {
        groups(args, keys.path(), &pair.private_pem).await?;
    }
    if runs(Scenario::Room) {
        room(args, keys.path(), &pair.private_pem).await?;
    }
    if runs(Scenario::Pairs) {
        pairs(args, keys.path(), &pair.private_pem).await?;
    }
    if runs(Scenario::Split) {
        match &mongodb_redis {
            Some((_, redis)) => split(args, keys.path(), &pair.private_pem, redis).await?,
            None => println!("(split scenario skipped: TEST_REDIS_URL not set)"),
        }
    }
    if runs(Scenario::Distributed) {
        match &mongodb_redis {
            Some((mongodb, redis)) => distributed(args, keys.path(), &pair.private_pem, mongodb, redis).await?,
            None => println!("(two-gateway scenario skipped: TEST_MONGODB_URI / TEST_REDIS_URL not set)"),
        }
    }
    Ok(())
}

/// Groups of `members`, one sender each, on one embedded suite.
async fn groups(args: &RealtimeArgs, keys: &std::path::Path, private_pem: &str) -> anyhow::Result<()> {
    let suite = Suite::embedded(keys).await?;
    let make = Populator::new(private_pem, suite.user_service)?;
    let members = make.users("g", args.groups * args.members).await?;
    let groups = chunks(&members, args.members);
    let ids = make.groups(suite.gateways[0], &groups).await?;
    let fleet = Fleet::connect(&members, |_| suite.gateways[0]).await?;
    let senders = Senders {
        from: ids.iter().enumerate().map(|(g, id)| (g * args.members, id.clone())).collect(),
        fanout: args.members as u64,
    };
    let name = format!("embedded: {} groups x {}, one sender each", args.groups, args.members);
    sweep(args, &name, &suite, &fleet, &senders, 400.0).await;
    Ok(())
}

/// One room of `room` members, one sender.
async fn room(args: &RealtimeArgs, keys: &std::path::Path, private_pem: &str) -> anyhow::Result<()> {
    let suite = Suite::embedded(keys).await?;
    let make = Populator::new(private_pem, suite.user_service)?;
    let members = make.users("r", args.room).await?;
    let room = make.room(suite.gateways[0], &members).await?;
    let fleet = connect_timed(&suite, &members, |_| suite.gateways[0]).await?;
    let senders = Senders { from: vec![(0, room)], fanout: args.room as u64 };
    let name = format!("embedded: one room of {}, one sender", args.room);
    sweep(args, &name, &suite, &fleet, &senders, 2.0).await;
    Ok(())
}

/// Direct conversations, one sender each.
async fn pairs(args: &RealtimeArgs, keys: &std::path::Path, private_pem: &str) -> anyhow::Result<()> {
    let suite = Suite::embedded(keys).await?;
    let make = Populator::new(private_pem, suite.user_service)?;
    let members = make.users("p", args.pairs * 2).await?;
    let ids = make.groups(suite.gateways[0], &chunks(&members, 2)).await?;
    let fleet = Fleet::connect(&members, |_| suite.gateways[0]).await?;
    let senders = Senders { from: ids.iter().enumerate().map(|(p, id)| (p * 2, id.clone())).collect(), fanout: 2 };
    let name = format!("embedded: {} direct pairs, one sender each", args.pairs);
    sweep(args, &name, &suite, &fleet, &senders, 400.0).await;
    Ok(())
}

/// Idle connections on one gateway: memory per connection.
async fn idle(args: &RealtimeArgs, keys: &std::path::Path, private_pem: &str) -> anyhow::Result<()> {
    let Some(&most) = args.idle.iter().max() else { return Ok(()) };
    let suite = Suite::embedded(keys).await?;
    let make = Populator::new(private_pem, suite.user_service)?;
    let members = make.users("i", most).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = suite.rss();
    println!("idle connections (embedded, one process): suite RSS before connecting {:.1} MiB", mib(base));
    let mut fleets = Vec::new();
    let mut open = 0;
    for &target in &args.idle {
        let started = Instant::now();
        let cpu = suite.cpu();
        let batch: Vec<Member> = members[open..target].to_vec();
        match Fleet::connect(&batch, |_| suite.gateways[0]).await {
            Ok(fleet) => fleets.push(fleet),
            Err(e) => {
                println!("  {target:>6} connections: FAILED after {open}: {e}");
                break;
            }
        }
        let took = started.elapsed();
        let cpu = suite.cpu().saturating_sub(cpu);
        open = target;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = suite.rss();
        println!(
            "  {target:>6} connections held: RSS {:>7.1} MiB, {:>6.1} KiB per connection; last {} opened at {:.0}/s, \
             {:.0} us server CPU each",
            mib(rss),
            rss.saturating_sub(base) as f64 / 1024.0 / target as f64,
            batch.len(),
            batch.len() as f64 / took.as_secs_f64(),
            cpu.as_micros() as f64 / batch.len().max(1) as f64
        );
    }
    // What holding them costs with nothing else going on: one heartbeat
    // period, in which each connection is pinged and reported alive to the
    // presence service once.
    let period = Duration::from_secs(chatterbox_config::Config::default().ws_heartbeat_secs);
    let cpu = suite.cpu();
    tokio::time::sleep(period).await;
    let spent = suite.cpu().saturating_sub(cpu);
    println!(
        "  {open:>6} connections held for one heartbeat period ({}s): {:.1} us server CPU per connection and \
         heartbeat (ping, pong, presence report), {:.3} of a core",
        period.as_secs(),
        spent.as_micros() as f64 / open.max(1) as f64,
        spent.as_secs_f64() / period.as_secs_f64()
    );
    drop(fleets);
    Ok(())
}

/// The groups scenario with members alternating between two gateways over
/// Redis, every service its own process on its own SQLite file: set next to
/// `groups`, the cost of the bus hop and of the gRPC calls between processes.
async fn split(args: &RealtimeArgs, keys: &std::path::Path, private_pem: &str, redis: &str) -> anyhow::Result<()> {
    let suite = Suite::distributed(keys, None, redis, 2).await?;
    let label = "split (SQLite services in their own processes, 2 gateways over Redis)";
    across_two_gateways(args, &suite, private_pem, ("s", args.groups), label, 400.0).await
}

/// Two gateways, members alternating between them, on MongoDB + Redis.
async fn distributed(
    args: &RealtimeArgs,
    keys: &std::path::Path,
    private_pem: &str,
    mongodb: &str,
    redis: &str,
) -> anyhow::Result<()> {
    let suite = Suite::distributed(keys, Some(mongodb), redis, 2).await?;
    let label = "distributed (FerretDB + Redis, 2 gateways)";
    across_two_gateways(args, &suite, private_pem, ("d", args.distributed_groups), label, 10.0).await
}

/// `groups` groups of `args.members` (users named with `prefix`), members
/// alternating between the suite's gateways, one sender each; sweeps from
/// `start` messages/s.
async fn across_two_gateways(
    args: &RealtimeArgs,
    suite: &Suite,
    private_pem: &str,
    (prefix, groups): (&str, usize),
    label: &str,
    start: f64,
) -> anyhow::Result<()> {
    let make = Populator::new(private_pem, suite.user_service)?;
    let members = make.users(prefix, groups * args.members).await?;
    let ids = make.groups(suite.gateways[0], &chunks(&members, args.members)).await?;
    let gateways = suite.gateways.clone();
    let fleet = Fleet::connect(&members, |i| gateways[i % gateways.len()]).await?;
    let senders = Senders {
        from: ids.iter().enumerate().map(|(g, id)| (g * args.members, id.clone())).collect(),
        fanout: args.members as u64,
    };
    let name = format!("{label}: {groups} groups x {}, members split across gateways", args.members);
    sweep(args, &name, suite, &fleet, &senders, start).await;
    Ok(())
}

/// Connects `members` (each to the gateway `pick` names) and prints how
/// fast, and the suite's CPU per connection: a session's start reads the
/// user's conversations, so its cost shows with the conversations' size.
async fn connect_timed(
    suite: &Suite,
    members: &[Member],
    pick: impl Fn(usize) -> std::net::SocketAddr,
) -> anyhow::Result<Fleet> {
    let (started, cpu) = (Instant::now(), suite.cpu());
    let fleet = Fleet::connect(members, pick).await?;
    let (took, cpu) = (started.elapsed(), suite.cpu().saturating_sub(cpu));
    println!(
        "  connected {} in {:.1} s ({:.0}/s), {:.0} us server CPU each",
        members.len(),
        took.as_secs_f64(),
        members.len() as f64 / took.as_secs_f64(),
        cpu.as_micros() as f64 / members.len().max(1) as f64
    );
    Ok(fleet)
}

/// Raises the send rate from `start` (messages per second) until p99
/// passes the goal, sends stop being acknowledged, or ten steps ran.
async fn sweep(args: &RealtimeArgs, name: &str, suite: &Suite, fleet: &Fleet, senders: &Senders, start: f64) {
    println!("{name}: {} connections", fleet.connections.len());
    let mut rate = start;
    let mut counter = 0u64;
    for _ in 0..10 {
        let step = step(args, suite, fleet, senders, rate, &mut counter).await;
        println!("{}", step.line());
        if step.p99 > Duration::from_millis(args.p99_goal_ms) || step.acked < step.sent * 9 / 10 {
            break;
        }
        rate *= 1.6;
    }
}

/// What one rate step measured.
struct Step {
    rate: f64,
    sent: u64,
    acked: u64,
    deliveries: u64,
    expected: u64,
    /// How long sends were made.
    sending: Duration,
    /// From the first send to the end of the wait for what was in flight.
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    p999: Duration,
    ack_p99: Duration,
    cpu: Duration,
    errors: u64,
    /// The first error frame of the step.
    first_error: Option<String>,
}

impl Step {
    fn line(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "  {:>7.0} msg/s offered: {:>6} sent {:>6} acked ({:>6.0}/s) {:>8} of {:>8} delivered = {:>8.0} deliveries/s  \
             p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  ack p99 {:>7.2} ms  {:>5.1} us CPU/delivery{}",
            self.rate,
            self.sent,
            self.acked,
            self.acked as f64 / self.sending.as_secs_f64().max(f64::EPSILON),
            self.deliveries,
            self.expected,
            self.deliveries as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON),
            ms(self.p50),
            ms(self.p99),
            ms(self.p999),
            ms(self.ack_p99),
            self.cpu.as_secs_f64() * 1e6 / self.deliveries.max(1) as f64,
            match &self.first_error {
                Some(first) if self.errors > 0 => format!("  ({} error frames, first: {first})", self.errors),
                _ => String::new(),
            }
        )
    }
}

async fn step(
    args: &RealtimeArgs,
    suite: &Suite,
    fleet: &Fleet,
    senders: &Senders,
    rate: f64,
    counter: &mut u64,
) -> Step {
    let tally = &fleet.tally;
    tally.deliveries.store(0, Ordering::Relaxed);
    tally.acks.store(0, Ordering::Relaxed);
    tally.latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    tally.ack_latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    let errors_before = tally.errors.load(Ordering::Relaxed);
    tally.first_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    let cpu_before = suite.cpu();
    tally.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let duration = Duration::from_secs(args.step_secs);
    let mut ticker = tokio::time::interval(Duration::from_millis(2));
    let mut sent = 0u64;
    let mut next = 0usize;
    while started.elapsed() < duration {
        ticker.tick().await;
        let due = (rate * started.elapsed().as_secs_f64()) as u64;
        while sent < due {
            let (connection, conversation) = &senders.from[next % senders.from.len()];
            next += 1;
            *counter += 1;
            // A full writer queue is a send the client could not make: not counted as sent.
            if fleet.send(*connection, conversation, *counter) {
                sent += 1;
            } else {
                break;
            }
        }
    }
    // Let what is in flight land (bounded).
    let grace = Instant::now() + Duration::from_secs(5);
    let mut last = tally.deliveries.load(Ordering::Relaxed);
    while Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = tally.deliveries.load(Ordering::Relaxed);
        let acked = tally.acks.load(Ordering::Relaxed);
        // Everything landed, or nothing moved in the last 100 ms after every ack.
        if acked >= sent && (now >= acked * senders.fanout || now == last) {
            break;
        }
        last = now;
    }
    tally.measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let cpu = suite.cpu().saturating_sub(cpu_before);
    let sorted = |of: &Mutex<Vec<u32>>| {
        let mut all = std::mem::take(&mut *of.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        all.sort_unstable();
        all
    };
    let (latencies, ack_latencies) = (sorted(&tally.latencies), sorted(&tally.ack_latencies));
    let quantile = |of: &[u32], q: f64| {
        let i = ((of.len() as f64 - 1.0) * q).round().max(0.0) as usize;
        Duration::from_micros(of.get(i).copied().map_or(0, u64::from))
    };
    let at = |q: f64| quantile(&latencies, q);
    let acked = tally.acks.load(Ordering::Relaxed);
    Step {
        rate,
        sent,
        acked,
        deliveries: tally.deliveries.load(Ordering::Relaxed),
        expected: acked * senders.fanout,
        sending: duration,
        elapsed,
        p50: at(0.5),
        p99: at(0.99),
        p999: at(0.999),
        ack_p99: quantile(&ack_latencies, 0.99),
        cpu,
        errors: tally.errors.load(Ordering::Relaxed) - errors_before,
        first_error: tally.first_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take(),
    }
}
