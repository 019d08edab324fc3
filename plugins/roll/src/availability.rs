//! What a restart does to a workload's ready pods, known before it starts: the fewest ready
//! pods its controller keeps while it replaces them, by the controllers' own rules, and
//! whether a PodDisruptionBudget selecting them would be breached. Pure: facts read from
//! the workload object and the namespace's budgets in, an [`Availability`] out.
//!
//! A restart is a rollout, not an eviction: the controllers do not consult
//! PodDisruptionBudgets while they replace pods, so roll checks them itself.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use shared::model::selector::{self, Labels};

/// How a workload's controller replaces its pods after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Strategy {
    /// Deployment `RollingUpdate` (the API server's default, with maxSurge and
    /// maxUnavailable 25% each).
    Rolling {
        max_surge: Option<IntOrString>,
        max_unavailable: Option<IntOrString>,
    },
    /// Deployment `Recreate`: every old pod is gone before the first new one is made.
    Recreate,
    /// StatefulSet `RollingUpdate`: highest ordinal first, `maxUnavailable` (1 unless set)
    /// pods at a time, each replaced once the others are ready.
    Ordered { max_unavailable: Option<IntOrString> },
    /// DaemonSet `RollingUpdate`: node by node, `maxUnavailable` (1 unless set) nodes at a
    /// time, or with `maxSurge` the new pod first on each node.
    PerNode {
        max_surge: Option<IntOrString>,
        max_unavailable: Option<IntOrString>,
    },
    /// A strategy under which a restart replaces no pod (`OnDelete`); such workloads are not
    /// planned.
    #[default]
    Unchanged,
}

/// The facts of a workload object a restart's availability depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    /// `spec.replicas` (1 when unset); for a DaemonSet, `status.desiredNumberScheduled`.
    pub(crate) replicas: i32,
    /// Ready pods now (`status.readyReplicas`, a DaemonSet's `status.numberReady`).
    pub(crate) ready: i32,
    pub(crate) strategy: Strategy,
    /// The pod template's labels: what a PodDisruptionBudget's selector is matched against.
    pub(crate) labels: Labels,
}

/// A PodDisruptionBudget, as far as a restart's check needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Budget {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// policy/v1: a null selector selects no pod, an empty one every pod of the namespace.
    pub(crate) selector: Option<LabelSelector>,
    pub(crate) min_available: Option<IntOrString>,
    pub(crate) max_unavailable: Option<IntOrString>,
    /// `(status.currentHealthy, status.desiredHealthy)`, once the disruption controller has
    /// observed the budget's current generation.
    pub(crate) observed: Option<(i32, i32)>,
}

/// A budget selecting the workload's pods, against the restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BudgetCheck {
    pub(crate) name: String,
    /// `minAvailable 1`, `maxUnavailable 10%`.
    pub(crate) rule: String,
    pub(crate) healthy: i32,
    pub(crate) desired_healthy: i32,
    /// Healthy pods at the restart's lowest point.
    pub(crate) lowest_healthy: i32,
    pub(crate) breached: bool,
}

/// What a restart does to a workload's ready pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Availability {
    /// Pods wanted (a DaemonSet: the nodes it runs on).
    pub(crate) replicas: i32,
    /// Ready now.
    pub(crate) ready: i32,
    /// The fewest ready pods the controller keeps during the restart: what roll promises,
    /// and stops the roll below.
    pub(crate) lowest: i32,
    /// The strategy in the controller's terms, resolved against the replicas.
    pub(crate) strategy: String,
    /// A DaemonSet: each node's pod is replaced on that node; `lowest` counts every node.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) per_node: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) budgets: Vec<BudgetCheck>,
    /// `--allow-downtime` lets this restart take the workload down or breach its budget.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) downtime_allowed: bool,
}

/// `intstr.GetScaledValueFromIntOrPercent` (k8s.io/apimachinery pkg/util/intstr): an
/// integer as it is, a percentage of `total` rounded up or down.
fn scaled(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let percent: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let product = percent * i64::from(total);
            let scaled = if round_up { (product + 99) / 100 } else { product / 100 };
            i32::try_from(scaled).unwrap_or(i32::MAX)
        }
    }
}

fn text(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// `25%` shown with what it resolved to: `25% (1)`; an integer as it is.
fn resolved(value: &IntOrString, to: i32) -> String {
    match value {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => format!("{s} ({to})"),
    }
}

/// A Deployment's `(maxSurge, maxUnavailable)` against its replicas: surge rounds up,
/// unavailable rounds down, and when both come to 0 unavailable becomes 1
/// (pkg/controller/deployment/util/deployment_util.go ResolveFenceposts); unavailable is
/// never more than the replicas (MaxUnavailable there).
pub(crate) fn resolve_fenceposts(surge: &IntOrString, unavailable: &IntOrString, replicas: i32) -> (i32, i32) {
    let s = scaled(surge, replicas, true);
    let mut u = scaled(unavailable, replicas, false);
    if s == 0 && u == 0 {
        u = 1;
    }
    (s, u.min(replicas))
}

const DEFAULT_SURGE_UNAVAILABLE: &str = "25%";

/// The fewest ready pods during the restart and the strategy in words.
fn lowest(shape: &Shape) -> (i32, String) {
    let (replicas, ready) = (shape.replicas, shape.ready);
    let quarter = IntOrString::String(DEFAULT_SURGE_UNAVAILABLE.into());
    match &shape.strategy {
        Strategy::Recreate => (0, "Recreate".into()),
        Strategy::Rolling {
            max_surge,
            max_unavailable,
        } => {
            let (surge, unavailable) = (
                max_surge.as_ref().unwrap_or(&quarter),
                max_unavailable.as_ref().unwrap_or(&quarter),
            );
            let (s, u) = resolve_fenceposts(surge, unavailable, replicas);
            let words = format!(
                "RollingUpdate, maxSurge {}, maxUnavailable {}",
                resolved(surge, s),
                resolved(unavailable, u)
            );
            (ready.min(replicas - u).max(0), words)
        }
        Strategy::Ordered { max_unavailable } => {
            // pkg/controller/statefulset/stateful_set_utils.go getStatefulSetMaxUnavailable:
            // 1 unless set, a percentage rounded down, never below 1.
            let u = max_unavailable
                .as_ref()
                .map_or(1, |m| scaled(m, replicas, false))
                .max(1)
                .min(replicas);
            let words = match max_unavailable {
                Some(m) => format!("RollingUpdate, maxUnavailable {}", resolved(m, u)),
                None => "RollingUpdate, one pod at a time".into(),
            };
            (ready.min(replicas - u).max(0), words)
        }
        Strategy::PerNode {
            max_surge,
            max_unavailable,
        } => per_node(shape, max_surge.as_ref(), max_unavailable.as_ref()),
        Strategy::Unchanged => (ready, "no rollout".into()),
    }
}

/// A DaemonSet: with maxSurge each node gets its new pod before the old one goes, else
/// maxUnavailable nodes (1 unless set) lose theirs at a time; both round up
/// (pkg/controller/daemon/util/daemonset_util.go SurgeCount, UnavailableCount).
fn per_node(shape: &Shape, max_surge: Option<&IntOrString>, max_unavailable: Option<&IntOrString>) -> (i32, String) {
    let (nodes, ready) = (shape.replicas, shape.ready);
    let surge = max_surge.map_or(0, |s| scaled(s, nodes, true));
    if surge > 0 {
        let words = format!(
            "RollingUpdate, maxSurge {}",
            resolved(max_surge.unwrap_or(&IntOrString::Int(0)), surge)
        );
        return (ready, words);
    }
    let u = max_unavailable
        .map_or(1, |m| scaled(m, nodes, true))
        .clamp(1, nodes.max(1));
    let words = match max_unavailable {
        Some(m) => format!("RollingUpdate, maxUnavailable {}", resolved(m, u)),
        None => "RollingUpdate, one node at a time".into(),
    };
    (ready.min(nodes - u).max(0), words)
}

/// The budget's rule and the healthy pods it wants, for `expected` pods (the disruption
/// controller's getExpectedPodCount, pkg/controller/disruption/disruption.go: a percentage
/// rounds up, for minAvailable and maxUnavailable alike).
fn desired_healthy(b: &Budget, expected: i32) -> (String, i32) {
    match (&b.min_available, &b.max_unavailable) {
        (Some(min), _) => (format!("minAvailable {}", text(min)), scaled(min, expected, true)),
        (None, Some(max)) => (
            format!("maxUnavailable {}", text(max)),
            (expected - scaled(max, expected, true)).max(0),
        ),
        (None, None) => ("no rule".into(), 0),
    }
}

/// Check one budget selecting the pods: `drop` of them may be unready at once.
fn check(b: &Budget, shape: &Shape, drop: i32) -> BudgetCheck {
    let (rule, computed) = desired_healthy(b, shape.replicas);
    // The controller's own count covers every pod it selects, this workload's or not.
    let (healthy, desired) = b.observed.unwrap_or((shape.ready, computed));
    let lowest_healthy = healthy - drop;
    BudgetCheck {
        name: b.name.clone(),
        rule,
        healthy,
        desired_healthy: desired,
        lowest_healthy,
        breached: drop > 0 && lowest_healthy < desired,
    }
}

/// What restarting a workload of this shape does, against the budgets of its namespace.
pub(crate) fn availability(shape: &Shape, budgets: &[Budget], downtime_allowed: bool) -> Availability {
    let (low, strategy) = lowest(shape);
    let drop = (shape.ready - low).max(0);
    let budgets = budgets
        .iter()
        .filter(|b| {
            b.selector
                .as_ref()
                .is_some_and(|s| selector::matches(Some(s), &shape.labels))
        })
        .map(|b| check(b, shape, drop))
        .collect();
    Availability {
        replicas: shape.replicas,
        ready: shape.ready,
        lowest: low,
        strategy,
        per_node: matches!(shape.strategy, Strategy::PerNode { .. }),
        budgets,
        downtime_allowed,
    }
}

impl Availability {
    /// The restart takes every ready pod away at some point (a DaemonSet's pods are per
    /// node: never counted as an outage of the whole).
    pub(crate) fn outage(&self) -> bool {
        !self.per_node && self.ready > 0 && self.lowest == 0
    }

    fn breached(&self) -> Option<&BudgetCheck> {
        self.budgets.iter().find(|b| b.breached)
    }

    /// Not restarted unless `--allow-downtime` says so.
    pub(crate) fn refused(&self) -> bool {
        !self.downtime_allowed && (self.outage() || self.breached().is_some())
    }

    /// The AVAILABILITY cell: `2→1 of 2`, `1→0 (Recreate)`, `PDB single: minAvailable 1`,
    /// `per node, 4→3 of 4`.
    pub(crate) fn cell(&self) -> String {
        let mut out = if let Some(b) = self.breached() {
            format!("PDB {}: {}", b.name, b.rule)
        } else if self.strategy == "Recreate" {
            format!("{}→{} (Recreate)", self.ready, self.lowest)
        } else {
            let per_node = if self.per_node { "per node, " } else { "" };
            format!("{per_node}{}→{} of {}", self.ready, self.lowest, self.replicas)
        };
        if self.downtime_allowed && (self.outage() || self.breached().is_some()) {
            out.push_str(", allowed");
        }
        out
    }

    /// Why the restart is refused and what fixes it; `allow` is the flag's value for this
    /// workload (`deployment/web`).
    pub(crate) fn refusal(&self, allow: &str) -> String {
        let mut why = vec![];
        if self.outage() {
            let fix = if self.strategy == "Recreate" {
                "switch its strategy to RollingUpdate (and run 2 replicas or more)"
            } else if self.strategy.starts_with("RollingUpdate, maxSurge") {
                "raise its replicas, or give it a maxSurge above 0"
            } else {
                "raise its replicas"
            };
            why.push(format!(
                "its restart takes it to 0 ready pods ({}→0, {}): {fix}",
                self.ready, self.strategy
            ));
        }
        if let Some(b) = self.breached() {
            why.push(format!(
                "its restart breaches PodDisruptionBudget {} ({}: {} healthy now, {} wanted, {} during the restart): raise its replicas so a pod can go",
                b.name, b.rule, b.healthy, b.desired_healthy, b.lowest_healthy
            ));
        }
        format!("{}; or accept it with --allow-downtime {allow}", why.join("; and "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i32) -> Option<IntOrString> {
        Some(IntOrString::Int(n))
    }

    fn pct(p: &str) -> Option<IntOrString> {
        Some(IntOrString::String(p.into()))
    }

    fn shape(replicas: i32, strategy: Strategy) -> Shape {
        Shape {
            replicas,
            ready: replicas,
            strategy,
            labels: [("app".to_string(), "web".to_string())].into(),
        }
    }

    fn rolling(surge: Option<IntOrString>, unavailable: Option<IntOrString>) -> Strategy {
        Strategy::Rolling {
            max_surge: surge,
            max_unavailable: unavailable,
        }
    }

    fn of(s: &Shape) -> Availability {
        availability(s, &[], false)
    }

    #[test]
    fn fenceposts_round_as_the_deployment_controller_does() {
        let p = |s: &str| IntOrString::String(s.into());
        // Surge rounds up, unavailable down.
        assert_eq!(resolve_fenceposts(&p("25%"), &p("25%"), 1), (1, 0));
        assert_eq!(resolve_fenceposts(&p("25%"), &p("25%"), 10), (3, 2));
        assert_eq!(resolve_fenceposts(&p("34%"), &p("50%"), 3), (2, 1));
        // Both 0 after rounding: unavailable becomes 1 (ResolveFenceposts' own examples).
        assert_eq!(resolve_fenceposts(&p("0%"), &p("1%"), 2), (0, 1));
        assert_eq!(resolve_fenceposts(&p("1%"), &p("0%"), 2), (1, 0));
        assert_eq!(
            resolve_fenceposts(&IntOrString::Int(0), &IntOrString::Int(0), 3),
            (0, 1)
        );
        // Never more unavailable than replicas.
        assert_eq!(
            resolve_fenceposts(&IntOrString::Int(0), &IntOrString::Int(5), 2),
            (0, 2)
        );
    }

    #[test]
    fn deployments_keep_replicas_minus_max_unavailable() {
        // The defaults (25%/25%): one replica surges, never goes down.
        let a = of(&shape(1, rolling(None, None)));
        assert_eq!((a.lowest, a.cell().as_str()), (1, "1→1 of 1"));
        assert!(!a.refused());
        assert_eq!(a.strategy, "RollingUpdate, maxSurge 25% (1), maxUnavailable 25% (0)");
        let a = of(&shape(2, rolling(pct("0%"), pct("50%"))));
        assert_eq!(a.cell(), "2→1 of 2");
        let a = of(&shape(2, rolling(int(1), int(0))));
        assert_eq!(a.cell(), "2→2 of 2");
        assert_eq!(a.strategy, "RollingUpdate, maxSurge 1, maxUnavailable 0");
        // One replica without surge goes to 0.
        let a = of(&shape(1, rolling(int(0), int(1))));
        assert_eq!(a.cell(), "1→0 of 1");
        assert!(a.outage() && a.refused());
        assert!(a.refusal("deployment/web").contains("give it a maxSurge above 0"));
        // Recreate goes to 0 whatever the replicas.
        let a = of(&shape(3, Strategy::Recreate));
        assert_eq!(a.cell(), "3→0 (Recreate)");
        let why = a.refusal("deployment/web");
        assert!(
            why.contains("its restart takes it to 0 ready pods (3→0, Recreate)"),
            "{why}"
        );
        assert!(
            why.ends_with("or accept it with --allow-downtime deployment/web"),
            "{why}"
        );
        // Already unready pods are not a promise the restart can keep.
        let mut s = shape(4, rolling(pct("25%"), pct("25%")));
        s.ready = 2;
        assert_eq!(of(&s).cell(), "2→2 of 4");
    }

    #[test]
    fn zero_replicas_lose_nothing() {
        for strategy in [
            Strategy::Recreate,
            rolling(None, None),
            Strategy::Ordered { max_unavailable: None },
        ] {
            let a = of(&shape(0, strategy));
            assert_eq!((a.lowest, a.outage(), a.refused()), (0, false, false));
            assert!(a.cell().starts_with("0→0"), "{}", a.cell());
        }
        // Already down: a restart takes nothing away.
        let mut s = shape(1, Strategy::Recreate);
        s.ready = 0;
        assert!(!of(&s).refused());
    }

    #[test]
    fn statefulsets_go_one_pod_at_a_time_or_max_unavailable() {
        let ordered = |m| Strategy::Ordered { max_unavailable: m };
        assert_eq!(of(&shape(3, ordered(None))).cell(), "3→2 of 3");
        let a = of(&shape(1, ordered(None)));
        assert_eq!(a.cell(), "1→0 of 1");
        assert!(a.refused());
        assert!(a.refusal("statefulset/db").contains("raise its replicas"));
        assert_eq!(of(&shape(4, ordered(int(2)))).cell(), "4→2 of 4");
        // A percentage rounds down, but never below 1.
        assert_eq!(of(&shape(4, ordered(pct("10%")))).cell(), "4→3 of 4");
        assert_eq!(of(&shape(10, ordered(pct("25%")))).cell(), "10→8 of 10");
    }

    #[test]
    fn daemonsets_are_per_node() {
        let a = of(&shape(
            4,
            Strategy::PerNode {
                max_surge: None,
                max_unavailable: None,
            },
        ));
        assert_eq!(a.cell(), "per node, 4→3 of 4");
        assert!(!a.refused(), "a node agent's pod is replaced on its node");
        let a = of(&shape(
            1,
            Strategy::PerNode {
                max_surge: None,
                max_unavailable: None,
            },
        ));
        assert_eq!((a.lowest, a.refused()), (0, false));
        let a = of(&shape(
            4,
            Strategy::PerNode {
                max_surge: int(1),
                max_unavailable: int(0),
            },
        ));
        assert_eq!(a.cell(), "per node, 4→4 of 4");
        // A percentage of nodes rounds up.
        let a = of(&shape(
            4,
            Strategy::PerNode {
                max_surge: None,
                max_unavailable: pct("30%"),
            },
        ));
        assert_eq!(a.cell(), "per node, 4→2 of 4");
    }

    fn budget(name: &str, min: Option<IntOrString>, max: Option<IntOrString>) -> Budget {
        Budget {
            namespace: "shop".into(),
            name: name.into(),
            selector: Some(LabelSelector {
                match_labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            min_available: min,
            max_unavailable: max,
            observed: None,
        }
    }

    #[test]
    fn a_budget_the_restart_would_breach_is_named() {
        let single = budget("single", int(1), None);
        let a = availability(
            &shape(1, Strategy::Ordered { max_unavailable: None }),
            std::slice::from_ref(&single),
            false,
        );
        assert_eq!(a.cell(), "PDB single: minAvailable 1");
        let why = a.refusal("statefulset/single");
        assert!(
            why.contains(
                "breaches PodDisruptionBudget single (minAvailable 1: 1 healthy now, 1 wanted, 0 during the restart)"
            ),
            "{why}"
        );
        // Surge keeps every pod: no breach.
        let a = availability(
            &shape(2, rolling(int(1), int(0))),
            &[budget("web", int(2), None)],
            false,
        );
        assert!(!a.refused() && !a.budgets[0].breached);
        // maxUnavailable 0 forbids any drop; a percentage of minAvailable rounds up.
        let a = availability(
            &shape(4, rolling(pct("25%"), pct("25%"))),
            &[budget("web", None, int(0))],
            false,
        );
        assert_eq!(a.cell(), "PDB web: maxUnavailable 0");
        let a = availability(
            &shape(4, rolling(pct("25%"), pct("25%"))),
            &[budget("web", pct("80%"), None)],
            false,
        );
        assert_eq!((a.budgets[0].desired_healthy, a.budgets[0].breached), (4, true));
        let a = availability(
            &shape(4, rolling(pct("25%"), pct("25%"))),
            &[budget("web", pct("75%"), None)],
            false,
        );
        assert_eq!((a.budgets[0].desired_healthy, a.budgets[0].breached), (3, false));
        // The controller's own counts win: other pods it selects count as healthy.
        let mut shared_budget = budget("many", int(2), None);
        shared_budget.observed = Some((3, 2));
        let a = availability(&shape(1, rolling(int(0), int(1))), &[shared_budget], false);
        assert!(!a.budgets[0].breached);
        // A budget selecting other pods, or with a null selector, is no concern.
        let mut other = budget("other", int(1), None);
        other.selector = Some(LabelSelector {
            match_labels: Some([("app".to_string(), "db".to_string())].into()),
            ..Default::default()
        });
        let mut null = budget("null", int(1), None);
        null.selector = None;
        let a = availability(&shape(1, Strategy::Recreate), &[other, null], false);
        assert!(a.budgets.is_empty());
        // An empty selector selects every pod of the namespace.
        let mut all = budget("all", int(1), None);
        all.selector = Some(LabelSelector::default());
        assert_eq!(
            availability(&shape(1, Strategy::Recreate), &[all], false).budgets.len(),
            1
        );
    }

    #[test]
    fn allowed_downtime_is_shown_and_not_refused() {
        let a = availability(&shape(1, Strategy::Recreate), &[], true);
        assert!(!a.refused());
        assert_eq!(a.cell(), "1→0 (Recreate), allowed");
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["lowest"], 0);
        assert_eq!(json["downtimeAllowed"], true);
    }
}
