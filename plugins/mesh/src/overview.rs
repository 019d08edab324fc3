//! What `kubectl mesh` alone prints: the upgrade in the order of its steps, and where each
//! step is installed.

use std::fmt::Write as _;

use crate::steps::{Found, STEPS};

const CANARY: &[(&str, &str)] = &[
    (
        "revisions",
        "see both revisions, which namespaces use which, what is out of date",
    ),
    (
        "relabel --to 1-28 -n default",
        "point the namespace at the new revision",
    ),
    (
        "roll --one-at-a-time -n default",
        "restart its workloads, each gated on a healthy rollout",
    ),
    ("revisions", "check that nothing runs a 1-27 proxy any more"),
    (
        "relabel --tag default --to 1-28",
        "move the default tag off the old revision",
    ),
    ("prune 1-27", "remove the old control plane, and only it"),
    ("revisions", "one revision left, every proxy up to date"),
];

const IN_PLACE: &[(&str, &str)] = &[
    (
        "revisions",
        "after upgrading istiod in place: proxies older than their istiod",
    ),
    ("roll --one-at-a-time -A", "restart them, one workload at a time"),
    ("revisions", "every proxy on the new version"),
];

const SWITCHOVER: &[(&str, &str)] = &[
    (
        "revisions --context old --context new",
        "both clusters: old on 1-27, new on 1-28 only",
    ),
    (
        "switchover --from old --to new",
        "can new take the load? parity, its mesh, stateless",
    ),
    (
        "revisions --context new --check",
        "after the load moved: every proxy of new up to date",
    ),
];

/// `locations` is one entry per [`STEPS`] item, in the same order.
pub(crate) fn render(dispatcher: Option<&std::path::Path>, locations: &[Option<Found>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "kubectl mesh: carry a live cluster through an Istio upgrade.\n");
    let _ = writeln!(
        out,
        "Usage:\n  kubectl mesh <step> [flags]\n  kubectl mesh <step> --help\n"
    );
    let _ = writeln!(out, "Steps, in the order an upgrade uses them:");
    for step in STEPS {
        let _ = writeln!(out, "  {:<10} {}", step.name, step.summary);
    }
    let _ = writeln!(out, "\nCanary upgrade (1-27 -> 1-28, both control planes running):");
    workflow(&mut out, CANARY);
    let _ = writeln!(out, "\nIn-place upgrade (one revision, istiod already upgraded):");
    workflow(&mut out, IN_PLACE);
    let _ = writeln!(
        out,
        "\nLive cluster switchover (a second cluster on 1-28 takes the load, then the old one goes):"
    );
    workflow(&mut out, &SWITCHOVER[..2]);
    let _ = writeln!(
        out,
        "     (at the load balancer: send a share of the traffic to new's ingress gateway, then all of it; drain old)"
    );
    let _ = writeln!(out, "  3. kubectl mesh {:<37} # {}", SWITCHOVER[2].0, SWITCHOVER[2].1);
    let _ = writeln!(out, "\nOther commands:");
    let _ = writeln!(out, "  kubectl mesh version                     every binary's version");
    let _ = writeln!(
        out,
        "  kubectl mesh completion bash|zsh|fish    shell completion for kubectl-mesh"
    );
    let _ = writeln!(out, "\nInstalled:");
    if let Some(path) = dispatcher {
        let _ = writeln!(out, "  {:<10} {}", "mesh", path.display());
    }
    for (step, found) in STEPS.iter().zip(locations) {
        let place = match found {
            Some(Found::Sibling(p)) => p.display().to_string(),
            Some(Found::Path(p)) => format!("{} (from PATH)", p.display()),
            None => format!(
                "not installed: {} is neither next to kubectl-mesh nor on PATH",
                step.binary()
            ),
        };
        let _ = writeln!(out, "  {:<10} {place}", step.name);
    }
    out
}

fn workflow(out: &mut String, steps: &[(&str, &str)]) {
    for (i, (command, why)) in steps.iter().enumerate() {
        let _ = writeln!(out, "  {}. kubectl mesh {command:<37} # {why}", i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_canary_workflow_is_in_order_and_says_what_is_missing() {
        let store = PathBuf::from("/krew/store/mesh/v0.1.0");
        let locations = vec![
            Some(Found::Sibling(store.join("kubectl-mesh-revisions"))),
            None,
            Some(Found::Path(PathBuf::from("/usr/local/bin/kubectl-mesh-roll"))),
            Some(Found::Sibling(store.join("kubectl-mesh-prune"))),
            None,
        ];
        let text = render(Some(&store.join("kubectl-mesh")), &locations);
        let order = [
            "1. kubectl mesh revisions",
            "2. kubectl mesh relabel --to 1-28",
            "3. kubectl mesh roll --one-at-a-time",
            "4. kubectl mesh revisions",
            "5. kubectl mesh relabel --tag default --to 1-28",
            "6. kubectl mesh prune 1-27",
            "7. kubectl mesh revisions",
        ];
        let mut at = 0;
        for line in order {
            let found = text[at..]
                .find(line)
                .unwrap_or_else(|| panic!("{line:?} missing or out of order in\n{text}"));
            at += found + line.len();
        }
        assert!(text.contains("In-place upgrade"));
        let switchover = [
            "Live cluster switchover",
            "1. kubectl mesh revisions --context old --context new",
            "2. kubectl mesh switchover --from old --to new",
            "at the load balancer",
            "3. kubectl mesh revisions --context new --check",
        ];
        let mut at = 0;
        for line in switchover {
            let found = text[at..]
                .find(line)
                .unwrap_or_else(|| panic!("{line:?} missing or out of order in\n{text}"));
            at += found + line.len();
        }
        assert!(text.contains("switchover not installed: kubectl-mesh-switchover is neither"));
        assert!(text.contains("relabel    not installed: kubectl-mesh-relabel is neither"));
        assert!(text.contains("/usr/local/bin/kubectl-mesh-roll (from PATH)"));
        assert!(text.contains("prune      /krew/store/mesh/v0.1.0/kubectl-mesh-prune\n"));
    }
}
