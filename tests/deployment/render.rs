//! `helm template` of the chart, as YAML documents, and lookups in them.

use std::path::Path;

use serde::Deserialize as _;
use serde_yaml::Value;

/// The chart's directory, in the checkout under test.
pub(crate) fn chart() -> std::path::PathBuf {
    chatterbox_testkit::workspace_root().join("helm/chatterbox")
}

/// Helm's longest release name (53 characters), without the chart's name
/// in it: the fullname is then cut at 63 characters.
pub(crate) const LONGEST_RELEASE: &str = "a-release-name-of-fifty-three-characters-for-one-team";

/// The helm binary (`make test` names it in `HELM`).
pub(crate) fn helm() -> String {
    std::env::var("HELM").unwrap_or_else(|_| "helm".into())
}

/// `helm template <release>` of the chart in namespace `chat` with each
/// values file in turn, as documents.
pub(crate) fn render_release(release: &str, values: &[&Path]) -> Vec<Value> {
    let helm = helm();
    let mut command = std::process::Command::new(&helm);
    command.arg("template").arg(release).arg(chart()).args(["--namespace", "chat"]);
    for file in values {
        command.arg("--values").arg(file);
    }
    let output = command.output().unwrap_or_else(|e| panic!("{helm} runs (make test-deps installs it): {e}"));
    assert!(output.status.success(), "helm template: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

/// Release `chat` with `values` (a file under the chart), if any.
pub(crate) fn render(values: Option<&str>) -> Vec<Value> {
    match values {
        Some(values) => render_release("chat", &[chart().join(values).as_path()]),
        None => render_release("chat", &[]),
    }
}

pub(crate) fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect()
}

pub(crate) fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The object of `kind` that belongs to `part` (by its component label).
pub(crate) fn of_part<'a>(docs: &'a [Value], kind: &str, part: &str) -> &'a Value {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["labels"]["app.kubernetes.io/component"].as_str() == Some(part))
        .unwrap_or_else(|| panic!("no {kind} for {part}"))
}

/// The name in an object's metadata.
pub(crate) fn name_of(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap()
}
