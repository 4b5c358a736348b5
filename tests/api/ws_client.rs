//! A WebSocket client for the tests: connect, send JSON frames, read them
//! back with a deadline, and check what a quiet or closed socket says.

use std::collections::VecDeque;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{TestApp, TestUser};

/// How long a test waits for a frame that should come.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One client connection.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Whether `presence` frames are returned; tests not about presence
    /// skip them, since they arrive whenever anyone connects.
    presence: bool,
    /// Frames read past by [`Ws::answer`], returned first by the next reads.
    held: VecDeque<Value>,
}

/// How a connection attempt went.
pub type Connected = Result<Ws, tungstenite::Error>;

/// Connects to `addr`'s `/ws` with extra headers, without waiting for `ready`.
pub async fn connect_raw(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> Connected {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    for (name, value) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, HeaderValue::from_str(value).unwrap());
    }
    let (stream, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(Ws { stream, presence: false, held: VecDeque::new() })
}

/// A connection as `user` whose socket takes in very little unread data (a
/// tiny receive buffer), as a client on a stalled link would.
pub async fn connect_stalling(addr: std::net::SocketAddr, user: &TestUser) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    let bearer = format!("Bearer {}", user.access_token);
    request.headers_mut().insert("authorization", HeaderValue::from_str(&bearer).unwrap());
    let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await.unwrap();
    let mut ws = Ws { stream, presence: false, held: VecDeque::new() };
    ws.expect("ready").await;
    ws
}

impl TestApp {
    /// A connection authenticated with the `Authorization` header, past `ready`.
    pub async fn ws(&self, user: &TestUser) -> Ws {
        ws_at(self.addr, user).await
    }
}

/// A connection to the gateway at `addr` as `user`, past `ready`.
pub async fn ws_at(addr: std::net::SocketAddr, user: &TestUser) -> Ws {
    let bearer = format!("Bearer {}", user.access_token);
    let mut ws = connect_raw(addr, &[("authorization", &bearer)]).await.expect("the upgrade succeeds");
    let ready = ws.next().await;
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["user_id"], user.id.as_str());
    ws
}

impl Ws {
    /// From now on, `presence` frames are returned like any other.
    pub fn watch_presence(mut self) -> Self {
        self.presence = true;
        self
    }

    /// The next `presence` frame about `user_id`, skipping everything else.
    pub async fn presence_of(&mut self, user_id: &str) -> Value {
        assert!(self.presence, "watch_presence first");
        loop {
            let frame = self.next().await;
            if frame["type"] == "presence" && frame["user_id"] == user_id {
                return frame;
            }
        }
    }

    /// Asserts that no `presence` frame about `user_id` arrives for a while.
    pub async fn no_presence_of(&mut self, user_id: &str) {
        self.no_presence_for(user_id, Duration::from_millis(600)).await;
    }

    /// Asserts that no `presence` frame about `user_id` arrives for `wait`.
    pub async fn no_presence_for(&mut self, user_id: &str, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(frame) = self.try_next(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
            assert!(!(frame["type"] == "presence" && frame["user_id"] == user_id), "unexpected {frame}");
        }
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, frame: Value) {
        self.stream.send(Message::text(frame.to_string())).await.expect("the frame is sent");
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: String) {
        self.stream.send(Message::text(text)).await.expect("the frame is sent");
    }

    /// The next JSON frame; fails the test after [`PATIENCE`].
    pub async fn next(&mut self) -> Value {
        match self.try_next(PATIENCE).await {
            Some(v) => v,
            None => panic!("no frame within {PATIENCE:?}"),
        }
    }

    /// The `ack` or `error` answering a frame sent before. Events that come
    /// first (a sender hears its own `message.new`, maybe before the ack)
    /// are kept, in order, for the next reads.
    pub async fn answer(&mut self) -> Value {
        let mut passed = Vec::new();
        let answer = loop {
            let frame = self.next().await;
            if matches!(frame["type"].as_str(), Some("ack" | "error")) {
                break frame;
            }
            passed.push(frame);
        };
        for frame in passed.into_iter().rev() {
            self.held.push_front(frame);
        }
        answer
    }

    /// The next JSON frame within `wait`, or `None`.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        if let Some(frame) = self.held.pop_front() {
            return Some(frame);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await.ok()? {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                    if self.presence || frame["type"] != "presence" {
                        return Some(frame);
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("expected a text frame, got {other:?}"),
                Some(Err(e)) => panic!("the socket failed: {e}"),
                None => panic!("the socket ended"),
            }
        }
    }

    /// The next frame within `wait` (`Ok(None)` when none came), or
    /// `Err(())` once the connection is gone (its gateway died).
    pub async fn next_unless_gone(&mut self, wait: Duration) -> Result<Option<Value>, ()> {
        if let Some(frame) = self.held.pop_front() {
            return Ok(Some(frame));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, self.stream.next()).await else { return Ok(None) };
            match next {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                    if self.presence || frame["type"] != "presence" {
                        return Ok(Some(frame));
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => return Err(()),
                Some(Ok(other)) => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["type"], kind, "expected {kind}, got {frame}");
        frame
    }

    /// Asserts that nothing arrives for a while.
    pub async fn expect_silence(&mut self) {
        if let Some(frame) = self.try_next(Duration::from_millis(400)).await {
            panic!("expected nothing, got {frame}");
        }
    }

    /// Round-trips a ping, so every frame sent before it has been handled.
    pub async fn sync(&mut self) {
        self.send(json!({"type": "ping", "id": "sync"})).await;
        let pong = self.expect("pong").await;
        assert_eq!(pong["id"], "sync");
    }

    /// Reads until the server closes; returns its close frame (`None` if the
    /// connection just ended). Frames before it are returned too.
    pub async fn closed(&mut self) -> (Vec<Value>, Option<CloseFrame>) {
        let mut frames: Vec<Value> = self.held.drain(..).collect();
        loop {
            match tokio::time::timeout(PATIENCE * 3, self.stream.next()).await.expect("the server closes") {
                Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(frame))) => return (frames, frame),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return (frames, None),
            }
        }
    }
}
