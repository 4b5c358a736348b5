//! `chatterbox health <url>`: the probe in the image itself (distroless has
//! no curl). A gRPC address (`http://host:port`) is asked over
//! `grpc.health.v1`; a URL with a path (`http://host:port/readyz`) gets a
//! plain HTTP GET that must answer 200.

use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Succeeds when the service at `url` is healthy.
pub async fn check(url: &str) -> anyhow::Result<()> {
    let rest = url.strip_prefix("http://").context("the URL must start with http://")?;
    match rest.split_once('/') {
        Some((authority, path)) => http_ok(authority, path).await,
        None => grpc_serving(url).await,
    }
}

async fn grpc_serving(url: &str) -> anyhow::Result<()> {
    let channel = chatterbox_runtime::connect(url, TIMEOUT)?;
    // The empty name asks about the server as a whole.
    let response = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        other => anyhow::bail!("{url} is {}", other.as_str_name()),
    }
}

async fn http_ok(authority: &str, path: &str) -> anyhow::Result<()> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        let request = format!("GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = vec![0; 16];
        stream.read_exact(&mut head).await?;
        anyhow::Ok(head)
    };
    let head = tokio::time::timeout(TIMEOUT, exchange).await.context("timed out")??;
    anyhow::ensure!(head.starts_with(b"HTTP/1.1 200"), "answered {}", String::from_utf8_lossy(&head));
    Ok(())
}
