//! Many WebSocket clients: each connection has a reader that counts
//! `message.new` frames and measures send-to-deliver latency from the send
//! time the sender wrote into the content, and a writer fed by a channel.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::population::Member;

/// Connections opened at once.
const CONNECTING: usize = 200;
/// The marker a sent message's content starts with, before its send time.
const MARK: &str = "\"content\":\"bench:";

/// What every reader reports into.
#[derive(Debug)]
pub struct Tally {
    /// The clock send times are measured on.
    pub epoch: Instant,
    /// Whether a measured step is running.
    pub measuring: AtomicBool,
    /// `message.new` frames received while measuring.
    pub deliveries: AtomicU64,
    /// `ack` frames received while measuring.
    pub acks: AtomicU64,
    /// `error` frames received at any time.
    pub errors: AtomicU64,
    /// The first `error` frame since this was last taken.
    pub first_error: Mutex<Option<String>>,
    /// Send-to-deliver latencies while measuring, in microseconds.
    pub latencies: Mutex<Vec<u32>>,
    /// Send-to-ack latencies while measuring, in microseconds (the `ack`
    /// carries the message, and so the send time in its content).
    pub ack_latencies: Mutex<Vec<u32>>,
}

impl Tally {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            measuring: AtomicBool::new(false),
            deliveries: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
            latencies: Mutex::new(Vec::new()),
            ack_latencies: Mutex::new(Vec::new()),
        })
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Looks at one received frame.
    fn record(&self, text: &str) {
        if text.starts_with("{\"type\":\"error\"") {
            self.errors.fetch_add(1, Ordering::Relaxed);
            self.first_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert_with(|| text.to_owned());
            return;
        }
        if !self.measuring.load(Ordering::Relaxed) {
            return;
        }
        let into = if text.starts_with("{\"type\":\"ack\"") {
            self.acks.fetch_add(1, Ordering::Relaxed);
            &self.ack_latencies
        } else if text.starts_with("{\"type\":\"message.new\"") {
            self.deliveries.fetch_add(1, Ordering::Relaxed);
            &self.latencies
        } else {
            return;
        };
        let sent = text
            .find(MARK)
            .map(|at| &text[at + MARK.len()..])
            .and_then(|rest| rest.split(':').next())
            .and_then(|digits| digits.parse::<u64>().ok());
        if let Some(sent) = sent {
            let latency = self.now_us().saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
            into.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(latency);
        }
    }
}

/// One open connection: where to write to it.
#[derive(Debug, Clone)]
pub struct Connection {
    writer: mpsc::Sender<Message>,
}

/// Every connection of a scenario.
#[derive(Debug)]
pub struct Fleet {
    pub tally: Arc<Tally>,
    pub connections: Vec<Connection>,
}

async fn open(gateway: SocketAddr, member: &Member, tally: Arc<Tally>) -> anyhow::Result<Connection> {
    let mut request = format!("ws://{gateway}/ws").into_client_request()?;
    request.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {}", member.token))?);
    let (stream, _) = tokio_tungstenite::connect_async(request).await?;
    let (mut sink, mut stream) = stream.split();
    match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
        Ok(Some(Ok(Message::Text(text)))) if text.starts_with("{\"type\":\"ready\"") => {}
        other => anyhow::bail!("no ready frame: {other:?}"),
    }
    let (writer, mut outbox) = mpsc::channel::<Message>(64);
    tokio::spawn(async move {
        while let Some(message) = outbox.recv().await {
            if sink.send(message).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = message {
                tally.record(&text);
            }
        }
    });
    Ok(Connection { writer })
}

impl Fleet {
    /// Connects every member (to the gateway `pick(i)` names), past `ready`.
    pub async fn connect(members: &[Member], pick: impl Fn(usize) -> SocketAddr) -> anyhow::Result<Self> {
        let tally = Tally::new();
        let opened = futures::stream::iter(members.iter().enumerate())
            .map(|(i, m)| open(pick(i), m, tally.clone()))
            .buffered(CONNECTING)
            .collect::<Vec<_>>()
            .await;
        let connections = opened.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { tally, connections })
    }

    /// Sends one message from connection `i` into `conversation`, stamped now.
    pub fn send(&self, i: usize, conversation: &str, n: u64) -> bool {
        let frame = format!(
            r#"{{"type":"message.send","conversation_id":"{conversation}","content":"bench:{}:","client_id":"b{n}"}}"#,
            self.tally.now_us()
        );
        self.connections[i].writer.try_send(Message::text(frame)).is_ok()
    }
}
