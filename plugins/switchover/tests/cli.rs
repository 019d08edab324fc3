//! `kubectl-mesh-switchover` on bad input: a usage error (exit 2) naming what is wrong,
//! before any cluster is read. No cluster is needed: the kubeconfig points nowhere.

use std::process::{Command, Stdio};

fn switchover(args: &[&str]) -> (i32, String, String) {
    let home = std::env::temp_dir().join(format!("kubectl-mesh-switchover-cli-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-mesh-switchover"))
        .args(args)
        .env("HOME", &home)
        .env("KUBECONFIG", home.join("missing"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_names_the_checks_and_exit_codes() {
    let (code, out, _) = switchover(&["--help"]);
    assert_eq!(code, 0);
    for needle in [
        "Usage: kubectl mesh switchover [OPTIONS] --from <CONTEXT> --to <CONTEXT>",
        "--allow-stateful <NAMESPACE/NAME>",
        "--gateway <NAMESPACE/NAME>",
        "[default: istio-system/istio-ingressgateway]",
        "parity",
        "stateless",
        "Exit codes: 0 ready, 1 error (a cluster cannot be read), 2 usage, 3 not ready.",
    ] {
        assert!(out.contains(needle), "help lacks {needle:?}:\n{out}");
    }
}

#[test]
fn bad_input_is_a_usage_error_before_anything_is_read() {
    let (code, _, err) = switchover(&["--from", "old"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--to <CONTEXT>"), "{err}");

    let (code, _, err) = switchover(&["--from", "old", "--to", "old"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from and --to are both old"), "{err}");

    let (code, _, err) = switchover(&["--from", "old", "--to", "new", "--context", "old"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("name them with --from and --to"), "{err}");

    let (code, _, err) = switchover(&["--from", "old", "--to", "new", "--allow-stateful", "postgres"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not NAMESPACE/NAME"), "{err}");

    let (code, _, err) = switchover(&["--from", "old", "--to", "new", "--gateway", "Bad_NS/gw"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_context_the_kubeconfig_lacks_names_the_cluster() {
    let (code, out, err) = switchover(&["--from", "old", "--to", "new"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert!(
        err.starts_with("error: kubectl mesh switchover: cannot read the "),
        "{err}"
    );
}
