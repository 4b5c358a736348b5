//! `store`: appends straight to the embedded message store (SQLite), as
//! WebSocket sends reach it (many direct conversations, one sender each, a
//! `client_id` per send), with nothing in front: what the writer thread
//! costs per message, and how many bytes each one makes the disk write.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chatterbox_message::MessageStore;
use chatterbox_message::store::NewMessage;
use chatterbox_types::{ConversationId, MessageId, Timestamp, UserId};

use crate::stats::Summary;

/// What to run.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Conversations the appends spread over.
    #[arg(long, default_value_t = 5_000)]
    conversations: usize,
    /// Appends in all.
    #[arg(long, default_value_t = 100_000)]
    appends: usize,
    /// Appends in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
}

/// Appends `args.appends` messages and prints what they cost.
pub async fn run(args: &StoreArgs) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let config = chatterbox_config::Config { data_dir: data.path().to_path_buf(), ..Default::default() };
    let store = chatterbox::message_store(&config).await?;
    let conversations: Arc<[(ConversationId, UserId)]> =
        (0..args.conversations.max(1)).map(|_| (ConversationId::generate(), UserId::generate())).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let (written, cpu, started) = (disk_writes(), crate::cpu::of_process(std::process::id()), Instant::now());
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (store, conversations, next, total) =
                (store.clone(), conversations.clone(), next.clone(), args.appends);
            tokio::spawn(async move { appends(store.as_ref(), &conversations, &next, total).await })
        })
        .collect();
    let (mut samples, mut failures) = (Vec::with_capacity(args.appends), Vec::new());
    for worker in workers {
        let (s, f) = worker.await?;
        samples.extend(s);
        failures.extend(f);
    }
    let elapsed = started.elapsed();
    let mut summary = Summary::of(samples, failures, elapsed);
    summary.server_cpu = Some(crate::cpu::of_process(std::process::id()).saturating_sub(cpu));
    println!("{}", summary.line(&format!("store appends, {} conversations", args.conversations)));
    let bytes = disk_writes().saturating_sub(written);
    println!(
        "  disk writes {:.1} KiB per append ({:.1} MB/s)",
        bytes as f64 / 1024.0 / summary.count.max(1) as f64,
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// One worker: appends until `total` have been taken, round-robin over the
/// conversations, each by its own sender with a fresh `client_id`.
async fn appends(
    store: &dyn MessageStore,
    conversations: &[(ConversationId, UserId)],
    next: &AtomicUsize,
    total: usize,
) -> (Vec<Duration>, Vec<String>) {
    let (mut samples, mut failures) = (Vec::new(), Vec::new());
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= total {
            return (samples, failures);
        }
        let (conversation_id, sender_id) = conversations[n % conversations.len()];
        let message = NewMessage {
            id: MessageId::generate(),
            conversation_id,
            sender_id,
            kind: chatterbox_types::MessageKind::Text,
            content: format!("message {n}: some ordinary chat-sized text, as a person would type it"),
            attachments: Vec::new(),
            client_id: Some(format!("c{n}")),
            created_at: Timestamp::now(),
            reply_to: None,
            mentions: Vec::new(),
        };
        let started = Instant::now();
        match store.append(&message).await {
            Ok(_) => samples.push(started.elapsed()),
            Err(e) => failures.push(e.to_string()),
        }
    }
}

/// Bytes this process has had written to storage (`write_bytes` of
/// `/proc/self/io`): what reached the block layer, fsync'd WAL frames and
/// checkpoints alike.
fn disk_writes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: ").and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}
