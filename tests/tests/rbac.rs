//! Least privilege: each plugin, run through the real kubectl as a ServiceAccount bound to
//! exactly its roles from `rbac/<step>.yaml`, on the sandbox (whose API server authorizes
//! with RBAC), does its job; and with any one grant taken away (one verb on one resource of
//! one rule) it stops with exit code 1 and the API server's 403 naming that verb and
//! resource, having changed nothing.
//!
//! Each grant is taken away in turn: the roles are applied without it, `kubectl auth
//! can-i` waits until the authorizer agrees, and the one command of the step that needs
//! the grant runs. A grant that command does not need shows up as a run that succeeds; a
//! rule with no command to test it stops the test. The grants a plugin needs only after its
//! reads (to write, or to follow what it wrote: each step's `after_reading`) run in a test
//! of their own: the plugin asks the API server about them (SelfSubjectAccessReview,
//! `shared::access`) before its first write, so it must stop as cleanly as without a read
//! grant.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kubectl_mesh_e2e::{APPS, Sandbox, Snapshot, run, scratch_dir, stdout};
use serde_json::{Value, json};

/// Where the ServiceAccounts live; the sandbox reset deletes it with the bindings.
const SA_NAMESPACE: &str = "mesh-rbac";

/// One verb on one resource, granted by one rule of one role.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    /// `ClusterRole/<name>` or `Role/<namespace>/<name>`.
    role: String,
    group: String,
    resource: String,
    names: Vec<String>,
    verb: String,
}

impl Grant {
    /// The resource as `kubectl auth can-i` takes it: `resource[.group][/name]`.
    fn resource_ref(&self) -> String {
        let mut r = self.resource.clone();
        if !self.group.is_empty() {
            r = format!("{r}.{}", self.group);
        }
        if let Some(name) = self.names.first() {
            r = format!("{r}/{name}");
        }
        r
    }

    fn is(&self, verb: &str, resource: &str) -> bool {
        self.verb == verb && self.resource == resource
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.verb, self.resource_ref(), self.role)
    }
}

/// The role documents of one `rbac/<step>.yaml`.
#[derive(Debug, Clone)]
struct Roles(Vec<Value>);

impl Roles {
    fn load(step: &str) -> Roles {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../rbac")
            .join(format!("{step}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        for d in &docs {
            assert!(
                d["kind"] == "ClusterRole" || d["kind"] == "Role",
                "{}: only roles belong there, found {}",
                path.display(),
                d["kind"]
            );
        }
        Roles(docs)
    }

    fn id(doc: &Value) -> String {
        let m = &doc["metadata"];
        match doc["kind"].as_str() {
            Some("Role") => format!("Role/{}/{}", str_of(&m["namespace"]), str_of(&m["name"])),
            _ => format!("ClusterRole/{}", str_of(&m["name"])),
        }
    }

    fn grants_of(doc: &Value) -> Vec<Grant> {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().map(|s| str_of(s).to_owned()).collect())
                .unwrap_or_default()
        };
        let mut out = vec![];
        for rule in doc["rules"].as_array().into_iter().flatten() {
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        out.push(Grant {
                            role: Roles::id(doc),
                            group: group.clone(),
                            resource: resource.clone(),
                            names: strings(&rule["resourceNames"]),
                            verb,
                        });
                    }
                }
            }
        }
        out
    }

    fn grants(&self) -> Vec<Grant> {
        self.0.iter().flat_map(Roles::grants_of).collect()
    }

    /// The same roles without `gone`: each grant as a rule of its own, which authorizes
    /// exactly what the original rules do.
    fn without(&self, gone: &Grant) -> Roles {
        Roles(
            self.0
                .iter()
                .map(|doc| {
                    let rules: Vec<Value> = Roles::grants_of(doc)
                        .into_iter()
                        .filter(|g| g != gone)
                        .map(|g| {
                            let mut rule =
                                json!({"apiGroups": [g.group], "resources": [g.resource], "verbs": [g.verb]});
                            if !g.names.is_empty() {
                                rule["resourceNames"] = json!(g.names);
                            }
                            rule
                        })
                        .collect();
                    let mut d = doc.clone();
                    d["rules"] = Value::Array(rules);
                    d
                })
                .collect(),
        )
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// A step's sandbox, its ServiceAccount bound to the step's roles, and a kubeconfig that
/// authenticates as that ServiceAccount with a token from `kubectl create token`.
struct Fixture {
    /// Dropped first, while the sandbox is still held.
    cleanup: Option<EnvoyFilters>,
    sandbox: Sandbox,
    dir: PathBuf,
    roles: Roles,
    sa: String,
    kubeconfig: PathBuf,
    /// ClusterRoles bound with RoleBindings in these namespaces rather than cluster-wide.
    per_namespace: Vec<(String, Vec<String>)>,
}

impl Fixture {
    fn new(sandbox: Sandbox, step: &str, per_namespace: &[(&str, &[&str])]) -> Fixture {
        let dir = scratch_dir(&format!("rbac-{step}"));
        let sa = format!("kubectl-mesh-{step}");
        let k = |args: &[&str]| stdout(sandbox.kubectl().args(args));
        if run(sandbox.kubectl().args(["get", "namespace", SA_NAMESPACE])).0 != 0 {
            k(&["create", "namespace", SA_NAMESPACE]);
        }
        k(&["create", "serviceaccount", &sa, "-n", SA_NAMESPACE]);
        let token = sandbox.service_account_token(SA_NAMESPACE, &sa);
        let kubeconfig = sandbox.token_kubeconfig(&token, &dir.join("kubeconfig"));
        let f = Fixture {
            cleanup: None,
            sandbox,
            dir,
            roles: Roles::load(step),
            sa,
            kubeconfig,
            per_namespace: per_namespace
                .iter()
                .map(|(r, ns)| ((*r).to_owned(), ns.iter().map(|n| (*n).to_owned()).collect()))
                .collect(),
        };
        f.apply(&f.roles);
        f.bind();
        for g in f.roles.grants() {
            f.wait_allowed(&g, true);
        }
        f
    }

    fn subject(&self) -> String {
        format!("{SA_NAMESPACE}:{}", self.sa)
    }

    fn bound_in(&self, role_name: &str) -> Option<&[String]> {
        self.per_namespace
            .iter()
            .find(|(r, _)| r == role_name)
            .map(|(_, ns)| ns.as_slice())
    }

    /// A Role where it lives; a ClusterRole cluster-wide, or per namespace when so listed.
    fn bind(&self) {
        let k = |args: &[&str]| stdout(self.sandbox.kubectl().args(args));
        for doc in &self.roles.0 {
            let name = str_of(&doc["metadata"]["name"]);
            let binding = format!("{}-{name}", self.sa);
            let subject = format!("--serviceaccount={}", self.subject());
            if doc["kind"] == "Role" {
                let ns = str_of(&doc["metadata"]["namespace"]);
                k(&[
                    "create",
                    "rolebinding",
                    &binding,
                    "-n",
                    ns,
                    &format!("--role={name}"),
                    &subject,
                ]);
            } else if let Some(namespaces) = self.bound_in(name) {
                for ns in namespaces {
                    let role = format!("--clusterrole={name}");
                    k(&["create", "rolebinding", &binding, "-n", ns, &role, &subject]);
                }
            } else {
                let role = format!("--clusterrole={name}");
                k(&["create", "clusterrolebinding", &binding, &role, &subject]);
            }
        }
    }

    fn apply(&self, roles: &Roles) {
        let path = self.dir.join("roles.json");
        let list = json!({"apiVersion": "v1", "kind": "List", "items": roles.0});
        std::fs::write(&path, list.to_string()).unwrap();
        stdout(self.sandbox.kubectl().args(["apply", "-f"]).arg(&path));
    }

    /// Waits until `kubectl auth can-i` answers `want` for the grant, where it is bound.
    fn wait_allowed(&self, g: &Grant, want: bool) {
        let role_name = g.role.rsplit('/').next().unwrap_or_default();
        let scope: Vec<String> = match (g.role.split('/').nth(1), self.bound_in(role_name)) {
            (Some(ns), _) if g.role.starts_with("Role/") => vec!["-n".into(), ns.into()],
            (_, Some(namespaces)) => vec!["-n".into(), namespaces[0].clone()],
            _ => vec!["-A".into()],
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, _, _) = run(self
                .sandbox
                .kubectl()
                .args(["auth", "can-i", &g.verb, &g.resource_ref()])
                .args(&scope)
                .arg(format!("--as=system:serviceaccount:{}", self.subject())));
            if (code == 0) == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`kubectl auth can-i {} {}` still answers {} after 20 s: {}",
                g.verb,
                g.resource_ref(),
                if want { "no" } else { "yes (is it granted twice?)" },
                g
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `kubectl mesh <step> ARGS` as the ServiceAccount.
    fn run(&self, step: &str, args: &[&str]) -> (i32, String, String) {
        run(self
            .sandbox
            .plugin(step)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NO_COLOR", "1"))
    }

    fn admin(&self, args: &[&str]) -> String {
        stdout(self.sandbox.kubectl().args(args))
    }
}

/// How to get the cluster back after a run that changed it, so the next grant is tested
/// from the same state.
#[derive(Clone, Copy)]
enum PutBack {
    /// Re-create what was deleted, replace what was changed and delete what was created,
    /// from the snapshot taken when the fixture was seeded.
    FromSnapshot,
    /// A new fixture (a restarted workload cannot be made out of date again).
    Reseed,
}

/// The command of a step that needs a grant: the plugin's arguments, after `prepare` (as
/// admin) has made the state the command needs.
#[derive(Clone, Copy)]
struct Probe {
    args: &'static [&'static str],
    prepare: Option<fn(&Fixture)>,
}

impl Probe {
    const fn args(args: &'static [&'static str]) -> Probe {
        Probe { args, prepare: None }
    }

    const fn after(prepare: fn(&Fixture), args: &'static [&'static str]) -> Probe {
        Probe {
            args,
            prepare: Some(prepare),
        }
    }
}

/// What a step's least-privilege tests need to know about it.
struct Step {
    name: &'static str,
    seed: fn() -> Fixture,
    /// The command that needs the grant.
    probe: fn(&Grant) -> Probe,
    /// (verb, resource) of the grants the plugin first needs after its reads: to write, or
    /// to follow what it wrote. Only its permission check stops it cleanly without them.
    after_reading: &'static [(&'static str, &'static str)],
    put_back: PutBack,
}

impl Step {
    fn after_reading(&self, g: &Grant) -> bool {
        self.after_reading.iter().any(|(v, r)| g.is(v, r))
    }
}

/// Takes each chosen grant away in turn and runs the command that needs it. Returns the
/// fixture (a new one if it had to be reseeded) and one entry per grant that went wrong.
fn take_each_grant_away(step: &Step, mut f: Fixture, after_reading: bool) -> (Fixture, Vec<String>) {
    for (verb, resource) in step.after_reading {
        assert!(
            f.roles.grants().iter().any(|g| g.is(verb, resource)),
            "after_reading names {verb} {resource}, which rbac/{}.yaml does not grant",
            step.name
        );
    }
    let grants: Vec<Grant> = f
        .roles
        .grants()
        .into_iter()
        .filter(|g| step.after_reading(g) == after_reading)
        .collect();
    let mut baseline = Snapshot::take(&f.sandbox);
    let mut failures = vec![];
    for g in &grants {
        let probe = (step.probe)(g);
        f.apply(&f.roles.without(g));
        f.wait_allowed(g, false);
        if let Some(prepare) = probe.prepare {
            prepare(&f);
        }
        let before = Snapshot::take(&f.sandbox);
        let started = Instant::now();
        let (code, out, err) = f.run(step.name, probe.args);
        let took = started.elapsed();
        let after = Snapshot::take(&f.sandbox);
        let changes = after.changes_since(&before);
        let problems = judge(g, code, &err, &changes);
        let command = format!("kubectl mesh {} {}", step.name, probe.args.join(" "));
        println!(
            "without {g}: {command} -> exit {code} in {:.1}s{}\n  stderr: {}",
            took.as_secs_f64(),
            if problems.is_empty() {
                String::new()
            } else {
                format!("\n  PROBLEMS: {}", problems.join("; "))
            },
            err.trim_end().replace('\n', "\n          ")
        );
        if !problems.is_empty() {
            failures.push(format!(
                "without {g}: `{command}`: {}\n--- stdout:\n{out}--- stderr:\n{err}",
                problems.join("; ")
            ));
        }
        match step.put_back {
            PutBack::FromSnapshot => put_back(&f, &baseline, &after),
            PutBack::Reseed if !changes.is_empty() => {
                drop(f);
                f = (step.seed)();
                baseline = Snapshot::take(&f.sandbox);
                continue;
            }
            PutBack::Reseed => {}
        }
        f.apply(&f.roles);
        f.wait_allowed(g, true);
    }
    (f, failures)
}

/// With the whole roles, every command the step's tests use succeeds (each from the
/// seeded state, as in the loop).
fn each_command_works(step: &Step, f: &Fixture) {
    let baseline = Snapshot::take(&f.sandbox);
    let mut done: Vec<(&[&str], Option<usize>)> = vec![];
    for g in f.roles.grants() {
        let probe = (step.probe)(&g);
        let key = (probe.args, probe.prepare.map(|p| p as usize));
        if done.contains(&key) {
            continue;
        }
        done.push(key);
        if let Some(prepare) = probe.prepare {
            prepare(f);
        }
        let (code, out, err) = f.run(step.name, probe.args);
        assert_eq!(
            code,
            0,
            "with the whole roles, `kubectl mesh {} {}` failed:\n{out}\n{err}",
            step.name,
            probe.args.join(" ")
        );
        if let PutBack::FromSnapshot = step.put_back {
            put_back(f, &baseline, &Snapshot::take(&f.sandbox));
        }
    }
}

/// What is wrong with a run without `g`: it must exit 1 (the API server refused), name
/// the 403 with the verb and resource on stderr, and change nothing.
fn judge(g: &Grant, code: i32, err: &str, changes: &[String]) -> Vec<String> {
    let mut problems = vec![];
    if code != 1 {
        problems.push(format!("exit code {code}, expected 1"));
    }
    let named = err.contains(&format!("cannot {} resource \"{}\"", g.verb, g.resource))
        || err.contains(&format!("{} {}", g.verb, g.resource));
    if !err.contains("403") || !named {
        problems.push(format!("stderr does not name the 403 for `{} {}`", g.verb, g.resource));
    }
    if !changes.is_empty() {
        problems.push(format!("the cluster changed: {}", changes.join("; ")));
    }
    problems
}

/// The step's own roles: applied by the test, not part of the state it compares.
fn is_role_under_test(obj: &Value) -> bool {
    obj["metadata"]["labels"]["app.kubernetes.io/name"] == "kubectl-mesh"
}

/// Brings the cluster from `now` back to `target`: re-creates what was deleted, replaces
/// what was changed, deletes what was created.
fn put_back(f: &Fixture, target: &Snapshot, now: &Snapshot) {
    let path = f.dir.join("put-back.json");
    for (key, new) in &now.0 {
        if !target.0.contains_key(key) && !is_role_under_test(new) {
            std::fs::write(&path, new.to_string()).unwrap();
            stdout(f.sandbox.kubectl().args(["delete", "-f"]).arg(&path));
        }
    }
    for (key, old) in &target.0 {
        let current = now.0.get(key);
        if current == Some(old) || is_role_under_test(old) {
            continue;
        }
        let mut obj = old.clone();
        if let Some(meta) = obj["metadata"].as_object_mut() {
            for k in ["uid", "creationTimestamp", "generation", "deletionTimestamp"] {
                meta.remove(k);
            }
        }
        std::fs::write(&path, obj.to_string()).unwrap();
        let terminating = current.is_some_and(|c| !c["metadata"]["deletionTimestamp"].is_null());
        if current.is_none() || terminating {
            // Foreground deletion: the object stays until its dependents are gone.
            let _ = run(f
                .sandbox
                .kubectl()
                .args(["wait", "--for=delete", "--timeout=60s", "-f"])
                .arg(&path));
            stdout(f.sandbox.kubectl().args(["create", "-f"]).arg(&path));
        } else {
            stdout(f.sandbox.kubectl().args(["replace", "-f"]).arg(&path));
        }
    }
}

// ---------------------------------------------------------------- revisions

const REVISIONS: Step = Step {
    name: "revisions",
    seed: || Fixture::new(Sandbox::fresh("canary"), "revisions", &[]),
    probe: |_| Probe::args(&[]),
    after_reading: &[],
    put_back: PutBack::FromSnapshot,
};

#[test]
fn revisions_runs_with_its_role_and_stops_cleanly_without_any_grant() {
    let (f, failures) = take_each_grant_away(&REVISIONS, (REVISIONS.seed)(), false);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    each_command_works(&REVISIONS, &f);

    let (code, out, err) = f.run("revisions", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("1-27 (default)") && out.contains("1-28"), "{out}");
    assert!(out.contains("All 9 proxies are up to date."), "{out}");
    let (code, out, err) = f.run("revisions", &["--proxies", "-n", "default"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("webapp"), "{out}");
}

// ---------------------------------------------------------------- relabel

/// The Service an install that lists the tag in `revisionTags` makes for it; the sandbox's
/// canary install has none, so the tag move's Service rules are tested with this one.
const TAG_SERVICE: &str = r#"{"apiVersion": "v1", "kind": "Service",
 "metadata": {"name": "istiod-revision-tag-default", "namespace": "istio-system",
   "labels": {"app": "istiod", "istio.io/rev": "1-27", "istio.io/tag": "default"}},
 "spec": {"selector": {"app": "istiod", "istio.io/rev": "1-27"},
   "ports": [{"name": "https-webhook", "port": 443, "targetPort": 15017},
             {"name": "grpc-xds", "port": 15010}, {"name": "https-dns", "port": 15012}]}}"#;

/// The canary scenario, the Service above, and a second tag `prod` (made by relabel as
/// admin) for `--remove`.
fn relabel_seed() -> Fixture {
    let f = Fixture::new(Sandbox::fresh("canary"), "relabel", &[]);
    let path = f.dir.join("tag-service.json");
    std::fs::write(&path, TAG_SERVICE).unwrap();
    stdout(f.sandbox.kubectl().args(["apply", "-f"]).arg(&path));
    stdout(f.sandbox.plugin("relabel").args(["--tag", "prod", "--to", "1-27"]));
    f
}

/// An install without istiod-default-validator: moving the default tag creates it.
fn without_validator(f: &Fixture) {
    f.admin(&["delete", "validatingwebhookconfiguration", "istiod-default-validator"]);
}

/// istiod-default-validator created by a relabel (as admin): its --undo deletes it.
fn validator_made_by_relabel(f: &Fixture) {
    without_validator(f);
    stdout(f.sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));
}

const RELABEL_NAMESPACE: Probe = Probe::args(&["--to", "1-28", "-n", "default"]);
const RELABEL_ALL: Probe = Probe::args(&["--from", "1-27", "--to", "1-28", "-A"]);
const MOVE_DEFAULT: Probe = Probe::args(&["--tag", "default", "--to", "1-28"]);
const NEW_TAG: Probe = Probe::args(&["--tag", "canary", "--to", "1-28"]);
const REMOVE_TAG: Probe = Probe::args(&["--tag", "prod", "--remove"]);
const MAKE_VALIDATOR: Probe = Probe::after(without_validator, &["--tag", "default", "--to", "1-28"]);
const UNMAKE_VALIDATOR: Probe = Probe::after(validator_made_by_relabel, &["--tag", "default", "--undo"]);

const RELABEL: Step = Step {
    name: "relabel",
    seed: relabel_seed,
    probe: |g| match (g.verb.as_str(), g.resource.as_str(), g.role.as_str()) {
        ("list", "namespaces", _) => RELABEL_ALL,
        (_, _, "ClusterRole/kubectl-mesh-relabel") => RELABEL_NAMESPACE,
        ("create", "mutatingwebhookconfigurations" | "services", _) => NEW_TAG,
        ("delete", "mutatingwebhookconfigurations" | "services", _) => REMOVE_TAG,
        ("create", "validatingwebhookconfigurations", _) => MAKE_VALIDATOR,
        ("delete", "validatingwebhookconfigurations", _) => UNMAKE_VALIDATOR,
        (_, _, "ClusterRole/kubectl-mesh-relabel-tag" | "Role/istio-system/kubectl-mesh-relabel-tag") => MOVE_DEFAULT,
        _ => panic!("no command of relabel tests {g}"),
    },
    after_reading: &[
        ("patch", "namespaces"),
        ("list", "services"),
        ("create", "services"),
        ("update", "services"),
        ("delete", "services"),
        ("get", "validatingwebhookconfigurations"),
        ("create", "validatingwebhookconfigurations"),
        ("update", "validatingwebhookconfigurations"),
        ("delete", "validatingwebhookconfigurations"),
    ],
    put_back: PutBack::FromSnapshot,
};

#[test]
fn relabel_runs_with_its_roles_and_stops_cleanly_without_any_grant() {
    let (f, failures) = take_each_grant_away(&RELABEL, (RELABEL.seed)(), false);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    each_command_works(&RELABEL, &f);
    relabel_works(&f);
}

#[test]
fn relabel_without_a_grant_it_needs_after_reading_stops_before_writing() {
    let (_, failures) = take_each_grant_away(&RELABEL, (RELABEL.seed)(), true);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn namespace_rev(f: &Fixture) -> String {
    f.admin(&[
        "get",
        "namespace",
        "default",
        "-o",
        "jsonpath={.metadata.labels.istio\\.io/rev}",
    ])
}

fn relabel_works(f: &Fixture) {
    let ok = |args: &[&str]| {
        let (code, out, err) = f.run("relabel", args);
        assert_eq!(code, 0, "relabel {args:?}:\n{out}\n{err}");
    };
    ok(&["--to", "1-28", "-n", "default"]);
    assert_eq!(namespace_rev(f), "1-28");
    ok(&["--undo", "-n", "default"]);
    assert_eq!(namespace_rev(f), "1-27");
    ok(&["--from", "1-27", "--to", "1-28", "-A"]);
    assert_eq!(namespace_rev(f), "1-28");

    ok(&["--tag", "default", "--to", "1-28"]);
    let rev = |kind: &str, name: &str, ns: &[&str]| {
        let mut args = vec!["get", kind, name, "-o", "jsonpath={.metadata.labels.istio\\.io/rev}"];
        args.extend_from_slice(ns);
        f.admin(&args)
    };
    assert_eq!(
        rev("mutatingwebhookconfiguration", "istio-revision-tag-default", &[]),
        "1-28"
    );
    assert_eq!(
        rev("validatingwebhookconfiguration", "istiod-default-validator", &[]),
        "1-28"
    );
    assert_eq!(
        rev("service", "istiod-revision-tag-default", &["-n", "istio-system"]),
        "1-28"
    );
    ok(&["--tag", "canary", "--to", "1-28"]);
    assert_eq!(
        rev("mutatingwebhookconfiguration", "istio-revision-tag-canary", &[]),
        "1-28"
    );
    ok(&["--tag", "prod", "--remove"]);
    let (code, _, _) =
        run(f
            .sandbox
            .kubectl()
            .args(["get", "mutatingwebhookconfiguration", "istio-revision-tag-prod"]));
    assert_ne!(code, 0, "tag prod still there");
}

// ---------------------------------------------------------------- roll

/// A StatefulSet and a DaemonSet injected by 1-27, beside the fleetman Deployments.
const KINDS_NAMESPACE: &str = "mesh-rbac-kinds";
const KINDS_MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: mesh-rbac-kinds, labels: {istio.io/rev: 1-27}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: mesh-rbac-kinds, labels: {app: db}}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:16}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: mesh-rbac-kinds, labels: {app: agent}}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: busybox:1.36}]
"#;

/// The label that picks webapp out of the fleetman Deployments for `roll -l`.
const PROBE_LABEL: &str = "kubectl-mesh.test/probe=true";

fn roll_seed() -> Fixture {
    let sandbox = Sandbox::fresh("canary");
    let path = scratch_dir("rbac-roll-kinds").join("kinds.yaml");
    std::fs::write(&path, KINDS_MANIFEST).unwrap();
    stdout(sandbox.kubectl().args(["apply", "-f"]).arg(&path));
    for w in ["statefulset/db", "daemonset/agent"] {
        stdout(
            sandbox
                .kubectl()
                .args(["rollout", "status", w, "-n", KINDS_NAMESPACE, "--timeout=120s"]),
        );
    }
    stdout(
        sandbox
            .kubectl()
            .args(["label", "deployment/webapp", "-n", "default", PROBE_LABEL]),
    );
    for ns in ["default", KINDS_NAMESPACE] {
        stdout(
            sandbox
                .kubectl()
                .args(["label", "namespace", ns, "istio.io/rev=1-28", "--overwrite"]),
        );
    }
    Fixture::new(
        sandbox,
        "roll",
        &[("kubectl-mesh-roll-restart", &["default", KINDS_NAMESPACE])],
    )
}

const ROLL_WEBAPP: &[&str] = &["-n", "default", "-l", PROBE_LABEL, "--timeout", "20s"];
// One replica: its restart takes it to 0 ready pods, which roll holds back unless allowed.
const ROLL_DB: &[&str] = &[
    "-n",
    KINDS_NAMESPACE,
    "-l",
    "app=db",
    "--timeout",
    "20s",
    "--allow-downtime",
];
const ROLL_AGENT: &[&str] = &["-n", KINDS_NAMESPACE, "-l", "app=agent", "--timeout", "20s"];

const ROLL: Step = Step {
    name: "roll",
    seed: roll_seed,
    probe: |g| {
        Probe::args(match g.resource.as_str() {
            "statefulsets" => ROLL_DB,
            "daemonsets" | "controllerrevisions" => ROLL_AGENT,
            _ => ROLL_WEBAPP,
        })
    },
    after_reading: &[
        ("get", "deployments"),
        ("patch", "deployments"),
        ("watch", "deployments"),
        ("get", "statefulsets"),
        ("patch", "statefulsets"),
        ("watch", "statefulsets"),
        ("get", "daemonsets"),
        ("patch", "daemonsets"),
        ("watch", "daemonsets"),
        ("list", "controllerrevisions"),
    ],
    put_back: PutBack::Reseed,
};

#[test]
fn roll_runs_with_its_roles_and_stops_cleanly_without_any_grant() {
    let (f, failures) = take_each_grant_away(&ROLL, (ROLL.seed)(), false);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    roll_works(&f);
}

#[test]
fn roll_without_a_grant_it_needs_to_restart_stops_before_restarting() {
    let (_, failures) = take_each_grant_away(&ROLL, (ROLL.seed)(), true);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn generation(f: &Fixture, ns: &str, workload: &str) -> String {
    f.admin(&["get", workload, "-n", ns, "-o", "jsonpath={.metadata.generation}"])
}

fn roll_works(f: &Fixture) {
    let others: Vec<String> = APPS
        .iter()
        .filter(|a| **a != "webapp")
        .map(|a| generation(f, "default", &format!("deployment/{a}")))
        .collect();
    for (args, ns, workload) in [
        (ROLL_WEBAPP, "default", "deployment/webapp"),
        (ROLL_DB, KINDS_NAMESPACE, "statefulset/db"),
        (ROLL_AGENT, KINDS_NAMESPACE, "daemonset/agent"),
    ] {
        let before = generation(f, ns, workload);
        let (code, out, err) = f.run("roll", args);
        assert_eq!(code, 0, "roll {args:?}:\n{out}\n{err}");
        assert!(out.contains("1 done, 0 failed"), "{out}");
        assert_ne!(generation(f, ns, workload), before, "{workload} was not restarted");
    }
    // Only the chosen Deployment was restarted.
    let after: Vec<String> = APPS
        .iter()
        .filter(|a| **a != "webapp")
        .map(|a| generation(f, "default", &format!("deployment/{a}")))
        .collect();
    assert_eq!(after, others, "-l restarted other Deployments");
}

// ---------------------------------------------------------------- prune

/// Istio's EnvoyFilter CRD (schema left open): the sandbox has no Istio CRDs, and prune
/// deletes EnvoyFilters.
const ENVOYFILTER_CRD: &str = r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
 "metadata": {"name": "envoyfilters.networking.istio.io"},
 "spec": {"group": "networking.istio.io", "scope": "Namespaced",
   "names": {"kind": "EnvoyFilter", "listKind": "EnvoyFilterList", "plural": "envoyfilters", "singular": "envoyfilter"},
   "versions": [{"name": "v1alpha3", "served": true, "storage": true,
     "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}"#;

/// One object of each kind prune deletes that the demo profile does not install, labelled
/// as revision 1-27's, so that every delete rule is used.
const PRUNE_EXTRAS: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: istio-extra-1-27
  namespace: istio-system
  labels: {istio.io/rev: 1-27, operator.istio.io/component: Pilot}
stringData: {note: made by tests/tests/rbac.rs}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: istiod-1-27
  namespace: istio-system
  labels: {istio.io/rev: 1-27, operator.istio.io/component: Pilot}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: istiod-1-27}
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: istio-cni-node-1-27
  namespace: istio-system
  labels: {istio.io/rev: 1-27, operator.istio.io/component: Cni}
spec:
  selector: {matchLabels: {k8s-app: istio-cni-node-1-27}}
  template:
    metadata: {labels: {k8s-app: istio-cni-node-1-27}}
    spec:
      nodeSelector: {kubectl-mesh.test/no-such-node: "true"}
      containers: [{name: install-cni, image: docker.io/istio/install-cni:1.27.4}]
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: istio-extra-1-27
  namespace: istio-system
  labels: {istio.io/rev: 1-27, operator.istio.io/component: Pilot}
spec: {configPatches: []}
"#;

/// Deletes the test's EnvoyFilters when dropped (the sandbox reset keeps objects of CRDs in
/// istio-system, and other tests compare everything prune deletes).
struct EnvoyFilters(PathBuf);

impl EnvoyFilters {
    fn delete(kubeconfig: &Path) {
        let _ = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["delete", "envoyfilters.networking.istio.io", "-n", "istio-system"])
            .args(["-l", "istio.io/rev", "--ignore-not-found", "--wait=false"])
            .output();
    }
}

impl Drop for EnvoyFilters {
    fn drop(&mut self) {
        EnvoyFilters::delete(&self.0);
    }
}

/// The canary upgrade done but STEP 4, as admin: default relabelled, every app restarted,
/// the default tag moved. 1-27 is unused, and prune may remove it.
fn prune_seed() -> Fixture {
    let sandbox = Sandbox::fresh("canary");
    let k = |args: &[&str]| stdout(sandbox.kubectl().args(args));
    k(&["label", "namespace", "default", "istio.io/rev=1-28", "--overwrite"]);
    k(&["rollout", "restart", "deployment", "-n", "default"]);
    for app in APPS {
        k(&[
            "rollout",
            "status",
            &format!("deployment/{app}"),
            "-n",
            "default",
            "--timeout=180s",
        ]);
    }
    stdout(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));
    let dir = scratch_dir("rbac-prune-extras");
    std::fs::write(dir.join("crd.json"), ENVOYFILTER_CRD).unwrap();
    std::fs::write(dir.join("extras.yaml"), PRUNE_EXTRAS).unwrap();
    EnvoyFilters::delete(&sandbox.kubeconfig);
    stdout(sandbox.kubectl().args(["apply", "-f"]).arg(dir.join("crd.json")));
    k(&[
        "wait",
        "--for=condition=Established",
        "crd/envoyfilters.networking.istio.io",
        "--timeout=60s",
    ]);
    let mut f = Fixture::new(sandbox, "prune", &[]);
    f.cleanup = Some(EnvoyFilters(f.sandbox.kubeconfig.clone()));
    stdout(f.sandbox.kubectl().args(["apply", "-f"]).arg(dir.join("extras.yaml")));
    f
}

const PRUNE_ARGS: &[&str] = &["1-27", "--yes"];

const PRUNE: Step = Step {
    name: "prune",
    seed: prune_seed,
    probe: |_| Probe::args(PRUNE_ARGS),
    after_reading: &[
        ("delete", "mutatingwebhookconfigurations"),
        ("watch", "mutatingwebhookconfigurations"),
        ("delete", "validatingwebhookconfigurations"),
        ("watch", "validatingwebhookconfigurations"),
        ("delete", "clusterrolebindings"),
        ("watch", "clusterrolebindings"),
        ("delete", "clusterroles"),
        ("watch", "clusterroles"),
        ("delete", "deployments"),
        ("watch", "deployments"),
        ("delete", "daemonsets"),
        ("watch", "daemonsets"),
        ("delete", "horizontalpodautoscalers"),
        ("watch", "horizontalpodautoscalers"),
        ("delete", "poddisruptionbudgets"),
        ("watch", "poddisruptionbudgets"),
        ("delete", "pods"),
        ("watch", "pods"),
        ("delete", "services"),
        ("watch", "services"),
        ("delete", "configmaps"),
        ("watch", "configmaps"),
        ("delete", "secrets"),
        ("watch", "secrets"),
        ("delete", "serviceaccounts"),
        ("watch", "serviceaccounts"),
        ("delete", "envoyfilters"),
        ("watch", "envoyfilters"),
        ("delete", "rolebindings"),
        ("watch", "rolebindings"),
        ("delete", "roles"),
        ("watch", "roles"),
    ],
    put_back: PutBack::FromSnapshot,
};

#[test]
fn prune_runs_with_its_roles_and_stops_cleanly_without_any_grant() {
    let (f, failures) = take_each_grant_away(&PRUNE, (PRUNE.seed)(), false);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    let before = Snapshot::take(&f.sandbox);
    let (code, out, err) = f.run("prune", PRUNE_ARGS);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Revision 1-27 pruned"), "{out}");
    let gone = Snapshot::take(&f.sandbox).changes_since(&before);
    for kind in [
        "MutatingWebhookConfiguration istio-sidecar-injector-1-27",
        "Deployment istio-system/istiod-1-27",
        "DaemonSet istio-system/istio-cni-node-1-27",
        "HorizontalPodAutoscaler istio-system/istiod-1-27",
        "Secret istio-system/istio-extra-1-27",
        "EnvoyFilter istio-system/istio-extra-1-27",
        "ClusterRole istiod-clusterrole-1-27-istio-system",
    ] {
        assert!(
            gone.contains(&format!("deleted {kind}")),
            "{kind} not deleted: {gone:#?}"
        );
    }
    assert!(
        gone.iter().all(|c| c.starts_with("deleted ")),
        "prune only deletes: {gone:#?}"
    );
}

#[test]
fn prune_without_a_grant_it_needs_to_delete_stops_before_deleting() {
    let (_, failures) = take_each_grant_away(&PRUNE, (PRUNE.seed)(), true);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
