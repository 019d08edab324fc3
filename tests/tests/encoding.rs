//! The pod and ReplicaSet lists are read as protobuf; JSON is the fallback for a server
//! that has no protobuf. Both must tell the same story: each step's JSON report is the
//! same whichever encoding the lists came in (`KUBECTL_MESH_LIST_ENCODING=json` asks for
//! JSON only), and whether the pods come in one list or one per namespace
//! (`KUBECTL_MESH_LIST_CONCURRENCY`).

use kubectl_mesh_e2e::{Sandbox, run, stdout};
use serde_json::Value;

fn report(sandbox: &Sandbox, step: &str, args: &[&str], json_only: bool) -> Value {
    let mut cmd = sandbox.plugin(step);
    cmd.args(args);
    if json_only {
        cmd.env(shared::collect::ENCODING_ENV, "json");
    } else {
        cmd.env_remove(shared::collect::ENCODING_ENV);
    }
    let text = stdout(&mut cmd);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

#[test]
fn protobuf_and_json_lists_give_the_same_reports() {
    let sandbox = Sandbox::fresh("canary");
    for (step, args) in [
        ("revisions", vec!["-A", "-o", "json"]),
        ("revisions", vec!["-n", "default", "-o", "json", "--proxies"]),
        ("roll", vec!["-A", "--dry-run", "-o", "json"]),
    ] {
        let protobuf = report(&sandbox, step, &args, false);
        let json = report(&sandbox, step, &args, true);
        assert_eq!(protobuf, json, "{step} {args:?}");
        // Pods listed per namespace, three at a time: the same again.
        let mut cmd = sandbox.plugin(step);
        cmd.args(&args).env(shared::collect::CONCURRENCY_ENV, "3");
        let per_namespace: Value = serde_json::from_str(&stdout(&mut cmd)).unwrap();
        assert_eq!(protobuf, per_namespace, "{step} {args:?} per namespace");
        println!("{step} {args:?}: {protobuf}");
    }
    let doc = report(&sandbox, "revisions", &["-A", "-o", "json"], false);
    // Seven app sidecars and two gateways, each owned by its Deployment through its
    // ReplicaSet (the ReplicaSet list is protobuf too).
    assert_eq!(doc["totalProxies"], 9, "{doc:#}");
    let proxies = doc["proxies"].as_array().unwrap();
    assert!(proxies.iter().all(|p| p["workload"]["kind"] == "Deployment"), "{doc:#}");

    // prune reads every pod through the same path: its plan is the same either way.
    let prune = |json_only: bool| {
        let mut cmd = sandbox.plugin("prune");
        cmd.args(["1-27", "--dry-run", "-o", "json"]);
        if json_only {
            cmd.env(shared::collect::ENCODING_ENV, "json");
        }
        run(&mut cmd)
    };
    let (code, out, err) = prune(false);
    assert_eq!(prune(true), (code, out.clone(), err.clone()));
    // The pods it refuses over come from the pod list.
    assert!(
        err.contains("7 running or pending pod(s) in namespace default"),
        "{out}\n{err}"
    );
}
