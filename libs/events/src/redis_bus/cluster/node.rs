//! One subscribed connection to one primary, speaking RESP2: a writer task
//! sends the subscription commands (and a ping now and then), a reader task
//! turns what arrives into [`NodeEvent`]s. Each command expects one reply,
//! in order, so a subscribe learns whether it took.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::ConnectionInfo;
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::resp::{self, Frame};
use super::slots::Addr;

/// How long connecting (and authenticating) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How often an idle connection is pinged.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Silence after which the node counts as lost.
const SILENT_FOR: Duration = Duration::from_secs(15);

/// What a node's connection reports.
#[derive(Debug)]
pub(super) enum NodeEvent {
    /// A sharded message.
    Message { channel: Vec<u8>, payload: Vec<u8> },
    /// The server dropped a subscription by itself (its slot moved).
    Dropped { node: u64, channel: Vec<u8> },
    /// The connection is gone; its subscriptions with it.
    Lost { node: u64 },
}

/// What the writer is asked to do.
enum Request {
    Subscribe { channel: Vec<u8>, done: oneshot::Sender<Result<(), String>> },
    Unsubscribe { channel: Vec<u8> },
}

/// A command sent and not yet answered.
enum Pending {
    Subscribe { done: oneshot::Sender<Result<(), String>> },
    Unsubscribe { channel: Vec<u8> },
    Ping,
}

/// A live connection to one node; dropping it closes the connection.
pub(super) struct Node {
    pub(super) id: u64,
    requests: mpsc::UnboundedSender<Request>,
}

impl Node {
    /// Connects to `addr` with the credentials of `seed`; events go to
    /// `events`, messages only while it has room (`overflowed` is raised
    /// when one is dropped).
    pub(super) async fn connect(
        id: u64,
        addr: &Addr,
        seed: &ConnectionInfo,
        events: mpsc::Sender<NodeEvent>,
        overflowed: Arc<AtomicBool>,
    ) -> std::io::Result<Node> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut stream = TcpStream::connect((addr.0.as_str(), addr.1)).await?;
            stream.set_nodelay(true)?;
            authenticate(&mut stream, seed).await?;
            std::io::Result::Ok(stream)
        })
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let (read, write) = stream.into_split();
        let pending = Arc::new(Mutex::new(VecDeque::new()));
        let heard = Arc::new(Mutex::new(tokio::time::Instant::now()));
        let reader = tokio::spawn(read_loop(
            id,
            BufReader::new(read),
            pending.clone(),
            heard.clone(),
            events.clone(),
            overflowed,
        ));
        let (requests, inbox) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(id, write, inbox, pending, heard, reader, events));
        Ok(Node { id, requests })
    }

    /// Subscribes `channel`; the answer says whether the node took it.
    pub(super) fn subscribe(&self, channel: Vec<u8>) -> oneshot::Receiver<Result<(), String>> {
        let (done, answer) = oneshot::channel();
        // A closed writer drops `done`: the receiver then reports it.
        let _ = self.requests.send(Request::Subscribe { channel, done });
        answer
    }

    /// Leaves `channel` (without waiting).
    pub(super) fn unsubscribe(&self, channel: Vec<u8>) {
        let _ = self.requests.send(Request::Unsubscribe { channel });
    }
}

/// `AUTH` with the seed URL's credentials, if it has any.
async fn authenticate(stream: &mut TcpStream, seed: &ConnectionInfo) -> std::io::Result<()> {
    let settings = seed.redis_settings();
    let Some(password) = settings.password() else { return Ok(()) };
    let command = match settings.username() {
        Some(user) => resp::command(&[b"AUTH", user.as_bytes(), password.as_bytes()]),
        None => resp::command(&[b"AUTH", password.as_bytes()]),
    };
    stream.write_all(&command).await?;
    match resp::read(&mut BufReader::new(&mut *stream)).await? {
        Frame::Simple(_) => Ok(()),
        other => Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, format!("AUTH refused: {other:?}"))),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn write_loop(
    id: u64,
    mut write: tokio::net::tcp::OwnedWriteHalf,
    mut inbox: mpsc::UnboundedReceiver<Request>,
    pending: Arc<Mutex<VecDeque<Pending>>>,
    heard: Arc<Mutex<tokio::time::Instant>>,
    reader: tokio::task::JoinHandle<()>,
    events: mpsc::Sender<NodeEvent>,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (command, expects) = tokio::select! {
            request = inbox.recv() => match request {
                // The subscription is gone: close, and the reader ends too.
                None => break,
                Some(Request::Subscribe { channel, done }) => {
                    (resp::command(&[b"SSUBSCRIBE", &channel]), Pending::Subscribe { done })
                }
                Some(Request::Unsubscribe { channel }) => {
                    (resp::command(&[b"SUNSUBSCRIBE", &channel]), Pending::Unsubscribe { channel })
                }
            },
            _ = ping.tick() => {
                if lock(&heard).elapsed() > SILENT_FOR {
                    tracing::warn!(node = id, "a Redis node stopped answering; dropping its connection");
                    reader.abort();
                    let _ = events.send(NodeEvent::Lost { node: id }).await;
                    return;
                }
                (resp::command(&[b"PING"]), Pending::Ping)
            }
        };
        // Queued before the bytes go, so the reply always finds it.
        lock(&pending).push_back(expects);
        if write.write_all(&command).await.is_err() {
            // The reader sees the connection end and reports it.
            break;
        }
    }
    let _ = write.shutdown().await;
}

async fn read_loop(
    id: u64,
    mut read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    pending: Arc<Mutex<VecDeque<Pending>>>,
    heard: Arc<Mutex<tokio::time::Instant>>,
    events: mpsc::Sender<NodeEvent>,
    overflowed: Arc<AtomicBool>,
) {
    loop {
        let frame = match resp::read(&mut read).await {
            Ok(frame) => frame,
            Err(e) => {
                tracing::debug!(node = id, error = %e, "a Redis node's subscription connection ended");
                // Whoever waits for an answer learns it will not come.
                lock(&pending).clear();
                let _ = events.send(NodeEvent::Lost { node: id }).await;
                return;
            }
        };
        *lock(&heard) = tokio::time::Instant::now();
        match frame {
            Frame::Array(Some(items)) => {
                let kind = items.first().and_then(Frame::bytes).unwrap_or_default().to_ascii_lowercase();
                let channel = items.get(1).and_then(Frame::bytes).map(<[u8]>::to_vec).unwrap_or_default();
                match kind.as_slice() {
                    b"smessage" => {
                        let payload = items.get(2).and_then(Frame::bytes).map(<[u8]>::to_vec).unwrap_or_default();
                        if events.try_send(NodeEvent::Message { channel, payload }).is_err() {
                            overflowed.store(true, Ordering::Relaxed);
                        }
                    }
                    b"ssubscribe" => {
                        if let Some(Pending::Subscribe { done }) = lock(&pending).pop_front() {
                            let _ = done.send(Ok(()));
                        }
                    }
                    b"sunsubscribe" => {
                        let ours = {
                            let mut queue = lock(&pending);
                            let ours =
                                matches!(queue.front(), Some(Pending::Unsubscribe { channel: c }) if *c == channel);
                            if ours {
                                queue.pop_front();
                            }
                            ours
                        };
                        if !ours {
                            let _ = events.send(NodeEvent::Dropped { node: id, channel }).await;
                        }
                    }
                    b"pong" => {
                        lock(&pending).pop_front();
                    }
                    _ => {}
                }
            }
            Frame::Error(e) => {
                if let Some(Pending::Subscribe { done }) = lock(&pending).pop_front() {
                    let _ = done.send(Err(e));
                }
            }
            // Any other reply answers the oldest command.
            _ => {
                lock(&pending).pop_front();
            }
        }
    }
}
