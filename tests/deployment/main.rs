//! The deployment files say only what the code understands, and the chart's
//! pods start: every part in `docker-compose.yml` and the Helm chart is a real
//! part and gets every setting it needs; the rendered chart's pods run as a
//! kubelet would run them and become ready.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod chart;
mod compose;
mod pods;
mod render;

use std::collections::BTreeSet;

use chatterbox_config::Config;

/// Every variable the configuration reads: `CHATTERBOX_<FIELD>` and the
/// unprefixed ones of the contract.
pub(crate) fn known_variables() -> BTreeSet<String> {
    let fields = serde_json::to_value(Config::default()).unwrap();
    let mut known: BTreeSet<String> =
        fields.as_object().unwrap().keys().map(|k| format!("CHATTERBOX_{}", k.to_uppercase())).collect();
    for unprefixed in ["MONGODB_URI", "REDIS_URL", "S3_BUCKET", "OTEL_EXPORTER_OTLP_ENDPOINT"] {
        known.remove(&format!("CHATTERBOX_{unprefixed}"));
        known.insert(unprefixed.to_owned());
    }
    // Read by the AWS SDK itself (the media service's S3 client).
    for aws in ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        known.insert(aws.to_owned());
    }
    known
}

/// What each part refuses to start without.
pub(crate) fn required(part: &str) -> &'static [&'static str] {
    match part {
        "auth" => &["MONGODB_URI", "CHATTERBOX_GRPC_ADDR", "CHATTERBOX_USER_URL", "CHATTERBOX_JWT_PRIVATE_KEY_FILE"],
        "user" => &["MONGODB_URI", "CHATTERBOX_GRPC_ADDR", "CHATTERBOX_MEDIA_URL", "CHATTERBOX_JWT_PUBLIC_KEY_FILE"],
        "media" => &[
            "MONGODB_URI",
            "S3_BUCKET",
            "CHATTERBOX_GRPC_ADDR",
            "CHATTERBOX_CONVERSATION_URL",
            "CHATTERBOX_JWT_PUBLIC_KEY_FILE",
        ],
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
            "CHATTERBOX_MEDIA_URL",
            "CHATTERBOX_JWT_PUBLIC_KEY_FILE",
        ],
        "presence" => &["REDIS_URL", "CHATTERBOX_GRPC_ADDR", "CHATTERBOX_USER_URL", "CHATTERBOX_JWT_PUBLIC_KEY_FILE"],
        "gateway" => &[
            "REDIS_URL",
            "CHATTERBOX_HTTP_ADDR",
            "CHATTERBOX_AUTH_URL",
            "CHATTERBOX_USER_URL",
            "CHATTERBOX_CONVERSATION_URL",
            "CHATTERBOX_MESSAGE_URL",
            "CHATTERBOX_PRESENCE_URL",
            "CHATTERBOX_MEDIA_URL",
            "CHATTERBOX_JWT_PUBLIC_KEY_FILE",
        ],
        other => panic!("`chatterbox run {other}` is not a part"),
    }
}

/// Every part `chatterbox run` knows: a new one fails these tests until the
/// deployment files run it.
pub(crate) fn every_part() -> BTreeSet<String> {
    use clap::ValueEnum as _;
    chatterbox::Part::value_variants().iter().map(|p| p.to_possible_value().unwrap().get_name().to_owned()).collect()
}
