//! The chart's dashboard and alert rules: rendered only when asked for,
//! every expression valid PromQL, every metric they name one the code emits
//! (a dashboard of metrics nobody records shows nothing, silently).

use std::collections::BTreeSet;
use std::path::Path;

use promql_parser::parser::Expr;
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_yaml::Value;

use crate::render::{of_kind, render};

/// The metric names an expression reads.
struct Names(BTreeSet<String>);

impl ExprVisitor for Names {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        let selector = match expr {
            Expr::VectorSelector(vs) => Some(vs),
            Expr::MatrixSelector(ms) => Some(&ms.vs),
            _ => None,
        };
        if let Some(name) = selector.and_then(|vs| vs.name.clone()) {
            self.0.insert(name);
        }
        Ok(true)
    }
}

/// Parses `expr` (panicking with it when it is not PromQL) and returns the
/// metrics it reads.
fn metrics_read_by(expr: &str) -> BTreeSet<String> {
    let parsed = promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("not PromQL: {expr}\n{e}"));
    let mut names = Names(BTreeSet::new());
    let _ = walk_expr(&mut names, &parsed);
    assert!(!names.0.is_empty(), "{expr} reads no metric");
    names.0
}

/// Every metric the code records: the name given to `counter!`, `gauge!` or
/// `histogram!` anywhere in the workspace's sources.
fn emitted_metrics() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for macro_call in ["counter!(", "gauge!(", "histogram!("] {
                    for (at, _) in text.match_indices(macro_call) {
                        let rest = text[at + macro_call.len()..].trim_start();
                        if let Some(quoted) = rest.strip_prefix('"') {
                            found.insert(quoted.split('"').next().unwrap().to_owned());
                        }
                    }
                }
            }
        }
    }
    let root = chatterbox_testkit::workspace_root();
    let root = root.as_path();
    let mut found = BTreeSet::new();
    for dir in ["libs", "services", "gateway", "src"] {
        walk(&root.join(dir), &mut found);
    }
    found
}

/// A series name as recorded: a histogram's `_bucket`, `_sum` and `_count`
/// are its own name's.
fn recorded_as(name: &str, emitted: &BTreeSet<String>) -> bool {
    emitted.contains(name)
        || ["_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| name.strip_suffix(suffix).is_some_and(|base| emitted.contains(base)))
}

#[test]
fn the_dashboard_and_alerts_read_metrics_the_code_records() {
    let emitted = emitted_metrics();
    assert!(emitted.contains("grpc_server_requests_total"), "the scan finds the code's metrics: {emitted:?}");

    // Off unless asked for.
    let plain = render(None);
    assert!(of_kind(&plain, "PrometheusRule").is_empty());
    assert!(
        !of_kind(&plain, "ConfigMap").iter().any(|c| c["metadata"]["name"].as_str().unwrap().ends_with("-dashboards"))
    );

    let docs = render(Some("ci/production-values.yaml"));
    let mut read = BTreeSet::new();

    // The dashboard: a ConfigMap Grafana's sidecar picks up, holding JSON.
    let dashboards: Vec<&Value> = of_kind(&docs, "ConfigMap")
        .into_iter()
        .filter(|c| c["metadata"]["labels"]["grafana_dashboard"].as_str() == Some("1"))
        .collect();
    assert_eq!(dashboards.len(), 1, "one dashboard ConfigMap, labelled for the sidecar");
    let json = dashboards[0]["data"]["chatterbox.json"].as_str().expect("the dashboard's JSON");
    let dashboard: serde_json::Value = serde_json::from_str(json).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "chatterbox");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "traffic, latency, errors, WebSockets, the bus, overload");
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "panel ids are unique");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{} has queries", panel["title"]));
        assert!(!targets.is_empty());
        for target in targets {
            read.extend(metrics_read_by(target["expr"].as_str().unwrap()));
        }
    }

    // The alert rules, as the Prometheus Operator takes them.
    let rules = of_kind(&docs, "PrometheusRule");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["metadata"]["labels"]["release"].as_str(), Some("kube-prometheus-stack"), "selectable");
    let mut alerts = BTreeSet::new();
    for group in rules[0]["spec"]["groups"].as_sequence().expect("rule groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let alert = rule["alert"].as_str().expect("every rule is an alert").to_owned();
            assert!(alerts.insert(alert.clone()), "{alert} is named once");
            let severity = rule["labels"]["severity"].as_str();
            assert!(matches!(severity, Some("critical" | "warning" | "info")), "{alert} has a severity");
            assert!(rule["annotations"]["summary"].is_string(), "{alert} says what is wrong");
            read.extend(metrics_read_by(rule["expr"].as_str().unwrap()));
        }
    }
    for wanted in ["ChatterBoxHttpErrors", "ChatterBoxRpcErrors", "ChatterBoxRpcSlow", "ChatterBoxEventBusGaps"] {
        assert!(alerts.contains(wanted), "alerts on {wanted}");
    }

    let unknown: Vec<&String> = read.iter().filter(|name| !recorded_as(name, &emitted)).collect();
    assert!(unknown.is_empty(), "metrics nothing records: {unknown:?}");
    for core in ["ws_sessions", "events_bus_gaps_total", "grpc_server_request_duration_seconds_bucket"] {
        assert!(read.contains(core), "watched: {core}");
    }
}

#[test]
fn a_metric_nothing_records_or_a_broken_expression_is_caught() {
    let emitted = emitted_metrics();
    assert!(!recorded_as("no_such_metric_total", &emitted));
    assert!(recorded_as("http_request_duration_seconds_bucket", &emitted));
    assert!(std::panic::catch_unwind(|| metrics_read_by("sum(rate(http_requests_total[5m])")).is_err());
    assert_eq!(
        metrics_read_by("sum(rate(a_total[5m])) / sum(b)"),
        BTreeSet::from(["a_total".to_owned(), "b".to_owned()])
    );
}
