//! Faults on the sandbox, through the real kubectl: two relabels racing on the same
//! namespaces, a prune interrupted halfway, and the API server killed in the middle of a
//! roll. Each must end in a state some serial order of the commands gives, and a re-run
//! must finish what was left.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kubectl_mesh_e2e::{Sandbox, Snapshot, run, stdout};
use serde_json::Value;

const PREVIOUS: &str = "kubectl-mesh.io/relabel-previous";
const RACED: [&str; 3] = ["default", "race-a", "race-b"];

fn json(sandbox: &Sandbox, args: &[&str]) -> Value {
    let text = stdout(sandbox.kubectl().args(args).args(["-o", "json"]));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("kubectl {args:?} -o json: {e}"))
}

/// Per raced namespace: its `istio.io/rev` and `istio-injection` labels and the
/// relabel-previous annotation (parsed).
type Labelling = BTreeMap<String, (Value, Value, Value)>;

fn labelling(sandbox: &Sandbox) -> Labelling {
    RACED
        .iter()
        .map(|ns| {
            let o = json(sandbox, &["get", "namespace", ns]);
            let m = &o["metadata"];
            let ann = m["annotations"][PREVIOUS].as_str().map_or(Value::Null, |s| {
                serde_json::from_str(s).unwrap_or(Value::String(s.into()))
            });
            (
                (*ns).to_owned(),
                (
                    m["labels"]["istio.io/rev"].clone(),
                    m["labels"]["istio-injection"].clone(),
                    ann,
                ),
            )
        })
        .collect()
}

/// Puts the raced namespaces back to `state` (labels and annotation).
fn restore(sandbox: &Sandbox, state: &Labelling) {
    for (ns, (rev, injection, ann)) in state {
        let label = |key: &str, v: &Value| match v.as_str() {
            Some(s) => format!("{key}={s}"),
            None => format!("{key}-"),
        };
        stdout(sandbox.kubectl().args([
            "label",
            "namespace",
            ns,
            "--overwrite",
            &label("istio.io/rev", rev),
            &label("istio-injection", injection),
        ]));
        let ann = if ann.is_null() {
            format!("{PREVIOUS}-")
        } else {
            format!("{PREVIOUS}={ann}")
        };
        stdout(
            sandbox
                .kubectl()
                .args(["annotate", "namespace", ns, "--overwrite", &ann]),
        );
    }
}

fn relabel(sandbox: &Sandbox, args: &[&str], pause_ms: u64) -> Child {
    sandbox
        .plugin("relabel")
        .args(args)
        .env("NO_COLOR", "1")
        .env("KUBECTL_MESH_TEST_PAUSE_BEFORE_WRITE_MS", pause_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start relabel")
}

fn finish(child: Child, what: &[&str]) -> String {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "`relabel {}` exited {:?}\n{}{}",
        what.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// Every namespace whose annotation is there must carry the labels the annotation says
/// relabel set: `--undo` relies on it.
fn annotation_agrees(state: &Labelling) -> Result<(), String> {
    for (ns, (rev, injection, ann)) in state {
        if ann.is_null() {
            continue;
        }
        let set = (&ann["set"]["istio.io/rev"], &ann["set"]["istio-injection"]);
        if set != (rev, injection) {
            return Err(format!("{ns}: labels {rev}/{injection}, annotation {ann}"));
        }
    }
    Ok(())
}

/// Runs `a` and `b` one after the other from `start` and returns the end state.
fn serial(sandbox: &Sandbox, start: &Labelling, first: &[&str], second: &[&str]) -> Labelling {
    restore(sandbox, start);
    finish(relabel(sandbox, first, 0), first);
    finish(relabel(sandbox, second, 0), second);
    labelling(sandbox)
}

/// Races `a` against `b` from `start`, with pauses between each one's read and
/// write, and checks that each namespace ends as one of the two serial orders leaves it.
fn race(sandbox: &Sandbox, start: &Labelling, a: &[&str], b: &[&str]) {
    let ab = serial(sandbox, start, a, b);
    let ba = serial(sandbox, start, b, a);
    for (pause_a, pause_b) in [(0, 0), (0, 1500), (1500, 0), (800, 800)] {
        restore(sandbox, start);
        let (ca, cb) = (relabel(sandbox, a, pause_a), relabel(sandbox, b, pause_b));
        let (out_a, out_b) = (finish(ca, a), finish(cb, b));
        for out in [&out_a, &out_b] {
            if out.contains("changed concurrently") {
                println!("pauses {pause_a}/{pause_b} ms, a 409 met and decided again:\n{out}");
            }
        }
        let end = labelling(sandbox);
        // Each namespace is written on its own (conditional on its resourceVersion), so
        // each ends as one of the two serial orders left it; the orders may differ
        // between namespaces.
        for (ns, got) in &end {
            assert!(
                got == &ab[ns] || got == &ba[ns],
                "pauses {pause_a}/{pause_b} ms: lost update in {ns}\nend: {got:?}\na;b: {:?}\nb;a: {:?}\n{out_a}\n{out_b}",
                ab[ns],
                ba[ns]
            );
        }
        annotation_agrees(&end).unwrap_or_else(|e| panic!("pauses {pause_a}/{pause_b} ms: {e}\n{out_a}\n{out_b}"));
    }
}

#[test]
fn two_relabels_racing_lose_no_update() {
    let sandbox = Sandbox::fresh("canary");
    for ns in &RACED[1..] {
        stdout(sandbox.kubectl().args(["create", "namespace", ns]));
        stdout(sandbox.kubectl().args(["label", "namespace", ns, "istio.io/rev=1-27"]));
    }
    let start = labelling(&sandbox);
    let forward = ["--to", "1-28", "-A", "--from", "1-27"];
    let back = ["--to", "1-27", "-A"];
    let undo = ["--undo", "-A"];

    // From 1-27: forward against back.
    race(&sandbox, &start, &forward, &back);

    // From 1-28 as relabel left it (annotation set): undo against back, where both
    // write, so one of them must meet the other's write (409) and decide again.
    restore(&sandbox, &start);
    finish(relabel(&sandbox, &forward, 0), &forward);
    let moved = labelling(&sandbox);
    assert!(moved.values().all(|(rev, _, _)| rev == "1-28"), "{moved:?}");
    race(&sandbox, &moved, &undo, &back);
    race(&sandbox, &moved, &undo, &forward);
}

/// (kind, namespace, name) → (uid, istio.io/rev label) of every object of the kinds prune
/// may delete.
fn objects(sandbox: &Sandbox) -> BTreeMap<(String, String, String), (String, String)> {
    const KINDS: &str = "deployments,daemonsets,services,configmaps,secrets,serviceaccounts,rolebindings,roles,poddisruptionbudgets,horizontalpodautoscalers,mutatingwebhookconfigurations,validatingwebhookconfigurations,clusterroles,clusterrolebindings";
    let doc = json(sandbox, &["get", KINDS, "-A"]);
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (
                (s(&o["kind"]), s(&m["namespace"]), s(&m["name"])),
                (s(&m["uid"]), s(&m["labels"]["istio.io/rev"])),
            )
        })
        .collect()
}

/// Reads `child`'s stream line by line on a thread; the lines arrive on the receiver.
fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn signal(pid: u32, sig: &str) {
    stdout(Command::new("kill").args([sig, &pid.to_string()]));
}

#[test]
fn an_interrupted_prune_deletes_only_its_revision_and_a_rerun_finishes() {
    let sandbox = Sandbox::fresh("canary");
    stdout(sandbox.plugin("relabel").args(["--from", "1-27", "--to", "1-28", "-A"]));
    sandbox.restart_all("default");
    stdout(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));

    let before = objects(&sandbox);
    let plan_text = stdout(sandbox.plugin("prune").args(["1-27", "--dry-run", "-o", "json"]));
    let plan: Value = serde_json::from_str(&plan_text).unwrap();
    let planned: BTreeSet<(String, String, String)> = plan["plan"]["delete"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] != "Pod")
        .map(|i| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (s(&i["kind"]), s(&i["namespace"]), s(&i["name"]))
        })
        .collect();
    assert!(planned.len() > 3, "{plan_text}");

    // Interrupt at the first deletion.
    let started = Instant::now();
    let mut child = sandbox
        .plugin("prune")
        .args(["1-27", "--yes"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start prune");
    let out = lines(child.stdout.take().unwrap());
    let mut seen = vec![];
    while let Ok(line) = out.recv_timeout(Duration::from_secs(120)) {
        let deleted = line.contains(" deleted");
        seen.push(line);
        if deleted {
            signal(child.id(), "-INT");
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains(" deleted")),
        "no deletion seen:\n{}",
        seen.join("\n")
    );
    let status = child.wait().unwrap();
    seen.extend(out.try_iter());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let interrupted = format!(
        "prune interrupted after {:?}, exit {:?}\n{}\n{err}",
        started.elapsed(),
        status.code(),
        seen.join("\n")
    );
    println!("{interrupted}");

    let check = |now: &BTreeMap<_, _>, when: &str| {
        for (key, (uid, rev)) in &before {
            let gone = now.get(key).is_none_or(|(u, _)| u != uid);
            if gone {
                assert!(
                    planned.contains(key),
                    "{when}: {key:?} (istio.io/rev={rev}) was deleted but is not in the plan\n{interrupted}"
                );
                assert_eq!(rev, "1-27", "{when}: {key:?} of another revision deleted");
            }
        }
    };
    let middle = objects(&sandbox);
    check(&middle, "after the interrupt");
    let gone_early = planned.iter().filter(|k| !middle.contains_key(*k)).count();
    assert!(
        gone_early < planned.len(),
        "the interrupt came too late to test anything"
    );

    let (code, rerun, err) = run(sandbox.plugin("prune").args(["1-27", "--yes"]).env("NO_COLOR", "1"));
    assert_eq!(code, 0, "the re-run finishes:\n{rerun}\n{err}\n---\n{interrupted}");
    let after = objects(&sandbox);
    check(&after, "after the re-run");
    let gone: BTreeSet<_> = before.keys().filter(|k| !after.contains_key(*k)).cloned().collect();
    assert_eq!(gone, planned, "exactly the planned objects are gone\n{rerun}");
}

/// Per Deployment in `namespace`: (generation, restartedAt, number of ReplicaSets).
fn rollouts(sandbox: &Sandbox, namespace: &str) -> BTreeMap<String, (i64, String, usize)> {
    let deployments = json(sandbox, &["get", "deployments", "-n", namespace]);
    let sets = json(sandbox, &["get", "replicasets", "-n", namespace]);
    deployments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let name = d["metadata"]["name"].as_str().unwrap().to_owned();
            let uid = &d["metadata"]["uid"];
            let owned = sets["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|rs| {
                    rs["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|o| o.iter().any(|r| &r["uid"] == uid))
                })
                .count();
            let restarted = d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            (
                name,
                (d["metadata"]["generation"].as_i64().unwrap_or(0), restarted, owned),
            )
        })
        .collect()
}

#[test]
fn the_api_server_killed_mid_roll_restarts_each_workload_once() {
    let sandbox = Sandbox::fresh("canary");
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", "default", "istio.io/rev=1-28", "--overwrite"]),
    );
    let before = Snapshot::take(&sandbox);
    let start = rollouts(&sandbox, "default");

    let started = Instant::now();
    let mut child = sandbox
        .plugin("roll")
        .args(["-n", "default", "--pause", "2s"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start roll");
    // Progress goes to stdout in text mode; read both streams.
    let err_lines = lines(child.stderr.take().unwrap());
    let out_lines = lines(child.stdout.take().unwrap());
    let mut out = vec![];
    let mut err = vec![];
    let paused = loop {
        if let Ok(line) = out_lines.try_recv() {
            let pausing = line.contains("pausing");
            out.push(line);
            if pausing {
                break true;
            }
            continue;
        }
        if let Ok(line) = err_lines.try_recv() {
            let pausing = line.contains("pausing");
            err.push(line);
            if pausing {
                break true;
            }
            continue;
        }
        if started.elapsed() > Duration::from_secs(180) || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(paused, "roll never paused:\n{}\n{}", out.join("\n"), err.join("\n"));
    let apiserver = sandbox
        .component_pid("kube-apiserver")
        .expect("kube-apiserver's pid file");
    signal(apiserver, "-KILL");
    let killed_at = started.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    sandbox.restart_killed();
    let back_at = started.elapsed();

    // The roll either rides it out or stops; it must not hang.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("roll still running 5 min after the API server came back");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    err.extend(err_lines.iter());
    out.extend(out_lines.iter());
    let first = format!(
        "roll: API server killed at {killed_at:?}, back at {back_at:?}, roll exited {:?} at {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        status.code(),
        started.elapsed(),
        out.join("\n"),
        err.join("\n")
    );
    println!("{first}");
    if !status.success() {
        let text = out.join("\n");
        assert!(
            text.contains("The roll stopped") || text.contains("roll stopped"),
            "a roll that stops says so in a summary:\n{first}"
        );
        let (code, rerun, rerr) = run(sandbox.plugin("roll").args(["-n", "default"]).env("NO_COLOR", "1"));
        println!("re-run exited {code}:\n{rerun}\n{rerr}");
        assert_eq!(code, 0, "the re-run completes:\n{rerun}\n{rerr}\n---\n{first}");
    }

    let end = rollouts(&sandbox, "default");
    for (name, (generation, restarted, sets)) in &start {
        let (g, r, s) = &end[name];
        assert_eq!(*g, generation + 1, "{name}: restarted once (generation)\n{first}");
        assert_ne!(r, restarted, "{name}: restarted\n{first}");
        assert_eq!(*s, sets + 1, "{name}: one new ReplicaSet\n{first}");
    }
    let changes = Snapshot::take(&sandbox).changes_since(&before);
    let outside: Vec<_> = changes
        .iter()
        .filter(|c| !c.starts_with("changed Deployment default/"))
        .collect();
    assert!(outside.is_empty(), "outside the plan: {outside:?}\n{first}");
}
