//! Serving a service's gRPC API with what every service needs: health,
//! reflection, a span per call continuing the caller's trace, and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use tonic::service::Routes;
use tonic_health::ServingStatus;
use tower::Layer as _;
use tower::util::BoxCloneSyncService;
use tower_http::trace::TraceLayer;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metrics_layer::CallMetricsLayer;
use crate::tls::GrpcTls;
use crate::transport::LocalServer;
use crate::{GrpcChannel, Shutdown};

/// A service's gRPC API, ready to serve.
pub struct GrpcServer {
    /// The service's routes (one or more tonic services).
    pub routes: Routes,
    /// Fully qualified names reported as SERVING by `grpc.health.v1`.
    pub names: Vec<&'static str>,
    /// What the service needs to do its work (its database answering),
    /// checked every second once served; while it fails, `names` are
    /// NOT_SERVING (the server as a whole, "", stays SERVING: the process
    /// is alive, and restarting it would not bring the database back).
    pub readiness: Option<Readiness>,
    /// The service's handlers (its tonic service trait object), for callers
    /// in this process to call without encoding ([`crate::calls`]).
    handlers: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl GrpcServer {
    /// A server of `routes`, reporting `names` as SERVING.
    pub fn new(routes: Routes, names: Vec<&'static str>) -> Self {
        Self { routes, names, readiness: None, handlers: None }
    }

    /// Offers the handlers behind the routes (an `Arc<dyn XService>`, the
    /// trait tonic generates) to callers in this process.
    pub fn with_handlers<H: Send + Sync + 'static>(mut self, handlers: H) -> Self {
        self.handlers = Some(Arc::new(handlers));
        self
    }

    /// The handlers offered as `H`, if any.
    pub fn handlers<H: Clone + 'static>(&self) -> Option<H> {
        self.handlers.as_ref()?.downcast_ref::<H>().cloned()
    }
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("names", &self.names)
            .field("readiness", &self.readiness.is_some())
            .finish_non_exhaustive()
    }
}

/// A check of what a service needs; `Err` says what is missing.
pub type Readiness = std::sync::Arc<dyn Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How often readiness is checked, and how long one check may take.
const READINESS_PERIOD: Duration = Duration::from_secs(1);
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Reports `names` SERVING or NOT_SERVING as `check` passes or fails, until
/// shutdown is requested. Logs each change once.
async fn watch_readiness(
    check: Readiness,
    names: Vec<&'static str>,
    health: tonic_health::server::HealthReporter,
    shutdown: Shutdown,
) {
    let mut ready = true;
    let mut every = tokio::time::interval(READINESS_PERIOD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.requested() => return,
            _ = every.tick() => {}
        }
        // Shutdown wins over a check in flight: it reports NOT_SERVING itself.
        let outcome = tokio::select! {
            () = shutdown.requested() => return,
            outcome = tokio::time::timeout(READINESS_TIMEOUT, check()) => {
                outcome.unwrap_or_else(|_| Err("timed out".into()))
            }
        };
        let now_ready = outcome.is_ok();
        // Shutdown, begun meanwhile, has said NOT_SERVING: leave it so.
        if now_ready != ready && !shutdown.is_requested() {
            match &outcome {
                Ok(()) => tracing::info!(services = ?names, "ready again"),
                Err(why) => tracing::warn!(services = ?names, %why, "not ready"),
            }
            let status = if now_ready { ServingStatus::Serving } else { ServingStatus::NotServing };
            for name in &names {
                health.set_service_status(*name, status).await;
            }
            ready = now_ready;
        }
    }
}

pub(crate) fn call_span(request: &http::Request<tonic::body::Body>) -> tracing::Span {
    let span = tracing::info_span!("grpc", path = %request.uri().path());
    // Continue the caller's trace when it sent W3C trace context.
    let _ = span.set_parent(chatterbox_telemetry::extract_context(request.headers()));
    span
}

/// The names health reports: "" (the server as a whole, what Kubernetes'
/// gRPC probe asks by default) and each service's.
fn health_names(server: &GrpcServer) -> Vec<&'static str> {
    std::iter::once("").chain(server.names.iter().copied()).collect()
}

/// A channel into a server of this process, built later (the embedded
/// mode's parts call each other in a cycle): its calls run the server's
/// routes in the caller's task, with health and the per-call metrics, each
/// within `timeout`, without a socket or HTTP/2. Calls made before
/// [`LocalEnd::attach`] answer UNAVAILABLE.
pub fn local_channel(timeout: Duration) -> (GrpcChannel, LocalEnd) {
    let server = LocalServer::pending(timeout);
    (crate::client::local(server.clone(), timeout), LocalEnd(server))
}

/// Where the server of a [`local_channel`] is attached.
#[derive(Debug)]
pub struct LocalEnd(LocalServer);

impl LocalEnd {
    /// Makes `server` answer the channel's calls.
    pub async fn attach(self, server: &GrpcServer) {
        chatterbox_telemetry::install_metrics();
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in health_names(server) {
            health.set_service_status(name, ServingStatus::Serving).await;
        }
        let routes = server.routes.clone().add_service(health_service);
        let attached = self.0.attach(BoxCloneSyncService::new(CallMetricsLayer.layer(routes)));
        debug_assert!(attached, "a local end is attached once");
    }
}

/// Serves `server` on `listener` (with mutual TLS when `tls` is given)
/// until `shutdown` is thrown, then lets in-flight calls finish for at most
/// the drain timeout.
pub async fn serve_grpc(
    listener: TcpListener,
    server: GrpcServer,
    tls: Option<GrpcTls>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    chatterbox_telemetry::install_metrics();
    let addr: SocketAddr = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    let names = health_names(&server);
    for name in &names {
        health.set_service_status(*name, ServingStatus::Serving).await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(chatterbox_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let routes = server.routes.add_service(health_service).add_service(reflection);
    if let Some(check) = server.readiness {
        tokio::spawn(watch_readiness(check, server.names.clone(), health.clone(), shutdown.clone()));
    }

    tracing::info!(%addr, services = ?server.names, tls = tls.is_some(), "serving gRPC");
    let drain = shutdown.drain();
    let signal = shutdown.clone();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        builder = builder.tls_config(tls.server_config())?;
    }
    let serving = builder
        .layer(TraceLayer::new_for_grpc().make_span_with(call_span))
        .layer(CallMetricsLayer)
        .add_routes(routes)
        // Small responses must not wait for the peer's delayed ACK (Nagle).
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async move {
            signal.requested().await;
            // Tell load balancers first, then stop accepting.
            for name in &names {
                health.set_service_status(*name, ServingStatus::NotServing).await;
            }
        });
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => result?,
        () = async { shutdown.requested().await; tokio::time::sleep(drain).await } => {
            tracing::warn!(%addr, "drain timeout reached, dropping in-flight calls");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn a_call_continues_the_trace_its_caller_sent() {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let request = http::Request::builder()
                .uri("/chatterbox.user.v1.UserService/GetMe")
                .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .body(tonic::body::Body::empty())
                .unwrap();
            let span = call_span(&request);
            let trace_id = span.context().span().span_context().trace_id().to_string();
            assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        });
    }
}
