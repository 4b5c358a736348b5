//! How a call reaches a service: over the network (a tonic channel), or
//! straight into a server of this process, the embedded mode's shortcut: no
//! socket, no HTTP/2 framing, no extra task, but the same routes (with
//! health and per-call metrics), the same call span and the same deadline.
//! The network server's `TraceLayer` events (one per failed call) are not
//! repeated here; the caller sees and logs the status. A panic in a local
//! call answers INTERNAL instead of unwinding into the caller's task.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt as _;
use tonic::transport::Channel;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt as _};
use tracing::Instrument as _;

/// What a failed call reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type Call = http::Request<tonic::body::Body>;
type Reply = http::Response<tonic::body::Body>;

/// Where a client's calls go.
#[derive(Clone)]
pub enum Transport {
    /// A service across the network.
    Remote(Channel),
    /// A server in this process.
    Local(LocalServer),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Remote(channel) => f.debug_tuple("Remote").field(channel).finish(),
            Transport::Local(server) => f.debug_tuple("Local").field(server).finish(),
        }
    }
}

impl std::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServer")
            .field("attached", &self.routes.get().is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The routes of a server in this process, as a service.
pub(crate) type Routes = BoxCloneSyncService<Call, Reply, Infallible>;

/// A server's routes, called in process.
#[derive(Clone)]
pub struct LocalServer {
    /// The routes with health (and the metrics layer), once the server is
    /// built: parts call each other in a cycle, so channels come first.
    routes: Arc<OnceLock<Routes>>,
    /// Every call's deadline (a channel's `Endpoint::timeout` in the other mode).
    timeout: Duration,
}

impl LocalServer {
    /// A server to be attached later, whose calls each get `timeout`.
    pub(crate) fn pending(timeout: Duration) -> Self {
        Self { routes: Arc::default(), timeout }
    }

    /// Attaches the routes; later calls reach them.
    pub(crate) fn attach(&self, routes: Routes) -> bool {
        self.routes.set(routes).is_ok()
    }
}

impl Service<Call> for Transport {
    type Response = Reply;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Transport::Remote(channel) => channel.poll_ready(cx).map_err(Into::into),
            // Routes are always ready; each call takes its own clone.
            Transport::Local(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Call) -> Self::Future {
        match self {
            Transport::Remote(channel) => {
                let call = channel.call(request);
                Box::pin(async move { call.await.map_err(Into::into) })
            }
            Transport::Local(server) => {
                let Some(routes) = server.routes.get().cloned() else {
                    return Box::pin(async { Ok(tonic::Status::unavailable("not started yet").into_http()) });
                };
                let timeout = server.timeout;
                let span = crate::server::call_span(&request);
                Box::pin(
                    async move {
                        let call = std::panic::AssertUnwindSafe(routes.oneshot(request)).catch_unwind();
                        match tokio::time::timeout(timeout, call).await {
                            Ok(Ok(Ok(reply))) => Ok(reply),
                            Ok(Ok(Err(never))) => match never {},
                            Ok(Err(_panic)) => {
                                tracing::error!("a local gRPC call panicked");
                                Ok(tonic::Status::internal("internal error").into_http())
                            }
                            Err(_) => Ok(tonic::Status::deadline_exceeded("deadline exceeded").into_http()),
                        }
                    }
                    .instrument(span),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(routes: Option<Routes>, timeout: Duration) -> Transport {
        let server = LocalServer::pending(timeout);
        if let Some(routes) = routes {
            assert!(server.attach(routes));
        }
        Transport::Local(server)
    }

    async fn status_of(mut transport: Transport) -> tonic::Code {
        let request = http::Request::builder().uri("/x.Y/Z").body(tonic::body::Body::empty()).unwrap();
        let reply = transport.ready().await.unwrap().call(request).await.unwrap();
        let code = reply.headers().get("grpc-status").expect("a gRPC status").to_str().unwrap();
        tonic::Code::from_i32(code.parse().unwrap())
    }

    #[tokio::test]
    async fn a_local_call_answers_unavailable_until_attached_internal_on_panic_and_deadline_when_slow() {
        assert_eq!(status_of(local(None, Duration::from_secs(1))).await, tonic::Code::Unavailable);

        let panics = BoxCloneSyncService::new(tower::service_fn(|_: Call| async {
            if true {
                panic!("a bug in a handler");
            }
            Ok::<Reply, Infallible>(tonic::Status::ok("").into_http())
        }));
        assert_eq!(status_of(local(Some(panics), Duration::from_secs(1))).await, tonic::Code::Internal);

        let slow = BoxCloneSyncService::new(tower::service_fn(|_: Call| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<Reply, Infallible>(tonic::Status::ok("").into_http())
        }));
        assert_eq!(status_of(local(Some(slow), Duration::from_millis(50))).await, tonic::Code::DeadlineExceeded);
    }
}
