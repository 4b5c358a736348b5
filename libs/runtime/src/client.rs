//! Calling another service: a lazily connected channel (or a server of this
//! process) whose every call carries a deadline and the current trace context.

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

use crate::tls::GrpcTls;
use crate::transport::{LocalServer, Transport};

/// Adds the deadline and W3C trace context to every outgoing call.
#[derive(Debug, Clone)]
pub struct ClientInterceptor {
    /// Every call's deadline, also sent as `grpc-timeout` so the callee knows it.
    timeout: Duration,
}

impl tonic::service::Interceptor for ClientInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.set_timeout(self.timeout);
        let mut headers = http::HeaderMap::new();
        chatterbox_telemetry::inject_context(&mut headers);
        for (name, value) in &headers {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes()),
                tonic::metadata::MetadataValue::try_from(value.as_bytes()),
            ) {
                request.metadata_mut().insert(key, value);
            }
        }
        Ok(request)
    }
}

/// The channel type every generated client is built on.
pub type GrpcChannel = InterceptedService<Transport, ClientInterceptor>;

/// A channel to `url` that connects on first use and reconnects by
/// itself, with `timeout` as the deadline of every call: `http://host:port`
/// in plaintext, or `https://host:port` with the deployment's mutual TLS
/// (`tls`), which then every URL must use.
pub fn connect(url: &str, timeout: Duration, tls: Option<&GrpcTls>) -> anyhow::Result<GrpcChannel> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    let https = endpoint.uri().scheme_str() == Some("https");
    match tls {
        Some(tls) => {
            anyhow::ensure!(https, "{url}: with gRPC TLS configured, service URLs must start with https://");
            endpoint = endpoint.tls_config(tls.client_config())?;
        }
        None => anyhow::ensure!(!https, "{url}: an https:// service URL needs the gRPC TLS settings"),
    }
    Ok(InterceptedService::new(Transport::Remote(endpoint.connect_lazy()), ClientInterceptor { timeout }))
}

/// A channel into a server of this process (see [`crate::local_channel`]).
pub(crate) fn local(server: LocalServer, timeout: Duration) -> GrpcChannel {
    InterceptedService::new(Transport::Local(server), ClientInterceptor { timeout })
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
    use tonic::service::Interceptor as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn outgoing_calls_carry_the_current_trace_and_a_deadline() {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("caller");
            let _entered = span.enter();
            let trace_id = span.context().span().span_context().trace_id().to_string();
            let request = ClientInterceptor { timeout: Duration::from_secs(3) }.call(tonic::Request::new(())).unwrap();
            let traceparent = request.metadata().get("traceparent").unwrap().to_str().unwrap();
            assert!(traceparent.contains(&trace_id), "{traceparent} should carry {trace_id}");
            assert_eq!(request.metadata().get("grpc-timeout").unwrap(), "3000000u");
        });
    }
}
