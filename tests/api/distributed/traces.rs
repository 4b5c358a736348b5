//! Traces in a real viewer: every part its own process exporting its spans
//! over OTLP to Jaeger (v2, in-memory store); one message sent over a
//! WebSocket is one trace in Jaeger's query API holding the spans of the
//! gateway, the message service and the conversation service, every one but
//! the root linked to its parent in that trace.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::*;

/// Jaeger with an OTLP receiver (gRPC) and its query API on loopback ports
/// of its own; killed when dropped.
struct Jaeger {
    _child: Child,
    _dir: tempfile::TempDir,
    otlp: SocketAddr,
    query: SocketAddr,
}

impl Jaeger {
    async fn start() -> Self {
        let binary =
            std::env::var("TEST_JAEGER").expect("TEST_JAEGER is set by make test (scripts/with-test-servers.sh)");
        assert!(Path::new(&binary).exists(), "{binary} is missing: run `make test-deps` (tools/jaeger)");
        let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let (otlp, query, query_grpc) = (free(), free(), free());
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("jaeger.yaml");
        std::fs::write(
            &config,
            format!(
                "service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: {query}
    grpc:
      endpoint: {query_grpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {otlp}
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"
            ),
        )
        .unwrap();
        let child = tokio::process::Command::new(&binary)
            .arg(format!("--config={}", config.display()))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let jaeger = Self { _child: child, _dir: dir, otlp, query };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = reqwest::get(format!("http://{query}/api/services")).await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return jaeger;
            }
            assert!(Instant::now() < deadline, "Jaeger's query API never answered on {query}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The traces Jaeger holds that `service` took part in.
    async fn traces_of(&self, service: &str) -> Vec<Value> {
        let url = format!("http://{}/api/traces?service={service}&limit=100&lookback=1h", self.query);
        let answer: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        answer["data"].as_array().cloned().unwrap_or_default()
    }
}

/// The trace whose root is the gateway's `ws.send`, once it holds spans of
/// every one of `services` (spans arrive in batches, from each process on
/// its own).
async fn the_send_trace(jaeger: &Jaeger, services: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut seen = Vec::new();
    loop {
        for trace in jaeger.traces_of("chatterbox-gateway").await {
            let spans = trace["spans"].as_array().unwrap();
            if !spans.iter().any(|s| s["operationName"] == "ws.send") {
                continue;
            }
            let present: BTreeSet<&str> = spans
                .iter()
                .filter_map(|s| trace["processes"][s["processID"].as_str().unwrap()]["serviceName"].as_str())
                .collect();
            if services.iter().all(|s| present.contains(s)) {
                return trace;
            }
            seen = present.into_iter().map(str::to_owned).collect();
        }
        assert!(Instant::now() < deadline, "no ws.send trace held {services:?}; the latest held {seen:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn one_websocket_send_is_one_trace_across_the_gateway_and_the_services_in_jaeger() {
    let jaeger = Jaeger::start().await;
    let otlp = format!("http://{}", jaeger.otlp);
    let cluster = Cluster::start_on(0, chatterbox_testkit::redis_url(), &[("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)]).await;
    let client = reqwest::Client::new();
    let (ann, ann_token) = register(&client, &cluster.a, "ann").await;
    let (bob, _) = register(&client, &cluster.a, "bob").await;
    let conversation = direct(&client, &cluster.a, &ann_token, &bob).await;

    let mut ws = crate::ws_client::ws_at(cluster.a.addr, &test_user(&ann, &ann_token)).await;
    let send = json!({"type": "message.send", "id": 1, "conversation_id": conversation, "content": "traced", "client_id": "t-1"});
    ws.send(send).await;
    // The ack, and the sender's own message.new in whichever order.
    let mut acked = None;
    for _ in 0..2 {
        let frame = ws.next().await;
        if frame["type"] == "ack" {
            acked = Some(frame);
            break;
        }
        assert_eq!(frame["type"], "message.new", "{frame}");
    }
    let ack = acked.expect("the send is acknowledged");
    assert_eq!(ack["message"]["content"], "traced", "{ack}");

    let trace = the_send_trace(&jaeger, &["chatterbox-gateway", "chatterbox-message", "chatterbox-conversation"]).await;
    let spans = trace["spans"].as_array().unwrap();
    let ids: HashMap<&str, &Value> = spans.iter().map(|s| (s["spanID"].as_str().unwrap(), s)).collect();
    let service_of = |s: &Value| trace["processes"][s["processID"].as_str().unwrap()]["serviceName"].as_str().unwrap();
    let mut roots = Vec::new();
    for span in spans {
        let parents: Vec<&str> = span["references"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["refType"] == "CHILD_OF")
            .map(|r| r["spanID"].as_str().unwrap())
            .collect();
        match parents.as_slice() {
            [] => roots.push(span),
            [parent] => assert!(
                ids.contains_key(parent),
                "{} of {} names a parent missing from the trace",
                span["operationName"],
                service_of(span)
            ),
            more => panic!("{} has {} parents", span["operationName"], more.len()),
        }
    }
    assert_eq!(roots.len(), 1, "one root: {:?}", roots.iter().map(|s| &s["operationName"]).collect::<Vec<_>>());
    assert_eq!(roots[0]["operationName"], "ws.send");
    assert_eq!(service_of(roots[0]), "chatterbox-gateway");
    // The message service's handling hangs below the gateway's, and the
    // conversation service's below the message service's.
    let parent_service = |service: &str| -> Vec<&str> {
        spans
            .iter()
            .filter(|s| service_of(s) == service)
            .filter_map(|s| s["references"].as_array()?.first()?["spanID"].as_str())
            .filter_map(|p| ids.get(p).map(|parent| service_of(parent)))
            .collect()
    };
    assert!(parent_service("chatterbox-message").contains(&"chatterbox-gateway"), "message below the gateway");
    assert!(parent_service("chatterbox-conversation").contains(&"chatterbox-message"), "conversation below message");
}
