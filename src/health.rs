//! `chatterbox health [url]`: the probe in the image itself (distroless has
//! no curl). A gRPC address (`http://host:port`, or `https://host:port`
//! with the parts' TLS settings) is asked over `grpc.health.v1`; a URL with
//! a path (`http://host:port/readyz`) gets a plain HTTP GET that must answer
//! 200. Without a URL, the part's own gRPC server is asked, where
//! `CHATTERBOX_GRPC_ADDR` puts it, with TLS when configured: the probe of a
//! pod whose gRPC port the kubelet cannot reach in plaintext.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::Context as _;
use chatterbox_config::Config;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The name a part's own certificate is checked against when it is asked
/// by address and no shared name is configured.
const SELF_NAME: &str = "localhost";

/// Succeeds when the service at `url` (or this configuration's own gRPC
/// server) is healthy.
pub async fn check(url: Option<&str>, config: &Config) -> anyhow::Result<()> {
    let tls = crate::settings::grpc_tls(config)?;
    let Some(url) = url else {
        let addr = config.grpc_addr.context("CHATTERBOX_GRPC_ADDR is not set: name the service's URL")?;
        let ip = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", std::net::SocketAddr::new(ip, addr.port()));
        return grpc_serving(&url, tls.map(|t| t.or_server_name(SELF_NAME))).await;
    };
    if let Some(rest) = url.strip_prefix("http://")
        && let Some((authority, path)) = rest.split_once('/')
    {
        return http_ok(authority, path).await;
    }
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "the URL must start with http:// or https://"
    );
    // A plaintext URL is asked in plaintext whatever the configuration.
    grpc_serving(url, tls.filter(|_| url.starts_with("https://"))).await
}

async fn grpc_serving(url: &str, tls: Option<chatterbox_runtime::GrpcTls>) -> anyhow::Result<()> {
    let channel = chatterbox_runtime::connect(url, TIMEOUT, tls.as_ref())?;
    // The empty name asks about the server as a whole.
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .with_context(|| format!("asking {url}"))?;
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
