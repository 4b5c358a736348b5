//! Counts every gRPC call and times it, labelled by method path and status
//! (paths no route serves share one label).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// The status code of a call to a path no route serves.
const UNIMPLEMENTED: &str = "12";
/// The label of such calls.
const UNKNOWN_METHOD: &str = "unknown";

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
            // A path no route serves is answered UNIMPLEMENTED: counted under
            // one label, so made-up paths cannot add series without bound.
            let path = if code == UNIMPLEMENTED { UNKNOWN_METHOD } else { path.as_str() };
            chatterbox_telemetry::record_grpc_call(path, &code, started.elapsed());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use tower::{Layer as _, Service as _};

    use super::*;

    /// A service answering every call with `status`.
    fn answering(
        status: &'static str,
    ) -> impl tower::Service<
        http::Request<()>,
        Response = http::Response<()>,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone {
        tower::service_fn(move |_: http::Request<()>| async move {
            Ok(http::Response::builder().header("grpc-status", status).body(()).unwrap())
        })
    }

    #[tokio::test]
    async fn paths_no_route_serves_share_one_label() {
        chatterbox_telemetry::install_metrics();
        let mut unserved = CallMetricsLayer.layer(answering(UNIMPLEMENTED));
        for made_up in ["/made.up.Service/Xyzzy1", "/chatterbox.user.v1.UserService/Xyzzy2"] {
            unserved.call(http::Request::builder().uri(made_up).body(()).unwrap()).await.unwrap();
        }
        let mut served = CallMetricsLayer.layer(answering("0"));
        let real = "/chatterbox.user.v1.UserService/GetUserForLabelTest";
        served.call(http::Request::builder().uri(real).body(()).unwrap()).await.unwrap();

        let text = chatterbox_telemetry::prometheus_text();
        assert!(!text.contains("Xyzzy"), "{text}");
        assert!(text.contains("path=\"unknown\""), "{text}");
        assert!(text.contains(real), "a served path keeps its own label: {text}");
    }
}
