//! The AsyncAPI document of `/ws` (`gateway/asyncapi.json`, served at
//! `/asyncapi.json`) checked against the code: every frame type the gateway
//! parses or sends is described there and nothing else is; frames the
//! gateway builds, and the document's own examples, fit the schemas it gives
//! (with a small JSON Schema checker: the keywords the document uses).

use std::collections::BTreeSet;

use chatterbox_proto::conversation::v1::{Conversation, ConversationType};
use chatterbox_proto::media::v1::Media;
use chatterbox_proto::message::v1::{Message, Reaction, ReadReceipt, ReplyRef};
use serde_json::{Value, json};

use super::frames::{self, ServerFrame};
use crate::views::MessageView;

const DOCUMENT: &str = include_str!("../../asyncapi.json");
const FRAMES_SOURCE: &str = include_str!("frames.rs");

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("asyncapi.json is JSON")
}

/// The `rename`s of an enum's variants in `frames.rs`: the frame types the
/// code knows, read from the source so a new variant cannot be missed.
fn renames_in(enum_name: &str) -> BTreeSet<String> {
    let start = FRAMES_SOURCE.find(&format!("enum {enum_name}")).expect("the enum is in frames.rs");
    let body = &FRAMES_SOURCE[start..];
    let body = &body[..body.find("\n}\n").expect("the enum ends")];
    body.split("#[serde(rename = \"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').expect("a closing quote")].to_owned())
        .collect()
}

/// What a `$ref` inside the document points at.
fn resolve<'d>(doc: &'d Value, reference: &str) -> &'d Value {
    let path = reference.strip_prefix("#/").expect("a local reference");
    path.split('/').fold(doc, |at, key| &at[key])
}

/// The payload schemas of the messages an operation lists, by frame type.
fn payloads<'d>(doc: &'d Value, operation: &str) -> Vec<(String, &'d Value, &'d Value)> {
    doc["operations"][operation]["messages"]
        .as_array()
        .expect("the operation lists its messages")
        .iter()
        .map(|m| {
            let message = resolve(doc, m["$ref"].as_str().expect("a reference"));
            let message = match message.get("$ref") {
                Some(r) => resolve(doc, r.as_str().expect("a reference")),
                None => message,
            };
            let kind = message["payload"]["properties"]["type"]["const"].as_str().expect("a frame type").to_owned();
            (kind, &message["payload"], &message["examples"])
        })
        .collect()
}

fn type_matches(kind: &str, value: &Value) -> bool {
    match kind {
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => false,
    }
}

/// Checks `value` against `schema` (`$ref`, `allOf`, `oneOf`, `type`,
/// `const`, `enum`, `properties`, `required`, `additionalProperties`,
/// `items`); the error says where and why.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return check(doc, resolve(doc, reference), value, at);
    }
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        check(doc, part, value, at)?;
    }
    if let Some(choices) = schema.get("oneOf").and_then(Value::as_array) {
        let fitting = choices.iter().filter(|s| check(doc, s, value, at).is_ok()).count();
        if fitting != 1 {
            return Err(format!("{at}: fits {fitting} of the oneOf choices, not one"));
        }
    }
    if let Some(kinds) = schema.get("type") {
        let kinds: Vec<&str> = match kinds {
            Value::String(k) => vec![k.as_str()],
            Value::Array(ks) => ks.iter().filter_map(Value::as_str).collect(),
            _ => return Err(format!("{at}: a malformed type")),
        };
        if !kinds.iter().any(|k| type_matches(k, value)) {
            return Err(format!("{at}: {value} is not of type {kinds:?}"));
        }
    }
    if schema.get("const").is_some_and(|c| c != value) {
        return Err(format!("{at}: {value} is not {}", schema["const"]));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Value::Object(fields) = value {
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !fields.contains_key(name) {
                return Err(format!("{at}: `{name}` is missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, field) in fields {
            match (properties.and_then(|p| p.get(name)), schema.get("additionalProperties")) {
                (Some(s), _) => check(doc, s, field, &format!("{at}.{name}"))?,
                (None, Some(Value::Bool(false))) => return Err(format!("{at}: `{name}` is not described")),
                (None, Some(s @ Value::Object(_))) => check(doc, s, field, &format!("{at}.{name}"))?,
                (None, _) => {}
            }
        }
    }
    if let (Value::Array(items), Some(schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(doc, schema, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

fn message(deleted: bool) -> Message {
    Message {
        id: "01JDQZA1B2C3D4E5F6G7H8J9K0".into(),
        conversation_id: "01JDQZ8M6W3V5K1C2B4N7P9R0S".into(),
        seq: 42,
        sender_id: "01JDQZ7X8Y9Z0A1B2C3D4E5F6G".into(),
        r#type: "image".into(),
        content: if deleted { String::new() } else { "look".into() },
        attachments: vec![Media {
            id: "01JDQZB1B2C3D4E5F6G7H8J9K0".into(),
            content_type: "image/png".into(),
            size: 1234,
            filename: "cat.png".into(),
            width: Some(64),
            height: Some(48),
            has_thumbnail: true,
            created_at_ms: 1_764_800_000_000,
            ..Media::default()
        }],
        client_id: Some("c-1".into()),
        read_by: vec![ReadReceipt { user_id: "01JDQZ7X8Y9Z0A1B2C3D4E5F6H".into(), read_at_ms: 1_764_800_001_000 }],
        read_count: 1,
        created_at_ms: 1_764_800_000_000,
        edited_at_ms: Some(1_764_800_002_000),
        deleted,
        reactions: vec![Reaction {
            emoji: "👍".into(),
            count: 2,
            me: false,
            user_ids: vec!["01JDQZ7X8Y9Z0A1B2C3D4E5F6H".into(), "01JDQZ7X8Y9Z0A1B2C3D4E5F6G".into()],
        }],
        reply_to: Some(ReplyRef {
            id: "01JDQZA1B2C3D4E5F6G7H8J9K1".into(),
            seq: 40,
            sender_id: "01JDQZ7X8Y9Z0A1B2C3D4E5F6H".into(),
            excerpt: "where is the cat?".into(),
        }),
        reply_count: 2,
        ..Message::default()
    }
}

fn conversation() -> Conversation {
    Conversation {
        id: "01JDQZ8M6W3V5K1C2B4N7P9R0S".into(),
        r#type: ConversationType::Group.into(),
        name: "Team".into(),
        participant_ids: vec!["01JDQZ7X8Y9Z0A1B2C3D4E5F6G".into()],
        admin_ids: vec!["01JDQZ7X8Y9Z0A1B2C3D4E5F6G".into()],
        created_by: "01JDQZ7X8Y9Z0A1B2C3D4E5F6G".into(),
        member_count: 1,
        ..Conversation::default()
    }
}

/// One frame of every kind the gateway sends, as it sends them.
fn server_frames() -> Vec<Value> {
    let text = |frame: ServerFrame<'_>| frame.text().to_string();
    let view = || MessageView::from(message(false));
    let frames = [
        text(ServerFrame::Ready { user_id: "01JDQZ7X8Y9Z0A1B2C3D4E5F6G".into(), connection_id: "c0a8" }),
        text(ServerFrame::Ack { id: Some(json!(1)), message: Some(view()) }),
        text(ServerFrame::Ack { id: Some(json!("r7")), message: None }),
        text(ServerFrame::Pong { id: None }),
        text(ServerFrame::Resumed {
            id: Some(json!(2)),
            positions: [("01JDQZ8M6W3V5K1C2B4N7P9R0S".to_owned(), 42)].into(),
            history: [("01JDQZ8M6W3V5K1C2B4N7P9R0T".to_owned(), 5000)].into(),
        }),
        text(ServerFrame::Error { id: None, code: "rate_limited", message: "slow down", retry_after_ms: Some(100) }),
        frames::error(Some(json!("x")), &chatterbox_errors::Error::invalid("bad frame")).to_string(),
        frames::message_new(message(false)).to_string(),
        frames::message_changed(message(false)).to_string(),
        frames::message_changed(message(true)).to_string(),
        frames::message_updated_for(message(false), "01JDQZ7X8Y9Z0A1B2C3D4E5F6G").to_string(),
        text(ServerFrame::Reaction {
            conversation_id: "01JDQZ8M6W3V5K1C2B4N7P9R0S",
            message_id: "01JDQZA1B2C3D4E5F6G7H8J9K0",
            seq: 42,
            emoji: ":party_parrot:",
            user_id: "01JDQZ7X8Y9Z0A1B2C3D4E5F6G",
            action: "removed",
        }),
        text(ServerFrame::Read {
            conversation_id: "01JDQZ8M6W3V5K1C2B4N7P9R0S",
            user_id: "01JDQZ7X8Y9Z0A1B2C3D4E5F6G",
            seq: 42,
            read_at: frames::time(1_764_800_000_000),
        }),
        text(ServerFrame::Typing {
            conversation_id: "01JDQZ8M6W3V5K1C2B4N7P9R0S",
            user_id: "01JDQZ7X8Y9Z0A1B2C3D4E5F6G",
            state: "start",
        }),
        text(ServerFrame::Presence { user_id: "01JDQZ7X8Y9Z0A1B2C3D4E5F6G", status: "away", last_seen: None }),
        text(ServerFrame::ConversationUpdated { conversation: frames::conversation_view(conversation()) }),
        text(ServerFrame::ConversationJoined { conversation: frames::conversation_view(conversation()) }),
        text(ServerFrame::ConversationLeft { conversation_id: "01JDQZ8M6W3V5K1C2B4N7P9R0S" }),
    ];
    frames.iter().map(|f| serde_json::from_str(f).expect("frames are JSON")).collect()
}

#[test]
fn the_document_describes_exactly_the_frames_the_gateway_parses_and_sends() {
    let doc = document();
    assert_eq!(doc["asyncapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
    let described = |operation| payloads(&doc, operation).into_iter().map(|(kind, ..)| kind).collect::<BTreeSet<_>>();
    assert_eq!(described("receiveClientFrames"), renames_in("ClientFrame"), "client frames");
    assert_eq!(described("sendServerFrames"), renames_in("ServerFrame<'a>"), "server frames");
    // Every message of the channel is in one of the two operations.
    let channel = doc["channels"]["ws"]["messages"].as_object().expect("the channel's messages");
    let listed = payloads(&doc, "receiveClientFrames").len() + payloads(&doc, "sendServerFrames").len();
    assert_eq!(channel.len(), listed);
}

#[test]
fn every_frame_the_gateway_sends_fits_the_document() {
    let doc = document();
    let schemas = payloads(&doc, "sendServerFrames");
    let sent = server_frames();
    let kinds: BTreeSet<String> = sent.iter().map(|f| f["type"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(kinds, renames_in("ServerFrame<'a>"), "a sample of every server frame");
    for frame in &sent {
        let kind = frame["type"].as_str().unwrap_or_default();
        let (_, schema, _) = schemas.iter().find(|(k, ..)| k == kind).expect("described");
        if let Err(why) = check(&doc, schema, frame, kind) {
            panic!("{why}\n{frame}");
        }
    }
}

#[test]
fn the_documents_examples_fit_its_schemas_and_client_examples_parse() {
    let doc = document();
    for (operation, client) in [("receiveClientFrames", true), ("sendServerFrames", false)] {
        for (kind, schema, examples) in payloads(&doc, operation) {
            let examples = examples.as_array().expect("examples");
            assert!(!examples.is_empty(), "{kind} has an example");
            for example in examples {
                let payload = &example["payload"];
                if let Err(why) = check(&doc, schema, payload, &kind) {
                    panic!("the example of {kind}: {why}");
                }
                if client {
                    let parsed = frames::parse(&payload.to_string());
                    assert!(parsed.is_ok(), "the gateway refuses the example of {kind}: {:?}", parsed.err());
                }
            }
        }
    }
}

#[test]
fn the_checker_refuses_what_does_not_fit() {
    let doc = document();
    let schemas = payloads(&doc, "sendServerFrames");
    let (_, ready, _) = schemas.iter().find(|(k, ..)| k == "ready").expect("ready");
    let good = json!({"type": "ready", "user_id": "u", "connection_id": "c"});
    assert!(check(&doc, ready, &good, "ready").is_ok());
    for bad in [
        json!({"type": "ready", "user_id": "u"}),
        json!({"type": "ready", "user_id": 7, "connection_id": "c"}),
        json!({"type": "ready", "user_id": "u", "connection_id": "c", "extra": true}),
        json!({"type": "pong", "user_id": "u", "connection_id": "c"}),
    ] {
        assert!(check(&doc, ready, &bad, "ready").is_err(), "{bad} fits");
    }
    let (_, new, _) = schemas.iter().find(|(k, ..)| k == "message.new").expect("message.new");
    let mut frame = server_frames().into_iter().find(|f| f["type"] == "message.new").expect("a message.new");
    frame["message"]["seq"] = json!("42");
    assert!(check(&doc, new, &frame, "message.new").is_err(), "a nested field of the wrong type");
}
