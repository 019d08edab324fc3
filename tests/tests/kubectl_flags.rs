//! kubectl's global behaviour, through the real kubectl: a step goes through `HTTPS_PROXY`
//! (a real CONNECT proxy) unless `NO_PROXY` names the server, takes kubectl's global flags
//! (`--as`, `--token`, `--server`, `--certificate-authority`, `--tls-server-name`,
//! `--insecure-skip-tls-verify`, `-v`), ends quietly on a closed pipe, colours as
//! `--color`, `NO_COLOR` and `FORCE_COLOR` say, prints `-o name` and `--no-headers` as
//! kubectl prints them, sends `--dry-run=server` and persists nothing, and stops cleanly on
//! SIGTERM. Tests that name the sandbox run on it (its
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

// ---------------------------------------------------------------- -o name, --no-headers, dry runs

/// `kubectl mesh STEP ARGS` on the sandbox, run: exit code, stdout, stderr.
fn step(sandbox: &Sandbox, name: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = sandbox.plugin(name);
    clean(&mut cmd).args(args);
    run(&mut cmd)
}

/// [`step`], which must exit 0: stdout and stderr.
fn step_ok(sandbox: &Sandbox, name: &str, args: &[&str]) -> (String, String) {
    let (code, out, err) = step(sandbox, name, args);
    assert_eq!(code, 0, "kubectl mesh {name} {args:?}:\n{out}\n{err}");
    (out, err)
}

/// What kubectl prints for `kubectl get NAMES -n NAMESPACE -o name`, sorted: the names as
/// kubectl itself writes them, when it finds each object.
fn kubectl_names(sandbox: &Sandbox, names: &[&str], namespace: &str) -> Vec<String> {
    let mut kubectl = sandbox.kubectl();
    clean(&mut kubectl)
        .arg("get")
        .args(names)
        .args(["-n", namespace, "-o", "name", "--ignore-not-found"]);
    let mut found: Vec<String> = stdout(&mut kubectl).lines().map(str::to_owned).collect();
    found.sort();
    found
}

fn sorted(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// The words of the lines that mention `needle`, to compare rows whose column widths
/// differ (a header widens its column).
fn rows(text: &str, needle: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// `-o jsonpath` of every Deployment in `default`: its restartedAt and generation.
fn restarts(sandbox: &Sandbox) -> String {
    stdout(sandbox.kubectl().args([
        "get",
        "deployments",
        "-n",
        "default",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.generation} {.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}{\"\\n\"}{end}",
    ]))
}

#[test]
fn relabel_and_roll_print_o_name_and_no_headers_as_kubectl_does() {
    let sandbox = Sandbox::fresh("canary");
    // The namespaces relabel moves are those labelled istio.io/rev=1-27, named as kubectl names them.
    let labelled = stdout(
        sandbox
            .kubectl()
            .args(["get", "namespaces", "-l", "istio.io/rev=1-27", "-o", "name"]),
    );
    assert!(labelled.contains("namespace/default\n"), "{labelled}");
    let relabel = ["--from", "1-27", "--to", "1-28", "-A", "-o", "name"];
    for dry_run in ["--dry-run", "--dry-run=server"] {
        let (out, _) = step_ok(&sandbox, "relabel", &[&relabel[..], &[dry_run]].concat());
        assert_eq!(out, labelled, "{dry_run}");
    }
    let still = stdout(
        sandbox
            .kubectl()
            .args(["get", "namespaces", "-l", "istio.io/rev=1-27", "-o", "name"]),
    );
    assert_eq!(still, labelled, "a dry run relabeled something");
    let (out, _) = step_ok(&sandbox, "relabel", &relabel);
    assert_eq!(out, labelled);
    let moved = stdout(
        sandbox
            .kubectl()
            .args(["get", "namespaces", "-l", "istio.io/rev=1-28", "-o", "name"]),
    );
    assert!(labelled.lines().all(|n| moved.contains(n)), "{moved}");
    // Nothing left to move: nothing on stdout, the namespace's line on stderr.
    let (out, err) = step_ok(&sandbox, "relabel", &["--to", "1-28", "-n", "default", "-o", "name"]);
    assert_eq!(out, "");
    assert!(
        err.contains("namespace/default unchanged: already istio.io/rev=1-28"),
        "{err}"
    );

    // roll: deployment.apps/NAME, as `kubectl get deployments -o name` prints each.
    let expected: String = kubectl_mesh_e2e::APPS
        .iter()
        .map(|a| format!("deployment.apps/{a}\n"))
        .collect();
    let names: Vec<&str> = expected.lines().collect();
    assert_eq!(kubectl_names(&sandbox, &names, "default"), sorted(&expected));
    let before = restarts(&sandbox);
    for dry_run in ["--dry-run", "--dry-run=server"] {
        let (out, err) = step_ok(&sandbox, "roll", &["-n", "default", "-o", "name", dry_run]);
        assert_eq!(out, expected, "{dry_run}: {err}");
    }
    // The server dry run sent each restart (stderr follows each) and persisted none.
    let (_, err) = step_ok(&sandbox, "roll", &["-n", "default", "-o", "name", "--dry-run=server"]);
    assert_eq!(err.matches("restart accepted by the API server").count(), 7, "{err}");
    assert_eq!(restarts(&sandbox), before, "a dry run restarted something");

    // --no-headers: the same rows, no header row.
    let (with, _) = step_ok(&sandbox, "roll", &["-n", "default", "--dry-run"]);
    let (without, _) = step_ok(&sandbox, "roll", &["-n", "default", "--dry-run", "--no-headers"]);
    assert!(with.contains("NAMESPACE") && with.contains("AVAILABILITY"), "{with}");
    assert!(
        !without.contains("NAMESPACE") && !without.contains("AVAILABILITY"),
        "{without}"
    );
    assert_eq!(rows(&with, "deployment/"), rows(&without, "deployment/"));
    assert_eq!(rows(&without, "deployment/").len(), 7, "{without}");
    assert_eq!(with.lines().next(), without.lines().next(), "the heading stays");

    // The roll itself: stdout is the names, progress goes to stderr.
    let (out, err) = step_ok(&sandbox, "roll", &["-n", "default", "-o", "name"]);
    assert_eq!(out, expected, "{err}");
    assert_eq!(err.matches(": done in ").count(), 7, "{err}");
    assert_ne!(restarts(&sandbox), before);
    let (out, _) = step_ok(&sandbox, "roll", &["-n", "default", "-o", "name"]);
    assert_eq!(out, "", "nothing is out of date any more");

    // A tag move: each object written, as kubectl names it.
    let tag = ["--tag", "default", "--to", "1-28", "-o", "name"];
    let (planned, _) = step_ok(&sandbox, "relabel", &[&tag[..], &["--dry-run=server"]].concat());
    assert!(
        planned
            .lines()
            .any(|l| l == "mutatingwebhookconfiguration.admissionregistration.k8s.io/istio-revision-tag-default"),
        "{planned}"
    );
    let (written, _) = step_ok(&sandbox, "relabel", &tag);
    assert_eq!(written, planned);
    let names: Vec<&str> = written.lines().collect();
    assert_eq!(kubectl_names(&sandbox, &names, "istio-system"), sorted(&written));
    let (out, err) = step_ok(&sandbox, "relabel", &tag);
    assert_eq!(out, "");
    assert!(err.contains("revision tag default unchanged"), "{err}");
}

/// The canary with nothing left on 1-27: namespaces relabelled, `default`'s pods
/// restarted, the default tag moved.
fn free_1_27(sandbox: &Sandbox) {
    stdout(sandbox.plugin("relabel").args(["--from", "1-27", "--to", "1-28", "-A"]));
    sandbox.restart_all("default");
    stdout(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));
}

/// The objects prune plans to delete, as (namespace, `-o name` name), from its JSON plan.
fn planned_deletes(sandbox: &Sandbox, names: &str) -> Vec<(String, String)> {
    let (doc, _) = step_ok(sandbox, "prune", &["1-27", "--dry-run", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&doc).expect("prune's JSON");
    let delete = doc["plan"]["delete"].as_array().expect("plan.delete");
    assert_eq!(delete.len(), names.lines().count(), "{names}");
    delete
        .iter()
        .zip(names.lines())
        .map(|(item, name)| {
            let kind = item["kind"].as_str().unwrap_or_default().to_lowercase();
            let object = item["name"].as_str().unwrap_or_default();
            assert!(
                name.starts_with(&kind) && name.ends_with(&format!("/{object}")),
                "{name} {item}"
            );
            (
                item["namespace"].as_str().unwrap_or("default").to_owned(),
                name.to_owned(),
            )
        })
        .collect()
}

/// Of `planned`, the names kubectl still finds.
fn still_there(sandbox: &Sandbox, planned: &[(String, String)]) -> Vec<String> {
    let mut found = vec![];
    let namespaces: std::collections::BTreeSet<&str> = planned.iter().map(|(ns, _)| ns.as_str()).collect();
    for ns in namespaces {
        let names: Vec<&str> = planned
            .iter()
            .filter(|(n, _)| n == ns)
            .map(|(_, name)| name.as_str())
            .collect();
        found.extend(kubectl_names(sandbox, &names, ns));
    }
    found.sort();
    found
}

#[test]
fn prune_prints_o_name_and_no_headers_and_its_server_dry_run_deletes_nothing() {
    let sandbox = Sandbox::fresh("canary");
    free_1_27(&sandbox);
    let (names, _) = step_ok(&sandbox, "prune", &["1-27", "--dry-run", "-o", "name"]);
    assert!(names.contains("deployment.apps/istiod-1-27\n"), "{names}");
    assert!(
        names.contains("mutatingwebhookconfiguration.admissionregistration.k8s.io/istio-sidecar-injector-1-27\n"),
        "{names}"
    );
    let planned = planned_deletes(&sandbox, &names);
    // kubectl finds every object by the name prune prints, and prints it the same way.
    assert_eq!(still_there(&sandbox, &planned), sorted(&names));

    // --dry-run=server: every delete sent and accepted, nothing deleted.
    let (accepted, err) = step_ok(&sandbox, "prune", &["1-27", "--dry-run=server", "-o", "name"]);
    assert_eq!(accepted, names, "{err}");
    assert_eq!(
        still_there(&sandbox, &planned),
        sorted(&names),
        "a server dry run deleted something"
    );
    let (text, _) = step_ok(&sandbox, "prune", &["1-27", "--dry-run=server"]);
    assert!(
        text.contains("(server dry run)") && text.contains("nothing deleted"),
        "{text}"
    );

    // --no-headers: the plan's rows without its header row.
    let (with, _) = step_ok(&sandbox, "prune", &["1-27", "--dry-run"]);
    let (without, _) = step_ok(&sandbox, "prune", &["1-27", "--dry-run", "--no-headers"]);
    assert!(with.contains("ACTION   KIND"), "{with}");
    assert!(!without.contains("ACTION"), "{without}");
    assert_eq!(rows(&with, "delete "), rows(&without, "delete "));
    assert_eq!(rows(&without, "delete ").len(), planned.len(), "{without}");

    // -n names where the control plane is; elsewhere it is a usage error, and -A is the default.
    let (code, out, err) = step(&sandbox, "prune", &["1-27", "--dry-run", "-n", "default"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("revision 1-27 has nothing in namespace default"), "{err}");
    let (in_istio_system, _) = step_ok(
        &sandbox,
        "prune",
        &["1-27", "--dry-run", "-o", "name", "-n", "istio-system"],
    );
    assert_eq!(in_istio_system, names);
    let (everywhere, _) = step_ok(&sandbox, "prune", &["1-27", "--dry-run", "-o", "name", "-A"]);
    assert_eq!(everywhere, names);

    // The prune itself: the same names, each printed once gone; stdout is nothing else.
    let (deleted, err) = step_ok(&sandbox, "prune", &["1-27", "--yes", "-o", "name"]);
    assert_eq!(deleted, names, "{err}");
    assert_eq!(still_there(&sandbox, &planned), Vec::<String>::new());
    let (out, err) = step_ok(&sandbox, "prune", &["1-27", "--yes", "-o", "name"]);
    assert_eq!(out, "");
    assert!(err.contains("Nothing of revision 1-27 is left to delete."), "{err}");
}

#[test]
fn sigterm_stops_prune_cleanly_and_the_same_command_finishes() {
    use std::io::BufRead;
    let sandbox = Sandbox::fresh("canary");
    free_1_27(&sandbox);
    let (names, _) = step_ok(&sandbox, "prune", &["1-27", "--dry-run", "-o", "name"]);
    let planned = planned_deletes(&sandbox, &names);
    assert!(planned.len() > 3, "{names}");

    let mut cmd = sandbox.plugin("prune");
    let mut child = clean(&mut cmd)
        .args(["1-27", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start prune");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    // SIGTERM as soon as the first object is gone.
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).expect("read prune's stdout");
        seen.push_str(&line);
        if n == 0 || line.contains(" deleted") {
            break;
        }
    }
    assert!(seen.contains(" deleted"), "no deletion seen:\n{seen}");
    stdout(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let status = child.wait().expect("wait for prune");
    std::io::Read::read_to_string(&mut out, &mut seen).expect("read the rest");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).expect("stderr");
    println!("prune stopped by SIGTERM:\n{seen}\n{err}");
    assert_eq!(status.code(), Some(143), "{status:?}\n{seen}\n{err}");
    assert!(
        seen.contains("Stopped by SIGTERM: no new delete was sent."),
        "{seen}\n{err}"
    );

    // What it says is left is there, and stays there: no delete started after the signal.
    let left: Vec<Vec<&str>> = seen
        .split("Not deleted yet:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(!left.is_empty(), "the signal came too late to leave anything:\n{seen}");
    let counted = format!("{} not started.", left.len());
    assert!(seen.contains(&counted), "{seen}");
    std::thread::sleep(Duration::from_secs(3));
    // (Pods go with the Deployment whose delete was sent before the signal.)
    for object in left.iter().filter(|o| !o[0].starts_with("pod/")) {
        let mut kubectl = sandbox.kubectl();
        clean(&mut kubectl).arg("get").args(object).args(["-o", "name"]);
        stdout(&mut kubectl);
    }
    // What it says it deleted is gone.
    let gone: Vec<&str> = seen.lines().filter_map(|l| l.strip_suffix(" deleted")).collect();
    assert!(!gone.is_empty(), "{seen}");
    for object in gone {
        let mut kubectl = sandbox.kubectl();
        clean(&mut kubectl)
            .arg("get")
            .args(object.split_whitespace())
            .args(["-o", "name", "--ignore-not-found"]);
        assert_eq!(stdout(&mut kubectl), "", "{object} was reported deleted");
    }

    // The same command finishes, and then there is nothing left.
    let (rerun, err) = step_ok(&sandbox, "prune", &["1-27", "--yes"]);
    assert!(rerun.contains("Revision 1-27 pruned"), "{rerun}\n{err}");
    assert_eq!(still_there(&sandbox, &planned), Vec::<String>::new(), "{rerun}");
    let (again, _) = step_ok(&sandbox, "prune", &["1-27", "--yes"]);
    assert!(again.contains("Nothing of revision 1-27 is left to delete."), "{again}");
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
