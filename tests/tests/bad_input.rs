//! Bad input, as a user types it, through the real kubectl on the sandbox: each case must
//! print a message naming what is wrong and what to do, exit with the code README.md's
//! table documents for it, and leave the cluster exactly as it was (every object a step
//! could write, compared before and after: `Snapshot`).
//!
//! Cases whose outcome cannot depend on the cluster's state (they fail before reading it)
//! run on the sandbox as the previous test left it (`Sandbox::as_left`); the others on a
//! fresh scenario.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kubectl_mesh_e2e::{APPS, Sandbox, Snapshot, run, scratch_dir, stdout};

/// What one run printed.
struct Ran {
    what: String,
    code: i32,
    out: String,
    err: String,
}

impl Ran {
    /// Exit code `code`, and every needle on stderr.
    fn fails(&self, code: i32, needles: &[&str]) -> &Ran {
        assert_eq!(self.code, code, "{self}");
        for n in needles {
            assert!(self.err.contains(n), "stderr lacks {n:?}: {self}");
        }
        self
    }

    /// Exit code 0, and every needle on stdout.
    fn succeeds(&self, needles: &[&str]) -> &Ran {
        assert_eq!(self.code, 0, "{self}");
        for n in needles {
            assert!(self.out.contains(n), "stdout lacks {n:?}: {self}");
        }
        self
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {}\n--- stdout:\n{}--- stderr:\n{}",
            self.what, self.code, self.out, self.err
        )
    }
}

/// `kubectl mesh <step> ARGS` (with KUBECONFIG set to `kubeconfig` when given, else the
/// sandbox admin's), asserting that it changed nothing in the cluster.
fn mesh_as(sandbox: &Sandbox, kubeconfig: Option<&Path>, step: &str, args: &[&str]) -> Ran {
    let before = Snapshot::take(sandbox);
    let mut cmd = sandbox.plugin(step);
    cmd.args(args).env("NO_COLOR", "1");
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    let (code, out, err) = run(&mut cmd);
    let ran = Ran {
        what: format!("kubectl mesh {step} {}", args.join(" ")),
        code,
        out,
        err,
    };
    let changes = Snapshot::take(sandbox).changes_since(&before);
    assert!(
        changes.is_empty(),
        "the cluster changed:\n  {}\n{ran}",
        changes.join("\n  ")
    );
    ran
}

fn mesh(sandbox: &Sandbox, step: &str, args: &[&str]) -> Ran {
    mesh_as(sandbox, None, step, args)
}

/// A kubeconfig for the sandbox with `edit` applied to the admin's text.
fn edited_kubeconfig(sandbox: &Sandbox, dir: &Path, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(&sandbox.kubeconfig).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, edit(&text)).unwrap();
    path
}

fn admin(sandbox: &Sandbox, args: &[&str]) -> String {
    stdout(sandbox.kubectl().args(args))
}

// ---------------------------------------------------------------- names

#[test]
fn an_unknown_revision_is_named_with_those_that_exist() {
    let sandbox = Sandbox::as_left("canary");
    // prune: a revision that does not exist is a usage error.
    mesh(&sandbox, "prune", &["1-26", "--yes"])
        .fails(2, &["revision 1-26 not found", "1-28", "see `kubectl mesh revisions`"]);
    // relabel: a missing target is refused (README: "The target must exist").
    mesh(&sandbox, "relabel", &["--to", "1-26", "-n", "default"]).fails(
        4,
        &["1-26 is neither a revision nor a tag", "1-28", "kubectl mesh revisions"],
    );
    mesh(&sandbox, "roll", &["-n", "default", "--revision", "1-26"]).fails(2, &["--revision 1-26", "1-28"]);
}

#[test]
fn prune_of_a_tag_says_that_prune_takes_a_revision() {
    let sandbox = Sandbox::fresh("canary");
    mesh(&sandbox, "prune", &["default", "--yes"]).fails(
        2,
        &[
            "default is a revision tag (pointing to 1-27), not a revision",
            "prune takes a revision",
            "kubectl mesh revisions",
        ],
    );
}

#[test]
fn moving_a_tag_to_a_tag_is_a_usage_error() {
    let sandbox = Sandbox::fresh("canary");
    mesh(&sandbox, "relabel", &["--tag", "canary", "--to", "default"]).fails(2, &["default is a tag", "use --to 1-27"]);
}

#[test]
fn an_invalid_name_is_a_usage_error() {
    let sandbox = Sandbox::fresh("canary");
    mesh(&sandbox, "roll", &["-n", "default", "--revision", "Bad/Name"]).fails(2, &["--revision Bad/Name", "1-27"]);
    mesh(&sandbox, "relabel", &["--to", "1-28", "-n", "Bad/Name"])
        .fails(2, &["namespace \"Bad/Name\" not found", "kubectl get namespaces"]);
}

#[test]
fn an_invalid_namespace_name_is_a_usage_error() {
    let sandbox = Sandbox::fresh("canary");
    let needles = ["namespace \"Bad/Name\"", "kubectl get namespaces"];
    mesh(&sandbox, "revisions", &["-n", "Bad/Name"]).fails(2, &needles);
    mesh(&sandbox, "roll", &["-n", "Bad/Name"]).fails(2, &needles);
}

#[test]
fn prune_of_an_invalid_revision_name_is_a_usage_error() {
    let sandbox = Sandbox::fresh("canary");
    mesh(&sandbox, "prune", &["Bad/Name", "--yes"]).fails(2, &["Bad/Name", "kubectl mesh revisions"]);
}

#[test]
fn relabel_to_an_invalid_revision_name_is_a_usage_error() {
    let sandbox = Sandbox::fresh("canary");
    mesh(&sandbox, "relabel", &["--to", "Bad/Name", "-n", "default"]).fails(2, &["Bad/Name", "kubectl mesh revisions"]);
}

#[test]
fn an_unknown_namespace_is_named() {
    let sandbox = Sandbox::fresh("canary");
    let needles = ["namespace \"nope\" not found", "kubectl get namespaces"];
    mesh(&sandbox, "relabel", &["--to", "1-28", "-n", "nope"]).fails(2, &needles);
    mesh(&sandbox, "roll", &["-n", "nope"]).fails(2, &needles);
    mesh(&sandbox, "revisions", &["-n", "nope"]).fails(2, &needles);
}

#[test]
fn an_unknown_tag_is_named_with_those_that_exist() {
    let sandbox = Sandbox::fresh("canary");
    mesh(&sandbox, "relabel", &["--tag", "nope", "--undo"]).fails(2, &["revision tag nope", "default"]);
}

#[test]
fn relabel_from_an_unknown_revision_is_named() {
    let sandbox = Sandbox::fresh("canary");
    mesh(&sandbox, "relabel", &["--from", "1-72", "--to", "1-28", "-A"]).fails(2, &["1-72", "1-27"]);
}

// ---------------------------------------------------------------- connection

#[test]
fn a_malformed_kubeconfig_is_named() {
    let sandbox = Sandbox::as_left("canary");
    let dir = scratch_dir("bad-input-malformed");
    let bad = edited_kubeconfig(&sandbox, &dir, "malformed.yaml", |_| {
        "apiVersion: v1\nkind: Config\nclusters: [\n".into()
    });
    let file = format!("kubeconfig {} is malformed", bad.display());
    for (step, args) in [
        ("relabel", &["--to", "1-28", "-n", "default"][..]),
        ("prune", &["1-27", "--yes"][..]),
    ] {
        mesh_as(&sandbox, Some(&bad), step, args).fails(1, &[&file, "line 3"]);
    }
}

#[test]
fn a_missing_kubeconfig_is_named() {
    let sandbox = Sandbox::as_left("canary");
    let missing = scratch_dir("bad-input-missing").join("nope.yaml");
    let flag = missing.to_str().unwrap();
    mesh(
        &sandbox,
        "relabel",
        &["--kubeconfig", flag, "--to", "1-28", "-n", "default"],
    )
    .fails(1, &[&format!("kubeconfig {flag} does not exist (from --kubeconfig)")]);
    mesh_as(&sandbox, Some(&missing), "roll", &["-n", "default"]).fails(
        1,
        &[&format!("no kubeconfig found (looked at {flag})"), "--kubeconfig PATH"],
    );
}

#[test]
fn an_unknown_context_lists_the_known_ones() {
    let sandbox = Sandbox::as_left("canary");
    let needles = ["context \"nope\" is not in the kubeconfig", "known contexts: sandbox"];
    mesh(
        &sandbox,
        "relabel",
        &["--to", "1-28", "-n", "default", "--context", "nope"],
    )
    .fails(2, &needles);
    mesh(&sandbox, "roll", &["-n", "default", "--context", "nope"]).fails(2, &needles);
    mesh(&sandbox, "prune", &["1-27", "--yes", "--context", "nope"]).fails(2, &needles);
}

#[test]
fn no_current_context_says_how_to_choose_one() {
    let sandbox = Sandbox::as_left("canary");
    let dir = scratch_dir("bad-input-no-context");
    let kubeconfig = edited_kubeconfig(&sandbox, &dir, "kubeconfig", |t| {
        t.lines()
            .filter(|l| !l.starts_with("current-context:"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    mesh_as(
        &sandbox,
        Some(&kubeconfig),
        "relabel",
        &["--to", "1-28", "-n", "default"],
    )
    .fails(1, &["no current context", "--context NAME"]);
}

#[test]
fn an_invalid_or_revoked_token_is_rejected_as_401() {
    let sandbox = Sandbox::as_left("canary");
    let dir = scratch_dir("bad-input-token");
    let garbage = sandbox.token_kubeconfig("not-a-real-token", &dir.join("garbage"));
    // A real token whose ServiceAccount is gone: what a revoked or stale token gets.
    admin(&sandbox, &["create", "serviceaccount", "mesh-revoked", "-n", "default"]);
    let token = sandbox.service_account_token("default", "mesh-revoked");
    admin(&sandbox, &["delete", "serviceaccount", "mesh-revoked", "-n", "default"]);
    let revoked = sandbox.token_kubeconfig(&token, &dir.join("revoked"));
    let needles = ["rejected the credentials (401 Unauthorized)", "log in again"];
    for kubeconfig in [&garbage, &revoked] {
        mesh_as(
            &sandbox,
            Some(kubeconfig),
            "relabel",
            &["--to", "1-28", "-n", "default"],
        )
        .fails(1, &needles);
        mesh_as(&sandbox, Some(kubeconfig), "prune", &["1-27", "--yes"]).fails(1, &needles);
    }
}

#[test]
fn an_unreachable_server_is_named() {
    let sandbox = Sandbox::as_left("canary");
    let dir = scratch_dir("bad-input-unreachable");
    let url = sandbox.server_url();
    // Nothing listens on port 1.
    let kubeconfig = edited_kubeconfig(&sandbox, &dir, "kubeconfig", |t| t.replace(&url, "https://127.0.0.1:1"));
    let needles = [
        "cannot reach the Kubernetes API server at https://127.0.0.1:1",
        "Connection refused",
        "--context",
    ];
    mesh_as(
        &sandbox,
        Some(&kubeconfig),
        "relabel",
        &["--to", "1-28", "-n", "default"],
    )
    .fails(1, &needles);
    mesh_as(&sandbox, Some(&kubeconfig), "roll", &["-n", "default"]).fails(1, &needles);
}

/// The admin kubeconfig without the cluster CA: the sandbox's certificate is then signed
/// by a CA nobody trusts.
fn untrusting_kubeconfig(sandbox: &Sandbox, test: &str) -> PathBuf {
    let dir = scratch_dir(test);
    edited_kubeconfig(sandbox, &dir, "kubeconfig", |t| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("certificate-authority-data:"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[test]
fn a_server_certificate_signed_by_an_unknown_ca_is_not_trusted() {
    let sandbox = Sandbox::as_left("canary");
    let kubeconfig = untrusting_kubeconfig(&sandbox, "bad-input-untrusted");
    // The credentials are the admin's: were verification skipped, these would succeed.
    mesh_as(
        &sandbox,
        Some(&kubeconfig),
        "relabel",
        &["--to", "1-28", "-n", "default"],
    )
    .fails(1, &["certificate"]);
    mesh_as(&sandbox, Some(&kubeconfig), "prune", &["1-27", "--yes"]).fails(1, &["certificate"]);
}

#[test]
fn an_untrusted_server_certificate_is_named_with_how_to_trust_it() {
    let sandbox = Sandbox::as_left("canary");
    let kubeconfig = untrusting_kubeconfig(&sandbox, "bad-input-untrusted-message");
    let ran = mesh_as(&sandbox, Some(&kubeconfig), "revisions", &[]);
    ran.fails(1, &["certificate", "certificate-authority"]);
    assert!(!ran.err.contains("cannot reach"), "{ran}");
}

// ---------------------------------------------------------------- flags

#[test]
fn conflicting_flags_are_usage_errors() {
    let sandbox = Sandbox::as_left("canary");
    for (step, args, needle) in [
        (
            "relabel",
            &["--tag", "default", "--to", "1-28", "-n", "default"][..],
            "'--tag <TAG>' cannot be used with",
        ),
        (
            "relabel",
            &["--to", "1-28", "--undo", "-n", "default"][..],
            "cannot be used with",
        ),
        (
            "relabel",
            &["--to", "1-28", "-n", "default", "-A"][..],
            "cannot be used with",
        ),
        (
            "roll",
            &["--one-at-a-time", "--max-parallel", "3"][..],
            "'--one-at-a-time' cannot be used with",
        ),
        ("revisions", &["--namespaces", "--proxies"][..], "cannot be used with"),
    ] {
        mesh(&sandbox, step, args).fails(2, &[needle, "Usage: kubectl mesh", "--help"]);
    }
}

#[test]
fn an_unknown_output_format_is_a_usage_error() {
    let sandbox = Sandbox::as_left("canary");
    for (step, args) in [
        ("revisions", &[][..]),
        ("relabel", &["--to", "1-28", "-n", "default"][..]),
        ("roll", &["-n", "default"][..]),
        ("prune", &["1-27", "--yes"][..]),
    ] {
        let mut all = args.to_vec();
        all.extend(["-o", "bogus"]);
        mesh(&sandbox, step, &all).fails(
            2,
            &[
                "invalid value 'bogus' for '--output <FORMAT>'",
                "table, wide, json, yaml",
            ],
        );
    }
}

#[test]
fn relabel_without_namespaces_says_how_to_choose_them() {
    let sandbox = Sandbox::as_left("canary");
    mesh(&sandbox, "relabel", &["--to", "1-28"]).fails(
        2,
        &["choose the namespaces to relabel", "-n NAMESPACE", "-l SELECTOR", "-A"],
    );
}

#[test]
fn bad_durations_are_usage_errors() {
    let sandbox = Sandbox::as_left("canary");
    mesh(&sandbox, "roll", &["-n", "default", "--timeout", "0"]).fails(2, &["--timeout must be more than 0", "5m"]);
    mesh(&sandbox, "prune", &["1-27", "--timeout", "5x"]).fails(2, &["invalid duration \"5x\"", "ms, s, m, h"]);
    mesh(
        &sandbox,
        "relabel",
        &["--to", "1-28", "-n", "default", "--request-timeout", "soon"],
    )
    .fails(2, &["invalid duration \"soon\""]);
}

#[test]
fn prune_without_a_revision_says_to_name_one() {
    let sandbox = Sandbox::as_left("canary");
    mesh(&sandbox, "prune", &["--yes"]).fails(2, &["<REVISION>", "Usage: kubectl mesh prune"]);
    mesh(&sandbox, "prune", &["", "--yes"]).fails(2, &["the revision to prune is required", "kubectl mesh prune 1-27"]);
}

#[test]
fn an_invalid_label_selector_is_a_usage_error() {
    let sandbox = Sandbox::fresh("canary");
    mesh(&sandbox, "relabel", &["--to", "1-28", "-l", "app in (("]).fails(2, &["invalid label selector \"app in ((\""]);
    mesh(&sandbox, "roll", &["-n", "default", "-l", "app in (("]).fails(2, &["not a valid label selector"]);
}

// ---------------------------------------------------------------- refusals and nothing to do

/// Waits until the Deployment reports no ready replica.
fn wait_not_ready(sandbox: &Sandbox, ns: &str, deployment: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = admin(
            sandbox,
            &[
                "get",
                "deployment",
                deployment,
                "-n",
                ns,
                "-o",
                "jsonpath={.status.readyReplicas}",
            ],
        );
        if ready.trim().is_empty() || ready.trim() == "0" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{deployment} still has {ready} ready replicas"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn relabel_to_a_revision_whose_istiod_is_not_ready_is_refused() {
    let sandbox = Sandbox::fresh("canary");
    admin(
        &sandbox,
        &["scale", "deployment/istiod-1-28", "-n", "istio-system", "--replicas=0"],
    );
    wait_not_ready(&sandbox, "istio-system", "istiod-1-28");
    let needles = ["1-28", "is not ready", "--force"];
    mesh(&sandbox, "relabel", &["--to", "1-28", "-n", "default"]).fails(4, &needles);
    mesh(&sandbox, "relabel", &["--from", "1-27", "--to", "1-28", "-A"]).fails(4, &needles);
    mesh(&sandbox, "relabel", &["--tag", "default", "--to", "1-28"]).fails(4, &needles);
}

#[test]
fn prune_of_a_revision_in_use_is_refused_naming_each_user() {
    let sandbox = Sandbox::fresh("canary");
    mesh(&sandbox, "prune", &["1-27", "--yes"]).fails(
        4,
        &[
            "refusing to prune revision 1-27: it is still in use; nothing was deleted",
            "namespace default is labelled istio.io/rev=1-27",
            "kubectl mesh relabel --from 1-27 --to 1-28 -A",
            "kubectl mesh roll -n default",
        ],
    );
}

/// STEP 2 and 3 of the canary upgrade, as admin: default relabelled and every app
/// restarted onto 1-28; the default tag still points to 1-27.
fn apps_moved_to_1_28(sandbox: &Sandbox) {
    admin(
        sandbox,
        &["label", "namespace", "default", "istio.io/rev=1-28", "--overwrite"],
    );
    admin(sandbox, &["rollout", "restart", "deployment", "-n", "default"]);
    for app in APPS {
        admin(
            sandbox,
            &[
                "rollout",
                "status",
                &format!("deployment/{app}"),
                "-n",
                "default",
                "--timeout=180s",
            ],
        );
    }
}

#[test]
fn prune_of_the_revision_the_default_tag_points_to_is_refused() {
    let sandbox = Sandbox::fresh("canary");
    apps_moved_to_1_28(&sandbox);
    let ran = mesh(&sandbox, "prune", &["1-27", "--yes"]);
    ran.fails(
        4,
        &[
            "nothing was deleted",
            "revision tag default points to 1-27",
            "kubectl mesh relabel --tag default --to 1-28",
        ],
    );
    assert!(!ran.err.contains("namespace default"), "{ran}");
}

#[test]
fn prune_of_the_only_revision_is_refused() {
    let sandbox = Sandbox::fresh("canary");
    apps_moved_to_1_28(&sandbox);
    stdout(sandbox.plugin("relabel").args(["--tag", "default", "--to", "1-28"]));
    stdout(sandbox.plugin("prune").args(["1-27", "--yes"]));
    mesh(&sandbox, "prune", &["1-28", "--yes"])
        .fails(4, &["1-28 is the only control-plane revision", "nothing was deleted"]);
}

#[test]
fn roll_with_nothing_to_do_says_so() {
    let sandbox = Sandbox::fresh("canary");
    mesh(&sandbox, "roll", &["-n", "default"]).succeeds(&["Nothing to restart in default"]);
    mesh(&sandbox, "roll", &["-A", "--one-at-a-time"]).succeeds(&["Nothing to restart in all namespaces"]);
}

#[test]
fn relabel_undo_with_nothing_to_undo_says_so() {
    let sandbox = Sandbox::fresh("canary");
    mesh(&sandbox, "relabel", &["--undo", "-n", "default"]).succeeds(&["namespace/default", "nothing to undo"]);
    mesh(&sandbox, "relabel", &["--tag", "default", "--undo"]).succeeds(&["nothing to undo"]);
}
