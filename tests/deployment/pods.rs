//! The chart's pods, started the way a kubelet starts them, must become
//! ready: the image's `ENV`, then the variables Kubernetes injects for every
//! Service of the namespace, then the ConfigMap and the container's own
//! variables with Secrets resolved; the volumes as directories; the pod's
//! user and a read-only working directory; then the pod's own probes must
//! pass, Prometheus must find the metrics it is told about, and two people
//! can chat and share a picture through the gateway.
//!
//! What stands in for the cluster: every Service's cluster IP is 127.0.0.1;
//! each container port gets a free loopback port (as each pod has its own
//! IP), and a value naming `0.0.0.0:<containerPort>` or
//! `http://<service>:<port>` is pointed there, as the pod network and the
//! cluster DNS would. Service links are injected even though the chart turns
//! them off, so the binary is proven to start with them.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use serde_yaml::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::every_part;
use crate::render::{name_of, of_kind, of_part, render_release};

/// The release name `helm install chatterbox helm/chatterbox` gives.
#[tokio::test(flavor = "multi_thread")]
async fn every_pod_of_the_default_release_starts_with_the_variables_kubernetes_injects() {
    run_release("chatterbox").await;
}

/// Helm's longest release name, without the chart's name in it, on a Redis
/// Cluster (`redis.mode: cluster`, the seed nodes in `redis.url`).
#[tokio::test(flavor = "multi_thread")]
async fn every_pod_of_a_long_named_release_on_a_redis_cluster_starts_with_the_variables_kubernetes_injects() {
    let scratch = tempfile::tempdir().unwrap();
    let redis = json!({
        "mode": "cluster",
        "url": chatterbox_testkit::redis_cluster_urls(),
        "keyPrefix": chatterbox_testkit::fresh_key_prefix(),
    });
    run_release_with(crate::render::LONGEST_RELEASE, scratch.path(), json!({"redis": redis})).await;
}

/// With mutual TLS between the parts (`grpcTls`, a set made by
/// `chatterbox grpc-tls` as the chart's README says): the services' probes
/// run in the pod, everything works as in plaintext, and a service's port
/// refuses plaintext and certificates of another CA.
#[tokio::test(flavor = "multi_thread")]
async fn every_pod_of_a_release_with_grpc_tls_starts_and_its_services_refuse_strangers() {
    let scratch = tempfile::tempdir().unwrap();
    let material = scratch.path().join("grpc-tls");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_chatterbox"))
        .args(["grpc-tls", "--out", material.to_str().unwrap(), "--name", "chatterbox-internal"])
        .env_clear()
        .output()
        .unwrap();
    assert!(made.status.success(), "chatterbox grpc-tls: {}", String::from_utf8_lossy(&made.stderr));
    let read = |file: &str| std::fs::read_to_string(material.join(file)).unwrap();
    let tls = json!({"enabled": true, "cert": read("tls.crt"), "key": read("tls.key"), "ca": read("ca.crt")});
    let pods = run_release_with("chatterbox", scratch.path(), json!({"grpcTls": tls})).await;

    let ours = chatterbox_runtime::GrpcTls::load(
        &material.join("tls.crt"),
        &material.join("tls.key"),
        &material.join("ca.crt"),
        Some("chatterbox-internal".into()),
    )
    .unwrap();
    // Trusts the deployment's CA, but presents a certificate another CA signed.
    let stranger = chatterbox_runtime::tls::generate(&["chatterbox-internal".to_owned()]).unwrap();
    let stranger = chatterbox_runtime::GrpcTls::from_pem(
        stranger.cert.as_bytes(),
        stranger.key.as_bytes(),
        read("ca.crt").as_bytes(),
        Some("chatterbox-internal".into()),
    )
    .unwrap();
    for pod in pods.iter().filter(|p| p.part != "gateway") {
        let port = pod.port(&Value::from("grpc"));
        let https = format!("https://127.0.0.1:{port}");
        assert_eq!(grpc_health(&https, Some(&ours)).await, Ok(()), "{}: a caller of the deployment", pod.name);
        assert!(grpc_health(&https, Some(&stranger)).await.is_err(), "{}: a certificate of another CA", pod.name);
        let http = format!("http://127.0.0.1:{port}");
        assert!(grpc_health(&http, None).await.is_err(), "{}: plaintext", pod.name);
    }
}

/// How long a pod may take to pass its probes (FerretDB's first answers are slow).
const READY_WITHIN: Duration = Duration::from_secs(60);

async fn run_release(release: &str) {
    let scratch = tempfile::tempdir().unwrap();
    run_release_with(release, scratch.path(), json!({})).await;
}

/// Starts every pod of `release` (rendered with `values` over the test's
/// backends), checks each, and has two people chat through the gateway.
async fn run_release_with(release: &str, scratch: &Path, values: serde_json::Value) -> Vec<Pod> {
    let cluster = Cluster::render(release, scratch, values).await;
    let mut pods = Vec::new();
    for part in every_part() {
        pods.push(cluster.start(&part).await);
    }
    for pod in &mut pods {
        pod.wait_until_ready().await;
        pod.assert_warned_about_service_links(&cluster);
        pod.assert_metrics_where_prometheus_looks().await;
    }
    let gateway = pods.iter().find(|p| p.part == "gateway").unwrap();
    two_people_chat_and_share_a_picture(&format!("http://127.0.0.1:{}", gateway.http_port())).await;
    for pod in &mut pods {
        pod.assert_still_running();
    }
    pods
}

/// The rendered chart with the test's backends, and where each pod lives.
struct Cluster {
    docs: Vec<Value>,
    /// The scratch directory: the image's files and the pods' volumes.
    root: PathBuf,
    /// The binary where the image keeps it.
    binary: PathBuf,
    /// (Deployment, container port) → the loopback port standing in for it.
    ports: BTreeMap<(String, u64), u16>,
    /// Those ports, held until their pod starts, so nothing else takes them.
    reserved: Mutex<BTreeMap<String, Vec<std::net::TcpListener>>>,
}

impl Cluster {
    async fn render(release: &str, root: &Path, extra_values: serde_json::Value) -> Self {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The image: the binary at its path, readable by the pod's user.
        let binary = root.join("image/usr/local/bin/chatterbox");
        std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
        let built = Path::new(env!("CARGO_BIN_EXE_chatterbox"));
        if std::fs::hard_link(built, &binary).is_err() {
            std::fs::copy(built, &binary).unwrap();
        }
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();

        let keys = chatterbox_identity::load_or_generate_keypair(&root.join("keygen")).unwrap();
        let bucket = crate::media_bucket::fresh_media_bucket().await;
        let aws = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by make test"));
        let mut values = json!({
            "mongodb": {"uri": chatterbox_testkit::mongodb_uri(), "database": chatterbox_testkit::fresh_database_name()},
            "redis": {"url": chatterbox_testkit::redis_url(), "keyPrefix": chatterbox_testkit::fresh_key_prefix()},
            "s3": {
                "bucket": bucket,
                "region": aws("AWS_REGION"),
                "endpoint": chatterbox_testkit::s3_endpoint(),
                "accessKeyId": aws("AWS_ACCESS_KEY_ID"),
                "secretAccessKey": aws("AWS_SECRET_ACCESS_KEY"),
            },
            "signingKey": {"privateKey": keys.private_pem, "publicKey": keys.public_pem},
        });
        for (key, value) in extra_values.as_object().unwrap() {
            values[key] = value.clone();
        }
        let values_file = root.join("values.yaml");
        std::fs::write(&values_file, serde_yaml::to_string(&values).unwrap()).unwrap();
        let docs = render_release(release, &[&values_file]);

        let (mut ports, mut reserved) = (BTreeMap::new(), BTreeMap::new());
        for deployment in of_kind(&docs, "Deployment") {
            let held: &mut Vec<_> = reserved.entry(name_of(deployment).to_owned()).or_default();
            for port in container(deployment)["ports"].as_sequence().unwrap() {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let free = listener.local_addr().unwrap().port();
                held.push(listener);
                ports.insert((name_of(deployment).to_owned(), port["containerPort"].as_u64().unwrap()), free);
            }
        }
        Cluster { docs, root: root.to_owned(), binary, ports, reserved: Mutex::new(reserved) }
    }

    /// The variables Kubernetes injects into every pod of the namespace for
    /// every Service in it (and for the API server's own Service).
    fn service_links(&self) -> Vec<(String, String)> {
        let mut links = Vec::new();
        let kubernetes = json!({"name": "https", "port": 443});
        let mut services: Vec<(String, Vec<serde_json::Value>)> = vec![("kubernetes".into(), vec![kubernetes])];
        for service in of_kind(&self.docs, "Service") {
            let ports = service["spec"]["ports"].as_sequence().unwrap();
            let ports = ports.iter().map(|p| json!({"name": p["name"].as_str(), "port": p["port"].as_u64()})).collect();
            services.push((name_of(service).to_owned(), ports));
        }
        let ip = "127.0.0.1";
        for (name, ports) in services {
            let prefix = name.to_uppercase().replace('-', "_");
            let first = ports[0]["port"].as_u64().unwrap();
            links.push((format!("{prefix}_SERVICE_HOST"), ip.to_owned()));
            links.push((format!("{prefix}_SERVICE_PORT"), first.to_string()));
            links.push((format!("{prefix}_PORT"), format!("tcp://{ip}:{first}")));
            for port in &ports {
                let number = port["port"].as_u64().unwrap();
                if let Some(port_name) = port["name"].as_str() {
                    let port_name = port_name.to_uppercase().replace('-', "_");
                    links.push((format!("{prefix}_SERVICE_PORT_{port_name}"), number.to_string()));
                }
                let tcp = format!("{prefix}_PORT_{number}_TCP");
                links.push((tcp.clone(), format!("tcp://{ip}:{number}")));
                links.push((format!("{tcp}_PROTO"), "tcp".into()));
                links.push((format!("{tcp}_PORT"), number.to_string()));
                links.push((format!("{tcp}_ADDR"), ip.to_owned()));
            }
        }
        links
    }

    fn secret(&self, name: &str, key: &str) -> String {
        let secret = of_kind(&self.docs, "Secret").into_iter().find(|s| name_of(s) == name).unwrap_or_else(|| {
            panic!("Secret {name} is not in the rendering (the test's values make the chart create it)")
        });
        if let Some(text) = secret["stringData"][key].as_str() {
            return text.to_owned();
        }
        let encoded = secret["data"][key].as_str().unwrap_or_else(|| panic!("Secret {name} has no {key}"));
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap()
    }

    fn config_map(&self, name: &str) -> &serde_yaml::Mapping {
        of_kind(&self.docs, "ConfigMap")
            .into_iter()
            .find(|c| name_of(c) == name)
            .unwrap_or_else(|| panic!("no ConfigMap {name}"))["data"]
            .as_mapping()
            .unwrap()
    }

    /// The container's variables as written in the pod spec, Secrets and
    /// ConfigMaps resolved (envFrom first, then env, later winning).
    fn declared_env(&self, container: &Value) -> Vec<(String, String)> {
        let mut env = Vec::new();
        for source in container["envFrom"].as_sequence().into_iter().flatten() {
            let name = source["configMapRef"]["name"].as_str().expect("envFrom names a ConfigMap");
            for (k, v) in self.config_map(name) {
                env.push((k.as_str().unwrap().to_owned(), v.as_str().unwrap().to_owned()));
            }
        }
        for variable in container["env"].as_sequence().into_iter().flatten() {
            let name = variable["name"].as_str().unwrap().to_owned();
            let value = if let Some(value) = variable["value"].as_str() {
                value.to_owned()
            } else if let Some(from) = variable["valueFrom"]["secretKeyRef"].as_mapping() {
                self.secret(from["name"].as_str().unwrap(), from["key"].as_str().unwrap())
            } else {
                panic!("{name}: a value or a secretKeyRef");
            };
            env.push((name, value));
        }
        env
    }

    /// Where a Service's port leads: the loopback port of the container
    /// port it targets, in the Deployment it selects.
    fn through_service(&self, service: &Value, port: u64) -> Option<u16> {
        let spec = service["spec"]["ports"].as_sequence()?.iter().find(|p| p["port"].as_u64() == Some(port))?;
        let selector = service["spec"]["selector"].as_mapping()?;
        let deployment = of_kind(&self.docs, "Deployment").into_iter().find(|d| {
            let labels = &d["spec"]["template"]["metadata"]["labels"];
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })?;
        let container_port = container_port(container(deployment), &spec["targetPort"])?;
        self.ports.get(&(name_of(deployment).to_owned(), container_port)).copied()
    }

    /// `value` as the pod sees it: listen addresses on the pod's ports,
    /// Service URLs through cluster DNS, mount paths on their volumes.
    fn in_pod(&self, deployment: &str, mounts: &[(String, PathBuf)], value: &str) -> String {
        if let Some(port) = value.strip_prefix("0.0.0.0:").and_then(|p| p.parse::<u64>().ok())
            && let Some(host) = self.ports.get(&(deployment.to_owned(), port))
        {
            return format!("127.0.0.1:{host}");
        }
        if let Some((scheme, rest)) = value.split_once("://")
            && ["http", "https"].contains(&scheme)
            && let Some((host, port)) = rest.split_once(':')
            && let Ok(port) = port.trim_end_matches('/').parse::<u64>()
        {
            let short = host.split('.').next().unwrap_or_default();
            if let Some(service) = of_kind(&self.docs, "Service").into_iter().find(|s| name_of(s) == short) {
                let target = self.through_service(service, port).unwrap_or_else(|| panic!("{value} leads nowhere"));
                return format!("{scheme}://127.0.0.1:{target}");
            }
        }
        for (mount, dir) in mounts {
            if let Some(rest) = value.strip_prefix(mount.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return format!("{}{rest}", dir.display());
            }
        }
        value.to_owned()
    }

    /// Starts `part`'s pod.
    async fn start(&self, part: &str) -> Pod {
        let deployment = of_part(&self.docs, "Deployment", part);
        let name = name_of(deployment).to_owned();
        let pod = &deployment["spec"]["template"]["spec"];
        let container = container(deployment);
        let as_root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        let user = pod["securityContext"]["runAsUser"].as_u64().map(|u| u32::try_from(u).unwrap());
        let group = pod["securityContext"]["fsGroup"].as_u64().map(|g| u32::try_from(g).unwrap());

        // Volumes: Secret items as files, emptyDirs owned by the pod's user.
        let pod_dir = self.root.join(&name);
        let mut mounts = Vec::new();
        for mount in container["volumeMounts"].as_sequence().unwrap() {
            let volume_name = mount["name"].as_str().unwrap();
            let volume = pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"].as_str() == Some(volume_name));
            let volume = volume.unwrap_or_else(|| panic!("{name} mounts {volume_name}, which it does not have"));
            let dir = pod_dir.join("volumes").join(volume_name);
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(secret) = volume["secret"].as_mapping() {
                let secret_name = secret["secretName"].as_str().unwrap();
                for item in secret["items"].as_sequence().unwrap() {
                    let text = self.secret(secret_name, item["key"].as_str().unwrap());
                    std::fs::write(dir.join(item["path"].as_str().unwrap()), text).unwrap();
                }
            } else {
                assert!(volume["emptyDir"].is_mapping(), "{name}: {volume_name} is a Secret or an emptyDir");
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
                if as_root {
                    std::os::unix::fs::chown(&dir, user, group).unwrap();
                }
            }
            mounts.push((mount["mountPath"].as_str().unwrap().to_owned(), dir));
        }
        std::fs::set_permissions(&pod_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The root filesystem is read-only: the working directory too.
        let workdir = pod_dir.join("workdir");
        std::fs::create_dir_all(&workdir).unwrap();
        std::fs::set_permissions(&workdir, std::fs::Permissions::from_mode(0o555)).unwrap();

        let mut env = BTreeMap::new();
        for (k, v) in image_env().into_iter().chain(self.service_links()).chain(self.declared_env(container)) {
            env.insert(k, v);
        }
        let mut env: BTreeMap<String, String> =
            env.into_iter().map(|(k, v)| (k, self.in_pod(&name, &mounts, &v))).collect();
        // The pod's /tmp is one of its volumes.
        if let Some((_, tmp)) = mounts.iter().find(|(m, _)| m == "/tmp") {
            env.insert("TMPDIR".into(), tmp.display().to_string());
        }

        let args: Vec<&str> = container["args"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
        let mut command = Command::new(&self.binary);
        command
            .args(&args)
            .env_clear()
            .envs(&env)
            .current_dir(&workdir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if as_root {
            // As the pod's user, so a write outside its volumes fails as it would in the pod.
            let user = user.expect("the pod names its user");
            let group = pod["securityContext"]["runAsGroup"].as_u64().map_or(user, |g| u32::try_from(g).unwrap());
            command.uid(user).gid(group);
        }
        // Its ports, held until now, are free for it to bind.
        drop(self.reserved.lock().unwrap().remove(&name));
        let mut child = command.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        tokio::spawn(collect(BufReader::new(out), log.clone()));
        tokio::spawn(collect(BufReader::new(err), log.clone()));
        let ports = self.ports.iter().filter(|((d, _), _)| *d == name).map(|((_, c), h)| (*c, *h)).collect();
        Pod {
            part: part.to_owned(),
            name,
            container: container.clone(),
            annotations: pod_annotations(deployment),
            ports,
            child,
            log,
            exec: Exec { binary: self.binary.clone(), env, workdir },
        }
    }
}

async fn collect(reader: impl tokio::io::AsyncBufRead + Unpin, log: Arc<Mutex<Vec<String>>>) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        log.lock().unwrap().push(line);
    }
}

/// A started pod.
struct Pod {
    part: String,
    name: String,
    container: Value,
    annotations: Value,
    /// Container port → loopback port.
    ports: BTreeMap<u64, u16>,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    /// How a command runs in the pod (an `exec` probe).
    exec: Exec,
}

/// A process in a started pod's container: the image's binary, the
/// container's environment and working directory.
struct Exec {
    binary: PathBuf,
    env: BTreeMap<String, String>,
    workdir: PathBuf,
}

impl Exec {
    async fn run(&self, command: &[&str]) -> Result<(), String> {
        let (program, args) = command.split_first().ok_or("an empty exec command")?;
        // The image keeps its binary at the path the Dockerfile installs it to.
        let program = if *program == "/usr/local/bin/chatterbox" { self.binary.as_path() } else { Path::new(program) };
        let output = Command::new(program)
            .args(args)
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.workdir)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{command:?}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

impl Pod {
    fn output(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn port(&self, port: &Value) -> u16 {
        let container_port =
            container_port(&self.container, port).unwrap_or_else(|| panic!("{}: no port {port:?}", self.name));
        self.ports[&container_port]
    }

    fn http_port(&self) -> u16 {
        self.port(&Value::from("http"))
    }

    /// Both probes of the pod spec pass, as the kubelet would run them.
    async fn wait_until_ready(&mut self) {
        let started = Instant::now();
        for kind in ["readinessProbe", "livenessProbe"] {
            let probe = self.container[kind].clone();
            assert!(probe.is_mapping(), "{} has a {kind}", self.name);
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    panic!("{} exited ({status}) before its {kind} passed:\n{}", self.name, self.output());
                }
                match run_probe(&probe, self).await {
                    Ok(()) => break,
                    Err(e) if started.elapsed() > READY_WITHIN => {
                        panic!("{}: {kind} still fails ({e}):\n{}", self.name, self.output())
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }
    }

    /// Injected variables that look like settings are named once in a
    /// warning, not a reason to stop (with a release named otherwise, none
    /// look like settings and nothing is said).
    fn assert_warned_about_service_links(&self, cluster: &Cluster) {
        let output = self.output();
        let links = cluster.service_links();
        let ours: Vec<&String> = links.iter().map(|(k, _)| k).filter(|k| k.starts_with("CHATTERBOX_")).collect();
        let warnings: Vec<&str> = output.lines().filter(|l| l.contains("name no setting")).collect();
        if ours.is_empty() {
            assert!(warnings.is_empty(), "{}: nothing to warn about: {warnings:?}", self.name);
            return;
        }
        assert_eq!(warnings.len(), 1, "{}: one warning about the variables it ignores:\n{output}", self.name);
        // Whole names: CHATTERBOX_AUTH_PORT is also a prefix of its _TCP forms.
        let words: Vec<&str> = warnings[0].split(|c: char| c.is_whitespace() || "\"=,".contains(c)).collect();
        for variable in ours {
            assert!(words.contains(&variable.as_str()), "{}: the warning names {variable}: {}", self.name, warnings[0]);
        }
    }

    /// Prometheus, following the pod's annotations, finds the metrics.
    async fn assert_metrics_where_prometheus_looks(&self) {
        let port = self.annotations["prometheus.io/port"].as_str().expect("the pod tells Prometheus its port");
        let path = self.annotations["prometheus.io/path"].as_str().unwrap_or("/metrics");
        let port = self.port(&Value::from(port.parse::<u64>().unwrap()));
        let response = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.unwrap();
        assert_eq!(response.status(), 200, "{} serves {path} on its port {port}", self.name);
    }

    fn assert_still_running(&mut self) {
        let exited = self.child.try_wait().unwrap();
        assert!(exited.is_none(), "{} exited ({exited:?}):\n{}", self.name, self.output());
    }
}

/// Runs one probe of a pod spec against the pod, as the kubelet would.
async fn run_probe(probe: &Value, pod: &Pod) -> Result<(), String> {
    if let Some(grpc) = probe.get("grpc") {
        let url = format!("http://127.0.0.1:{}", pod.port(&grpc["port"]));
        grpc_health(&url, None).await
    } else if let Some(http) = probe.get("httpGet") {
        let path = http["path"].as_str().unwrap_or("/");
        let url = format!("http://127.0.0.1:{}{path}", pod.port(&http["port"]));
        let response = reqwest::get(&url).await.map_err(|e| e.to_string())?;
        // The kubelet counts 200–399 as success.
        if (200..400).contains(&response.status().as_u16()) {
            Ok(())
        } else {
            Err(format!("{url}: {}", response.status()))
        }
    } else if let Some(exec) = probe.get("exec") {
        let command: Vec<&str> = exec["command"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
        // The kubelet's default timeout is one second.
        let timeout = Duration::from_secs(probe["timeoutSeconds"].as_u64().unwrap_or(1));
        tokio::time::timeout(timeout, pod.exec.run(&command)).await.map_err(|_| format!("{command:?} timed out"))?
    } else {
        Err(format!("a probe this test does not know: {probe:?}"))
    }
}

/// Asks a gRPC server whether it serves (the empty name: the server as a whole).
async fn grpc_health(url: &str, tls: Option<&chatterbox_runtime::GrpcTls>) -> Result<(), String> {
    let channel = chatterbox_runtime::connect(url, Duration::from_secs(2), tls).map_err(|e| e.to_string())?;
    let request = HealthCheckRequest { service: String::new() };
    let answer = HealthClient::new(channel).check(request).await.map_err(|e| e.to_string())?;
    match answer.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        other => Err(other.as_str_name().to_owned()),
    }
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn pod_annotations(deployment: &Value) -> Value {
    deployment["spec"]["template"]["metadata"]["annotations"].clone()
}

/// A port of a container given by number or by name.
fn container_port(container: &Value, port: &Value) -> Option<u64> {
    let ports = container["ports"].as_sequence()?;
    match port {
        Value::Number(n) => ports.iter().find(|p| p["containerPort"].as_u64() == n.as_u64())?["containerPort"].as_u64(),
        Value::String(name) => ports.iter().find(|p| p["name"].as_str() == Some(name))?["containerPort"].as_u64(),
        _ => None,
    }
}

/// The `ENV` of the image's final stage, from the Dockerfile.
fn image_env() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(chatterbox_testkit::workspace_root().join("Dockerfile")).unwrap();
    let text = text.replace("\\\n", " ");
    let last_stage = text.rsplit("\nFROM ").next().unwrap();
    last_stage
        .lines()
        .filter_map(|line| line.strip_prefix("ENV "))
        .flat_map(|pairs| pairs.split_whitespace().map(|pair| pair.split_once('=').unwrap()))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Alice and Bob register, Alice sends Bob a picture, Bob sees it: every
/// service is reached through its Service, media spools and thumbnails
/// under the pod's volumes and lands in the bucket.
async fn two_people_chat_and_share_a_picture(gateway: &str) {
    let client = reqwest::Client::new();
    let register = |name: &'static str| {
        let client = client.clone();
        async move {
            let response = client
                .post(format!("{gateway}/api/v1/auth/register"))
                .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "correct horse battery"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201, "registering {name}");
            let body: serde_json::Value = response.json().await.unwrap();
            (
                body["user"]["id"].as_str().unwrap().to_owned(),
                body["tokens"]["access_token"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (_, alice) = register("alice").await;
    let (bob_id, bob) = register("bob").await;
    let conversation = json_of(
        client
            .post(format!("{gateway}/api/v1/conversations"))
            .bearer_auth(&alice)
            .json(&json!({"type": "direct", "participant_ids": [bob_id]})),
    )
    .await;
    let conversation = conversation["id"].as_str().expect("a conversation");

    let boundary = "chatterbox-pod-test";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let upload = client
        .post(format!("{gateway}/api/v1/media"))
        .bearer_auth(&alice)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201, "uploading: {}", upload.text().await.unwrap_or_default());
    let media: serde_json::Value = upload.json().await.unwrap();
    let sent = client
        .post(format!("{gateway}/api/v1/conversations/{conversation}/messages"))
        .bearer_auth(&alice)
        .json(&json!({"type": "image", "content": "look", "attachments": [media["id"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);

    let history =
        json_of(client.get(format!("{gateway}/api/v1/conversations/{conversation}/messages")).bearer_auth(&bob)).await;
    assert_eq!(history["items"][0]["content"], "look");
    assert_eq!(history["items"][0]["attachments"][0]["id"], media["id"]);
    let thumbnail = client
        .get(format!("{gateway}{}", media["thumbnail_url"].as_str().unwrap()))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    // A redirect to a URL signed for the bucket, followed.
    assert!(thumbnail.status().is_success(), "the thumbnail: {}", thumbnail.status());
}

async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

fn png() -> Vec<u8> {
    let picture = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}
