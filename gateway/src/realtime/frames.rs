//! The JSON frames of `/ws` (`api.md`): what clients send, what they get.

use std::collections::BTreeMap;

use axum::extract::ws::Utf8Bytes;
use chatterbox_errors::Error;
use chatterbox_proto::conversation::v1::Conversation;
use chatterbox_proto::message::v1::Message;
use chatterbox_types::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::views::{ConversationView, MessageView};

/// A frame from the client, without its optional `id`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum ClientFrame {
    /// Authenticates (first frame), or replaces the token of a live session.
    #[serde(rename = "auth")]
    Auth { access_token: String },
    /// Sends a message; answered by `ack` once it is durable.
    #[serde(rename = "message.send")]
    Send {
        conversation_id: String,
        content: String,
        #[serde(default)]
        message_type: String,
        #[serde(default)]
        attachments: Vec<String>,
        client_id: String,
        #[serde(default)]
        reply_to: Option<String>,
    },
    /// Starts or stops the typing indicator.
    #[serde(rename = "typing")]
    Typing { conversation_id: String, state: TypingState },
    /// Moves the read watermark.
    #[serde(rename = "read")]
    Read { conversation_id: String, seq: u64 },
    /// Sets the presence status.
    #[serde(rename = "presence.set")]
    PresenceSet { status: String },
    /// Replays what was missed since the given positions.
    #[serde(rename = "resume")]
    Resume { positions: BTreeMap<String, u64> },
    /// Answered by `pong`.
    #[serde(rename = "ping")]
    Ping,
}

/// `typing.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TypingState {
    Start,
    Stop,
}

impl TypingState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TypingState::Start => "start",
            TypingState::Stop => "stop",
        }
    }
}

/// A parsed client frame with the `id` to echo.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub id: Option<Value>,
    pub frame: ClientFrame,
}

/// Largest `id` a client may attach, in characters once serialised.
const MAX_ID_LEN: usize = 64;

/// Parses a text frame. A frame that is not an object of a known `type`
/// still gets its `id` back in the error, when it had a usable one.
pub(crate) fn parse(text: &str) -> Result<Incoming, (Option<Value>, Error)> {
    let value: Value = serde_json::from_str(text).map_err(|_| (None, Error::invalid("frames are JSON objects")))?;
    let id = match value.get("id") {
        None | Some(Value::Null) => None,
        Some(id @ (Value::String(_) | Value::Number(_))) if id.to_string().len() <= MAX_ID_LEN => Some(id.clone()),
        Some(_) => return Err((None, Error::invalid("id must be a string or number of at most 64 characters"))),
    };
    match serde_json::from_value::<ClientFrame>(value) {
        Ok(frame) => Ok(Incoming { id, frame }),
        Err(e) => Err((id, Error::invalid(format!("invalid frame: {e}")))),
    }
}

/// A frame to the client.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub(crate) enum ServerFrame<'a> {
    #[serde(rename = "ready")]
    Ready { user_id: String, connection_id: &'a str },
    #[serde(rename = "ack")]
    Ack {
        id: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<MessageView>,
    },
    #[serde(rename = "pong")]
    Pong { id: Option<Value> },
    #[serde(rename = "resumed")]
    Resumed {
        id: Option<Value>,
        positions: BTreeMap<String, u64>,
        /// Conversations too far behind to replay, with their latest `seq`:
        /// the client reloads them from history.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        history: BTreeMap<String, u64>,
    },
    #[serde(rename = "error")]
    Error {
        id: Option<Value>,
        code: &'static str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    #[serde(rename = "message.new")]
    MessageNew { message: MessageView },
    #[serde(rename = "message.updated")]
    MessageUpdated { message: MessageView },
    #[serde(rename = "message.deleted")]
    MessageDeleted { conversation_id: &'a str, message_id: &'a str, seq: u64 },
    #[serde(rename = "read")]
    Read { conversation_id: &'a str, user_id: &'a str, seq: u64, read_at: String },
    #[serde(rename = "reaction")]
    Reaction {
        conversation_id: &'a str,
        message_id: &'a str,
        seq: u64,
        emoji: &'a str,
        user_id: &'a str,
        action: &'static str,
    },
    #[serde(rename = "typing")]
    Typing { conversation_id: &'a str, user_id: &'a str, state: &'a str },
    #[serde(rename = "presence")]
    Presence { user_id: &'a str, status: &'a str, last_seen: Option<String> },
    #[serde(rename = "conversation.updated")]
    ConversationUpdated { conversation: ConversationView },
    #[serde(rename = "conversation.joined")]
    ConversationJoined { conversation: ConversationView },
    #[serde(rename = "conversation.left")]
    ConversationLeft { conversation_id: &'a str },
}

impl ServerFrame<'_> {
    /// The frame as WebSocket text.
    pub(crate) fn text(&self) -> Utf8Bytes {
        // Serialising these shapes cannot fail: no maps with non-string keys, no foreign types.
        serde_json::to_string(self).unwrap_or_default().into()
    }
}

/// `error` for a failed frame.
pub(crate) fn error(id: Option<Value>, e: &Error) -> Utf8Bytes {
    e.log_cause();
    ServerFrame::Error { id, code: e.code().as_str(), message: e.message(), retry_after_ms: None }.text()
}

/// How a message travels in a frame: in its current state.
pub(crate) fn message_new(m: Message) -> Utf8Bytes {
    ServerFrame::MessageNew { message: MessageView::from(m) }.text()
}

/// An edit, or a deletion when the message is now a tombstone.
pub(crate) fn message_changed(m: Message) -> Utf8Bytes {
    if m.deleted {
        ServerFrame::MessageDeleted { conversation_id: &m.conversation_id, message_id: &m.id, seq: m.seq }.text()
    } else {
        ServerFrame::MessageUpdated { message: MessageView::from(m) }.text()
    }
}

/// An edit from an event (which lists who reacted), as `reader` sees it.
pub(crate) fn message_updated_for(m: Message, reader: &str) -> Utf8Bytes {
    ServerFrame::MessageUpdated { message: MessageView::for_reader(m, reader) }.text()
}

/// A conversation as events carry it: no per-reader summary (no last
/// message, unread count 0); clients keep their own.
pub(crate) fn conversation_view(c: Conversation) -> ConversationView {
    ConversationView::new(c, None)
}

/// RFC 3339 of a millisecond time.
pub(crate) fn time(ms: i64) -> String {
    Timestamp::from_millis(ms).to_rfc3339()
}

#[cfg(test)]
mod properties {
    use chatterbox_testkit::json::any_json;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// A frame object: a known or unknown `type`, an `id` of any kind, and
    /// the fields frames use, with values of any type.
    fn frame_like() -> impl Strategy<Value = Value> {
        let kind = prop_oneof![
            Just("auth"),
            Just("message.send"),
            Just("typing"),
            Just("read"),
            Just("presence.set"),
            Just("resume"),
            Just("ping"),
            Just("nope"),
        ];
        let fields = prop::collection::btree_map(
            prop_oneof![
                Just("conversation_id".to_owned()),
                Just("content".to_owned()),
                Just("client_id".to_owned()),
                Just("state".to_owned()),
                Just("seq".to_owned()),
                Just("positions".to_owned()),
                Just("status".to_owned()),
                Just("access_token".to_owned()),
                Just("attachments".to_owned()),
            ],
            any_json(),
            0..6,
        );
        (kind, any_json(), fields).prop_map(|(kind, id, fields)| {
            let mut frame: serde_json::Map<String, Value> = fields.into_iter().collect();
            frame.insert("type".into(), json!(kind));
            frame.insert("id".into(), id);
            Value::Object(frame)
        })
    }

    proptest! {
        /// Any text is a frame or a clear refusal, never a panic; an `id`
        /// comes back only if it was a short string or number.
        #[test]
        fn any_text_is_a_frame_or_a_refusal(text in ".{0,200}") {
            match parse(&text) {
                Ok(_) => prop_assert!(serde_json::from_str::<Value>(&text).is_ok()),
                Err((_, e)) => prop_assert_eq!(e.code(), chatterbox_errors::Code::InvalidArgument),
            }
        }

        #[test]
        fn frame_shaped_json_is_a_frame_or_a_refusal_with_a_usable_id(frame in frame_like()) {
            let text = frame.to_string();
            let echoed = match parse(&text) {
                Ok(incoming) => incoming.id,
                Err((id, e)) => {
                    prop_assert_eq!(e.code(), chatterbox_errors::Code::InvalidArgument);
                    id
                }
            };
            if let Some(id) = echoed {
                prop_assert!(matches!(id, Value::String(_) | Value::Number(_)));
                prop_assert!(id.to_string().len() <= MAX_ID_LEN);
                prop_assert_eq!(&id, &frame["id"]);
            }
        }

        /// A well-formed send keeps every field as written.
        #[test]
        fn a_send_round_trips(conversation in ".{0,30}", content in ".{0,300}", client in ".{1,40}", id in any::<u32>()) {
            let text = json!({"type": "message.send", "id": id, "conversation_id": conversation,
                              "content": content, "client_id": client}).to_string();
            let incoming = parse(&text).map_err(|(_, e)| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(incoming.id, Some(json!(id)));
            match incoming.frame {
                ClientFrame::Send { conversation_id, content: c, client_id, attachments, .. } => {
                    prop_assert_eq!(conversation_id, conversation);
                    prop_assert_eq!(c, content);
                    prop_assert_eq!(client_id, client);
                    prop_assert!(attachments.is_empty());
                }
                other => prop_assert!(false, "parsed as {:?}", other),
            }
        }
    }
}
