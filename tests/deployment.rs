//! The deployment files say only what the code understands: every part in
//! `docker-compose.yml` is a real part, gets every setting it needs, and no
//! variable the configuration would refuse.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::collections::{BTreeMap, BTreeSet};

use chatterbox_config::Config;
use serde_yaml::Value;

fn compose() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml")).unwrap();
    let mut doc: Value = serde_yaml::from_str(&text).unwrap();
    doc.apply_merge().unwrap();
    doc
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(map) = service["environment"].as_mapping() {
        for (k, v) in map {
            let value = match v {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
            };
            env.insert(k.as_str().unwrap().to_owned(), value);
        }
    }
    env
}

/// Every variable the configuration reads: `CHATTERBOX_<FIELD>` and the
/// unprefixed ones of the contract.
fn known_variables() -> BTreeSet<String> {
    let fields = serde_json::to_value(Config::default()).unwrap();
    let mut known: BTreeSet<String> =
        fields.as_object().unwrap().keys().map(|k| format!("CHATTERBOX_{}", k.to_uppercase())).collect();
    for unprefixed in ["MONGODB_URI", "REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"] {
        known.remove(&format!("CHATTERBOX_{unprefixed}"));
        known.insert(unprefixed.to_owned());
    }
    known
}

/// What each part refuses to start without.
fn required(part: &str) -> &'static [&'static str] {
    match part {
        "auth" => &["MONGODB_URI", "CHATTERBOX_GRPC_ADDR", "CHATTERBOX_USER_URL", "CHATTERBOX_JWT_PRIVATE_KEY_FILE"],
        "user" => &["MONGODB_URI", "CHATTERBOX_GRPC_ADDR", "CHATTERBOX_JWT_PUBLIC_KEY_FILE"],
        "conversation" => &[
            "MONGODB_URI",
            "REDIS_URL",
            "CHATTERBOX_GRPC_ADDR",
            "CHATTERBOX_USER_URL",
            "CHATTERBOX_JWT_PUBLIC_KEY_FILE",
        ],
        "message" => &[
            "MONGODB_URI",
            "REDIS_URL",
            "CHATTERBOX_GRPC_ADDR",
            "CHATTERBOX_CONVERSATION_URL",
            "CHATTERBOX_JWT_PUBLIC_KEY_FILE",
        ],
        "gateway" => &[
            "REDIS_URL",
            "CHATTERBOX_HTTP_ADDR",
            "CHATTERBOX_AUTH_URL",
            "CHATTERBOX_USER_URL",
            "CHATTERBOX_CONVERSATION_URL",
            "CHATTERBOX_MESSAGE_URL",
            "CHATTERBOX_JWT_PUBLIC_KEY_FILE",
        ],
        other => panic!("`chatterbox run {other}` is not a part"),
    }
}

#[test]
fn every_part_runs_in_compose_with_what_it_needs() {
    let doc = compose();
    let services = doc["services"].as_mapping().unwrap();
    let known = known_variables();
    let mut parts = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let command: Vec<&str> =
            service["command"].as_sequence().map(|c| c.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        if command.first() != Some(&"run") {
            continue;
        }
        let part = command[1];
        parts.insert(part.to_owned());
        let env = environment(service);
        for variable in required(part) {
            assert!(env.contains_key(*variable), "{name} lacks {variable}");
        }
        for variable in env.keys() {
            assert!(known.contains(variable), "{name} sets {variable}, which nothing reads");
        }
        let health: Vec<&str> =
            service["healthcheck"]["test"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(&health[..3], ["CMD", "/usr/local/bin/chatterbox", "health"], "{name} has a health check");
        assert!(service["depends_on"].as_mapping().unwrap().values().all(|d| d["condition"].is_string()));
        // A service's URL in the others' settings points at its own port.
        if let Some(addr) = env.get("CHATTERBOX_GRPC_ADDR") {
            let port = addr.rsplit(':').next().unwrap();
            assert!(health[3].ends_with(&format!(":{port}")), "{name} probes its own port");
        }
    }
    let all: BTreeSet<String> = ["auth", "user", "conversation", "message", "gateway"].map(String::from).into();
    assert_eq!(parts, all, "every part runs in compose");
    assert_eq!(services["gateway"]["ports"][0].as_str(), Some("8080:8080"));
}

#[test]
fn urls_in_compose_name_services_that_listen_there() {
    let doc = compose();
    let services = doc["services"].as_mapping().unwrap();
    let listens: BTreeMap<String, String> = services
        .iter()
        .filter_map(|(n, s)| {
            let addr = environment(s).get("CHATTERBOX_GRPC_ADDR")?.clone();
            Some((n.as_str()?.to_owned(), addr.rsplit(':').next()?.to_owned()))
        })
        .collect();
    for (name, service) in services {
        for (variable, value) in environment(service) {
            if variable.ends_with("_URL") && variable.starts_with("CHATTERBOX_") {
                let target = value.trim_start_matches("http://");
                let (host, port) = target.split_once(':').unwrap();
                assert_eq!(
                    listens.get(host),
                    Some(&port.to_owned()),
                    "{}: {variable}={value}",
                    name.as_str().unwrap_or_default()
                );
            }
        }
    }
}
