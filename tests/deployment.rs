//! The deployment files say only what the code understands: every part in
//! `docker-compose.yml` is a real part, gets every setting it needs, and no
//! variable the configuration would refuse.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::collections::{BTreeMap, BTreeSet};

use chatterbox_config::Config;
use serde::Deserialize as _;
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
fn required(part: &str) -> &'static [&'static str] {
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
    assert_eq!(parts, every_part(), "every part the binary can run is in compose");
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

/// `helm template` of the chart with `values` (a file under the chart), as documents.
fn render(values: Option<&str>) -> Vec<Value> {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/helm/chatterbox");
    let helm = std::env::var("HELM").unwrap_or_else(|_| "helm".into());
    let mut command = std::process::Command::new(&helm);
    command.args(["template", "chat", chart, "--namespace", "chat"]);
    if let Some(values) = values {
        command.args(["--values", &format!("{chart}/{values}")]);
    }
    let output = command.output().unwrap_or_else(|e| panic!("{helm} runs (make test-deps installs it): {e}"));
    assert!(output.status.success(), "helm template: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect()
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Every part `chatterbox run` knows: a new one fails these tests until the
/// deployment files run it.
fn every_part() -> BTreeSet<String> {
    use clap::ValueEnum as _;
    chatterbox::Part::value_variants().iter().map(|p| p.to_possible_value().unwrap().get_name().to_owned()).collect()
}

/// What every rendering must hold, whatever the values.
fn check_chart(docs: &[Value]) {
    let known = known_variables();
    let config = &of_kind(docs, "ConfigMap")[0]["data"];
    let config_vars: BTreeSet<String> =
        config.as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_owned()).collect();
    let parts = every_part();
    assert_eq!(of_kind(docs, "Deployment").len(), parts.len(), "one Deployment per part");
    for part in &parts {
        let part = part.as_str();
        let name = format!("chat-chatterbox-{part}");
        let deployment = named(docs, "Deployment", &name);
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let args: Vec<&str> = container["args"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(args, ["run", part], "{name} runs its part");

        // Settings: everything the part needs, nothing the code does not read.
        let mut vars = config_vars.clone();
        for e in container["env"].as_sequence().unwrap() {
            vars.insert(e["name"].as_str().unwrap().to_owned());
        }
        for variable in required(part) {
            assert!(vars.contains(*variable), "{name} lacks {variable}");
        }
        for variable in &vars {
            assert!(known.contains(variable), "{name} gets {variable}, which nothing reads");
        }

        // Storage credentials reach the media service alone.
        let own: Vec<&str> =
            container["env"].as_sequence().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
        let s3 = own.iter().any(|v| v.starts_with("AWS_") || v.starts_with("S3_"));
        assert_eq!(s3, part == "media", "{name}: S3 settings only where media is kept");

        // Probes on the port it serves: native gRPC for services, HTTP for the gateway.
        let port = container["ports"][0]["containerPort"].as_u64().unwrap();
        for probe in ["readinessProbe", "livenessProbe"] {
            let p = &container[probe];
            if part == "gateway" {
                assert_eq!(p["httpGet"]["port"].as_str(), Some("http"), "{name} {probe}");
            } else {
                assert_eq!(p["grpc"]["port"].as_u64(), Some(port), "{name} {probe}");
            }
        }
        let listen = container["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|e| matches!(e["name"].as_str(), Some("CHATTERBOX_GRPC_ADDR" | "CHATTERBOX_HTTP_ADDR")))
            .and_then(|e| e["value"].as_str())
            .unwrap();
        assert_eq!(listen, format!("0.0.0.0:{port}"), "{name} listens where its probes and Service look");

        // Resources and a non-root, read-only, unprivileged container.
        assert!(container["resources"]["requests"]["cpu"].is_string(), "{name} requests CPU");
        assert!(container["resources"]["limits"]["memory"].is_string(), "{name} limits memory");
        assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "{name}");
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true), "{name}");
        assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false), "{name}");
        assert_eq!(security["capabilities"]["drop"][0].as_str(), Some("ALL"), "{name}");

        // The private key reaches auth alone.
        let keys = pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"].as_str() == Some("keys")).unwrap();
        let files: Vec<&str> =
            keys["secret"]["items"].as_sequence().unwrap().iter().filter_map(|i| i["key"].as_str()).collect();
        let expected = if part == "auth" { "jwt-private.pem" } else { "jwt-public.pem" };
        assert_eq!(files, [expected], "{name} mounts only its key");

        // Its Service selects it and forwards to the named port.
        let service = named(docs, "Service", &name);
        let selector = service["spec"]["selector"].as_mapping().unwrap();
        let labels = deployment["spec"]["template"]["metadata"]["labels"].as_mapping().unwrap();
        for (k, v) in selector {
            assert_eq!(labels.get(k), Some(v), "{name}: the Service selects the pods");
        }
        let target = service["spec"]["ports"][0]["targetPort"].as_str().unwrap();
        assert_eq!(container["ports"][0]["name"].as_str(), Some(target), "{name}: Service port → container port");
    }
    // The URLs the parts use name the Services on their ports.
    for part in parts.iter().filter(|p| *p != "gateway") {
        let url = config[format!("CHATTERBOX_{}_URL", part.to_uppercase()).as_str()].as_str().unwrap();
        let service = named(docs, "Service", &format!("chat-chatterbox-{part}"));
        let port = service["spec"]["ports"][0]["port"].as_u64().unwrap();
        assert_eq!(url, format!("http://chat-chatterbox-{part}:{port}"));
    }
}

#[test]
fn the_chart_renders_a_sound_cluster_with_default_values() {
    let docs = render(None);
    check_chart(&docs);
    assert!(of_kind(&docs, "HorizontalPodAutoscaler").is_empty());
    assert!(of_kind(&docs, "PodDisruptionBudget").is_empty());
    assert!(of_kind(&docs, "Ingress").is_empty());
    // Backends from the chart's own Secret; keys from the Secret NOTES.txt explains.
    let backends = named(&docs, "Secret", "chat-chatterbox-backends");
    assert!(backends["stringData"]["mongodb-uri"].is_string());
    assert!(backends["stringData"]["redis-url"].is_string());
    for d in of_kind(&docs, "Deployment") {
        assert_eq!(d["spec"]["replicas"].as_u64(), Some(2));
    }
}

#[test]
fn the_chart_renders_a_production_setup() {
    let docs = render(Some("ci/production-values.yaml"));
    check_chart(&docs);
    assert!(of_kind(&docs, "Secret").is_empty(), "every secret comes from an existing one");
    for part in every_part() {
        let name = format!("chat-chatterbox-{part}");
        let hpa = named(&docs, "HorizontalPodAutoscaler", &name);
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"].as_str(), Some(name.as_str()));
        named(&docs, "PodDisruptionBudget", &name);
        assert!(named(&docs, "Deployment", &name)["spec"]["replicas"].is_null(), "{name}: the HPA owns replicas");
    }
    let ingress = &of_kind(&docs, "Ingress")[0];
    assert_eq!(ingress["spec"]["tls"][0]["secretName"].as_str(), Some("chat-example-com-tls"));
    let config = &of_kind(&docs, "ConfigMap")[0]["data"];
    assert_eq!(config["CHATTERBOX_WS_ALLOWED_ORIGINS"].as_str(), Some(r#"["https://chat.example.com"]"#));
    assert_eq!(config["OTEL_EXPORTER_OTLP_ENDPOINT"].as_str(), Some("http://otel-collector.observability:4317"));
    let gateway = named(&docs, "Deployment", "chat-chatterbox-gateway");
    let env = gateway["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap();
    let redis = env.iter().find(|e| e["name"].as_str() == Some("REDIS_URL")).unwrap();
    assert_eq!(redis["valueFrom"]["secretKeyRef"]["name"].as_str(), Some("chat-backends"));
    // The web client's policy names the S3 server browsers get signed URLs for.
    let origin = env.iter().find(|e| e["name"].as_str() == Some("CHATTERBOX_S3_PUBLIC_ENDPOINT")).unwrap();
    assert_eq!(origin["value"].as_str(), Some("https://s3.eu-west-1.amazonaws.com"), "AWS, path-style");
    let media = named(&docs, "Deployment", "chat-chatterbox-media");
    let env = media["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap();
    let value = |name: &str| env.iter().find(|e| e["name"].as_str() == Some(name)).cloned();
    assert_eq!(value("S3_BUCKET").unwrap()["value"].as_str(), Some("chat-media"));
    let key = value("AWS_SECRET_ACCESS_KEY").expect("S3 credentials from the existing Secret");
    assert_eq!(key["valueFrom"]["secretKeyRef"]["name"].as_str(), Some("chat-s3"));
}

#[test]
fn the_chart_refuses_a_private_key_without_its_public_key() {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/helm/chatterbox");
    let helm = std::env::var("HELM").unwrap_or_else(|_| "helm".into());
    let output = std::process::Command::new(&helm)
        .args(["template", "chat", chart, "--set", "signingKey.privateKey=abc"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("signingKey.publicKey"));
}

#[test]
fn compose_keeps_media_in_the_bucket_it_creates_on_its_minio() {
    let doc = compose();
    let services = &doc["services"];
    let media = environment(&services["media"]);
    let bucket = &media["S3_BUCKET"];
    let creates = services["minio-bucket"]["command"][0].as_str().unwrap();
    assert!(creates.contains(&format!("local/{bucket}")), "minio-bucket creates {bucket}: {creates}");
    assert_eq!(media["AWS_ENDPOINT_URL"], "http://minio:9000");
    let minio = &services["minio"]["environment"];
    assert_eq!(media["AWS_ACCESS_KEY_ID"].as_str(), minio["MINIO_ROOT_USER"].as_str().unwrap());
    assert_eq!(media["AWS_SECRET_ACCESS_KEY"].as_str(), minio["MINIO_ROOT_PASSWORD"].as_str().unwrap());
    assert_eq!(services["minio"]["ports"][0].as_str(), Some("9000:9000"), "signed URLs name localhost:9000");
    assert_eq!(media["CHATTERBOX_S3_PUBLIC_ENDPOINT"], "http://localhost:9000");
    let gateway = environment(&services["gateway"]);
    assert_eq!(
        gateway["CHATTERBOX_S3_PUBLIC_ENDPOINT"], media["CHATTERBOX_S3_PUBLIC_ENDPOINT"],
        "pages may show media"
    );
}
