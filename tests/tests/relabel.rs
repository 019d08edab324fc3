//! `kubectl mesh relabel` on the sandbox, through the real kubectl: STEP 2 of the seed's
//! canary upgrade, its rollback (`--undo`), and the refusals that leave the cluster as it was.

use std::process::Stdio;

use kubectl_mesh_e2e::{Sandbox, run, stdout};
use serde_json::Value;

fn json(sandbox: &Sandbox, args: &[&str]) -> Value {
    let text = stdout(sandbox.kubectl().args(args).args(["-o", "json"]));
    serde_json::from_str(&text).unwrap()
}

fn labels(ns: &Value) -> Value {
    ns["metadata"]["labels"].clone()
}

/// Every namespace's metadata as the API server holds it (resourceVersion included), so
/// "unchanged" means not written at all.
fn namespaces(sandbox: &Sandbox) -> Vec<Value> {
    json(sandbox, &["get", "namespaces"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"].clone())
        .collect()
}

/// pod name → revision that injected it, in `default`.
fn app_pods(sandbox: &Sandbox) -> Vec<(String, String)> {
    let mut out: Vec<_> = json(sandbox, &["get", "pods", "-n", "default"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let status: Value = serde_json::from_str(
                p["metadata"]["annotations"]["sidecar.istio.io/status"]
                    .as_str()
                    .unwrap_or("{}"),
            )
            .unwrap();
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                status["revision"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn canary_step_2_moves_default_to_1_28_and_undo_restores_exactly() {
    let sandbox = Sandbox::fresh("canary");
    // Make the namespace carry both labels, as in istio/istio#43621, so relabel has an
    // istio-injection to remove and --undo one to restore.
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", "default", "istio-injection=enabled"]),
    );
    let before = labels(&json(&sandbox, &["get", "namespace", "default"]));
    let pods_before = app_pods(&sandbox);
    assert!(pods_before.iter().all(|(_, r)| r == "1-27"), "{pods_before:?}");

    let out = stdout(sandbox.plugin("relabel").args(["--to", "1-28", "-n", "default"]));
    assert!(
        out.contains("namespace/default relabeled: istio.io/rev=1-27,istio-injection=enabled → istio.io/rev=1-28"),
        "{out}"
    );
    assert!(out.contains("removed istio-injection=enabled"), "{out}");
    assert!(out.contains("kubectl mesh roll -n default"), "{out}");
    let ns = json(&sandbox, &["get", "namespace", "default"]);
    assert_eq!(ns["metadata"]["labels"]["istio.io/rev"], "1-28");
    assert!(ns["metadata"]["labels"]["istio-injection"].is_null(), "{ns}");
    let remembered = ns["metadata"]["annotations"]["kubectl-mesh.io/relabel-previous"]
        .as_str()
        .unwrap();
    assert!(remembered.contains("\"istio-injection\":\"enabled\""), "{remembered}");

    // Pods change only when restarted.
    assert_eq!(app_pods(&sandbox), pods_before);

    // Idempotent: nothing is written the second time.
    let rv = ns["metadata"]["resourceVersion"].clone();
    let again = stdout(sandbox.plugin("relabel").args(["--to", "1-28", "-n", "default"]));
    assert!(
        again.contains("namespace/default unchanged: already istio.io/rev=1-28"),
        "{again}"
    );
    assert_eq!(
        json(&sandbox, &["get", "namespace", "default"])["metadata"]["resourceVersion"],
        rv
    );

    // A pod restarted by plain kubectl gets 1-28.
    stdout(
        sandbox
            .kubectl()
            .args(["rollout", "restart", "deployment/webapp", "-n", "default"]),
    );
    stdout(sandbox.kubectl().args([
        "rollout",
        "status",
        "deployment/webapp",
        "-n",
        "default",
        "--timeout=120s",
    ]));
    let after_restart = app_pods(&sandbox);
    let webapp: Vec<_> = after_restart.iter().filter(|(n, _)| n.starts_with("webapp-")).collect();
    assert!(
        !webapp.is_empty() && webapp.iter().all(|(_, r)| r == "1-28"),
        "{after_restart:?}"
    );
    assert!(
        after_restart
            .iter()
            .filter(|(n, _)| !n.starts_with("webapp-"))
            .all(|(_, r)| r == "1-27"),
        "{after_restart:?}"
    );

    // Rollback: exactly the labels that were there, and no annotation left.
    let undo = stdout(sandbox.plugin("relabel").args(["--undo", "-n", "default"]));
    assert!(undo.contains("namespace/default relabeled"), "{undo}");
    let ns = json(&sandbox, &["get", "namespace", "default"]);
    assert_eq!(labels(&ns), before);
    assert!(
        ns["metadata"]["annotations"]["kubectl-mesh.io/relabel-previous"].is_null(),
        "{ns}"
    );
}

#[test]
fn refusals_and_dry_runs_leave_the_namespaces_unchanged() {
    let sandbox = Sandbox::fresh("canary");
    let before = namespaces(&sandbox);

    let (code, _, err) = run(sandbox.plugin("relabel").args(["--to", "1-30", "-n", "default"]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("1-30 is neither a revision nor a tag"), "{err}");

    let (code, out, err) =
        run(sandbox
            .plugin("relabel")
            .args(["--from", "1-27", "--to", "1-28", "-A", "--dry-run=server"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("namespace/default relabeled (server dry run)"), "{out}");
    let (code, out, _) = run(sandbox
        .plugin("relabel")
        .args(["--to", "1-28", "-A", "--dry-run", "-o", "json"]));
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["dryRun"], "client");

    // istiod 1-28 not ready: refused, unless --force (checked with a dry run).
    stdout(
        sandbox
            .kubectl()
            .args(["scale", "deployment/istiod-1-28", "-n", "istio-system", "--replicas=0"]),
    );
    let (code, _, err) = run(sandbox.plugin("relabel").args(["--to", "1-28", "-n", "default"]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("is not ready") && err.contains("--force"), "{err}");
    let (code, _, err) =
        run(sandbox
            .plugin("relabel")
            .args(["--to", "1-28", "-n", "default", "--force", "--dry-run=server"]));
    assert_eq!(code, 0, "{err}");

    assert_eq!(namespaces(&sandbox), before, "refusals and dry runs write nothing");
}

#[test]
fn a_concurrent_edit_is_not_lost() {
    let sandbox = Sandbox::fresh("canary");
    // Relabel reads, then waits before writing; meanwhile someone else labels the namespace.
    let child = sandbox
        .plugin("relabel")
        .args(["--to", "1-28", "-n", "default"])
        .env("KUBECTL_MESH_TEST_PAUSE_BEFORE_WRITE_MS", "3000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    stdout(sandbox.kubectl().args(["label", "namespace", "default", "team=fleet"]));
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("changed concurrently; read again 1 time(s)"), "{text}");
    let l = labels(&json(&sandbox, &["get", "namespace", "default"]));
    assert_eq!(l["istio.io/rev"], "1-28");
    assert_eq!(l["team"], "fleet", "the concurrent edit survives");
}

#[test]
fn moving_the_default_tag_and_back() {
    let sandbox = Sandbox::fresh("canary");
    stdout(sandbox.kubectl().args(["create", "namespace", "legacy"]));
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", "legacy", "istio-injection=enabled"]),
    );

    let out = stdout(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));
    assert!(out.contains("revision tag default moved: 1-27 → 1-28"), "{out}");
    assert!(out.contains("legacy (istio-injection=enabled)"), "{out}");
    let mwc = json(
        &sandbox,
        &["get", "mutatingwebhookconfiguration", "istio-revision-tag-default"],
    );
    assert_eq!(mwc["metadata"]["labels"]["istio.io/rev"], "1-28");
    let vwc = json(
        &sandbox,
        &["get", "validatingwebhookconfiguration", "istiod-default-validator"],
    );
    assert_eq!(vwc["metadata"]["labels"]["istio.io/rev"], "1-28");

    // A new pod in an istio-injection=enabled namespace now gets 1-28.
    stdout(
        sandbox
            .kubectl()
            .args(["run", "probe", "-n", "legacy", "--image=busybox", "--restart=Never"]),
    );
    let pod = json(&sandbox, &["get", "pod", "probe", "-n", "legacy"]);
    let status = pod["metadata"]["annotations"]["sidecar.istio.io/status"]
        .as_str()
        .unwrap_or("");
    assert!(status.contains("\"revision\":\"1-28\""), "{pod}");

    let out = stdout(sandbox.plugin("relabel").args(["--tag", "default", "--undo"]));
    assert!(out.contains("revision tag default moved: 1-28 → 1-27"), "{out}");
    let mwc = json(
        &sandbox,
        &["get", "mutatingwebhookconfiguration", "istio-revision-tag-default"],
    );
    assert_eq!(mwc["metadata"]["labels"]["istio.io/rev"], "1-27");
}
