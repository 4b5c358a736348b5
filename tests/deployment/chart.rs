//! The rendered chart holds together: names, settings, probes, keys.

use std::collections::BTreeSet;

use serde_yaml::Value;

use crate::render::{name_of, named, of_kind, of_part, render, render_release};
use crate::{every_part, known_variables, required};

/// What every rendering must hold, whatever the values.
fn check_chart(docs: &[Value]) {
    let known = known_variables();
    // The settings' ConfigMap (the chart may render a dashboard's too).
    let config = &of_kind(docs, "ConfigMap")
        .into_iter()
        .find(|c| c["data"].get("CHATTERBOX_LOG").is_some())
        .expect("the settings' ConfigMap")["data"];
    let config_vars: BTreeSet<String> =
        config.as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_owned()).collect();
    let parts = every_part();
    // Mutual TLS between the parts, when the values turn it on.
    let tls = config.get("CHATTERBOX_GRPC_TLS_CERT_FILE").is_some();
    assert_eq!(of_kind(docs, "Deployment").len(), parts.len(), "one Deployment per part");
    let mut names = BTreeSet::new();
    for part in &parts {
        let part = part.as_str();
        let deployment = of_part(docs, "Deployment", part);
        let name = name_of(deployment).to_owned();
        assert!(is_dns_label(&name) && name.ends_with(&format!("-{part}")), "{name}: a DNS label naming its part");
        assert!(names.insert(name.clone()), "{name} names one part");
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["enableServiceLinks"].as_bool(), Some(false), "{name}: no variables per Service");
        let container = &pod["containers"][0];
        let args: Vec<&str> = container["args"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(args, ["run", part], "{name} runs its part");

        // Settings: everything the part needs, nothing the code does not read.
        let mut vars = config_vars.clone();
        for e in container["env"].as_sequence().unwrap() {
            vars.insert(e["name"].as_str().unwrap().to_owned());
        }
        for variable in required(part) {
            assert!(vars.contains(variable), "{name} lacks {variable}");
        }
        for variable in &vars {
            assert!(known.contains(variable), "{name} gets {variable}, which nothing reads");
        }

        // Storage credentials reach the media service alone.
        let own: Vec<&str> =
            container["env"].as_sequence().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
        let s3 = own.iter().any(|v| v.starts_with("AWS_") || v.starts_with("S3_"));
        assert_eq!(s3, part == "media", "{name}: S3 settings only where media is kept");

        // Probes on the port it serves: native gRPC for services (or, with
        // TLS between the parts, the image's own probe of its configured
        // port), HTTP for the gateway.
        let port = container["ports"][0]["containerPort"].as_u64().unwrap();
        for probe in ["readinessProbe", "livenessProbe"] {
            let p = &container[probe];
            if part == "gateway" {
                assert_eq!(p["httpGet"]["port"].as_str(), Some("http"), "{name} {probe}");
            } else if tls {
                let command: Vec<&str> =
                    p["exec"]["command"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
                assert_eq!(command, ["/usr/local/bin/chatterbox", "health"], "{name} {probe}");
            } else {
                assert_eq!(p["grpc"]["port"].as_u64(), Some(port), "{name} {probe}");
            }
        }
        let tls_volume = pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"].as_str() == Some("grpc-tls"));
        assert_eq!(tls_volume.is_some(), tls, "{name}: the parts' certificate exactly when TLS is on");
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
        let service = of_part(docs, "Service", part);
        assert_eq!(name_of(service), name, "the Service is named like its Deployment");
        let selector = service["spec"]["selector"].as_mapping().unwrap();
        let labels = deployment["spec"]["template"]["metadata"]["labels"].as_mapping().unwrap();
        for (k, v) in selector {
            assert_eq!(labels.get(k), Some(v), "{name}: the Service selects the pods");
        }
        let target = service["spec"]["ports"][0]["targetPort"].as_str().unwrap();
        assert_eq!(container["ports"][0]["name"].as_str(), Some(target), "{name}: Service port → container port");
    }
    check_network_policies(docs);
    // The URLs the parts use name the Services on their ports.
    for part in parts.iter().filter(|p| *p != "gateway") {
        let variable = chatterbox::Part::ALL.into_iter().find(|p| p.name() == part).unwrap().url_variable();
        let url = config[variable].as_str().unwrap();
        let service = of_part(docs, "Service", part);
        let port = service["spec"]["ports"][0]["port"].as_u64().unwrap();
        let scheme = if tls { "https" } else { "http" };
        assert_eq!(url, format!("{scheme}://{}:{port}", name_of(service)));
    }
}

/// Whether `selector` (a `matchLabels`) selects the pods of `deployment`.
fn selects(selector: &Value, deployment: &Value) -> bool {
    let labels = deployment["spec"]["template"]["metadata"]["labels"].as_mapping().unwrap();
    let selector = selector.as_mapping().unwrap();
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Each part's NetworkPolicy (when enabled) selects its pods and lets in
/// exactly what the table of parts says: the gateway's HTTP port from
/// anywhere; a service's gRPC port from the parts that call it, and no other.
fn check_network_policies(docs: &[Value]) {
    let policies = of_kind(docs, "NetworkPolicy");
    if policies.is_empty() {
        return;
    }
    assert_eq!(policies.len(), chatterbox::Part::ALL.len(), "one policy per part");
    for part in chatterbox::Part::ALL {
        let (policy, deployment) =
            (of_part(docs, "NetworkPolicy", part.name()), of_part(docs, "Deployment", part.name()));
        let name = name_of(policy);
        assert!(selects(&policy["spec"]["podSelector"]["matchLabels"], deployment), "{name} selects its part's pods");
        for other in chatterbox::Part::ALL.into_iter().filter(|p| *p != part) {
            assert!(
                !selects(&policy["spec"]["podSelector"]["matchLabels"], of_part(docs, "Deployment", other.name())),
                "{name} selects {} too",
                other.name()
            );
        }
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let port_names: BTreeSet<&str> =
            container["ports"].as_sequence().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
        let rules = policy["spec"]["ingress"].as_sequence().unwrap();
        let mut opened = BTreeSet::new();
        for rule in rules {
            let port = rule["ports"][0]["port"].as_str().unwrap();
            assert!(port_names.contains(port), "{name} opens {port}, which the pod does not name");
            opened.insert(port);
            let from = rule["from"].as_sequence();
            match port {
                // Clients and scrapers: from anywhere by default.
                "http" | "metrics" => assert!(from.is_none(), "{name}: {port} open by default"),
                "grpc" => {
                    let callers: BTreeSet<&str> = chatterbox::Part::ALL
                        .into_iter()
                        .filter(|p| p.calls().contains(&part))
                        .map(chatterbox::Part::name)
                        .collect();
                    let mut allowed = BTreeSet::new();
                    for peer in from.unwrap() {
                        let selector = &peer["podSelector"]["matchLabels"];
                        let selected: Vec<&str> = chatterbox::Part::ALL
                            .into_iter()
                            .filter(|p| selects(selector, of_part(docs, "Deployment", p.name())))
                            .map(chatterbox::Part::name)
                            .collect();
                        assert_eq!(selected.len(), 1, "{name}: each peer is one part");
                        allowed.insert(selected[0]);
                    }
                    assert_eq!(allowed, callers, "{name}: gRPC from exactly the parts that call it");
                }
                other => panic!("{name} opens {other}"),
            }
        }
        let expected: BTreeSet<&str> =
            if part == chatterbox::Part::Gateway { ["http", "metrics"] } else { ["grpc", "metrics"] }.into();
        assert_eq!(opened, expected, "{name}");
    }
}

/// What Kubernetes accepts as a Service name (RFC 1035 label).
fn is_dns_label(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[test]
fn the_chart_renders_a_sound_cluster_with_default_values() {
    let docs = render(None);
    check_chart(&docs);
    assert_eq!(of_kind(&docs, "NetworkPolicy").len(), 7, "network policies by default");
    assert!(of_kind(&docs, "HorizontalPodAutoscaler").is_empty());
    assert!(of_kind(&docs, "PodDisruptionBudget").is_empty());
    assert!(of_kind(&docs, "Ingress").is_empty());
    // Backends from the chart's own Secret; keys from the Secret NOTES.txt explains.
    let backends = named(&docs, "Secret", "chat-chatterbox-backends");
    assert!(backends["stringData"]["mongodb-uri"].is_string());
    assert!(backends["stringData"]["redis-url"].is_string());
    assert_eq!(named(&docs, "ConfigMap", "chat-chatterbox")["data"]["REDIS_MODE"].as_str(), Some("standalone"));
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
    let config = &named(&docs, "ConfigMap", "chat-chatterbox")["data"];
    assert_eq!(config["CHATTERBOX_WS_ALLOWED_ORIGINS"].as_str(), Some(r#"["https://chat.example.com"]"#));
    assert_eq!(config["OTEL_EXPORTER_OTLP_ENDPOINT"].as_str(), Some("http://otel-collector.observability:4317"));
    assert_eq!(config["REDIS_MODE"].as_str(), Some("cluster"), "a Redis Cluster's seed nodes in the Secret");
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
    // Mutual TLS between the parts from the existing (cert-manager) Secret.
    assert_eq!(config["CHATTERBOX_GRPC_TLS_SERVER_NAME"].as_str(), Some("chatterbox-internal"));
    let volumes = media["spec"]["template"]["spec"]["volumes"].as_sequence().unwrap();
    let tls = volumes.iter().find(|v| v["name"].as_str() == Some("grpc-tls")).expect("the parts' certificate");
    assert_eq!(tls["secret"]["secretName"].as_str(), Some("chat-grpc-tls"));
}

/// What `helm template` says when it refuses the chart with `--set set`.
fn refusal(set: &str) -> String {
    let helm = std::env::var("HELM").unwrap_or_else(|_| "helm".into());
    let output = std::process::Command::new(&helm)
        .args(["template", "chat"])
        .arg(crate::render::chart())
        .args(["--set", set])
        .output()
        .unwrap();
    assert!(!output.status.success(), "helm refuses --set {set}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_chart_refuses_a_redis_mode_it_does_not_know() {
    let error = refusal("redis.mode=sentinel");
    assert!(error.contains("redis.mode must be standalone or cluster"), "{error}");
}

#[test]
fn the_chart_refuses_a_private_key_without_its_public_key() {
    let error = refusal("signingKey.privateKey=abc");
    assert!(error.contains("signingKey.publicKey"), "{error}");
}

#[test]
fn a_release_name_starting_with_a_digit_still_gives_services_dns_labels() {
    // Helm accepts "2024-chat"; a Service named "2024-chat-chatterbox-auth" would be refused.
    let docs = render_release("2024-chat", &[]);
    check_chart(&docs);
    for service in of_kind(&docs, "Service") {
        assert!(is_dns_label(name_of(service)), "{} is a DNS label", name_of(service));
    }
    assert_eq!(name_of(of_part(&docs, "Service", "auth")), "chatterbox-2024-chat-auth");
}

#[test]
fn the_longest_release_name_keeps_every_name_a_distinct_dns_label() {
    // Helm allows release names of up to 53 characters; without the chart's
    // name in it, the fullname is cut at 63 and the parts must still differ.
    let release = crate::render::LONGEST_RELEASE;
    assert_eq!(release.len(), 53);
    let docs = render_release(release, &[]);
    check_chart(&docs);
    // Services and the pods' names are DNS labels; the rest DNS subdomains.
    for (kind, longest) in [("Service", 63), ("Deployment", 63), ("ConfigMap", 253), ("Secret", 253)] {
        let names: Vec<&str> = of_kind(&docs, kind).into_iter().map(name_of).collect();
        let distinct: BTreeSet<&&str> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{kind} names differ: {names:?}");
        for name in names {
            assert!(name.len() <= longest, "{kind} {name} is at most {longest} characters");
        }
    }
}
