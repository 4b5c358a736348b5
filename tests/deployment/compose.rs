//! `docker-compose.yml`: every part runs with what it needs.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

use crate::{every_part, known_variables, required};

fn compose() -> Value {
    let text = std::fs::read_to_string(chatterbox_testkit::workspace_root().join("docker-compose.yml")).unwrap();
    let mut doc: Value = serde_yaml::from_str(&text).unwrap();
    doc.apply_merge().unwrap();
    doc
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(map) = service["environment"].as_mapping() {
        for (k, v) in map {
            let value = match v {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
            };
            env.insert(k.as_str().unwrap().to_owned(), value);
        }
    }
    env
}

#[test]
fn every_part_runs_in_compose_with_what_it_needs() {
    let doc = compose();
    let services = doc["services"].as_mapping().unwrap();
    let known = known_variables();
    let mut parts = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let command: Vec<&str> =
            service["command"].as_sequence().map(|c| c.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        if command.first() != Some(&"run") {
            continue;
        }
        let part = command[1];
        parts.insert(part.to_owned());
        let env = environment(service);
        for variable in required(part) {
            assert!(env.contains_key(variable), "{name} lacks {variable}");
        }
        for variable in env.keys() {
            assert!(known.contains(variable), "{name} sets {variable}, which nothing reads");
        }
        let health: Vec<&str> =
            service["healthcheck"]["test"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(&health[..3], ["CMD", "/usr/local/bin/chatterbox", "health"], "{name} has a health check");
        assert!(service["depends_on"].as_mapping().unwrap().values().all(|d| d["condition"].is_string()));
        // A service's URL in the others' settings points at its own port.
        if let Some(addr) = env.get("CHATTERBOX_GRPC_ADDR") {
            let port = addr.rsplit(':').next().unwrap();
            assert!(health[3].ends_with(&format!(":{port}")), "{name} probes its own port");
        }
    }
    assert_eq!(parts, every_part(), "every part the binary can run is in compose");
    assert_eq!(services["gateway"]["ports"][0].as_str(), Some("8080:8080"));
}

/// `${NAME:-default}` as compose reads it with `NAME` unset.
fn unset_default(value: &str) -> Option<(&str, &str)> {
    value.strip_prefix("${")?.strip_suffix('}')?.split_once(":-")
}

#[test]
fn redis_url_and_mode_pass_through_to_every_part_that_uses_redis() {
    let doc = compose();
    let mut users = 0;
    for (name, service) in doc["services"].as_mapping().unwrap() {
        let env = environment(service);
        let Some(url) = env.get("REDIS_URL") else { continue };
        users += 1;
        let name = name.as_str().unwrap();
        assert_eq!(unset_default(url), Some(("REDIS_URL", "redis://redis:6379/")), "{name}: REDIS_URL from the shell");
        let mode = env.get("REDIS_MODE").unwrap_or_else(|| panic!("{name} passes REDIS_MODE with REDIS_URL"));
        assert_eq!(unset_default(mode), Some(("REDIS_MODE", "standalone")), "{name}: REDIS_MODE from the shell");
    }
    assert_eq!(users, every_part().len(), "every part reads Redis (the ended login sessions at least)");
}

#[test]
fn urls_in_compose_name_services_that_listen_there() {
    let doc = compose();
    let services = doc["services"].as_mapping().unwrap();
    let listens: BTreeMap<String, String> = services
        .iter()
        .filter_map(|(n, s)| {
            let addr = environment(s).get("CHATTERBOX_GRPC_ADDR")?.clone();
            Some((n.as_str()?.to_owned(), addr.rsplit(':').next()?.to_owned()))
        })
        .collect();
    for (name, service) in services {
        for (variable, value) in environment(service) {
            if variable.ends_with("_URL") && variable.starts_with("CHATTERBOX_") {
                let target = value.trim_start_matches("http://");
                let (host, port) = target.split_once(':').unwrap();
                assert_eq!(
                    listens.get(host),
                    Some(&port.to_owned()),
                    "{}: {variable}={value}",
                    name.as_str().unwrap_or_default()
                );
            }
        }
    }
}

#[test]
fn compose_keeps_media_in_the_bucket_it_creates_on_its_minio() {
    let doc = compose();
    let services = &doc["services"];
    let media = environment(&services["media"]);
    let bucket = &media["S3_BUCKET"];
    let creates = services["minio-bucket"]["command"][0].as_str().unwrap();
    assert!(creates.contains(&format!("local/{bucket}")), "minio-bucket creates {bucket}: {creates}");
    assert_eq!(media["AWS_ENDPOINT_URL"], "http://minio:9000");
    // No secret in the file: one job generates MinIO's credentials into a
    // volume; MinIO reads them as Docker secrets, the bucket job with `cat`,
    // media as an AWS credentials file, all from that volume.
    let mounts = |service: &str| -> Vec<String> {
        services[service]["volumes"]
            .as_sequence()
            .map(|v| v.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let mounted_at = |service: &str| -> String {
        let mount = mounts(service).into_iter().find(|m| m.starts_with("storage-credentials:")).unwrap();
        mount.split(':').nth(1).unwrap().to_owned()
    };
    let job: Vec<&str> =
        services["storage-credentials"]["command"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(job, ["storage-credentials", "--out", mounted_at("storage-credentials").as_str()]);
    assert_eq!(mounted_at("minio"), "/run/secrets", "MinIO's image reads access_key and secret_key there");
    let bucket_job = mounted_at("minio-bucket");
    for file in ["access_key", "secret_key"] {
        assert!(creates.contains(&format!("{bucket_job}/{file}")), "the bucket job signs in with {file}: {creates}");
    }
    assert_eq!(media["AWS_SHARED_CREDENTIALS_FILE"], format!("{}/aws-credentials", mounted_at("media")));
    for (name, service) in services.as_mapping().unwrap() {
        for (variable, value) in environment(service) {
            let secret = ["PASSWORD", "SECRET", "ROOT_USER", "ACCESS_KEY"].iter().any(|s| variable.contains(s));
            assert!(
                !secret,
                "{} sets {variable}={value}: secrets are generated, not written here",
                name.as_str().unwrap()
            );
        }
    }
    assert_eq!(services["minio"]["ports"][0].as_str(), Some("127.0.0.1:9000:9000"), "signed URLs name localhost:9000");
    assert_eq!(media["CHATTERBOX_S3_PUBLIC_ENDPOINT"], "http://localhost:9000");
    let gateway = environment(&services["gateway"]);
    assert_eq!(
        gateway["CHATTERBOX_S3_PUBLIC_ENDPOINT"], media["CHATTERBOX_S3_PUBLIC_ENDPOINT"],
        "pages may show media"
    );
}

#[test]
fn only_auth_mounts_the_signing_key_and_backends_publish_on_loopback() {
    let doc = compose();
    let services = doc["services"].as_mapping().unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_sequence().map(|s| s.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
    };
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let command = strings(&service["command"]);
        let volumes = strings(&service["volumes"]);
        if command.first().map(String::as_str) == Some("run") {
            let part = command[1].as_str();
            // `keys` holds the pair; `public-key` the public key alone.
            let signing = volumes.iter().any(|v| v.starts_with("keys:"));
            assert_eq!(signing, part == "auth", "{name}: only auth may read the signing key ({volumes:?})");
            if part != "auth" {
                assert!(volumes.iter().any(|v| v.starts_with("public-key:")), "{name} gets the public key");
            }
        }
        // Only the gateway is meant to be reached from other machines.
        if name != "gateway" {
            for port in strings(&service["ports"]) {
                assert!(port.starts_with("127.0.0.1:"), "{name} publishes {port} beyond this machine");
            }
        }
    }
    // The job that makes the keys writes the public one where the others mount it.
    let keys = strings(&doc["services"]["keys"]["command"]);
    assert!(keys.windows(2).any(|w| w[0] == "--public-out"), "{keys:?}");
}

#[test]
fn keygen_copies_the_public_key_alone_and_keeps_an_existing_pair() {
    let bin = env!("CARGO_BIN_EXE_chatterbox");
    let (pair, public) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let keygen = || {
        let status = std::process::Command::new(bin)
            .args(["keygen", "--out"])
            .arg(pair.path())
            .arg("--public-out")
            .arg(public.path())
            .env_clear()
            .status()
            .unwrap();
        assert!(status.success());
    };
    keygen();
    let names: BTreeSet<String> =
        std::fs::read_dir(public.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["jwt-public.pem".to_owned()]), "no private key beside the public one");
    let copied = std::fs::read_to_string(public.path().join("jwt-public.pem")).unwrap();
    assert_eq!(copied, std::fs::read_to_string(pair.path().join("jwt-public.pem")).unwrap());
    // A second run (the job restarting) keeps the pair the parts already use.
    keygen();
    assert_eq!(std::fs::read_to_string(public.path().join("jwt-public.pem")).unwrap(), copied);
}

#[test]
fn storage_credentials_are_generated_once_private_and_readable_by_the_aws_sdk() {
    use aws_credential_types::provider::ProvideCredentials as _;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("credentials");
    let run = || {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_chatterbox"))
            .args(["storage-credentials", "--out"])
            .arg(&out)
            .env_clear()
            .status()
            .unwrap();
        assert!(status.success());
        ["access_key", "secret_key", "aws-credentials"].map(|f| std::fs::read_to_string(out.join(f)).unwrap())
    };
    let first = run();
    assert_eq!(first[0].len(), 20);
    assert_eq!(first[1].len(), 40);
    assert_eq!(run(), first, "kept on the next start");
    #[cfg(unix)]
    for file in ["access_key", "secret_key", "aws-credentials"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(out.join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    // The AWS SDK's profile reader (what the media service's credentials
    // chain uses for the file `AWS_SHARED_CREDENTIALS_FILE` names) reads that pair.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let credentials = runtime.block_on(async {
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let files = aws_runtime::env_config::file::EnvConfigFiles::builder()
            .with_file(aws_runtime::env_config::file::EnvConfigFileKind::Credentials, out.join("aws-credentials"))
            .build();
        let config = aws_config::provider_config::ProviderConfig::empty().with_http_client(http);
        let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .configure(&config)
            .profile_files(files)
            .build();
        provider.provide_credentials().await.unwrap()
    });
    assert_eq!(credentials.access_key_id(), first[0]);
    assert_eq!(credentials.secret_access_key(), first[1]);
    // Another directory, other credentials.
    let elsewhere = chatterbox::storage_credentials::load_or_generate(&dir.path().join("other")).unwrap();
    assert_ne!(elsewhere.access_key, first[0]);
}
