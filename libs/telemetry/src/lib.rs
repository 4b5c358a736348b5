//! Observability shared by every part: `tracing` logs, OpenTelemetry trace
//! export over OTLP when an endpoint is configured, W3C trace context carried
//! across gRPC hops, and Prometheus metrics.

mod metrics_registry;
mod propagation;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use metrics_registry::{install_metrics, prometheus_text, record_grpc_call};
pub use propagation::{extract_context, inject_context};

/// What the process logs and exports; built from the configuration.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// Reported as `service.name` on exported spans.
    pub service_name: String,
    /// `tracing` filter directives.
    pub filter: String,
    /// JSON lines instead of human-readable logs.
    pub json: bool,
    /// OTLP/gRPC collector endpoint; export is off when `None`.
    pub otlp_endpoint: Option<String>,
}

/// Flushes exported spans when dropped at the end of `main`.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "could not flush traces");
        }
    }
}

/// Installs the global subscriber, propagator and metrics recorder. Call once,
/// first thing in `main`.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    metrics_registry::install_metrics();

    let filter = EnvFilter::try_new(&settings.filter)?;
    let provider = match &settings.otlp_endpoint {
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build()?;
            let resource = Resource::builder().with_service_name(settings.service_name.clone()).build();
            Some(SdkTracerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build())
        }
        None => None,
    };
    let otel_layer =
        provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(settings.service_name.clone())));
    let (json, text) = if settings.json {
        (Some(tracing_subscriber::fmt::layer().json()), None)
    } else {
        (None, Some(tracing_subscriber::fmt::layer()))
    };
    tracing_subscriber::registry().with(filter).with(otel_layer).with(json).with(text).try_init()?;
    Ok(TelemetryGuard { provider })
}
