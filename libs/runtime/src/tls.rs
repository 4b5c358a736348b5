//! Mutual TLS between the parts (distributed mode, optional): every part
//! holds one certificate, signed by a CA the deployment owns, and presents
//! it both as a server and as a client. A server accepts only callers whose
//! certificate that CA signed; a caller talks only to servers whose
//! certificate it signed and names the host it dialled (or the one name
//! all the parts' certificates share, when configured).

use std::path::Path;

use anyhow::Context as _;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// A part's TLS material for its gRPC server and its calls.
#[derive(Clone)]
pub struct GrpcTls {
    identity: Identity,
    ca: Certificate,
    server_name: Option<String>,
}

impl std::fmt::Debug for GrpcTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The identity holds the private key: never printed.
        f.debug_struct("GrpcTls").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

const CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

impl GrpcTls {
    /// From PEM text: this part's certificate chain and private key, the
    /// CA bundle every part's certificate is signed by, and the DNS name
    /// to check every server's certificate against (instead of the host of
    /// each URL), when the parts share one certificate.
    pub fn from_pem(cert: &[u8], key: &[u8], ca: &[u8], server_name: Option<String>) -> anyhow::Result<Self> {
        anyhow::ensure!(contains(cert, CERTIFICATE), "the gRPC TLS certificate holds no PEM certificate");
        anyhow::ensure!(contains(key, "PRIVATE KEY-----"), "the gRPC TLS key holds no PEM private key");
        anyhow::ensure!(contains(ca, CERTIFICATE), "the gRPC TLS CA bundle holds no PEM certificate");
        let tls = Self { identity: Identity::from_pem(cert, key), ca: Certificate::from_pem(ca), server_name };
        // Both configurations parse the PEM now, so a bad file stops the
        // process at start rather than failing every call.
        tonic::transport::Server::builder().tls_config(tls.server_config()).context("the gRPC TLS server identity")?;
        tonic::transport::Endpoint::from_static("https://localhost")
            .tls_config(tls.client_config())
            .context("the gRPC TLS client identity or server name")?;
        Ok(tls)
    }

    /// Reads the three PEM files.
    pub fn load(cert: &Path, key: &Path, ca: &Path, server_name: Option<String>) -> anyhow::Result<Self> {
        let read = |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
        Self::from_pem(&read(cert)?, &read(key)?, &read(ca)?, server_name)
            .with_context(|| format!("gRPC TLS from {}, {} and {}", cert.display(), key.display(), ca.display()))
    }

    /// The same, checking servers against `name` when no name is set (a
    /// part calling itself by address).
    #[must_use]
    pub fn or_server_name(mut self, name: &str) -> Self {
        self.server_name.get_or_insert_with(|| name.to_owned());
        self
    }

    /// Serving: present the part's certificate, require the caller's.
    pub(crate) fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(self.identity.clone()).client_ca_root(self.ca.clone())
    }

    /// Calling: trust the CA alone, present the part's certificate.
    pub(crate) fn client_config(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(self.ca.clone()).identity(self.identity.clone());
        match &self.server_name {
            Some(name) => config.domain_name(name.clone()),
            None => config,
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// New PEM text: a CA, and one certificate it signs for every part (usable
/// as server and as client) with its key. The CA's own key is not kept:
/// adding a part later means generating all three again.
pub struct TlsMaterial {
    /// The CA certificate (`ca.crt`).
    pub ca: String,
    /// The parts' certificate (`tls.crt`).
    pub cert: String,
    /// Its private key (`tls.key`).
    pub key: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is never printed.
        f.debug_struct("TlsMaterial").field("ca", &self.ca).field("cert", &self.cert).finish_non_exhaustive()
    }
}

/// The file names `write_generated` uses, those of a Kubernetes TLS Secret
/// with its CA (what cert-manager writes).
pub const CA_FILE: &str = "ca.crt";
/// See [`CA_FILE`].
pub const CERT_FILE: &str = "tls.crt";
/// See [`CA_FILE`].
pub const KEY_FILE: &str = "tls.key";

/// A CA and a certificate valid for `names` (DNS names or IP addresses),
/// from a day ago (clocks differ) for five years.
pub fn generate(names: &[String]) -> anyhow::Result<TlsMaterial> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let now = time::OffsetDateTime::now_utc();
    let validity = |params: &mut CertificateParams| {
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(5 * 365 + 1);
    };
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "ChatterBox internal gRPC CA");
    validity(&mut ca);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

    let mut part = CertificateParams::new(names.to_vec())?;
    part.distinguished_name.push(DnType::CommonName, "ChatterBox part");
    part.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut part);
    let key = KeyPair::generate()?;
    let cert = part.signed_by(&key, &ca)?;
    Ok(TlsMaterial { ca: ca.pem(), cert: cert.pem(), key: key.serialize_pem() })
}

/// Writes a [`generate`]d set into `dir` (the key readable by its owner
/// only), unless `dir` already holds one; true when it wrote.
pub fn write_generated(dir: &Path, names: &[String]) -> anyhow::Result<bool> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let paths = [CA_FILE, CERT_FILE, KEY_FILE].map(|f| dir.join(f));
    if paths.iter().all(|p| p.exists()) {
        return Ok(false);
    }
    anyhow::ensure!(
        !paths.iter().any(|p| p.exists()),
        "{} holds part of a set ({CA_FILE}, {CERT_FILE}, {KEY_FILE}): remove it or complete it",
        dir.display()
    );
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let material = generate(names)?;
    for (path, text, mode) in
        [(&paths[0], &material.ca, 0o644), (&paths[1], &material.cert, 0o644), (&paths[2], &material.key, 0o600)]
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;
    use crate::{GrpcServer, Shutdown, connect, serve_grpc};

    fn tls(material: &TlsMaterial, server_name: Option<&str>) -> GrpcTls {
        let TlsMaterial { ca, cert, key } = material;
        GrpcTls::from_pem(cert.as_bytes(), key.as_bytes(), ca.as_bytes(), server_name.map(str::to_owned)).unwrap()
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    async fn serving(tls: &GrpcTls) -> (String, Shutdown) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shutdown = Shutdown::new(Duration::from_secs(1));
        let server = GrpcServer::new(tonic::service::Routes::default(), Vec::new());
        tokio::spawn(serve_grpc(listener, server, Some(tls.clone()), shutdown.clone()));
        (format!("https://localhost:{port}"), shutdown)
    }

    async fn health(url: &str, tls: Option<&GrpcTls>) -> Result<(), String> {
        let channel = connect(url, Duration::from_secs(2), tls).map_err(|e| format!("{e:#}"))?;
        HealthClient::new(channel)
            .check(HealthCheckRequest { service: String::new() })
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn only_callers_with_a_certificate_of_the_deployments_ca_get_through() {
        let deployment = generate(&names(&["localhost", "chatterbox-internal"])).unwrap();
        let (url, shutdown) = serving(&tls(&deployment, None)).await;
        health(&url, Some(&tls(&deployment, None))).await.expect("a caller of the same deployment");
        // One name shared by every part's certificate, checked instead of the host.
        health(&url, Some(&tls(&deployment, Some("chatterbox-internal")))).await.expect("the shared name");

        let other = generate(&names(&["localhost"])).unwrap();
        assert!(health(&url, Some(&tls(&other, None))).await.is_err(), "a server of another CA is not trusted");
        // Trusts the deployment's CA, presents a certificate another CA signed.
        let stranger = TlsMaterial { ca: deployment.ca.clone(), ..other };
        assert!(health(&url, Some(&tls(&stranger, None))).await.is_err(), "a caller of another CA is refused");
        let wrong_name = tls(&deployment, Some("someone-else"));
        assert!(health(&url, Some(&wrong_name)).await.is_err(), "a server certificate without the expected name");
        let plain = url.replace("https://", "http://");
        assert!(health(&plain, None).await.is_err(), "plaintext is refused");
        // TLS that trusts the server, but presents no certificate.
        let anonymous = tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&deployment.ca)))
            .unwrap()
            .connect_lazy();
        let anonymous = HealthClient::new(anonymous).check(HealthCheckRequest { service: String::new() }).await;
        assert!(anonymous.is_err(), "a caller without a certificate is refused");
        shutdown.trigger();
    }

    #[test]
    fn bad_material_and_mismatched_schemes_are_refused_at_start() {
        let TlsMaterial { ca, cert, key } = generate(&names(&["localhost"])).unwrap();
        let fake_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(GrpcTls::from_pem(b"", key.as_bytes(), ca.as_bytes(), None).is_err());
        assert!(GrpcTls::from_pem(cert.as_bytes(), fake_key.as_bytes(), ca.as_bytes(), None).is_err());
        assert!(GrpcTls::from_pem(cert.as_bytes(), key.as_bytes(), b"not a CA", None).is_err());
        assert!(GrpcTls::from_pem(cert.as_bytes(), key.as_bytes(), ca.as_bytes(), Some("a b".into())).is_err());
        let good = GrpcTls::from_pem(cert.as_bytes(), key.as_bytes(), ca.as_bytes(), None).unwrap();
        let timeout = Duration::from_secs(1);
        let error = connect("http://localhost:1", timeout, Some(&good)).unwrap_err().to_string();
        assert!(error.contains("https://"), "{error}");
        let error = connect("https://localhost:1", timeout, None).unwrap_err().to_string();
        assert!(error.contains("TLS"), "{error}");
    }

    #[test]
    fn generated_files_are_kept_and_the_key_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let first = write_generated(dir.path(), &names(&["a"])).unwrap();
        assert!(first, "written the first time");
        let cert = std::fs::read(dir.path().join(CERT_FILE)).unwrap();
        assert!(!write_generated(dir.path(), &names(&["b"])).unwrap(), "kept the second time");
        assert_eq!(std::fs::read(dir.path().join(CERT_FILE)).unwrap(), cert);
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let d = dir.path();
        GrpcTls::load(&d.join(CERT_FILE), &d.join(KEY_FILE), &d.join(CA_FILE), None).unwrap();
    }
}
