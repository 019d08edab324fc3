//! `kubectl mesh revisions` run the way a user runs it: through the real kubectl, which
//! finds `kubectl-mesh-revisions` on PATH and execs it. Nothing here needs a cluster.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// kubectl as installed on the machine (`KUBECTL` overrides).
fn kubectl_binary() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/kubectl"))
}

/// A scratch directory for one test, standing in for HOME too, so a developer's own
/// ~/.kube/config never leaks into a test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kubectl-mesh-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `kubectl mesh revisions ARGS` with the built plugin first on PATH.
fn mesh_revisions(home: &Path, args: &[&str]) -> Command {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-mesh-revisions"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut path = vec![bin_dir];
    if let Some(old) = std::env::var_os("PATH") {
        path.extend(std::env::split_paths(&old));
    }
    let mut cmd = Command::new(kubectl_binary());
    cmd.args(["mesh", "revisions"])
        .args(args)
        .env("PATH", std::env::join_paths(path).unwrap())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null());
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let Output { status, stdout, stderr } = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A kubeconfig whose only server refuses connections (nothing listens on port 1).
fn unreachable_kubeconfig(dir: &Path) -> PathBuf {
    let path = dir.join("unreachable.yaml");
    std::fs::write(
        &path,
        "\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
users:
- name: nobody
  user:
    token: not-a-real-token
contexts:
- name: nowhere
  context:
    cluster: nowhere
    user: nobody
- name: staging
  context:
    cluster: nowhere
    user: nobody
current-context: nowhere
",
    )
    .unwrap();
    path
}

#[test]
fn help_names_the_views_flags_and_exit_codes() {
    let home = scratch("help");
    let r = run(&mut mesh_revisions(&home, &["--help"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("Usage: kubectl mesh revisions [OPTIONS]"),
        "{}",
        r.stdout
    );
    for needle in [
        "--namespaces",
        "--proxies",
        "--check",
        "--kubeconfig",
        "--context",
        "--request-timeout",
        "-o, --output",
        "- json:  JSON for scripts",
        "- yaml:  YAML, the same document as JSON",
        "--all-namespaces",
        "Views:",
        "Exit codes: 0 ok, 1 error, 2 usage, 3 out-of-date proxies found (with --check).",
        "kubectl mesh revisions --check -o json",
    ] {
        assert!(r.stdout.contains(needle), "help lacks {needle:?}:\n{}", r.stdout);
    }
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn version_carries_the_commit() {
    let home = scratch("version");
    let r = run(&mut mesh_revisions(&home, &["--version"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(&format!(
            "kubectl-mesh-revisions {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        r.stdout
    );
}

#[test]
fn plugin_is_listed_by_kubectl() {
    let home = scratch("plugin-list");
    let cmd = mesh_revisions(&home, &[]);
    let path = cmd
        .get_envs()
        .find(|(k, _)| *k == "PATH")
        .and_then(|(_, v)| v)
        .unwrap()
        .to_owned();
    let r = run(Command::new(kubectl_binary())
        .args(["plugin", "list", "--name-only"])
        .env("PATH", path)
        .env("HOME", &home));
    assert!(
        r.stdout.lines().any(|l| l == "kubectl-mesh-revisions"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let home = scratch("bad-flag");
    let r = run(&mut mesh_revisions(&home, &["--bogus"]));
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("unexpected argument '--bogus'"), "{}", r.stderr);
    assert!(r.stderr.contains("Usage: kubectl mesh revisions"), "{}", r.stderr);
}

#[test]
fn unknown_output_format_is_a_usage_error() {
    let home = scratch("bad-output");
    let r = run(&mut mesh_revisions(&home, &["-o", "bogus"]));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("invalid value 'bogus' for '--output <FORMAT>'"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("table, wide, json, yaml"), "{}", r.stderr);
}

#[test]
fn conflicting_views_and_scopes_are_usage_errors() {
    let home = scratch("conflicts");
    for args in [
        &["--namespaces", "--proxies"][..],
        &["-n", "default", "-A"][..],
        &["--request-timeout", "5x"][..],
    ] {
        let r = run(&mut mesh_revisions(&home, args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("error: "), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn no_kubeconfig_names_the_paths_looked_at() {
    let home = scratch("no-kubeconfig");
    let missing = home.join("does-not-exist.yaml");
    let r = run(mesh_revisions(&home, &[]).env("KUBECONFIG", &missing));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "error: kubectl mesh revisions: no kubeconfig found (looked at {}); pass --kubeconfig PATH or set KUBECONFIG",
            missing.display()
        )
    );

    // Without KUBECONFIG: ~/.kube/config, as kubectl.
    let r = run(&mut mesh_revisions(&home, &[]));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains(&format!("looked at {}", home.join(".kube/config").display())),
        "{}",
        r.stderr
    );

    let r = run(&mut mesh_revisions(&home, &["--kubeconfig", missing.to_str().unwrap()]));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!(
            "kubeconfig {} does not exist (from --kubeconfig)",
            missing.display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn malformed_kubeconfig_is_named() {
    let home = scratch("malformed");
    let bad = home.join("broken.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: Config\nclusters: [\n").unwrap();
    let r = run(mesh_revisions(&home, &[]).env("KUBECONFIG", &bad));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.starts_with(&format!(
            "error: kubectl mesh revisions: kubeconfig {} is malformed",
            bad.display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn unknown_context_lists_the_known_ones() {
    let home = scratch("context");
    let kubeconfig = unreachable_kubeconfig(&home);
    let r = run(mesh_revisions(&home, &["--context", "prod-eu"]).env("KUBECONFIG", &kubeconfig));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        "error: kubectl mesh revisions: context \"prod-eu\" is not in the kubeconfig (known contexts: nowhere, staging)"
    );
}

#[test]
fn unknown_cluster_or_user_lists_the_known_ones() {
    let home = scratch("cluster-user");
    let kubeconfig = unreachable_kubeconfig(&home);
    let r = run(mesh_revisions(&home, &["--cluster", "prod-eu"]).env("KUBECONFIG", &kubeconfig));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        "error: kubectl mesh revisions: cluster \"prod-eu\" is not in the kubeconfig (known clusters: nowhere)"
    );
    let r = run(mesh_revisions(&home, &["--user", "admin"]).env("KUBECONFIG", &kubeconfig));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        "error: kubectl mesh revisions: user \"admin\" is not in the kubeconfig (known users: nobody)"
    );
}

#[test]
fn unreachable_server_names_the_url() {
    let home = scratch("unreachable");
    let kubeconfig = unreachable_kubeconfig(&home);
    // A missing first file in the list is skipped, as kubectl does.
    let list = std::env::join_paths([home.join("missing.yaml"), kubeconfig]).unwrap();
    let r = run(mesh_revisions(&home, &["--request-timeout", "5s"]).env("KUBECONFIG", list));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.starts_with(
            "error: kubectl mesh revisions: cannot reach the Kubernetes API server at https://127.0.0.1:1:"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Connection refused"), "{}", r.stderr);
    assert!(r.stderr.contains("--context"), "{}", r.stderr);
}

#[test]
fn no_current_context_says_how_to_choose_one() {
    let home = scratch("no-current");
    let kubeconfig = unreachable_kubeconfig(&home);
    let text = std::fs::read_to_string(&kubeconfig)
        .unwrap()
        .replace("current-context: nowhere\n", "");
    std::fs::write(&kubeconfig, text).unwrap();
    let r = run(mesh_revisions(&home, &[]).env("KUBECONFIG", &kubeconfig));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no current context"), "{}", r.stderr);
    assert!(r.stderr.contains("--context NAME"), "{}", r.stderr);
}
