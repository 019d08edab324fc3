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
        let lock_path = state_dir().with_extension("lock");
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

        let up = sandbox_dir().join("up");
        let out = Command::new(&up)
            .args(["--scenario", scenario])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", up.display()));
        if !out.status.success() {
            panic!(
                "{} --scenario {scenario} failed ({}):\n{}",
                up.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let kubeconfig = stdout
            .lines()
            .last()
            .map(PathBuf::from)
            .expect("up prints the kubeconfig path last");
        Sandbox {
            kubeconfig,
            scenario: scenario.to_owned(),
            _lock: lock,
        }
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
