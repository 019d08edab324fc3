//! Faults on the sandbox, through the real kubectl: two relabels racing on the same
//! namespaces, a prune interrupted halfway, the API server killed in the middle of a roll
//! (between workloads, and while roll watches a rollout), and an API server that answers
//! most requests 429 (throttled to one request at a time). Each must end in a state some
//! serial order of the commands gives, and a re-run must finish what was left.

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
    kill_the_api_server_mid_roll(&sandbox, &["-n", "default", "--pause", "2s"], |line| {
        line.contains("pausing")
    });
}

/// The first Deployment roll restarts (api-gateway) made slow: its new pod counts as
/// available only 10 s after it is Ready, so its rollout is under way for at least that
/// long (`minReadySeconds`; KWOK makes pods Ready at once).
const SLOW_ROLLOUT: &str = r#"{"spec":{"minReadySeconds":10}}"#;

#[test]
fn the_api_server_killed_while_roll_watches_a_rollout_restarts_each_workload_once() {
    let sandbox = Sandbox::fresh("canary");
    stdout(
        sandbox
            .kubectl()
            .args(["label", "namespace", "default", "istio.io/rev=1-28", "--overwrite"]),
    );
    stdout(sandbox.kubectl().args([
        "patch",
        "deployment/api-gateway",
        "-n",
        "default",
        "--type=merge",
        "-p",
        SLOW_ROLLOUT,
    ]));
    stdout(sandbox.kubectl().args([
        "rollout",
        "status",
        "deployment/api-gateway",
        "-n",
        "default",
        "--timeout=60s",
    ]));
    // Killed once api-gateway is restarted and roll follows its rollout.
    let seen = kill_the_api_server_mid_roll(&sandbox, &["-n", "default"], |line| {
        line.contains("api-gateway") && (line.contains("restarted, waiting") || line.contains("rolling "))
    });
    let before_kill = &seen[..seen.iter().position(|l| l == KILLED).expect("the kill is marked")];
    assert!(
        !before_kill
            .iter()
            .any(|l| l.contains("api-gateway") && l.contains("done in")),
        "the kill came after api-gateway's rollout had finished:\n{}",
        seen.join("\n")
    );
}

/// Marks, in the lines [`kill_the_api_server_mid_roll`] returns, where the kill came.
const KILLED: &str = "--- kube-apiserver killed here";

/// Runs `roll ARGS`, kills the API server (`kill -9`) at the first line of its output for
/// which `kill_at` holds, starts it again 3 s later, and checks that the roll rides it out
/// or stops with a summary after which a re-run completes; that every Deployment of
/// `default` is restarted exactly once (generation +1, a new `restartedAt`, one new
/// ReplicaSet); and that nothing else changes. Returns roll's output lines (stdout, then
/// stderr), with [`KILLED`] where the kill came.
fn kill_the_api_server_mid_roll(sandbox: &Sandbox, args: &[&str], kill_at: impl Fn(&str) -> bool) -> Vec<String> {
    let before = Snapshot::take(sandbox);
    let start = rollouts(sandbox, "default");

    let started = Instant::now();
    let mut child = sandbox
        .plugin("roll")
        .args(args)
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
    let reached = loop {
        if let Ok(line) = out_lines.try_recv() {
            let now = kill_at(&line);
            out.push(line);
            if now {
                break true;
            }
            continue;
        }
        if let Ok(line) = err_lines.try_recv() {
            let now = kill_at(&line);
            err.push(line);
            if now {
                break true;
            }
            continue;
        }
        if started.elapsed() > Duration::from_secs(180) || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        reached,
        "roll never reached the point of the kill:\n{}\n{}",
        out.join("\n"),
        err.join("\n")
    );
    let apiserver = sandbox
        .component_pid("kube-apiserver")
        .expect("kube-apiserver's pid file");
    signal(apiserver, "-KILL");
    let killed_at = started.elapsed();
    out.push(KILLED.to_owned());
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

    let end = rollouts(sandbox, "default");
    for (name, (generation, restarted, sets)) in &start {
        let (g, r, s) = &end[name];
        assert_eq!(*g, generation + 1, "{name}: restarted once (generation)\n{first}");
        assert_ne!(r, restarted, "{name}: restarted\n{first}");
        assert_eq!(*s, sets + 1, "{name}: one new ReplicaSet\n{first}");
    }
    let changes = Snapshot::take(sandbox).changes_since(&before);
    let outside: Vec<_> = changes
        .iter()
        .filter(|c| !c.starts_with("changed Deployment default/"))
        .collect();
    assert!(outside.is_empty(), "outside the plan: {outside:?}\n{first}");
    out.extend(err);
    out
}

// ---------------------------------------------------------------- throttling

/// The API server's limits while throttled: one read and one write at a time (priority and
/// fairness is off in the sandbox, so these are the limits that apply; watches are not
/// counted). Anything beyond is answered 429 with `Retry-After: 1`.
const THROTTLE: &str = "--max-requests-inflight=1 --max-mutating-requests-inflight=1";

/// Where the load's ConfigMaps are: enough data that each list of them holds the API
/// server's one read slot for a while.
const LOAD_NAMESPACE: &str = "throttle-load";

/// 100 ConfigMaps of 20 kB each in [`LOAD_NAMESPACE`] (the sandbox reset removes them).
fn seed_load(sandbox: &Sandbox) {
    let data = "x".repeat(20_000);
    let items: Vec<Value> = (0..100)
        .map(|i| {
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("load-{i}"), "namespace": LOAD_NAMESPACE},
                "data": {"payload": data}})
        })
        .collect();
    let dir = kubectl_mesh_e2e::scratch_dir("throttle-load");
    let path = dir.join("load.json");
    std::fs::write(
        &path,
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
    )
    .unwrap();
    stdout(sandbox.kubectl().args(["create", "namespace", LOAD_NAMESPACE]));
    stdout(sandbox.kubectl().args(["create", "-f"]).arg(&path).args(["-o", "name"]));
}

/// Concurrent `kubectl get` loops, as [`throttled_user`], that keep the throttled API server
/// busy until stopped (or dropped): each lists the load's ConfigMaps (2 MB). kubectl retries
/// a 429 after its `Retry-After`, so more loops than the server has slots keep it saturated.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<usize>>,
}

impl Load {
    fn start(sandbox: &Sandbox, kubeconfig: &std::path::Path, loops: usize) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..loops)
            .map(|_| {
                let stop = stop.clone();
                let mut cmd = sandbox.kubectl();
                cmd.env("KUBECONFIG", kubeconfig)
                    .args(["get", "configmaps", "-n", LOAD_NAMESPACE, "-o", "json"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                std::thread::spawn(move || {
                    let mut runs = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = cmd.status();
                        runs += 1;
                    }
                    runs
                })
            })
            .collect();
        Load { stop, threads }
    }

    /// Stops the loops; how many `kubectl get` ran.
    fn stop(mut self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.threads.drain(..).map(|t| t.join().unwrap_or(0)).sum()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A kubeconfig for a user the API server throttles. Its admin is in `system:masters`,
/// which the max-inflight filter never answers 429 ("a system:master is so powerful that
/// they should always get an answer", `WithMaxInFlightLimit` in
/// staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go): a ServiceAccount bound
/// to cluster-admin is not in it. The sandbox's own components stay unthrottled.
fn throttled_user(sandbox: &Sandbox) -> std::path::PathBuf {
    let k = |args: &[&str]| stdout(sandbox.kubectl().args(args));
    k(&["create", "serviceaccount", "throttled", "-n", LOAD_NAMESPACE]);
    k(&[
        "create",
        "clusterrolebinding",
        "throttled-cluster-admin",
        "--clusterrole=cluster-admin",
        &format!("--serviceaccount={LOAD_NAMESPACE}:throttled"),
    ]);
    let token = sandbox.service_account_token(LOAD_NAMESPACE, "throttled");
    let dir = kubectl_mesh_e2e::scratch_dir("throttled-user");
    sandbox.token_kubeconfig(&token, &dir.join("kubeconfig"))
}

/// The API server back to its own flags when dropped, even if the test fails.
struct Throttled<'a>(&'a Sandbox);

impl Drop for Throttled<'_> {
    fn drop(&mut self) {
        self.0.restart_apiserver_with("");
    }
}

/// The requests the API server answered 429, from `apiserver_request_total{code="429"}`, by
/// `VERB resource`.
fn throttled_requests(sandbox: &Sandbox) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in sandbox.apiserver_metrics().lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        if !rest.contains(r#"code="429""#) {
            continue;
        }
        let label = |name: &str| {
            rest.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|v| v.split('"').next())
                .unwrap_or("")
        };
        let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        *out.entry(format!("{} {}", label("verb"), label("resource")))
            .or_insert(0.0) += value;
    }
    out
}

/// What grew from `before` to `after`.
fn grown(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d > 0.0)
        .collect()
}

#[test]
fn every_step_finishes_against_a_throttling_api_server() {
    let sandbox = Sandbox::fresh("canary");
    seed_load(&sandbox);
    let user = throttled_user(&sandbox);
    sandbox.restart_apiserver_with(THROTTLE);
    let throttled = Throttled(&sandbox);
    let load = Load::start(&sandbox, &user, 6);
    let start = rollouts(&sandbox, "default");
    let mut report = vec![];
    let mut step = |name: &str, args: &[&str]| -> String {
        let before = throttled_requests(&sandbox);
        let started = Instant::now();
        let (code, out, err) = run(sandbox
            .plugin(name)
            .args(args)
            .arg("-v=6")
            .env("KUBECONFIG", &user)
            .env("NO_COLOR", "1"));
        let took = started.elapsed();
        let seen = err.lines().filter(|l| l.contains(" 429 Too Many Requests in ")).count();
        let server = grown(&before, &throttled_requests(&sandbox));
        let line = format!(
            "{name} {}: exit {code} in {:.1}s, {seen} of its requests answered 429 (its -v=6 log); \
             the API server's 429s meanwhile: {server:?}",
            args.join(" "),
            took.as_secs_f64()
        );
        println!("{line}");
        let requests: Vec<&str> = err
            .lines()
            .filter(|l| l.contains(" in ") && l.contains("https://"))
            .collect();
        assert_eq!(
            code,
            0,
            "{line}\n--- stdout:\n{out}\n--- requests:\n{}",
            requests.join("\n")
        );
        report.push((line, seen, server.values().sum::<f64>()));
        out
    };

    let out = step("revisions", &["-A"]);
    assert!(out.contains("1-27 (default)") && out.contains("1-28"), "{out}");
    step("relabel", &["--from", "1-27", "--to", "1-28", "-A"]);
    let out = step("roll", &["-n", "default", "--max-parallel", "4", "--timeout", "10m"]);
    assert!(out.contains("7 done, 0 failed"), "{out}");
    step("relabel", &["--tag", "default", "--to", "1-28"]);
    let out = step("prune", &["1-27", "--dry-run=server"]);
    let (code, istiod, _) = run(sandbox
        .kubectl()
        .args(["get", "deployment", "istiod-1-27", "-n", "istio-system"]));
    assert_eq!(code, 0, "a server dry run deleted istiod-1-27:\n{out}\n{istiod}");
    let out = step("prune", &["1-27", "--yes"]);
    assert!(out.contains("Revision 1-27 pruned"), "{out}");
    let gets = load.stop();
    println!("{gets} `kubectl get` ran meanwhile");

    // The API server did throttle, and the steps' own requests were among those answered 429.
    let (own, server): (usize, f64) = report.iter().fold((0, 0.0), |(a, b), (_, s, t)| (a + s, b + t));
    assert!(server > 0.0, "the API server answered no 429: {report:#?}");
    assert!(own > 0, "no request of the steps was answered 429: {report:#?}");
    drop(throttled);

    let rev = |ns: &str| {
        stdout(sandbox.kubectl().args([
            "get",
            "namespace",
            ns,
            "-o",
            "jsonpath={.metadata.labels.istio\\.io/rev}",
        ]))
    };
    assert_eq!(rev("default"), "1-28");
    let end = rollouts(&sandbox, "default");
    for (name, (generation, restarted, _)) in &start {
        let (g, r, _) = &end[name];
        assert_eq!(*g, generation + 1, "{name}: restarted once");
        assert_ne!(r, restarted, "{name}: restarted");
    }
    let (code, _, _) = run(sandbox
        .kubectl()
        .args(["get", "deployment", "istiod-1-27", "-n", "istio-system"]));
    assert_ne!(code, 0, "istiod-1-27 still there after the prune");
}
