//! The service runtime every ChatterBox service shares: how a service serves
//! gRPC (health, reflection, trace context, metrics), how it calls another
//! (deadlines, trace context, optional mutual TLS), and how it stops (signal, drain, timeout).

pub mod calls;
mod client;
mod metrics_endpoint;
mod metrics_layer;
mod server;
mod shutdown;
pub mod tls;
mod transport;

pub use client::{ClientInterceptor, GrpcChannel, connect};
pub use metrics_endpoint::serve_metrics;
pub use server::{GrpcServer, LocalEnd, Readiness, local_channel, serve_grpc};
pub use shutdown::{Shutdown, wait_for_signal};
pub use tls::GrpcTls;
pub use transport::{BoxError, LocalServer, Transport};
