//! The deployment files say only what the code understands, and the chart's
//! pods start: every part in `docker-compose.yml` and the Helm chart is a real
//! part and gets every setting it needs; the rendered chart's pods run as a
//! kubelet would run them and become ready.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

#[path = "../shared/media_bucket.rs"]
mod media_bucket;

mod chart;
mod compose;
mod monitoring;
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
    for unprefixed in chatterbox_config::UNPREFIXED {
        known.remove(&format!("CHATTERBOX_{unprefixed}"));
        known.insert(unprefixed.to_owned());
    }
    // Read by the AWS SDK itself (the media service's S3 client).
    for aws in
        ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SHARED_CREDENTIALS_FILE"]
    {
        known.insert(aws.to_owned());
    }
    known
}

/// What a deployment must give each part (the table of parts in
/// `src/parts.rs`): its backings, where it listens, the parts it calls, its key.
pub(crate) fn required(part: &str) -> Vec<&'static str> {
    let part = chatterbox::Part::ALL
        .into_iter()
        .find(|p| p.name() == part)
        .unwrap_or_else(|| panic!("`chatterbox run {part}` is not a part"));
    part.deployment_variables()
}

/// Every part `chatterbox run` knows: a new one fails these tests until the
/// deployment files run it.
pub(crate) fn every_part() -> BTreeSet<String> {
    chatterbox::Part::ALL.iter().map(|p| p.name().to_owned()).collect()
}
