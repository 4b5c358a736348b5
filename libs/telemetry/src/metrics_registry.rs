//! The process-wide Prometheus recorder. In the embedded mode every service
//! shares one process, so the recorder is installed once and shared.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Bucket bounds of every histogram, in seconds: latencies from half a
/// millisecond to ten seconds. Histograms (not per-process quantiles) so
/// Prometheus can add them up across replicas (`histogram_quantile` over
/// `sum by (le)`), as the chart's dashboard and alerts do.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the Prometheus recorder once per process; later calls do nothing.
pub fn install_metrics() {
    let builder = PrometheusBuilder::new().set_buckets(&LATENCY_BUCKETS).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "histogram buckets refused; quantiles instead");
        PrometheusBuilder::new()
    });
    HANDLE.get_or_init(|| match builder.install_recorder() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed");
            None
        }
    });
}

/// The metrics in Prometheus' text format, for `/metrics`.
pub fn prometheus_text() -> String {
    HANDLE.get().and_then(|h| h.as_ref()).map(PrometheusHandle::render).unwrap_or_default()
}

/// Counts one gRPC call and records its duration, by service, method and outcome.
pub fn record_grpc_call(path: &str, code: &str, elapsed: Duration) {
    let labels = [("path", path.to_owned()), ("code", code.to_owned())];
    metrics::counter!("grpc_server_requests_total", &labels).increment(1);
    metrics::histogram!("grpc_server_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
}
