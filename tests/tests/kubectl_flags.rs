//! kubectl's global behaviour, through the real kubectl: a step goes through `HTTPS_PROXY`
//! (a real CONNECT proxy) unless `NO_PROXY` names the server, takes kubectl's global flags
//! (`--as`, `--token`, `--server`, `--certificate-authority`, `--tls-server-name`,
//! `--insecure-skip-tls-verify`, `-v`), ends quietly on a closed pipe, and colours as
//! `--color`, `NO_COLOR` and `FORCE_COLOR` say. Tests that name the sandbox run on it (its
//! API server authorizes with RBAC); the others need no cluster.

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kubectl_mesh_e2e::{ConnectProxy, Forward, Sandbox, bin_dir, local_address, run, stdout};

/// Environment variables that would change what these tests see.
const AMBIENT: [&str; 10] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "NO_COLOR",
    "FORCE_COLOR",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
];

/// `cmd` without the ambient proxy, colour and in-cluster variables of whoever runs the test.
fn clean(cmd: &mut Command) -> &mut Command {
    for name in AMBIENT {
        cmd.env_remove(name);
    }
    cmd
}

/// `kubectl mesh revisions ARGS` on the sandbox, as its admin.
fn revisions(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut cmd = sandbox.plugin("revisions");
    clean(&mut cmd).args(args);
    cmd
}

/// The sandbox's API server: its URL and where it listens.
fn api_server(sandbox: &Sandbox) -> (String, SocketAddr) {
    let kubeconfig = admin_kubeconfig(sandbox);
    let url = kubeconfig["clusters"][0]["cluster"]["server"]
        .as_str()
        .expect("the sandbox kubeconfig names its server")
        .to_owned();
    let addr = url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    (url, addr)
}

fn admin_kubeconfig(sandbox: &Sandbox) -> serde_json::Value {
    let text = std::fs::read_to_string(&sandbox.kubeconfig).expect("read the sandbox kubeconfig");
    serde_saphyr::from_str(&text).expect("parse the sandbox kubeconfig")
}

/// A scratch directory for one test, emptied first; it stands in for HOME too.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kubectl-mesh-flags-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// The sandbox's CA certificate, written as a PEM file for `--certificate-authority`.
fn write_ca(sandbox: &Sandbox, dir: &Path) -> PathBuf {
    let data = admin_kubeconfig(sandbox)["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .expect("the sandbox kubeconfig carries its CA")
        .to_owned();
    let path = dir.join("ca.crt");
    let pem = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(data.as_bytes())?;
            child.wait_with_output()
        })
        .expect("base64 -d");
    std::fs::write(&path, pem.stdout).expect("write ca.crt");
    path
}

// ---------------------------------------------------------------- proxy

#[test]
fn https_proxy_carries_the_requests_and_no_proxy_bypasses_it() {
    let sandbox = Sandbox::fresh("canary");
    let (_, api) = api_server(&sandbox);
    // kubectl never proxies a loopback address, so the server gets one that is not.
    let ip = local_address();
    let forward = Forward::start(ip, api);
    let server = format!("https://{}", forward.addr());
    let proxy = ConnectProxy::start();
    let flags = ["--server", server.as_str(), "--tls-server-name", "kubernetes"];

    // Through the proxy: every connection is a CONNECT to the server, and the step works.
    let out = stdout(revisions(&sandbox, &flags).env("HTTPS_PROXY", proxy.url()));
    assert!(out.lines().any(|l| l.starts_with("1-27 (default)")), "{out}");
    let tunnels = proxy.connects();
    assert!(!tunnels.is_empty(), "the proxy served no CONNECT");
    assert!(tunnels.iter().all(|t| *t == forward.addr().to_string()), "{tunnels:?}");

    // kubectl itself takes the same path.
    let before = proxy.connects().len();
    let mut kubectl = sandbox.kubectl();
    clean(&mut kubectl)
        .args(["get", "namespaces", "-o", "name"])
        .args(flags);
    stdout(kubectl.env("HTTPS_PROXY", proxy.url()));
    assert!(proxy.connects().len() > before, "kubectl did not use the proxy");

    // NO_PROXY naming the server, however it is written: straight to the server.
    for no_proxy in [
        ip.to_string(),
        format!("{ip}:{}", forward.addr().port()),
        format!("example.com, {ip}/24 ,"),
        "*".to_string(),
    ] {
        let before = proxy.connects().len();
        let out = stdout(
            revisions(&sandbox, &flags)
                .env("HTTPS_PROXY", proxy.url())
                .env("NO_PROXY", &no_proxy),
        );
        assert!(out.contains("1-27 (default)"), "NO_PROXY={no_proxy}: {out}");
        assert_eq!(
            proxy.connects().len(),
            before,
            "NO_PROXY={no_proxy}: the proxy was used"
        );
    }
    // no_proxy (lower case) too, and NO_PROXY naming another host does not bypass it.
    let before = proxy.connects().len();
    stdout(
        revisions(&sandbox, &flags)
            .env("https_proxy", proxy.url())
            .env("no_proxy", ip.to_string()),
    );
    assert_eq!(proxy.connects().len(), before);
    stdout(
        revisions(&sandbox, &flags)
            .env("HTTPS_PROXY", proxy.url())
            .env("NO_PROXY", "example.com"),
    );
    assert!(proxy.connects().len() > before);
}

#[test]
fn a_proxy_in_the_environment_leaves_a_no_proxy_or_loopback_cluster_alone() {
    // The bug this guards: any HTTPS_PROXY made every step fail with "configured proxy …
    // requires the disabled feature kube/http-proxy".
    let sandbox = Sandbox::fresh("canary");
    let proxy = ConnectProxy::start();
    for no_proxy in ["127.0.0.1", ""] {
        let (code, out, err) = run(revisions(&sandbox, &[])
            .env("HTTPS_PROXY", proxy.url())
            .env("NO_PROXY", no_proxy));
        assert_eq!(code, 0, "NO_PROXY={no_proxy:?}: {err}");
        assert!(out.contains("1-27 (default)"), "{out}");
        assert!(!err.contains("disabled feature"), "{err}");
    }
    assert_eq!(proxy.connects(), Vec::<String>::new());
}

// ---------------------------------------------------------------- impersonation and credentials

const IMPERSONATION_NS: &str = "mesh-impersonation";
const READER: &str = "system:serviceaccount:mesh-impersonation:mesh-reader";
const ENGINEER: &str = "system:serviceaccount:mesh-impersonation:platform-engineer";

/// `mesh-reader` may read the mesh (the role of `rbac/revisions.yaml`); `platform-engineer`
/// may do nothing but impersonate `mesh-reader`.
const IMPERSONATION_RBAC: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: mesh-impersonation}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: mesh-reader, namespace: mesh-impersonation}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: platform-engineer, namespace: mesh-impersonation}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: mesh-impersonation-read}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubectl-mesh-revisions}
subjects:
- {kind: ServiceAccount, name: mesh-reader, namespace: mesh-impersonation}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: impersonate-mesh-reader, namespace: mesh-impersonation}
rules:
- apiGroups: ['']
  resources: [serviceaccounts]
  resourceNames: [mesh-reader]
  verbs: [impersonate]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: impersonate-mesh-reader, namespace: mesh-impersonation}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: impersonate-mesh-reader}
subjects:
- {kind: ServiceAccount, name: platform-engineer, namespace: mesh-impersonation}
";

/// Applies `rbac/revisions.yaml` and [`IMPERSONATION_RBAC`], waits until the authorizer
/// agrees, and returns a token of `platform-engineer`.
fn platform_engineer(sandbox: &Sandbox, dir: &Path) -> String {
    let manifest = dir.join("rbac.yaml");
    std::fs::write(&manifest, IMPERSONATION_RBAC).expect("write rbac.yaml");
    let role = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rbac/revisions.yaml");
    stdout(
        sandbox
            .kubectl()
            .args(["apply", "-f"])
            .arg(&role)
            .arg("-f")
            .arg(&manifest),
    );
    let impersonate = [
        "impersonate",
        "serviceaccounts/mesh-reader",
        "-n",
        IMPERSONATION_NS,
        "--as",
        ENGINEER,
    ];
    let checks: [&[&str]; 4] = [
        &impersonate,
        &["list", "pods", "-A", "--as", READER],
        &["list", "services", "-A", "--as", READER],
        &["list", "mutatingwebhookconfigurations", "--as", READER],
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    for check in checks {
        while run(sandbox.kubectl().args(["auth", "can-i"]).args(check)).0 != 0 {
            assert!(Instant::now() < deadline, "RBAC never allowed {check:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    stdout(sandbox.kubectl().args([
        "create",
        "token",
        "platform-engineer",
        "-n",
        IMPERSONATION_NS,
        "--duration",
        "1h",
    ]))
    .trim()
    .to_owned()
}

/// A kubeconfig for the sandbox that authenticates with `token`.
fn token_kubeconfig(sandbox: &Sandbox, token: &str, path: &Path) -> PathBuf {
    let (server, _) = api_server(sandbox);
    let ca = admin_kubeconfig(sandbox)["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .expect("CA data")
        .to_owned();
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster: {{server: '{server}', certificate-authority-data: '{ca}'}}
users:
- name: engineer
  user: {{token: '{token}'}}
contexts:
- name: sandbox
  context: {{cluster: sandbox, user: engineer}}
current-context: sandbox
"
    );
    std::fs::write(path, text).expect("write the kubeconfig");
    path.to_path_buf()
}

#[test]
fn as_impersonates_a_service_account_the_user_may_impersonate() {
    let sandbox = Sandbox::fresh("canary");
    let dir = scratch("impersonation");
    let token = platform_engineer(&sandbox, &dir);
    let kubeconfig = token_kubeconfig(&sandbox, &token, &dir.join("engineer.yaml"));
    let as_engineer = |args: &[&str]| {
        let mut cmd = revisions(&sandbox, args);
        cmd.env("KUBECONFIG", &kubeconfig);
        run(&mut cmd)
    };

    let (code, out, err) = as_engineer(&[&format!("--as={READER}")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1-27 (default)"), "{out}");

    // Without --as the engineer may read nothing: a 403 naming the verb and the resource.
    let (code, out, err) = as_engineer(&[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("(403 Forbidden)"), "{err}");
    assert!(
        err.contains(&format!("User \"{ENGINEER}\" cannot list resource \"")),
        "{err}"
    );

    // Nor may they impersonate anyone else.
    let (code, _, err) = as_engineer(&["--as", "system:serviceaccount:kube-system:default"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("(403 Forbidden)"), "{err}");
    assert!(err.contains("cannot impersonate resource \"serviceaccounts\""), "{err}");

    // kubectl agrees on both.
    let kubectl = |args: &[&str]| {
        let mut cmd = sandbox.kubectl();
        clean(&mut cmd).env("KUBECONFIG", &kubeconfig).args(args);
        run(&mut cmd).0
    };
    assert_eq!(kubectl(&["get", "pods", "-A", "--as", READER]), 0);
    assert_ne!(kubectl(&["get", "pods", "-A"]), 0);
}

#[test]
fn token_server_and_certificate_authority_need_no_kubeconfig() {
    let sandbox = Sandbox::fresh("canary");
    let dir = scratch("flags-only");
    let token = platform_engineer(&sandbox, &dir);
    let ca = write_ca(&sandbox, &dir);
    let (server, _) = api_server(&sandbox);
    let flags_only = |args: &[&str]| {
        let mut cmd = revisions(&sandbox, &[]);
        cmd.env_remove("KUBECONFIG")
            .env("HOME", &dir)
            .args(["--server", &server, "--token", &token])
            .args(args);
        run(&mut cmd)
    };

    let ca_flag = ["--certificate-authority", ca.to_str().expect("utf-8 path")];
    let (code, out, err) = flags_only(&[&ca_flag[..], &["--as", READER]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1-27 (default)"), "{out}");

    // Without a CA the server's certificate cannot be checked, unless told not to.
    let (code, out, err) = flags_only(&["--as", READER]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(&format!("API server at {server}")), "{err}");
    let (code, out, err) = flags_only(&["--as", READER, "--insecure-skip-tls-verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1-27 (default)"), "{out}");

    // -v=9 logs every request, and never the token.
    let (code, out, err) = flags_only(&[&ca_flag[..], &["--as", READER, "-v=9"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("] GET https://") && l.ends_with(" milliseconds")),
        "{err}"
    );
    assert!(!err.contains(&token) && !out.contains(&token), "the token was printed");
}

#[test]
fn a_server_name_other_than_the_certificates_needs_tls_server_name() {
    let sandbox = Sandbox::fresh("canary");
    let (_, api) = api_server(&sandbox);
    let forward = Forward::start(local_address(), api);
    let server = format!("https://{}", forward.addr());
    // The certificate names 127.0.0.1 and kubernetes, not this address.
    let (code, out, err) = run(&mut revisions(&sandbox, &["--server", &server]));
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(&format!("API server at {server}")), "{err}");
    let out = stdout(&mut revisions(
        &sandbox,
        &["--server", &server, "--tls-server-name", "kubernetes"],
    ));
    assert!(out.contains("1-27 (default)"), "{out}");
}

// ---------------------------------------------------------------- logging, pipes, colour

#[test]
fn v6_logs_each_request_as_kubectl_does() {
    let sandbox = Sandbox::fresh("canary");
    let (server, _) = api_server(&sandbox);
    let (code, out, err) = run(&mut revisions(&sandbox, &["-v=6"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1-27 (default)"), "{out}");
    // I1127 10:06:08.399565   24894 connect.rs] GET https://127.0.0.1:36443/api/v1/namespaces? 200 OK in 6 milliseconds
    let requests: Vec<&str> = err.lines().filter(|l| l.contains("] GET ")).collect();
    assert!(requests.len() >= 6, "{err}");
    for line in &requests {
        assert!(line.starts_with('I') && line.as_bytes()[5] == b' ', "{line}");
        assert!(line.contains(&format!("] GET {server}/")), "{line}");
        assert!(
            line.contains(" 200 OK in ") && line.ends_with(" milliseconds"),
            "{line}"
        );
    }
    assert!(requests.iter().any(|l| l.contains("/api/v1/namespaces")), "{err}");
    assert!(err.contains("Config loaded from file:  "), "{err}");

    let (code, _, err) = run(&mut revisions(&sandbox, &[]));
    assert_eq!(code, 0);
    assert!(err.is_empty(), "{err}");
}

/// Runs `cmd` with its stdout a pipe whose reader has already gone.
fn with_closed_stdout(cmd: &mut Command) -> (ExitStatus, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = cmd
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_pipe_ends_a_step_as_it_ends_kubectl() {
    let sandbox = Sandbox::fresh("canary");
    let mut kubectl = sandbox.kubectl();
    let (status, err) = with_closed_stdout(clean(&mut kubectl).args(["get", "namespaces"]));
    let sigpipe = Some(13);
    assert_eq!(status.signal(), sigpipe, "kubectl: {status:?} {err}");

    for args in [&["--proxies"][..], &["-o", "json"][..], &[][..]] {
        let (status, err) = with_closed_stdout(&mut revisions(&sandbox, args));
        assert_eq!(status.signal(), sigpipe, "{args:?}: {status:?} {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }

    // And as a user types it: no panic, the shell sees what it sees for kubectl.
    let line = format!(
        "set -o pipefail; '{}' mesh revisions --proxies | head -1",
        kubectl.get_program().to_string_lossy()
    );
    let mut shell = Command::new("bash");
    shell
        .args(["-c", &line])
        .envs(sandbox.kubectl().get_envs().filter_map(|(k, v)| Some((k, v?))));
    let (code, out, err) = run(clean(&mut shell));
    assert!(code == 0 || code == 141, "{code}: {err}");
    assert!(out.starts_with("NAMESPACE"), "{out}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn color_follows_the_flag_then_no_color_then_force_color() {
    let sandbox = Sandbox::fresh("canary");
    let escape = "\u{1b}[";
    let coloured = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = revisions(&sandbox, args);
        cmd.envs(env.iter().copied());
        stdout(&mut cmd).contains(escape)
    };
    assert!(!coloured(&[], &[]), "a pipe is not a terminal");
    assert!(coloured(&["--color=always"], &[]));
    assert!(coloured(&["--color"], &[("NO_COLOR", "1")]));
    assert!(coloured(&[], &[("FORCE_COLOR", "1")]));
    assert!(!coloured(&[], &[("FORCE_COLOR", "1"), ("NO_COLOR", "1")]));
    assert!(!coloured(&["--color=never"], &[("FORCE_COLOR", "1")]));
    assert!(!coloured(&["--no-color"], &[("FORCE_COLOR", "1")]));
    assert!(!coloured(&["-o", "json", "--color=always"], &[]));
}

// ---------------------------------------------------------------- no cluster needed

/// `kubectl mesh revisions ARGS` with HOME in `dir`, no kubeconfig, and the plugin first on
/// PATH.
fn local_revisions(dir: &Path, args: &[&str]) -> Command {
    let kubectl = std::env::var_os("KUBECTL").map_or_else(|| PathBuf::from("kubectl"), PathBuf::from);
    let mut path = vec![bin_dir()];
    path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    let mut cmd = Command::new(kubectl);
    clean(&mut cmd)
        .args(["mesh", "revisions"])
        .args(args)
        .env("PATH", std::env::join_paths(path).expect("PATH"))
        .env("HOME", dir)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null());
    cmd
}

/// [`local_revisions`] with the kubeconfig `kubeconfig`, run.
fn revisions_without_sandbox(dir: &Path, kubeconfig: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = local_revisions(dir, args);
    if let Some(kubeconfig) = kubeconfig {
        cmd.env("KUBECONFIG", kubeconfig);
    }
    run(&mut cmd)
}

/// A kubeconfig whose server refuses connections, with a token user.
fn unreachable(dir: &Path) -> PathBuf {
    let path = dir.join("unreachable.yaml");
    std::fs::write(
        &path,
        "apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}
users:
- name: nobody
  user: {token: kubeconfig-secret-token}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody}
current-context: nowhere
",
    )
    .expect("write the kubeconfig");
    path
}

#[test]
fn groups_or_uid_without_as_are_usage_errors() {
    let dir = scratch("as-group");
    let kubeconfig = unreachable(&dir);
    for args in [&["--as-group", "ops"][..], &["--as-uid", "7"][..]] {
        let (code, out, err) = revisions_without_sandbox(&dir, Some(&kubeconfig), args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty());
        assert_eq!(
            err.trim_end(),
            "error: kubectl mesh revisions: --as-group and --as-uid need --as: requesting groups or a uid without impersonating a user"
        );
    }
}

#[test]
fn a_bad_token_is_refused_without_being_shown() {
    let dir = scratch("bad-token");
    let (code, _, err) = revisions_without_sandbox(&dir, None, &["--token", "sEcReT part"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid value for '--token <TOKEN>' (not shown)"), "{err}");
    assert!(!err.contains("sEcReT"), "{err}");
}

#[test]
fn server_alone_connects_without_a_kubeconfig_and_v6_logs_the_failed_request() {
    let dir = scratch("server-alone");
    let (code, out, err) = revisions_without_sandbox(
        &dir,
        None,
        &[
            "-s",
            "https://127.0.0.1:1",
            "--token",
            "flag-secret-token",
            "-v=9",
            "--request-timeout",
            "5s",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("error: kubectl mesh revisions: cannot reach the Kubernetes API server at https://127.0.0.1:1:"),
        "{err}"
    );
    // No status: kubectl prints the request with an empty status, then its time.
    assert!(
        err.lines()
            .any(|l| l.contains("] GET https://127.0.0.1:1/") && l.contains("  in ")),
        "{err}"
    );
    assert!(!err.contains("flag-secret-token"), "{err}");

    let kubeconfig = unreachable(&dir);
    let (_, _, err) = revisions_without_sandbox(&dir, Some(&kubeconfig), &["-v=9", "--request-timeout", "5s"]);
    assert!(err.contains("] GET https://127.0.0.1:1/"), "{err}");
    assert!(!err.contains("kubeconfig-secret-token"), "{err}");
}

#[test]
fn in_cluster_needs_the_service_account_token_and_otherwise_names_the_kubeconfig_paths() {
    // KUBERNETES_SERVICE_HOST without the token file: not in a pod, so the usual message.
    if Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token").exists() {
        return; // Inside a pod the in-cluster configuration is used: nothing to check here.
    }
    let dir = scratch("not-in-cluster");
    let (code, _, err) = run(local_revisions(&dir, &[])
        .env("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        .env("KUBERNETES_SERVICE_PORT", "443"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no kubeconfig found (looked at "), "{err}");
}
