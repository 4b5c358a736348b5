//! `chatterbox`: run the whole suite (default), one part of it, probe one,
//! or make a deployment's keys and certificates.

use std::path::PathBuf;

use anyhow::Context as _;
use chatterbox::Part;
use chatterbox_config::Config;
use chatterbox_runtime::{Shutdown, wait_for_signal};
use chatterbox_telemetry::TelemetrySettings;
use clap::{Parser, Subcommand};

/// Per-thread caches: the servers allocate many small objects per request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "chatterbox", version, about = "A real-time chat backend")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every service and the gateway in one process (the default).
    All,
    /// One part alone, for the distributed mode.
    Run {
        /// Which part.
        #[arg(value_enum)]
        part: Part,
    },
    /// Writes a new Ed25519 key pair (jwt-private.pem, jwt-public.pem), or
    /// keeps the one already there.
    Keygen {
        /// The directory to write into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Also copy the public key (alone) into this directory: what every
        /// part but auth mounts, so only auth can read the signing key.
        #[arg(long)]
        public_out: Option<PathBuf>,
    },
    /// Writes S3 credentials for a MinIO run beside the suite (MinIO's
    /// `access_key` and `secret_key` secrets, and `aws-credentials` for the
    /// media service), or keeps the ones already there.
    StorageCredentials {
        /// The directory to write into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Exits 0 if the gRPC service at the address reports SERVING (for
    /// container health checks; the image has no other probe).
    Health {
        /// `http://host:port` (or `https://` with the gRPC TLS settings) of a
        /// service, or `http://host:port/path` for an HTTP 200; by default
        /// this part's own server at `CHATTERBOX_GRPC_ADDR`.
        url: Option<String>,
    },
    /// Writes a CA and one certificate it signs for every part (ca.crt,
    /// tls.crt, tls.key) for mutual TLS between the parts, or keeps the set
    /// already there.
    GrpcTls {
        /// The directory to write into.
        #[arg(long, default_value = ".")]
        out: std::path::PathBuf,
        /// DNS names (or IP addresses) the certificate is valid for: the
        /// services' hosts, or the one name set as CHATTERBOX_GRPC_TLS_SERVER_NAME.
        #[arg(long = "name", required = true)]
        names: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let loaded = Config::load()?;
    let config = loaded.config;
    let service_name = match &cli.command {
        Some(Command::Run { part }) => format!("chatterbox-{part:?}").to_lowercase(),
        _ => "chatterbox".to_owned(),
    };
    // A probe (run every few seconds by the kubelet) and the one-off tools
    // export no traces: nothing to wait for at exit.
    let exports = matches!(cli.command, None | Some(Command::All | Command::Run { .. }));
    let _telemetry = chatterbox_telemetry::init(&TelemetrySettings {
        service_name,
        filter: config.log.clone(),
        json: config.log_json,
        otlp_endpoint: config.otel_exporter_otlp_endpoint.clone().filter(|_| exports),
    })?;
    if !loaded.unknown_variables.is_empty() {
        tracing::warn!(
            variables = %loaded.unknown_variables.join(" "),
            "ignoring CHATTERBOX_* variables that name no setting (a typo, or Kubernetes service links)"
        );
    }

    match cli.command.unwrap_or(Command::All) {
        Command::All => {
            let suite = chatterbox::embedded::start(&config).await?;
            tracing::info!(addr = %suite.http_addr, data_dir = %config.data_dir.display(), "ChatterBox is up: http://{}", suite.http_addr);
            suite.run_until(wait_for_signal()).await
        }
        Command::Run { part } => {
            let shutdown = Shutdown::new(chatterbox::distributed::drain(&config));
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                trigger.trigger();
            });
            chatterbox::distributed::run(part, &config, shutdown).await
        }
        Command::Health { url } => chatterbox::health::check(url.as_deref(), &config).await,
        Command::GrpcTls { out, names } => {
            if chatterbox_runtime::tls::write_generated(&out, &names)? {
                tracing::info!(dir = %out.display(), ?names, "gRPC TLS written (ca.crt, tls.crt, tls.key)");
            } else {
                tracing::info!(dir = %out.display(), "gRPC TLS already there, kept");
            }
            Ok(())
        }
        Command::StorageCredentials { out } => {
            let credentials = chatterbox::storage_credentials::load_or_generate(&out)?;
            tracing::info!(dir = %out.display(), access_key = %credentials.access_key, "storage credentials ready");
            Ok(())
        }
        Command::Keygen { out, public_out } => {
            let pair = chatterbox_identity::load_or_generate_keypair(&out)?;
            tracing::info!(dir = %out.display(), "key pair written (jwt-private.pem, jwt-public.pem)");
            if let Some(dir) = public_out {
                let path = dir.join("jwt-public.pem");
                std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                std::fs::write(&path, &pair.public_pem).with_context(|| format!("writing {}", path.display()))?;
                tracing::info!(dir = %dir.display(), "public key copied (jwt-public.pem)");
            }
            Ok(())
        }
    }
}
