//! `chatterbox-bench`, the load generator of `make bench`:
//! - `http`: starts a suite in this process on the chosen backends and
//!   measures persisted sends per second through the gateway (HTTP) and
//!   straight to the message service (gRPC), history reads (the newest
//!   50 of a random conversation among many holding a million messages),
//!   searches of that history (words in one message of a thousand, or in
//!   all; by a user in every conversation, and by one in only one) and
//!   conversation reads (two service calls behind the gateway each);
//! - `realtime`: runs the suite as separate processes and drives WebSocket
//!   clients: idle connections, groups, a big room, direct pairs, and two
//!   gateways over Redis (see `realtime`);
//! - `store`: appends straight to the embedded message store, as WebSocket
//!   sends reach it: the writer thread's cost per message and its disk
//!   writes.
//!
//! It prints figures, not verdicts. Traffic stays on 127.0.0.1 and every
//! loop is bounded.

// Printing the figures is this program's purpose.
#![allow(clippy::print_stdout)]

mod cpu;
mod load;
mod realtime;
mod stats;
mod store;

use std::time::{Duration, Instant};

use chatterbox_config::{Config, Secret};
use clap::{Parser, ValueEnum};

/// The same allocator as the `chatterbox` binary, so figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// SQLite files and in-process state.
    Embedded,
    /// MongoDB (`TEST_MONGODB_URI`) and Redis (`TEST_REDIS_URL`).
    MongoRedis,
}

#[derive(Debug, Parser)]
#[command(about = "ChatterBox load generator")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Sends and history reads over HTTP and gRPC (suite in this process).
    Http(Args),
    /// WebSocket fan-out, latency, memory and CPU (suite in its own processes).
    Realtime(realtime::RealtimeArgs),
    /// Appends straight to the embedded message store (no gateway, no
    /// services): the writer thread's cost per message.
    Store(store::StoreArgs),
}

#[derive(Debug, clap::Args)]
struct Args {
    /// Which backends the suite uses.
    #[arg(long, value_enum, default_value = "embedded")]
    backend: Backend,
    /// Messages sent in each send scenario.
    #[arg(long, default_value_t = 10_000)]
    sends: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Conversations the history scenario reads from.
    #[arg(long, default_value_t = 1_000)]
    conversations: usize,
    /// Messages in those conversations, in all.
    #[arg(long, default_value_t = 1_000_000)]
    messages: usize,
    /// History reads to make.
    #[arg(long, default_value_t = 20_000)]
    reads: usize,
    /// Searches to make in each search scenario (0: none).
    #[arg(long, default_value_t = 2_000)]
    searches: usize,
    /// Searches in flight at once (their latency is the figure: a few
    /// people searching at once, not a queue of 64).
    #[arg(long, default_value_t = 4)]
    search_concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().mode {
        Mode::Http(args) => http(args).await,
        Mode::Realtime(args) => {
            let servers = match (std::env::var("TEST_MONGODB_URI"), std::env::var("TEST_REDIS_URL")) {
                (Ok(mongodb), Ok(redis)) => Some((mongodb, redis)),
                _ => None,
            };
            realtime::run(&args, servers).await
        }
        Mode::Store(args) => store::run(&args).await,
    }
}

async fn http(args: Args) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let mut config = Config {
        http_addr: "127.0.0.1:0".parse()?,
        data_dir: data.path().to_path_buf(),
        http_rate_limit: 0,
        log: "error".into(),
        ..Config::default()
    };
    if args.backend == Backend::MongoRedis {
        let env = |name: &str| {
            std::env::var(name).map_err(|_| anyhow::anyhow!("{name} is not set (run through `make bench`)"))
        };
        config.mongodb_uri = Some(Secret::new(env("TEST_MONGODB_URI")?));
        config.redis_url = Some(Secret::new(env("TEST_REDIS_URL")?));
        config.mongodb_database = format!("bench{}", std::process::id());
    }
    let suite = chatterbox::embedded::start(&config).await?;
    let http = format!("http://{}", suite.http_addr);
    println!(
        "ChatterBox bench: backend {:?}, {} cores, concurrency {}",
        args.backend,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        args.concurrency
    );

    let client = load::Client::new(&http);
    let alice = client.register("alice").await?;
    let bob = client.register("bob").await?;

    // The scenarios run on their own runtime, with their own connections.
    let runtime = load::LoadRuntime::new()?;
    let load = runtime.handle();
    let load_client = load::Client::new(&http);

    let groups = client.groups(&alice, &bob, 100).await?;
    let s = load::sends_over_http(load, &load_client, &alice, &groups, args.sends, args.concurrency).await?;
    println!("{}", s.line("persisted sends, HTTP through the gateway"));
    let s = load::sends_over_grpc(load, suite.message_addr, &alice, &groups, args.sends, args.concurrency).await?;
    println!("{}", s.line("persisted sends, gRPC to the message service"));

    let started = Instant::now();
    let history = client.groups(&alice, &bob, args.conversations).await?;
    let per = (args.messages / args.conversations.max(1)).max(1);
    let store = chatterbox::message_store(&config).await?;
    load::import(store.as_ref(), &alice, &history, per).await?;
    println!(
        "seeded {} conversations x {} messages = {} in {:.1} s",
        history.len(),
        per,
        history.len() * per,
        started.elapsed().as_secs_f64()
    );
    let sizes = (args.reads, args.concurrency);
    let s = load::reads(load, &load_client, &alice, &history, load::Read::HistoryPage, sizes).await?;
    println!("{}", s.line("history reads (newest 50), HTTP"));
    if args.searches > 0 {
        let searches = (args.searches, args.search_concurrency);
        for (search, what) in [
            (load::Search::RareWord, "search, a rare word (~1/1,000), in all"),
            (load::Search::TwoRareWords, "search, two rare words, in all"),
            (load::Search::CommonWord, "search, a word in every message, in all"),
        ] {
            let s = load::searches(load, &load_client, &alice, search, searches).await?;
            println!("{}", s.line(what));
        }
        // Carol is in one of the history conversations only: most matches are
        // elsewhere and must be passed over.
        let carol = client.register("carol").await?;
        client.add(&alice, &history[history.len() / 2], &carol).await?;
        for (search, what) in [
            (load::Search::RareWord, "search, a rare word, in 1 of 1,100"),
            (load::Search::CommonWord, "search, a word in every message, in 1 of 1,100"),
        ] {
            let s = load::searches(load, &load_client, &carol, search, searches).await?;
            println!("{}", s.line(what));
        }
    }
    // The groups the sends above went to (small, unlike the seeded history).
    let s = load::reads(load, &load_client, &alice, &groups, load::Read::Conversation, sizes).await?;
    println!("{}", s.line("conversation reads (two calls behind), HTTP"));

    suite.stop().await;
    drop(runtime);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}
