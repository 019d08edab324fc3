//! Who still uses the revision, each with a command that frees it. istioctl only warns
//! about them (`preCheckWarnings` in operator/cmd/mesh/uninstall.go); prune refuses.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::DynamicObject;
use shared::model::{
    ControlPlane, Expectation, Injection, Mesh, NamespaceBinding, NoSidecar, ProxyKind, ProxyState, labels,
};

use super::pods::LivePod;
use super::{Cluster, Item, User, item, kind_of, pod_selector, selects, webhooks};

/// Who still uses `revision`. Pods that prune itself removes (those of the revision's own
/// Deployments and DaemonSets in `delete`) do not count, unless they are gateways and
/// `include_gateways` is not given.
pub(crate) fn users(revision: &str, cluster: &Cluster, delete: &[Item], include_gateways: bool) -> Vec<User> {
    let mesh = &cluster.mesh;
    let cp = &mesh.control_plane;
    let to = replacement(revision, cp);
    let own = deleted_workloads(&cluster.selected, delete);
    let (taken, pods): (Vec<&LivePod>, Vec<&LivePod>) = cluster.pods.iter().partition(|p| owned_by(p, &own));
    let mut out: Vec<User> = only_revision(revision, cp).into_iter().collect();
    out.extend(tags(revision, mesh, &to));
    out.extend(mesh.namespaces.values().filter_map(|ns| namespace(revision, ns, &to)));
    if !include_gateways {
        out.extend(gateways(revision, &own, &taken, &cluster.selected, delete, &to));
    }
    out.extend(pod_users(revision, mesh, &pods, &to));
    out.extend(labelled_pods(revision, cp, &pods));
    out.extend(webhooks::users(revision, cp, &cluster.webhooks, delete, &to));
    out
}

/// The Deployments and DaemonSets prune deletes: their pods go with them.
fn deleted_workloads<'a>(selected: &'a [DynamicObject], delete: &[Item]) -> Vec<&'a DynamicObject> {
    selected
        .iter()
        .filter(|o| matches!(kind_of(o), "Deployment" | "DaemonSet"))
        .filter(|o| delete.contains(&item(o)))
        .collect()
}

fn other_revisions<'a>(revision: &str, cp: &'a ControlPlane) -> Vec<&'a str> {
    cp.revisions
        .keys()
        .map(String::as_str)
        .filter(|r| *r != revision)
        .collect()
}

/// The revision users move to in the fixes: the other one, when there is exactly one.
fn replacement(revision: &str, cp: &ControlPlane) -> String {
    match other_revisions(revision, cp).as_slice() {
        [one] => (*one).to_string(),
        _ => "<revision>".to_string(),
    }
}

/// The last revision is Istio itself.
fn only_revision(revision: &str, cp: &ControlPlane) -> Option<User> {
    other_revisions(revision, cp).is_empty().then(|| User {
        what: format!("{revision} is the only control-plane revision: pruning it would remove Istio"),
        fix: "install the revision that replaces it first; to remove Istio entirely use `istioctl uninstall --purge`"
            .to_string(),
    })
}

/// Every revision tag pointing to the revision, with the namespaces following it.
fn tags(revision: &str, mesh: &Mesh, to: &str) -> Vec<User> {
    let Some(rev) = mesh.control_plane.revisions.get(revision) else {
        return vec![];
    };
    rev.tags
        .iter()
        .map(|tag| User {
            what: tag_points_to(revision, tag, &following(mesh, tag)),
            fix: format!("kubectl mesh relabel --tag {tag} --to {to}"),
        })
        .collect()
}

/// The namespaces whose `istio.io/rev` label names the tag.
fn following<'a>(mesh: &'a Mesh, tag: &str) -> Vec<&'a str> {
    mesh.namespaces
        .values()
        .filter(|n| matches!(&n.injection, Injection::Revision { tag: Some(t), .. } if t == tag))
        .map(|n| n.name.as_str())
        .collect()
}

fn tag_points_to(revision: &str, tag: &str, following: &[&str]) -> String {
    if tag == labels::DEFAULT_TAG {
        let list = if following.is_empty() {
            String::new()
        } else {
            format!(": {}", following.join(", "))
        };
        format!("revision tag default points to {revision} (it injects istio-injection=enabled namespaces{list})")
    } else {
        let list = if following.is_empty() {
            String::new()
        } else {
            format!(" (namespaces following it: {})", following.join(", "))
        };
        format!("revision tag {tag} points to {revision}{list}")
    }
}

/// A namespace labelled with the revision, or injected by it as the default revision.
fn namespace(revision: &str, ns: &NamespaceBinding, to: &str) -> Option<User> {
    let direct = ns.rev_label.as_deref() == Some(revision) && ns.injection_label.is_none();
    let default_own = matches!(&ns.injection, Injection::Revision { revision: r, tag: None, .. } if r == revision);
    if direct {
        Some(User {
            what: format!("namespace {} is labelled istio.io/rev={revision}", ns.name),
            fix: format!("kubectl mesh relabel --from {revision} --to {to} -A"),
        })
    } else if default_own {
        let label = ns
            .injection_label
            .as_deref()
            .map(|v| format!("istio-injection={v}"))
            .unwrap_or_default();
        Some(User {
            what: format!("namespace {} ({label}) gets its sidecars from {revision}", ns.name),
            fix: format!("kubectl mesh relabel --to {to} -n {}", ns.name),
        })
    } else {
        None
    }
}

/// A pod of one of the workloads prune deletes goes with it.
fn owned_by(p: &LivePod, own_workloads: &[&DynamicObject]) -> bool {
    own_workloads.iter().any(|w| {
        w.metadata.namespace.as_deref() == Some(p.namespace.as_str())
            && pod_selector(w).is_some_and(|s| selects(s, &p.labels))
    })
}

// ---- The revision's gateways ----

/// A gateway `istioctl install` wrote: its component label, or, as istioctl itself judges
/// (`constructResourceListOutput` in operator/cmd/mesh/uninstall.go), its name.
fn is_gateway(o: &DynamicObject) -> bool {
    let component = o
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::OPERATOR_COMPONENT));
    matches!(
        component.map(String::as_str),
        Some("IngressGateways" | "EgressGateways")
    ) || o.metadata.name.as_deref().is_some_and(|n| n.contains("gateway"))
}

/// The revision's own gateways that prune would delete while they have live pods, with
/// their Services: istioctl warns (`GatewaysRemovedWarning` in
/// operator/cmd/mesh/uninstall.go); prune refuses unless `--include-gateways`.
fn gateways(
    revision: &str,
    own: &[&DynamicObject],
    taken: &[&LivePod],
    selected: &[DynamicObject],
    delete: &[Item],
    to: &str,
) -> Vec<User> {
    own.iter()
        .filter(|w| is_gateway(w))
        .filter_map(|w| {
            let pods: Vec<&LivePod> = taken.iter().copied().filter(|p| owned_by(p, &[*w])).collect();
            let first = pods.first()?;
            let ns = w.metadata.namespace.as_deref().unwrap_or_default();
            let with = services_of(first, ns, selected, delete);
            let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
            Some(User {
                what: format!(
                    "gateway {}/{} -n {ns} runs on {revision} with {} live pod(s) ({}): pruning deletes it{with} and the traffic through it stops",
                    kind_of(w).to_lowercase(),
                    w.metadata.name.as_deref().unwrap_or_default(),
                    pods.len(),
                    names.join(", ")
                ),
                fix: format!(
                    "reinstall the gateway with revision {to} first (`istioctl install --revision {to}` with it enabled takes over the same Deployment), or pass --include-gateways to delete it"
                ),
            })
        })
        .collect()
}

/// The deleted Services in front of a gateway's pods, as ` with service/x (LoadBalancer)`.
fn services_of(pod: &LivePod, ns: &str, selected: &[DynamicObject], delete: &[Item]) -> String {
    let services: Vec<String> = selected
        .iter()
        .filter(|o| kind_of(o) == "Service" && o.metadata.namespace.as_deref() == Some(ns))
        .filter(|o| delete.contains(&item(o)))
        .filter(|o| pod_selector(o).is_some_and(|s| selects(s, &pod.labels)))
        .map(|o| {
            let kind = o.data["spec"]["type"].as_str().unwrap_or("ClusterIP");
            format!("service/{} ({kind})", o.metadata.name.as_deref().unwrap_or_default())
        })
        .collect();
    if services.is_empty() {
        String::new()
    } else {
        format!(" with {}", services.join(", "))
    }
}

// ---- The revision's pods ----

/// What restarting a pod of the revision does, by the model's [`Expectation`] (what a new
/// pod of its workload gets, the rule roll plans by), which decides the command that frees
/// it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Restart {
    /// Injected again by another revision: `kubectl mesh roll` restarts it.
    Moves,
    /// Its namespace (or the default tag or revision) selects the revision again.
    SelectedAgain,
    /// Its own `istio.io/rev` label asks for the revision again.
    LabelledAgain,
    /// No revision injects it any more: a restart removes its sidecar, and roll, which
    /// restarts only proxies a restart brings up to date, leaves it. `namespace_wide`: the
    /// namespace or the control plane decides, not the pod.
    Removes { why: String, namespace_wide: bool },
    /// A Gateway API gateway or waypoint: istiod renders its Deployment for this Gateway,
    /// and the Gateway's `istio.io/rev` decides which istiod.
    Rendered { gateway: String, waypoint: bool },
    /// Its chart or istioctl wrote the proxy into the workload: a restart keeps it.
    Installed,
    /// Its proxy was not recognised.
    Unknown,
}

/// A pod and its proxy as the model reads it (absent when no proxy was recognised).
type PodProxy<'a> = (&'a LivePod, Option<&'a ProxyState>);

/// The revision's pods that stay when prune is done, grouped by namespace and by what a
/// restart does to them (one group per Gateway for gateways istiod renders).
fn pod_users(revision: &str, mesh: &Mesh, pods: &[&LivePod], to: &str) -> Vec<User> {
    let mut groups: BTreeMap<(&str, Restart), Vec<PodProxy<'_>>> = BTreeMap::new();
    for p in pods
        .iter()
        .filter(|p| p.revision.as_deref() == Some(revision) && !p.is_istiod())
    {
        let state = mesh
            .proxies
            .iter()
            .find(|s| s.proxy.namespace == p.namespace && s.proxy.pod == p.name);
        let restart = state.map_or(Restart::Unknown, |s| restart(revision, mesh, s));
        groups.entry((&p.namespace, restart)).or_default().push((p, state));
    }
    groups
        .into_iter()
        .map(|((ns, restart), pods)| restart_user(revision, ns, &restart, &pods, to))
        .collect()
}

fn restart(revision: &str, mesh: &Mesh, state: &ProxyState) -> Restart {
    let p = &state.proxy;
    let ns = mesh.namespaces.get(&p.namespace);
    match &state.expected {
        Expectation::Injected { revision: r, .. } if r != revision => Restart::Moves,
        Expectation::Injected { .. } => match ns.map(|n| &n.injection) {
            Some(Injection::Revision { .. }) => Restart::SelectedAgain,
            _ if p.rev_label.is_some() => Restart::LabelledAgain,
            _ => Restart::SelectedAgain,
        },
        Expectation::Rendered { .. } | Expectation::NoController { .. } => Restart::Rendered {
            gateway: p.gateway_name.clone().unwrap_or_else(|| p.workload.name.clone()),
            waypoint: p.kind == ProxyKind::Waypoint,
        },
        Expectation::Installed => Restart::Installed,
        Expectation::NoSidecar { reason } => Restart::Removes {
            why: no_sidecar(&p.namespace, ns, reason),
            namespace_wide: reason.namespace_wide(),
        },
    }
}

/// Why a new pod gets no sidecar, naming the namespace when it decides.
fn no_sidecar(name: &str, ns: Option<&NamespaceBinding>, reason: &NoSidecar) -> String {
    match (ns.map(|n| &n.injection), reason) {
        (Some(Injection::Disabled), _) => format!("namespace {name} is labelled istio-injection=disabled"),
        (Some(Injection::Broken { reason }), _) => format!("namespace {name}: {reason}"),
        (_, NoSidecar::NoWebhook) => format!("no injector webhook matches them in namespace {name}"),
        _ => reason.to_string(),
    }
}

fn restart_user(revision: &str, ns: &str, restart: &Restart, pods: &[PodProxy<'_>], to: &str) -> User {
    let names: Vec<&str> = pods.iter().map(|(p, _)| p.name.as_str()).collect();
    let names = names.join(", ");
    let carry = format!(
        "{} running or pending pod(s) in namespace {ns} carry proxies injected by {revision}: {names}",
        pods.len()
    );
    let workloads = workloads(pods).join(" ");
    let (what, fix) = match restart {
        Restart::Moves | Restart::Unknown => (carry, format!("kubectl mesh roll -n {ns}")),
        Restart::SelectedAgain => (
            carry,
            format!(
                "kubectl mesh roll -n {ns}, once new pods there no longer get {revision} (see above): a restart now gets {revision} again"
            ),
        ),
        Restart::LabelledAgain => (
            format!("{carry}; their own istio.io/rev label asks for {revision} again"),
            format!("set istio.io/rev={to} in the pod template of {workloads} -n {ns}, which restarts them"),
        ),
        Restart::Removes { why, namespace_wide } => {
            let keep = if *namespace_wide {
                format!("kubectl mesh relabel --to {to} -n {ns}, then kubectl mesh roll -n {ns}")
            } else {
                format!("remove the opt-out from their pod template, then kubectl mesh roll -n {ns}")
            };
            (
                format!("{carry}; {why}, so a restart removes their sidecar and `kubectl mesh roll` restarts nothing"),
                format!(
                    "{} (they run on without a sidecar), or to keep them in the mesh: {keep}",
                    restart_commands(ns, pods)
                ),
            )
        }
        // `IsMine` in pkg/revisions/tag_watcher.go: the Gateway's istio.io/rev picks the istiod.
        Restart::Rendered { gateway, waypoint } => (
            format!(
                "{} {gateway} in namespace {ns} runs on {revision} (istiod {revision} renders its Deployment): {names}",
                if *waypoint { "waypoint" } else { "Gateway API gateway" }
            ),
            format!(
                "kubectl label gateway {gateway} -n {ns} istio.io/rev={to} --overwrite (istiod {to} then renders it)"
            ),
        ),
        Restart::Installed => (
            format!(
                "{} pod(s) in namespace {ns} run a proxy of {revision} written into their workload (not injected): {names}",
                pods.len()
            ),
            format!(
                "reinstall {workloads} -n {ns} with revision {to} (an istioctl gateway: `istioctl install --revision {to}` with it enabled)"
            ),
        ),
    };
    User { what, fix }
}

/// The pods' workloads as kubectl names them (`deployment/webapp`); a pod with no proxy
/// read stands for itself.
fn workloads(pods: &[PodProxy<'_>]) -> Vec<String> {
    let set: BTreeSet<String> = pods
        .iter()
        .map(|(p, s)| match s {
            Some(s) => s.proxy.workload.to_string(),
            None => format!("pod/{}", p.name),
        })
        .collect();
    set.into_iter().collect()
}

/// `kubectl rollout restart` for the workloads it can restart; `kubectl delete pod` for
/// the others (their controller, if any, recreates them).
fn restart_commands(ns: &str, pods: &[PodProxy<'_>]) -> String {
    let mut restartable = BTreeSet::new();
    let mut others = BTreeSet::new();
    for (p, s) in pods {
        match s {
            Some(s) if s.proxy.workload.restartable() => restartable.insert(s.proxy.workload.to_string()),
            _ => others.insert(p.name.clone()),
        };
    }
    let mut commands = vec![];
    if !restartable.is_empty() {
        let list: Vec<String> = restartable.into_iter().collect();
        commands.push(format!("kubectl rollout restart {} -n {ns}", list.join(" ")));
    }
    if !others.is_empty() {
        let list: Vec<String> = others.into_iter().collect();
        commands.push(format!("kubectl delete pod {} -n {ns}", list.join(" ")));
    }
    commands.join(" and ")
}

/// The pods whose own `istio.io/rev` label asks for the revision (or a tag of it) without
/// carrying its proxy yet, as one user.
fn labelled_pods(revision: &str, cp: &ControlPlane, pods: &[&LivePod]) -> Option<User> {
    let labelled: Vec<String> = pods.iter().filter_map(|p| labelled_for(p, revision, cp)).collect();
    (!labelled.is_empty()).then(|| User {
        what: format!("pods labelled to be injected by {revision}: {}", labelled.join(", ")),
        fix: "change the istio.io/rev label in their workload's pod template, then kubectl mesh roll".to_string(),
    })
}

fn labelled_for(p: &LivePod, revision: &str, cp: &ControlPlane) -> Option<String> {
    let label = p.labels.get(labels::REV)?;
    if p.revision.as_deref() == Some(revision) || p.is_istiod() {
        return None;
    }
    let names_a_tag_of_it = label != revision && cp.revision_of(label).is_some_and(|r| r.name == revision);
    let names_it_unserved = label == revision;
    (names_a_tag_of_it || names_it_unserved).then(|| format!("{}/{} (istio.io/rev={label})", p.namespace, p.name))
}
