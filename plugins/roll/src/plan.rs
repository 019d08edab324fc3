//! Which out-of-date workloads to restart, in which order, and which to leave alone and why.
//! Pure: the mesh and a few facts about the workload objects in, a plan out.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use serde::Serialize;
use shared::error::known;
use shared::model::{ControlPlane, Expectation, InjectProblem, Mesh, OutOfDateWorkload, ProxyKind, Target, Workload};

use crate::availability::{Availability, Budget, Shape, availability};

/// `(namespace, kind, name)`, kind as the API spells it (`Deployment`).
pub(crate) type Key = (String, String, String);

fn key(w: &OutOfDateWorkload) -> Key {
    (w.namespace.clone(), w.workload.kind.clone(), w.workload.name.clone())
}

/// `--exclude [NAMESPACE/]KIND/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclude {
    pub namespace: Option<String>,
    pub kind: String,
    pub name: String,
}

impl std::str::FromStr for Exclude {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let (namespace, kind, name) = match parts.as_slice() {
            [kind, name] => (None, *kind, *name),
            [ns, kind, name] if !ns.is_empty() => (Some(ns.to_string()), *kind, *name),
            _ => {
                return Err(format!(
                    "{text:?} is not KIND/NAME or NAMESPACE/KIND/NAME (e.g. deployment/webapp, default/sts/db)"
                ));
            }
        };
        let kind = kind_of(kind).ok_or_else(|| {
            format!("{text:?}: unknown kind {kind:?} (use deployment, statefulset or daemonset; deploy, sts, ds)")
        })?;
        if name.is_empty() {
            return Err(format!("{text:?}: the name is empty"));
        }
        Ok(Exclude {
            namespace,
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }
}

impl Exclude {
    fn matches(&self, k: &Key) -> bool {
        self.namespace.as_ref().is_none_or(|n| *n == k.0) && self.kind == k.1 && self.name == k.2
    }
}

/// `--allow-downtime`: every workload (the bare flag, or `all`), or one, written as for
/// `--exclude`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowDowntime {
    All,
    Workload(Exclude),
}

impl std::str::FromStr for AllowDowntime {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "all" {
            return Ok(AllowDowntime::All);
        }
        text.parse().map(AllowDowntime::Workload)
    }
}

impl AllowDowntime {
    fn allows(&self, k: &Key) -> bool {
        match self {
            AllowDowntime::All => true,
            AllowDowntime::Workload(w) => w.matches(k),
        }
    }
}

/// kubectl's names and short names for the kinds a roll restarts.
fn kind_of(word: &str) -> Option<&'static str> {
    match word.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" | "deployment.apps" => Some(Deployment::KIND),
        "statefulset" | "statefulsets" | "sts" | "statefulset.apps" => Some(StatefulSet::KIND),
        "daemonset" | "daemonsets" | "ds" | "daemonset.apps" => Some(DaemonSet::KIND),
        _ => None,
    }
}

/// `--revision NAME`: a revision, the revision a tag points to, or a revision only proxies
/// still name (its control plane already removed).
pub(crate) fn revision(mesh: &Mesh, name: &str) -> shared::Result<String> {
    match mesh.control_plane.resolve(name) {
        Target::Revision(r) | Target::Tag { revision: r, .. } => Ok(r.to_string()),
        Target::Unknown if mesh.proxies.iter().any(|p| p.proxy.revision.as_deref() == Some(name)) => {
            Ok(name.to_string())
        }
        Target::Unknown => Err(shared::Error::Usage(format!(
            "--revision {name}: no such revision or tag, and no proxy was injected by it (revisions: {})",
            known(mesh.control_plane.revisions.keys().map(String::as_str))
        ))),
    }
}

/// What the flags ask for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    /// Only workloads with a proxy injected by this revision.
    pub(crate) revision: Option<String>,
    pub(crate) exclude: Vec<Exclude>,
    pub(crate) include_gateways: bool,
    /// `-l` was given: only the workload objects it selected are eligible.
    pub(crate) selected_only: bool,
    /// `--allow-downtime`: restarts that may take a workload down or breach its budget.
    pub(crate) allow_downtime: Vec<AllowDowntime>,
}

/// What one workload object says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// Why a restart would not replace its pods, if so.
    pub(crate) blocker: Option<String>,
    /// What a restart does to its ready pods.
    pub(crate) shape: Shape,
}

/// What the workload objects say, read just before planning.
#[derive(Debug, Clone, Default)]
pub(crate) struct Objects {
    /// Every Deployment, StatefulSet and DaemonSet read (those `-l` selected, with it).
    pub(crate) found: BTreeMap<Key, Found>,
    /// The PodDisruptionBudgets of the namespaces in scope.
    pub(crate) budgets: Vec<Budget>,
}

/// Why a workload is left alone, for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum SkipCause {
    /// `--exclude`.
    Excluded,
    /// A gateway without `--include-gateways`.
    Gateway,
    /// A restart would not replace its pods (paused, OnDelete, partitioned), or its object
    /// is gone.
    NoRollout,
    /// Its restart would take it down or breach its PodDisruptionBudget, and
    /// `--allow-downtime` does not name it.
    Availability,
    /// Bare pods, Job pods, ReplicaSets without a Deployment.
    Manual,
}

/// Why an out-of-date workload is left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Skipped {
    #[serde(flatten)]
    pub(crate) workload: OutOfDateWorkload,
    pub(crate) cause: SkipCause,
    pub(crate) reason: String,
    /// For [`SkipCause::Availability`]: what its restart would do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) availability: Option<Availability>,
}

/// A workload the roll restarts, with what its restart does to its ready pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Planned {
    #[serde(flatten)]
    pub(crate) workload: OutOfDateWorkload,
    pub(crate) availability: Availability,
}

impl Planned {
    /// `namespace/kind/name`, as the progress lines name it.
    pub(crate) fn label(&self) -> String {
        format!("{}/{}", self.workload.namespace, self.workload.workload)
    }
}

/// An out-of-date data-plane workload that a restart would not bring up to date: Gateway
/// API gateways and waypoints (istiod renders them), ztunnel and istio-cni (their charts
/// install them), gateways whose image is written in their Deployment, pods that opted out
/// of injection. The model's [`Expectation`] says which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NotRestarted {
    pub(crate) namespace: String,
    pub(crate) workload: Workload,
    pub(crate) kind: ProxyKind,
    pub(crate) out_of_date_pods: usize,
    /// What a new pod would get.
    pub(crate) expected: Expectation,
    /// Why a restart does not help, and what does.
    pub(crate) reason: String,
}

/// A revision the plan restarts into that cannot inject new pods now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TargetProblem {
    pub(crate) revision: String,
    pub(crate) problem: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Plan {
    /// Restarted in this order.
    pub(crate) roll: Vec<Planned>,
    /// Restartable but left alone: gateways without --include-gateways, --exclude, paused,
    /// a restart that would take the workload down.
    pub(crate) skipped: Vec<Skipped>,
    /// Pods no `rollout restart` can replace: bare pods, Job pods, orphan ReplicaSets.
    pub(crate) manual: Vec<Skipped>,
    /// Out of date, but a restart would not update them.
    pub(crate) not_restarted: Vec<NotRestarted>,
    /// Revisions in the plan that cannot inject new pods now: roll refuses to restart into
    /// them (checked again before each restart).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) target_problems: Vec<TargetProblem>,
    /// `--exclude` values that matched no out-of-date workload.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) unused_excludes: Vec<String>,
}

/// The whole plan: what to restart and in which order, what is left alone and why, what a
/// restart would not update, and which target revisions cannot inject now.
pub(crate) fn plan(mesh: &Mesh, filters: &Filters, objects: &Objects) -> Plan {
    let mut out = plan_workloads(mesh.out_of_date_workloads(), filters, objects);
    out.not_restarted = not_restarted(mesh, filters, objects);
    let targets: BTreeSet<&str> = out
        .roll
        .iter()
        .filter_map(|p| p.workload.to_revision.as_deref())
        .collect();
    out.target_problems = targets
        .into_iter()
        .filter_map(|r| {
            cannot_inject(&mesh.control_plane, r).map(|problem| TargetProblem {
                revision: r.to_string(),
                problem,
            })
        })
        .collect();
    out
}

/// Applications first (by namespace, kind, name), gateways last: a gateway carries every
/// request into the mesh, so it moves only once the applications behind it did.
fn plan_workloads(out_of_date: Vec<OutOfDateWorkload>, filters: &Filters, objects: &Objects) -> Plan {
    let mut out = Plan::default();
    let mut used = BTreeSet::new();
    let (mut apps, mut gateways): (Vec<_>, Vec<_>) = out_of_date.into_iter().partition(|w| !w.gateway);
    apps.sort_by_key(key);
    gateways.sort_by_key(key);
    for w in apps.into_iter().chain(gateways) {
        if let Some(rev) = &filters.revision
            && !w.from_revisions.contains(rev)
        {
            continue;
        }
        let k = key(&w);
        if !w.workload.restartable() {
            if !filters.selected_only {
                let reason = manual_reason(&w.workload);
                out.manual.push(skipped(w, SkipCause::Manual, reason, None));
            }
            continue;
        }
        let found = objects.found.get(&k);
        if found.is_none() && filters.selected_only {
            continue;
        }
        if let Some(i) = filters.exclude.iter().position(|e| e.matches(&k)) {
            used.insert(i);
        }
        match place(&w, &k, found, filters, &objects.budgets) {
            Ok(availability) => out.roll.push(Planned {
                workload: w,
                availability,
            }),
            Err((cause, reason, a)) => out.skipped.push(skipped(w, cause, reason, a)),
        }
    }
    out.unused_excludes = filters
        .exclude
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .map(|(_, e)| match &e.namespace {
            Some(n) => format!("{n}/{}/{}", e.kind.to_lowercase(), e.name),
            None => format!("{}/{}", e.kind.to_lowercase(), e.name),
        })
        .collect();
    out
}

fn skipped(
    workload: OutOfDateWorkload,
    cause: SkipCause,
    reason: String,
    availability: Option<Availability>,
) -> Skipped {
    Skipped {
        workload,
        cause,
        reason,
        availability,
    }
}

/// Restart it (with what its restart does), or leave it alone and why.
fn place(
    w: &OutOfDateWorkload,
    k: &Key,
    found: Option<&Found>,
    filters: &Filters,
    budgets: &[Budget],
) -> Result<Availability, (SkipCause, String, Option<Availability>)> {
    if filters.exclude.iter().any(|e| e.matches(k)) {
        return Err((SkipCause::Excluded, "excluded (--exclude)".into(), None));
    }
    if w.gateway && !filters.include_gateways {
        let why =
            "a gateway: restarted only with --include-gateways, once the applications behind it run the new proxy";
        return Err((SkipCause::Gateway, why.into(), None));
    }
    let Some(found) = found else {
        let why = "not found (deleted since its pods were read?)";
        return Err((SkipCause::NoRollout, why.into(), None));
    };
    if let Some(b) = &found.blocker {
        return Err((SkipCause::NoRollout, b.clone(), None));
    }
    let allowed = filters.allow_downtime.iter().any(|a| a.allows(k));
    let in_namespace: Vec<Budget> = budgets.iter().filter(|b| b.namespace == k.0).cloned().collect();
    let a = availability(&found.shape, &in_namespace, allowed);
    if a.refused() {
        let flag = format!("{}/{}", k.1.to_lowercase(), k.2);
        return Err((SkipCause::Availability, a.refusal(&flag), Some(a)));
    }
    Ok(a)
}

/// Out-of-date proxies whose workload a restart would not update, by workload, sorted
/// (the mesh's proxies are). Workloads that a restart does update (some of their pods) are
/// planned instead.
fn not_restarted(mesh: &Mesh, filters: &Filters, objects: &Objects) -> Vec<NotRestarted> {
    let planned: BTreeSet<(String, Workload)> = mesh
        .out_of_date_workloads()
        .into_iter()
        .map(|w| (w.namespace, w.workload))
        .collect();
    let mut by: BTreeMap<(String, Workload), NotRestarted> = BTreeMap::new();
    for p in mesh.proxies.iter().filter(|p| p.is_out_of_date() && !p.restart_fixes()) {
        let (ns, workload) = (&p.proxy.namespace, &p.proxy.workload);
        let k = (ns.clone(), workload.kind.clone(), workload.name.clone());
        let wanted = filters
            .revision
            .as_ref()
            .is_none_or(|r| p.proxy.revision.as_ref() == Some(r))
            && (!filters.selected_only || objects.found.contains_key(&k));
        if !wanted || planned.contains(&(ns.clone(), workload.clone())) {
            continue;
        }
        by.entry((ns.clone(), workload.clone()))
            .or_insert_with(|| NotRestarted {
                namespace: ns.clone(),
                workload: workload.clone(),
                kind: p.proxy.kind,
                out_of_date_pods: 0,
                expected: p.expected.clone(),
                reason: not_restarted_reason(p.proxy.kind, &p.expected),
            })
            .out_of_date_pods += 1;
    }
    by.into_values().collect()
}

/// Why a restart leaves this proxy as it is, and what updates it.
fn not_restarted_reason(kind: ProxyKind, expected: &Expectation) -> String {
    match expected {
        Expectation::Rendered { revision } => format!(
            "a {kind} istiod {revision} renders for its Gateway: a restart keeps its proxy; istiod re-renders its Deployment once it runs the new version, or once the Gateway's istio.io/rev names another revision"
        ),
        Expectation::NoController { selected } => format!(
            "a {kind} no istiod renders (istio.io/rev={}): label its Gateway with a revision that exists",
            selected.as_deref().unwrap_or("<none>")
        ),
        Expectation::Installed if kind.is_node_agent() => {
            format!("the {kind} node agent: a restart keeps its image; it is upgraded by its own chart")
        }
        Expectation::Installed => format!(
            "a {kind} whose image is written in its Deployment (istioctl's gateways): a restart keeps it; upgrade it with istioctl or its chart"
        ),
        Expectation::NoSidecar { reason } => {
            format!("{reason}: a restart gives it no sidecar, and no injector put this proxy there")
        }
        Expectation::Injected { revision, .. } => format!("a restart injects revision {revision}"),
    }
}

/// Why `revision` cannot inject a new pod now, in roll's words, if it cannot (the rule is
/// the model's [`ControlPlane::inject_problems`]).
pub(crate) fn cannot_inject(cp: &ControlPlane, revision: &str) -> Option<String> {
    let problems: Vec<String> = cp
        .inject_problems(revision)
        .into_iter()
        .map(|p| match p {
            InjectProblem::NoIstiod => format!("it has no istiod Deployment (app=istiod, istio.io/rev={revision})"),
            InjectProblem::ScaledToZero { istiod: i } => {
                format!("its istiod Deployment {}/{} is scaled to 0", i.namespace, i.name)
            }
            InjectProblem::NotReady { istiod: i } => format!(
                "its istiod Deployment {}/{} has 0 of {} replicas ready",
                i.namespace, i.name, i.replicas
            ),
            InjectProblem::NoInjectorConfigMap { configmap } => {
                format!("its injector ConfigMap {configmap} is missing")
            }
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join(", and "))
}

/// The message of a restart refused by [`cannot_inject`].
pub(crate) fn refusal(revision: &str, problem: &str) -> String {
    format!(
        "not restarted: revision {revision} cannot inject new pods: {problem}. Its injector webhook fails closed (failurePolicy: Fail), so the API server would reject every new pod; make revision {revision} ready, then run the same command again"
    )
}

fn manual_reason(w: &Workload) -> String {
    match w.kind.as_str() {
        "Pod" => "a bare pod: nothing recreates it; delete and recreate it yourself".into(),
        "Job" => "a Job's pod: it gets the new proxy when the Job runs again".into(),
        "ReplicaSet" => "a ReplicaSet without a Deployment: delete its pods one by one to replace them".into(),
        other => format!("owned by a {other}: restart it the way its controller expects"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out_of_date(ns: &str, kind: &str, name: &str, gateway: bool, from: &str) -> OutOfDateWorkload {
        OutOfDateWorkload {
            namespace: ns.into(),
            workload: Workload {
                kind: kind.into(),
                name: name.into(),
            },
            gateway,
            pods: 1,
            out_of_date_pods: 1,
            from_revisions: [from.to_string()].into(),
            to_revision: Some("1-28".into()),
            to_version: Some("1.28.3".into()),
            reasons: BTreeSet::new(),
        }
    }

    fn found(keys: &[(&str, &str, &str)]) -> Objects {
        Objects {
            found: keys
                .iter()
                .map(|(n, k, w)| ((n.to_string(), k.to_string(), w.to_string()), Found::default()))
                .collect(),
            budgets: vec![],
        }
    }

    fn names(ws: &[Planned]) -> Vec<String> {
        ws.iter().map(Planned::label).collect()
    }

    #[test]
    fn order_is_applications_then_gateways_each_sorted() {
        let workloads = vec![
            out_of_date("istio-system", "Deployment", "istio-ingressgateway", true, "1-27"),
            out_of_date("default", "Deployment", "webapp", false, "1-27"),
            out_of_date("apps", "StatefulSet", "db", false, "1-27"),
            out_of_date("default", "DaemonSet", "agent", false, "1-27"),
        ];
        let objects = found(&[
            ("istio-system", "Deployment", "istio-ingressgateway"),
            ("default", "Deployment", "webapp"),
            ("apps", "StatefulSet", "db"),
            ("default", "DaemonSet", "agent"),
        ]);
        let filters = Filters {
            include_gateways: true,
            ..Default::default()
        };
        let p = plan_workloads(workloads.clone(), &filters, &objects);
        assert_eq!(
            names(&p.roll),
            [
                "apps/statefulset/db",
                "default/daemonset/agent",
                "default/deployment/webapp",
                "istio-system/deployment/istio-ingressgateway"
            ]
        );
        // Without --include-gateways the gateway is listed, not restarted.
        let p = plan_workloads(workloads, &Filters::default(), &objects);
        assert_eq!(p.roll.len(), 3);
        assert_eq!(p.skipped.len(), 1);
        assert!(p.skipped[0].reason.contains("--include-gateways"));
    }

    #[test]
    fn manual_pods_are_listed_never_rolled() {
        let workloads = vec![
            out_of_date("default", "Pod", "debug", false, "1-27"),
            out_of_date("default", "Job", "migrate", false, "1-27"),
            out_of_date("default", "ReplicaSet", "orphan-5d8f", false, "1-27"),
            out_of_date("default", "Rollout", "canary", false, "1-27"),
        ];
        let p = plan_workloads(workloads.clone(), &Filters::default(), &Objects::default());
        assert!(p.roll.is_empty());
        let reason = |kind: &str| {
            p.manual
                .iter()
                .find(|s| s.workload.workload.kind == kind)
                .map(|s| s.reason.clone())
                .unwrap()
        };
        assert!(reason("Pod").contains("bare pod"));
        assert!(reason("Job").contains("Job"));
        assert!(reason("ReplicaSet").contains("without a Deployment"));
        assert!(reason("Rollout").contains("Rollout"));
        // -l selects workload objects: pods that have none are not part of the answer.
        let selected = Filters {
            selected_only: true,
            ..Default::default()
        };
        assert!(
            plan_workloads(workloads, &selected, &Objects::default())
                .manual
                .is_empty()
        );
    }

    #[test]
    fn filters_revision_exclude_selector_and_blockers() {
        let workloads = vec![
            out_of_date("default", "Deployment", "a", false, "1-26"),
            out_of_date("default", "Deployment", "b", false, "1-27"),
            out_of_date("default", "Deployment", "c", false, "1-27"),
            out_of_date("other", "Deployment", "c", false, "1-27"),
            out_of_date("default", "Deployment", "paused", false, "1-27"),
        ];
        let mut objects = found(&[
            ("default", "Deployment", "a"),
            ("default", "Deployment", "b"),
            ("default", "Deployment", "c"),
            ("other", "Deployment", "c"),
        ]);
        objects.found.insert(
            ("default".into(), "Deployment".into(), "paused".into()),
            Found {
                blocker: Some("it is paused".into()),
                ..Found::default()
            },
        );
        let filters = Filters {
            revision: Some("1-27".into()),
            exclude: vec![
                "default/deploy/c".parse().unwrap(),
                "deployment/missing".parse().unwrap(),
            ],
            ..Default::default()
        };
        let p = plan_workloads(workloads.clone(), &filters, &objects);
        assert_eq!(names(&p.roll), ["default/deployment/b", "other/deployment/c"]);
        let skipped: Vec<_> = p
            .skipped
            .iter()
            .map(|s| (s.workload.workload.name.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(skipped, [("c", "excluded (--exclude)"), ("paused", "it is paused")]);
        assert_eq!(p.unused_excludes, ["deployment/missing"]);

        // With -l, workloads it did not select are simply out of scope.
        let mut only_b = found(&[("default", "Deployment", "b")]);
        only_b.found.extend(std::iter::empty());
        let selected = Filters {
            selected_only: true,
            ..Default::default()
        };
        assert_eq!(
            names(&plan_workloads(workloads.clone(), &selected, &only_b).roll),
            ["default/deployment/b"]
        );
        // Without -l, a workload whose object is gone is reported, not restarted.
        let p = plan_workloads(workloads, &Filters::default(), &only_b);
        assert_eq!(p.roll.len(), 1);
        assert!(p.skipped.iter().any(|s| s.reason.contains("not found")));
    }

    #[test]
    fn exclude_reads_kubectl_kinds() {
        let e: Exclude = "sts/db".parse().unwrap();
        assert_eq!(
            (e.kind.as_str(), e.name.as_str(), e.namespace),
            ("StatefulSet", "db", None)
        );
        let e: Exclude = "prod/DaemonSet/agent".parse().unwrap();
        assert_eq!(e.namespace.as_deref(), Some("prod"));
        assert!("pod/x".parse::<Exclude>().unwrap_err().contains("unknown kind"));
        assert!("webapp".parse::<Exclude>().unwrap_err().contains("KIND/NAME"));
        assert!("deploy/".parse::<Exclude>().unwrap_err().contains("empty"));
    }

    #[test]
    fn revision_names_a_revision_a_tag_or_what_proxies_say() {
        let mut mesh = Mesh::default();
        let err = revision(&mesh, "9-99").unwrap_err().to_string();
        assert!(
            err.contains("no such revision") && err.ends_with("(revisions: none)"),
            "{err}"
        );
        mesh.control_plane.tags.insert(
            "stable".into(),
            shared::model::Tag {
                name: "stable".into(),
                revision: "1-27".into(),
                webhook: "istio-revision-tag-stable".into(),
                service: None,
            },
        );
        assert_eq!(revision(&mesh, "stable").unwrap(), "1-27");
        assert!(matches!(revision(&mesh, "1-26"), Err(shared::Error::Usage(_))));
    }

    /// Revision 1-28 with an istiod of (replicas, ready) if given, and its injector
    /// ConfigMap if asked.
    fn revision_with(istiod: Option<(i32, i32)>, injector: bool) -> shared::model::Revision {
        let (replicas, ready) = istiod.unwrap_or((1, 1));
        let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istiod-1-28", "namespace": "istio-system",
                         "labels": {"app": "istiod", "istio.io/rev": "1-28"}},
            "spec": {"replicas": replicas, "selector": {},
                     "template": {"spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.28.3"}]}}},
            "status": {"readyReplicas": ready, "updatedReplicas": ready}
        }))
        .unwrap();
        let configmap: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istio-sidecar-injector-1-28", "namespace": "istio-system",
                         "labels": {"istio.io/rev": "1-28"}},
            "data": {"values": "{\"global\": {\"hub\": \"docker.io/istio\", \"tag\": \"1.28.3\"}}"}
        }))
        .unwrap();
        let mut r = ControlPlane::from_objects(&[deployment], &[configmap], &[])
            .revisions
            .remove("1-28")
            .unwrap();
        if istiod.is_none() {
            r.istiod = None;
        }
        if !injector {
            r.injector = None;
        }
        r
    }

    fn cannot(istiod: Option<(i32, i32)>, injector: bool) -> Option<String> {
        let mut cp = ControlPlane::default();
        cp.revisions.insert("1-28".into(), revision_with(istiod, injector));
        cannot_inject(&cp, "1-28")
    }

    #[test]
    fn a_revision_injects_with_a_ready_istiod_and_its_injector_configmap() {
        assert_eq!(cannot(Some((1, 1)), true), None);
        assert_eq!(
            cannot(Some((3, 1)), true),
            None,
            "one ready replica answers the webhook"
        );
        assert_eq!(
            cannot(Some((0, 0)), true).unwrap(),
            "its istiod Deployment istio-system/istiod-1-28 is scaled to 0"
        );
        assert_eq!(
            cannot(Some((2, 0)), true).unwrap(),
            "its istiod Deployment istio-system/istiod-1-28 has 0 of 2 replicas ready"
        );
        assert_eq!(
            cannot(Some((1, 1)), false).unwrap(),
            "its injector ConfigMap istio-sidecar-injector-1-28 is missing"
        );
        assert_eq!(
            cannot(None, false).unwrap(),
            "it has no istiod Deployment (app=istiod, istio.io/rev=1-28), and its injector ConfigMap istio-sidecar-injector-1-28 is missing"
        );
        assert_eq!(
            cannot_inject(&ControlPlane::default(), "default").unwrap(),
            "it has no istiod Deployment (app=istiod, istio.io/rev=default), and its injector ConfigMap istio-sidecar-injector is missing"
        );
        let message = refusal("1-28", "its istiod Deployment istio-system/istiod-1-28 is scaled to 0");
        assert!(message.contains("revision 1-28 cannot inject new pods"), "{message}");
        assert!(message.contains("failurePolicy: Fail"), "{message}");
    }

    /// An `istio-proxy` pod owned directly by `kind/name`; `args` as the proxy's (`proxy
    /// router`, `proxy waypoint`), the image's name `proxyv2` or `ztunnel`.
    fn proxy_state(
        ns: &str,
        kind: &str,
        name: &str,
        args: &[&str],
        expected: Expectation,
        stale: bool,
    ) -> shared::model::ProxyState {
        let image = if args.contains(&"ztunnel") {
            "docker.io/istio/ztunnel:1.28.3"
        } else {
            "docker.io/istio/proxyv2:1.28.3"
        };
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{name}-0"), "namespace": ns,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "istio-proxy", "image": image, "args": args}]},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        let proxy = shared::model::Proxy::from_pod(&pod, &Default::default()).expect("a data-plane pod");
        shared::model::ProxyState {
            proxy,
            expected_revision: expected.revision().map(String::from),
            expected,
            out_of_date: if stale {
                vec![shared::model::OutOfDateReason::Version {
                    version: "1.28.3".into(),
                    control_plane: "1.28.4".into(),
                }]
            } else {
                vec![]
            },
        }
    }

    #[test]
    #[allow(clippy::too_many_lines)]
    fn what_a_restart_would_not_update_is_listed_with_the_reason_never_planned() {
        let rendered = || Expectation::Rendered {
            revision: "1-28".into(),
        };
        let injected = Expectation::Injected {
            revision: "1-28".into(),
            tag: None,
            webhook: "istio-sidecar-injector-1-28/namespace.sidecar-injector.istio.io".into(),
        };
        let mesh = Mesh {
            proxies: vec![
                proxy_state(
                    "default",
                    "Deployment",
                    "waypoint",
                    &["proxy", "waypoint"],
                    rendered(),
                    true,
                ),
                proxy_state(
                    "istio-ingress",
                    "Deployment",
                    "gateway-istio",
                    &["proxy", "router"],
                    rendered(),
                    true,
                ),
                proxy_state(
                    "istio-system",
                    "DaemonSet",
                    "ztunnel",
                    &["proxy", "ztunnel"],
                    Expectation::Installed,
                    false,
                ),
                proxy_state(
                    "istio-system",
                    "Deployment",
                    "istio-ingressgateway",
                    &["proxy", "router"],
                    Expectation::Installed,
                    true,
                ),
                proxy_state("shop", "Deployment", "web", &["proxy", "sidecar"], injected, true),
            ],
            ..Mesh::default()
        };
        let p = plan(&mesh, &Filters::default(), &found(&[("shop", "Deployment", "web")]));
        assert_eq!(names(&p.roll), ["shop/deployment/web"]);
        let listed: Vec<(String, ProxyKind)> = p
            .not_restarted
            .iter()
            .map(|n| (format!("{}/{}", n.namespace, n.workload), n.kind))
            .collect();
        assert_eq!(
            listed,
            [
                ("default/deployment/waypoint".to_string(), ProxyKind::Waypoint),
                ("istio-ingress/deployment/gateway-istio".to_string(), ProxyKind::Gateway),
                (
                    "istio-system/deployment/istio-ingressgateway".to_string(),
                    ProxyKind::Gateway
                ),
            ],
            "ztunnel is never out of date; the sidecar is planned"
        );
        assert!(
            p.not_restarted[0].reason.contains("istiod 1-28 renders"),
            "{:?}",
            p.not_restarted[0]
        );
        assert!(p.not_restarted[0].reason.contains("re-renders"));
        assert!(p.not_restarted[2].reason.contains("istioctl"));
        let agent = not_restarted_reason(ProxyKind::Ztunnel, &Expectation::Installed);
        assert!(agent.contains("upgraded by its own chart"), "{agent}");
        // Even with --include-gateways, what istiod renders is not restarted.
        let all = Filters {
            include_gateways: true,
            ..Default::default()
        };
        let every = found(&[
            ("shop", "Deployment", "web"),
            ("default", "Deployment", "waypoint"),
            ("istio-ingress", "Deployment", "gateway-istio"),
            ("istio-system", "Deployment", "istio-ingressgateway"),
            ("istio-system", "DaemonSet", "ztunnel"),
        ]);
        let p = plan(&mesh, &all, &every);
        assert_eq!(names(&p.roll), ["shop/deployment/web"]);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(p.not_restarted.len(), 3);
        // --revision narrows the list as it narrows the plan.
        let other = Filters {
            revision: Some("1-27".into()),
            ..Default::default()
        };
        assert!(plan(&mesh, &other, &Objects::default()).not_restarted.is_empty());
    }

    #[test]
    #[allow(clippy::too_many_lines)]
    fn restarts_that_take_a_workload_down_are_held_back_unless_allowed() {
        use crate::availability::Strategy;
        let workloads = vec![
            out_of_date("shop", "Deployment", "recreate", false, "1-27"),
            out_of_date("shop", "Deployment", "surge", false, "1-27"),
            out_of_date("shop", "StatefulSet", "single", false, "1-27"),
            out_of_date("shop", "DaemonSet", "agent", false, "1-27"),
        ];
        let shape = |replicas: i32, strategy: Strategy, app: &str| Found {
            blocker: None,
            shape: Shape {
                replicas,
                ready: replicas,
                strategy,
                labels: [("app".to_string(), app.to_string())].into(),
            },
        };
        let key = |kind: &str, name: &str| ("shop".to_string(), kind.to_string(), name.to_string());
        let single_budget = Budget {
            namespace: "shop".into(),
            name: "single".into(),
            selector: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                match_labels: Some([("app".to_string(), "single".to_string())].into()),
                ..Default::default()
            }),
            min_available: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(2)),
            ..Budget::default()
        };
        let mut in_other_namespace = single_budget.clone();
        in_other_namespace.namespace = "elsewhere".into();
        in_other_namespace.name = "elsewhere".into();
        let objects = Objects {
            found: [
                (key("Deployment", "recreate"), shape(2, Strategy::Recreate, "recreate")),
                (
                    key("Deployment", "surge"),
                    shape(
                        2,
                        Strategy::Rolling {
                            max_surge: None,
                            max_unavailable: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0)),
                        },
                        "surge",
                    ),
                ),
                (
                    key("StatefulSet", "single"),
                    shape(2, Strategy::Ordered { max_unavailable: None }, "single"),
                ),
                (
                    key("DaemonSet", "agent"),
                    shape(
                        1,
                        Strategy::PerNode {
                            max_surge: None,
                            max_unavailable: None,
                        },
                        "agent",
                    ),
                ),
            ]
            .into(),
            budgets: vec![single_budget, in_other_namespace],
        };
        let p = plan_workloads(workloads.clone(), &Filters::default(), &objects);
        assert_eq!(names(&p.roll), ["shop/daemonset/agent", "shop/deployment/surge"]);
        let cells: Vec<String> = p.roll.iter().map(|w| w.availability.cell()).collect();
        assert_eq!(cells, ["per node, 1→0 of 1", "2→2 of 2"]);
        let held: Vec<(&str, SkipCause, Option<String>)> = p
            .skipped
            .iter()
            .map(|s| {
                (
                    s.workload.workload.name.as_str(),
                    s.cause,
                    s.availability.as_ref().map(Availability::cell),
                )
            })
            .collect();
        assert_eq!(
            held,
            [
                ("recreate", SkipCause::Availability, Some("2→0 (Recreate)".to_string())),
                (
                    "single",
                    SkipCause::Availability,
                    Some("PDB single: minAvailable 2".to_string())
                ),
            ]
        );
        assert!(
            p.skipped[0].reason.contains("switch its strategy to RollingUpdate"),
            "{}",
            p.skipped[0].reason
        );
        assert!(p.skipped[0].reason.ends_with("--allow-downtime deployment/recreate"));
        assert!(
            p.skipped[1].reason.contains("breaches PodDisruptionBudget single"),
            "{}",
            p.skipped[1].reason
        );
        assert!(p.skipped[1].reason.ends_with("--allow-downtime statefulset/single"));

        // One named, then all.
        let one = Filters {
            allow_downtime: vec!["sts/single".parse().unwrap()],
            ..Default::default()
        };
        let p = plan_workloads(workloads.clone(), &one, &objects);
        assert_eq!(p.roll.len(), 3);
        assert_eq!(p.skipped.len(), 1);
        let single = p.roll.iter().find(|w| w.workload.workload.name == "single").unwrap();
        assert_eq!(single.availability.cell(), "PDB single: minAvailable 2, allowed");
        let all = Filters {
            allow_downtime: vec!["all".parse().unwrap()],
            ..Default::default()
        };
        let p = plan_workloads(workloads, &all, &objects);
        assert_eq!(p.roll.len(), 4);
        assert!(p.skipped.is_empty());
        let json = serde_json::to_value(&p.roll[1]).unwrap();
        assert_eq!(json["availability"]["lowest"], 0, "{json}");
        assert_eq!(json["workload"]["name"], "recreate");
    }
}
