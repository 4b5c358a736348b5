//! Counts every gRPC call and times it, labelled by method path and status.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Wraps a service with [`CallMetrics`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CallMetricsLayer;

impl<S> tower::Layer<S> for CallMetricsLayer {
    type Service = CallMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallMetrics { inner }
    }
}

/// Records `grpc_server_requests_total` and the call's duration.
#[derive(Debug, Clone)]
pub struct CallMetrics<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<http::Request<B>> for CallMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await;
            // Errors raised by handlers come back trailers-only, so their
            // status is a header; a streamed success carries none here.
            let code = match &result {
                Ok(response) => {
                    response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0").to_owned()
                }
                Err(_) => "transport".to_owned(),
            };
            chatterbox_telemetry::record_grpc_call(&path, &code, started.elapsed());
            result
        })
    }
}
