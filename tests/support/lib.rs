//! Test support: a real local Kubernetes cluster with Istio revisions (the
//! sandbox, `tests/sandbox/`), handed to one test at a time.
//!
//! ```no_run
//! # async fn demo() {
//! use kubectl_mesh_e2e::Sandbox;
//! let sandbox = Sandbox::fresh("canary"); // pristine cluster, held exclusively
//! let out = kubectl_mesh_e2e::stdout(sandbox.plugin("revisions").arg("-A"));
//! let client = sandbox.client().await;
//! # }
//! ```
//!
//! The plugins must be built first (`cargo build --workspace`): `cargo test`
//! builds only this package, and `kubectl mesh <step>` looks for
//! `kubectl-mesh-<step>` on PATH.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The sandbox cluster, reset to one scenario and reserved for the holder:
/// the lock is released when this value is dropped.
pub struct Sandbox {
    /// Admin (system:masters) kubeconfig of the cluster.
    pub kubeconfig: PathBuf,
    /// The scenario the cluster was reset to: `canary`, `inplace` or `empty`.
    pub scenario: String,
    /// Which sandbox: the default one or the second ([`Sandbox::second`]).
    place: Place,
    _lock: File,
}

impl Sandbox {
    /// Starts the sandbox if needed and resets it to `scenario`, waiting until
    /// every pod is Ready. Blocks while another test, in this process or any
    /// other, holds the sandbox.
    ///
    /// # Panics
    /// When `tests/sandbox/up` fails; the panic carries its output.
    pub fn fresh(scenario: &str) -> Sandbox {
        Place::first().fresh(scenario)
    }

    /// A client for the sandbox as its admin.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("read the sandbox kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("load the sandbox kubeconfig");
        kube::Client::try_from(config).expect("build a client for the sandbox")
    }

    /// The real kubectl, pointed at the sandbox, with the workspace's built
    /// plugins first on PATH.
    pub fn kubectl(&self) -> Command {
        let kubectl = std::env::var_os("KUBECTL")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/usr/bin/kubectl")).filter(|p| p.exists()))
            .unwrap_or_else(|| PathBuf::from("kubectl"));
        let mut path = vec![bin_dir()];
        if let Some(old) = std::env::var_os("PATH") {
            path.extend(std::env::split_paths(&old));
        }
        let mut cmd = Command::new(kubectl);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("PATH", std::env::join_paths(path).expect("PATH"))
            .env_remove("KUBECTL_CONTEXT")
            .stdin(Stdio::null());
        cmd
    }

    /// `kubectl mesh <step>`, run through kubectl's plugin lookup exactly as a
    /// user runs it.
    ///
    /// # Panics
    /// When `kubectl-mesh-<step>` has not been built.
    pub fn plugin(&self, step: &str) -> Command {
        let exe = bin_dir().join(format!("kubectl-mesh-{step}"));
        assert!(
            exe.exists(),
            "{} is missing: run `cargo build --workspace` before the tests",
            exe.display()
        );
        let mut cmd = self.kubectl();
        cmd.args(["mesh", step]);
        cmd
    }
}

/// Runs `cmd` and returns its stdout.
///
/// # Panics
/// When it cannot start or exits non-zero; the panic shows both streams.
pub fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command that may fail: its exit code (-1 if a signal ended it), stdout, stderr.
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fleetman Deployments in `default`, in name order.
pub const APPS: [&str; 7] = [
    "api-gateway",
    "position-simulator",
    "position-tracker",
    "staff-service",
    "staff-service-risky-version",
    "vehicle-telemetry",
    "webapp",
];

/// The `istio-proxy` image of a pod, classic or native sidecar.
pub fn proxy_image(pod: &k8s_openapi::api::core::v1::Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == "istio-proxy")
        .and_then(|c| c.image.clone())
}

/// The revision in `sidecar.istio.io/status`: who injected the pod.
pub fn injected_by(pod: &k8s_openapi::api::core::v1::Pod) -> Option<String> {
    let status = pod.metadata.annotations.as_ref()?.get("sidecar.istio.io/status")?;
    let status: serde_json::Value = serde_json::from_str(status).ok()?;
    status["revision"].as_str().map(str::to_owned)
}

/// `tests/sandbox/`.
pub fn sandbox_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sandbox")
}

/// The sandbox's state dir, as `tests/sandbox/lib.sh` picks it.
fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SANDBOX_STATE") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"));
    cache.join("kubectl-mesh").join("sandbox-state")
}

/// The directory holding the workspace's built binaries: the test binary
/// runs from `<target>/<profile>/deps/`, the plugins sit in `<target>/<profile>/`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("debug")
        })
}

impl Sandbox {
    /// The sandbox as the last holder left it, for tests that must change nothing and
    /// prove it with [`Snapshot`]: it is reset (to `scenario`) only when another scenario,
    /// or none, was loaded last, and otherwise only started if something was stopped, which
    /// takes a second or two instead of a reset's fifteen. Held exclusively, as
    /// [`Sandbox::fresh`]. Use it only where the outcome cannot depend on what earlier tests
    /// did to the cluster (the step fails before reading it).
    ///
    /// # Panics
    /// When `tests/sandbox/up` fails; the panic carries its output.
    pub fn as_left(scenario: &str) -> Sandbox {
        let place = Place::first();
        let lock = lock_sandbox(&place);
        let loaded = fs::read_to_string(place.state.join("scenario")).unwrap_or_default();
        let args: Vec<&str> = if loaded.trim() == scenario {
            vec!["--no-reset"]
        } else {
            vec!["--scenario", scenario]
        };
        Sandbox {
            kubeconfig: sandbox_up(&place, &args),
            scenario: scenario.to_owned(),
            place,
            _lock: lock,
        }
    }

    /// The admin kubeconfig as JSON.
    fn admin_kubeconfig(&self) -> serde_json::Value {
        let text = fs::read_to_string(&self.kubeconfig).expect("read the sandbox kubeconfig");
        serde_saphyr::from_str(&text).expect("parse the sandbox kubeconfig")
    }

    /// The API server's URL (`https://127.0.0.1:<port>`).
    pub fn server_url(&self) -> String {
        self.admin_kubeconfig()["clusters"][0]["cluster"]["server"]
            .as_str()
            .expect("the sandbox kubeconfig names its server")
            .to_owned()
    }

    /// The cluster CA the sandbox kubeconfig trusts, base64 as in `certificate-authority-data`.
    pub fn certificate_authority_data(&self) -> String {
        self.admin_kubeconfig()["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .expect("the sandbox kubeconfig carries its CA")
            .to_owned()
    }

    /// Writes to `path` a kubeconfig for this sandbox (its URL and CA) that authenticates
    /// with the bearer `token`; context `sandbox`, namespace `default`.
    pub fn token_kubeconfig(&self, token: &str, path: &Path) -> PathBuf {
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster:
    server: {}
    certificate-authority-data: {}
users:
- name: token
  user:
    token: {token}
contexts:
- name: sandbox
  context:
    cluster: sandbox
    user: token
    namespace: default
current-context: sandbox
",
            self.server_url(),
            self.certificate_authority_data()
        );
        fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path.to_path_buf()
    }

    /// `kubectl rollout restart` every Deployment of the namespace and wait for the rollouts.
    pub fn restart_all(&self, namespace: &str) {
        stdout(
            self.kubectl()
                .args(["rollout", "restart", "deployment", "-n", namespace]),
        );
        let deployments = stdout(
            self.kubectl()
                .args(["get", "deployments", "-n", namespace, "-o", "name"]),
        );
        for d in deployments.lines() {
            stdout(
                self.kubectl()
                    .args(["rollout", "status", d, "-n", namespace, "--timeout=180s"]),
            );
        }
    }

    /// A token for the ServiceAccount `namespace/name` (`kubectl create token`, one hour).
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        stdout(
            self.kubectl()
                .args(["create", "token", name, "-n", namespace, "--duration", "1h"]),
        )
        .trim()
        .to_owned()
    }
}

/// Takes the sandbox lock, blocking while another test holds it.
fn lock_sandbox(place: &Place) -> File {
    let lock_path = place.state.with_extension("lock");
    if let Some(parent) = lock_path.parent() {
        fs::create_dir_all(parent).expect("create the sandbox cache dir");
    }
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    lock
}

/// Runs `tests/sandbox/up ARGS` for the sandbox at `place` and returns the kubeconfig
/// path it prints last.
fn sandbox_up(place: &Place, args: &[&str]) -> PathBuf {
    let up = sandbox_dir().join("up");
    let out = Command::new(&up)
        .args(args)
        .envs(place.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", up.display()));
    assert!(
        out.status.success(),
        "{} {} failed ({}):\n{}",
        up.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(PathBuf::from)
        .expect("up prints the kubeconfig path last")
}

/// A scratch directory for one test (emptied first), for kubeconfigs and manifests.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kubectl-mesh-e2e-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Every kind a step may write: namespaces (relabel), the webhook configurations and the
/// tag's Service (relabel --tag), the workloads (roll), and every kind prune deletes.
pub const WRITABLE_KINDS: &str = "namespaces,mutatingwebhookconfigurations.admissionregistration.k8s.io,validatingwebhookconfigurations.admissionregistration.k8s.io,deployments.apps,statefulsets.apps,daemonsets.apps,services,configmaps,secrets,serviceaccounts,roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io,clusterroles.rbac.authorization.k8s.io,clusterrolebindings.rbac.authorization.k8s.io,poddisruptionbudgets.policy,horizontalpodautoscalers.autoscaling";

/// Istio's EnvoyFilter, snapshotted too when its CRD is installed.
const ENVOYFILTERS: &str = "envoyfilters.networking.istio.io";

/// Every object a step could write ([`WRITABLE_KINDS`], and EnvoyFilters when Istio's CRD
/// is there), as the API server holds it, minus what changes without anyone writing the
/// object: `status`, `resourceVersion`, `managedFields` and the Deployment controller's
/// `deployment.kubernetes.io/revision` annotation. So two snapshots are equal when no
/// object was created, deleted or written; a restart shows as a new generation and
/// template annotation, a relabel as new labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot(pub std::collections::BTreeMap<String, serde_json::Value>);

impl Snapshot {
    pub fn take(sandbox: &Sandbox) -> Snapshot {
        let mut kinds = WRITABLE_KINDS.to_string();
        let crd = run(sandbox.kubectl().args(["get", "crd", ENVOYFILTERS, "-o", "name"]));
        if crd.0 == 0 {
            kinds.push(',');
            kinds.push_str(ENVOYFILTERS);
        }
        let text = stdout(sandbox.kubectl().args(["get", &kinds, "-A", "-o", "json"]));
        let doc: serde_json::Value = serde_json::from_str(&text).expect("kubectl get -o json");
        let mut out = std::collections::BTreeMap::new();
        for mut o in doc["items"].as_array().cloned().unwrap_or_default() {
            let key = {
                let m = &o["metadata"];
                let ns = m["namespace"].as_str().map(|n| format!("{n}/")).unwrap_or_default();
                format!(
                    "{} {ns}{}",
                    o["kind"].as_str().unwrap_or("?"),
                    m["name"].as_str().unwrap_or("?")
                )
            };
            if let Some(obj) = o.as_object_mut() {
                obj.remove("status");
            }
            if let Some(meta) = o["metadata"].as_object_mut() {
                meta.remove("resourceVersion");
                meta.remove("managedFields");
                if let Some(a) = meta.get_mut("annotations").and_then(serde_json::Value::as_object_mut) {
                    a.remove("deployment.kubernetes.io/revision");
                }
            }
            out.insert(key, o);
        }
        Snapshot(out)
    }

    /// What differs from `before`, one line per object: `created …`, `deleted …`, or
    /// `changed … (<field>: <before> → <after>, …)`. Empty when nothing was written.
    pub fn changes_since(&self, before: &Snapshot) -> Vec<String> {
        let mut out = vec![];
        for (key, old) in &before.0 {
            match self.0.get(key) {
                None => out.push(format!("deleted {key}")),
                Some(new) if new != old => out.push(format!("changed {key} ({})", differences(old, new).join(", "))),
                Some(_) => {}
            }
        }
        for key in self.0.keys().filter(|k| !before.0.contains_key(*k)) {
            out.push(format!("created {key}"));
        }
        out
    }
}

/// The leaves that differ between two objects, as `path: old → new` (long values cut).
fn differences(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        use serde_json::Value::Object;
        match (a, b) {
            (Object(x), Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let null = serde_json::Value::Null;
                    walk(
                        &format!("{path}.{k}"),
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        out,
                    );
                }
            }
            _ if a != b => {
                let cut = |v: &serde_json::Value| {
                    let s = v.to_string();
                    if s.chars().count() > 80 {
                        format!("{}…", s.chars().take(80).collect::<String>())
                    } else {
                        s
                    }
                };
                out.push(format!("{}: {} → {}", path.trim_start_matches('.'), cut(a), cut(b)));
            }
            _ => {}
        }
    }
    let mut out = vec![];
    walk("", old, new, &mut out);
    out
}

mod proxy;
pub use proxy::{ConnectProxy, Forward, local_address};

impl Sandbox {
    /// The pid of a sandbox component (`kube-apiserver`, `etcd`, `kwok`, ...) from its
    /// pid file in the state dir's `run/`, for fault tests that kill it.
    pub fn component_pid(&self, component: &str) -> Option<u32> {
        let path = self.place.state.join("run").join(format!("{component}.pid"));
        fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// `tests/sandbox/up --no-reset`: starts again whatever component was killed, keeping
    /// the cluster as it is, and waits until it is healthy.
    pub fn restart_killed(&self) {
        sandbox_up(&self.place, &["--no-reset"]);
    }
}

mod second;
pub use second::{FleetContext, fleet_kubeconfig};

/// Where a sandbox lives: its state dir, and the variables `tests/sandbox/up` reads to
/// find it and its ports (empty for the default sandbox: the caller's own environment).
#[derive(Debug, Clone)]
struct Place {
    state: PathBuf,
    env: Vec<(String, String)>,
}

impl Place {
    /// The default sandbox: `SANDBOX_STATE` and `SANDBOX_*_PORT` as the caller set them.
    fn first() -> Place {
        Place {
            state: state_dir(),
            env: vec![],
        }
    }

    /// Takes the lock, resets the sandbox to `scenario`.
    fn fresh(self, scenario: &str) -> Sandbox {
        let lock = lock_sandbox(&self);
        Sandbox {
            kubeconfig: sandbox_up(&self, &["--scenario", scenario]),
            scenario: scenario.to_owned(),
            place: self,
            _lock: lock,
        }
    }
}

impl Sandbox {
    /// `tests/sandbox/up --no-reset` with `SANDBOX_APISERVER_EXTRA_ARGS=extra_args`: the API
    /// server restarted with these flags after its own (`""`: as the sandbox runs it), the
    /// cluster kept, and waited for until healthy.
    pub fn restart_apiserver_with(&self, extra_args: &str) {
        let up = sandbox_dir().join("up");
        let out = Command::new(&up)
            .arg("--no-reset")
            .env("SANDBOX_APISERVER_EXTRA_ARGS", extra_args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", up.display()));
        assert!(
            out.status.success(),
            "SANDBOX_APISERVER_EXTRA_ARGS='{extra_args}' {} --no-reset failed ({}):\n{}",
            up.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The API server's own metrics (`/metrics`, Prometheus text), read as its admin.
    pub fn apiserver_metrics(&self) -> String {
        stdout(self.kubectl().args(["get", "--raw", "/metrics"]))
    }
}
