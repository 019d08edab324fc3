//! What prune would delete, what it keeps and why, and who still uses the revision: pure
//! decisions from the objects read.
//!
//! The selection is `istioctl uninstall --revision`'s (`GetPrunedResources` in Istio's
//! `operator/pkg/uninstall/prune.go`). What istioctl only warns about (proxies still pointing
//! to the revision, `preCheckWarnings` in `operator/cmd/mesh/uninstall.go`) refuses here, and
//! what another revision still needs is kept.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde::Serialize;
use serde_json::Value;
use shared::model::{ControlPlane, Injection, Mesh, NamespaceBinding, labels};

/// The components `istioctl uninstall --revision` selects: `includeCN` in
/// `GetPrunedResources` (operator/pkg/uninstall/prune.go).
pub(crate) const COMPONENTS: [&str; 5] = ["Pilot", "IngressGateways", "EgressGateways", "Cni", "Ztunnel"];

/// The label selector `istioctl uninstall --revision <rev>` uses.
pub(crate) fn selector(revision: &str) -> String {
    format!(
        "{}={revision},{} in ({})",
        labels::REV,
        labels::OPERATOR_COMPONENT,
        COMPONENTS.join(",")
    )
}

/// One kind `istioctl uninstall` deletes (`NamespacedResources` and `ClusterCPResources` in
/// operator/pkg/uninstall/prune.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResourceKind {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
}

impl ResourceKind {
    /// The kind as kube's dynamic API needs it; every plural here is the kind in lower case
    /// with an `s`, as kube derives it.
    pub(crate) fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk(&GroupVersionKind::gvk(self.group, self.version, self.kind))
    }
}

const fn kind(group: &'static str, version: &'static str, kind: &'static str) -> ResourceKind {
    ResourceKind { group, version, kind }
}

const ADMISSION: &str = "admissionregistration.k8s.io";
const RBAC: &str = "rbac.authorization.k8s.io";

/// The kinds, in the order prune deletes them: the webhooks first so the revision injects
/// and validates nothing more (as `ClusterResources` in operator/pkg/uninstall/prune.go is
/// ordered), then the workloads, then what they used.
const KINDS: [ResourceKind; 15] = [
    kind(ADMISSION, "v1", "MutatingWebhookConfiguration"),
    kind(ADMISSION, "v1", "ValidatingWebhookConfiguration"),
    kind("apps", "v1", "Deployment"),
    kind("apps", "v1", "DaemonSet"),
    kind("autoscaling", "v2", "HorizontalPodAutoscaler"),
    kind("policy", "v1", "PodDisruptionBudget"),
    kind("", "v1", "Pod"),
    kind("", "v1", "Service"),
    kind("networking.istio.io", "v1alpha3", "EnvoyFilter"),
    kind("", "v1", "ConfigMap"),
    kind("", "v1", "Secret"),
    kind(RBAC, "v1", "RoleBinding"),
    kind(RBAC, "v1", "Role"),
    kind(RBAC, "v1", "ClusterRoleBinding"),
    kind(RBAC, "v1", "ClusterRole"),
];

/// ServiceAccounts go last: the bindings deleted before them name them.
const SERVICE_ACCOUNT: ResourceKind = kind("", "v1", "ServiceAccount");

/// Every kind, in deletion order.
pub(crate) fn kinds() -> Vec<ResourceKind> {
    let mut k = KINDS.to_vec();
    k.push(SERVICE_ACCOUNT);
    k
}

/// The kind of a planned object (`None` only for a kind prune never selects).
pub(crate) fn resource_kind(kind: &str) -> Option<ResourceKind> {
    kinds().into_iter().find(|k| k.kind == kind)
}

/// An object selected by the revision's label selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Item {
    pub(crate) kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    #[serde(skip)]
    pub(crate) uid: String,
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} -n {ns}", self.kind.to_lowercase(), self.name),
            None => write!(f, "{}/{}", self.kind.to_lowercase(), self.name),
        }
    }
}

/// A live (running or pending) pod, with what objects it depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LivePod {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    /// The revision that injected it, or for control-plane pods their `istio.io/rev` label.
    pub(crate) revision: Option<String>,
    pub(crate) service_account: Option<String>,
    pub(crate) configmaps: BTreeSet<String>,
    pub(crate) secrets: BTreeSet<String>,
}

impl LivePod {
    /// `None` for Succeeded and Failed pods: they keep their revision forever and use nothing.
    pub(crate) fn from_pod(pod: &Pod) -> Option<LivePod> {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending");
        if matches!(phase, "Succeeded" | "Failed") || pod.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let ann = pod.metadata.annotations.as_ref();
        let lbls = pod.metadata.labels.clone().unwrap_or_default();
        let injected = ann
            .and_then(|a| a.get(labels::SIDECAR_STATUS))
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .and_then(|v| v.get("revision").and_then(Value::as_str).map(String::from));
        let revision = injected.or_else(|| lbls.get(labels::REV).cloned());
        let spec = pod.spec.as_ref();
        let (configmaps, secrets) = spec.map(mounted).unwrap_or_default();
        Some(LivePod {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            labels: lbls,
            revision,
            service_account: spec.and_then(|s| s.service_account_name.clone()),
            configmaps,
            secrets,
        })
    }
}

/// The ConfigMaps and Secrets a pod mounts, directly or through a projected volume.
fn mounted(spec: &PodSpec) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut configmaps = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    for v in spec.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            configmaps.insert(cm.name.clone());
        }
        if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            secrets.insert(s);
        }
        let projected = v.projected.as_ref().and_then(|p| p.sources.as_ref());
        for src in projected.into_iter().flatten() {
            if let Some(cm) = &src.config_map {
                configmaps.insert(cm.name.clone());
            }
            if let Some(s) = &src.secret {
                secrets.insert(s.name.clone());
            }
        }
    }
    (configmaps, secrets)
}

/// An object kept, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Kept {
    #[serde(flatten)]
    pub(crate) item: Item,
    pub(crate) reason: String,
}

/// Something that still uses the revision, and the command that frees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct User {
    pub(crate) what: String,
    pub(crate) fix: String,
}

/// The plan for one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Plan {
    pub(crate) revision: String,
    pub(crate) selector: String,
    pub(crate) delete: Vec<Item>,
    pub(crate) keep: Vec<Kept>,
    /// Non-empty: prune refuses and deletes nothing.
    pub(crate) users: Vec<User>,
}

/// The revision argument, trimmed; empty is a usage error.
pub(crate) fn revision_arg(arg: &str) -> shared::Result<String> {
    let revision = arg.trim();
    if revision.is_empty() {
        return Err(shared::Error::Usage(
            "the revision to prune is required, e.g. `kubectl mesh prune 1-27`".into(),
        ));
    }
    Ok(revision.to_string())
}

/// A revision tag is not a revision: prune takes the revision it points to.
pub(crate) fn not_a_tag(revision: &str, cp: &ControlPlane) -> shared::Result<()> {
    match cp.tags.get(revision) {
        Some(t) => Err(shared::Error::Usage(format!(
            "{revision} is a revision tag (pointing to {}), not a revision; prune takes a revision, see `kubectl mesh revisions`",
            t.revision
        ))),
        None => Ok(()),
    }
}

/// The revision must exist, or something labelled with it must be left. A revision
/// half-removed by an interrupted prune is no longer in the control plane, but what is left
/// of it is still selected: prune finishes the job.
pub(crate) fn found(revision: &str, cp: &ControlPlane, selected: &[DynamicObject]) -> shared::Result<()> {
    if cp.revisions.contains_key(revision) || !selected.is_empty() {
        return Ok(());
    }
    Err(shared::Error::Usage(format!(
        "revision {revision} not found: no object is labelled istio.io/rev={revision} (revisions: {}); see `kubectl mesh revisions`",
        shared::error::known(cp.revisions.keys().map(String::as_str))
    )))
}

/// Does a Kubernetes label selector (`matchLabels` / `matchExpressions`, or a Service's
/// plain map) select these labels? An empty selector selects nothing here: no object we
/// look at means "every pod".
pub(crate) fn selects(selector: &Value, lbls: &BTreeMap<String, String>) -> bool {
    let Some(obj) = selector.as_object() else { return false };
    let is_label_selector = obj.contains_key("matchLabels") || obj.contains_key("matchExpressions");
    let (match_labels, exprs) = if is_label_selector {
        (
            obj.get("matchLabels").and_then(Value::as_object),
            obj.get("matchExpressions").and_then(Value::as_array),
        )
    } else {
        (Some(obj), None)
    };
    let mut any = false;
    for (k, v) in match_labels.into_iter().flatten() {
        any = true;
        if lbls.get(k).map(String::as_str) != v.as_str() {
            return false;
        }
    }
    for e in exprs.into_iter().flatten() {
        any = true;
        if !expression_holds(e, lbls) {
            return false;
        }
    }
    any
}

/// One `matchExpressions` entry, by the API server's rules.
fn expression_holds(e: &Value, lbls: &BTreeMap<String, String>) -> bool {
    let key = e.get("key").and_then(Value::as_str).unwrap_or("");
    let values: Vec<&str> = e
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let have = lbls.get(key).map(String::as_str);
    match e.get("operator").and_then(Value::as_str).unwrap_or("") {
        "In" => have.is_some_and(|h| values.contains(&h)),
        "NotIn" => have.is_none_or(|h| !values.contains(&h)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        _ => false,
    }
}

fn item(o: &DynamicObject) -> Item {
    Item {
        kind: kind_of(o).to_string(),
        namespace: o.metadata.namespace.clone(),
        name: o.metadata.name.clone().unwrap_or_default(),
        uid: o.metadata.uid.clone().unwrap_or_default(),
    }
}

fn kind_of(o: &DynamicObject) -> &str {
    o.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("")
}

fn pod_selector(o: &DynamicObject) -> Option<&Value> {
    o.data.get("spec").and_then(|s| s.get("selector"))
}

// ---- Who still uses the revision ----

/// Who still uses `revision`. Pods that prune itself removes (those of the revision's own
/// Deployments and DaemonSets) do not count.
pub(crate) fn users(revision: &str, mesh: &Mesh, pods: &[LivePod], own_workloads: &[&DynamicObject]) -> Vec<User> {
    let cp = &mesh.control_plane;
    let to = replacement(revision, cp);
    let pods: Vec<&LivePod> = pods.iter().filter(|p| !owned_by(p, own_workloads)).collect();
    let mut out: Vec<User> = only_revision(revision, cp).into_iter().collect();
    out.extend(tags(revision, mesh, &to));
    out.extend(mesh.namespaces.values().filter_map(|ns| namespace(revision, ns, &to)));
    out.extend(injected_pods(revision, &pods));
    out.extend(labelled_pods(revision, cp, &pods));
    out
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

/// A proxy the revision injected (its own istiod is not one).
fn injected_by(p: &LivePod, revision: &str) -> bool {
    p.revision.as_deref() == Some(revision) && p.labels.get("app").map(String::as_str) != Some("istiod")
}

/// The pods carrying the revision's proxies, one user per namespace.
fn injected_pods(revision: &str, pods: &[&LivePod]) -> Vec<User> {
    let mut by_ns: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in pods.iter().filter(|p| injected_by(p, revision)) {
        by_ns.entry(&p.namespace).or_default().push(&p.name);
    }
    by_ns
        .into_iter()
        .map(|(ns, names)| User {
            what: format!(
                "{} running or pending pod(s) in namespace {ns} carry proxies injected by {revision}: {}",
                names.len(),
                names.join(", ")
            ),
            fix: format!("kubectl mesh roll -n {ns}"),
        })
        .collect()
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
    if injected_by(p, revision) {
        return None;
    }
    let names_a_tag_of_it = label != revision && cp.revision_of(label).is_some_and(|r| r.name == revision);
    let names_it_unserved = label == revision && p.revision.as_deref() != Some(revision);
    (names_a_tag_of_it || names_it_unserved).then(|| format!("{}/{} (istio.io/rev={label})", p.namespace, p.name))
}

// ---- What is kept, and why ----

/// Objects kept, with the reason.
type Keep = BTreeMap<Item, String>;

/// Split the selected objects into those to delete and those to keep. An object is kept
/// when it still serves something that is not the revision being pruned, or when a kept
/// object needs it.
pub(crate) fn split(
    revision: &str,
    selected: &[DynamicObject],
    pods: &[LivePod],
    cp: &ControlPlane,
) -> (Vec<Item>, Vec<Kept>) {
    // A pod serves "another revision" when it was injected by one, or is another
    // revision's control plane, or is not in the mesh at all.
    let foreign: Vec<&LivePod> = pods
        .iter()
        .filter(|p| p.revision.as_deref() != Some(revision))
        .collect();
    let mut keep: Keep = selected
        .iter()
        .filter_map(|o| serves_another_revision(o, revision, &foreign, pods, cp).map(|r| (item(o), r)))
        .collect();
    keep_what_kept_objects_need(selected, &mut keep);
    partition(selected, &keep)
}

/// Why an object still serves another revision, if it does.
fn serves_another_revision(
    o: &DynamicObject,
    revision: &str,
    foreign: &[&LivePod],
    pods: &[LivePod],
    cp: &ControlPlane,
) -> Option<String> {
    let name = o.metadata.name.as_deref().unwrap_or("");
    match kind_of(o) {
        "MutatingWebhookConfiguration" => tag_webhook(o),
        "ValidatingWebhookConfiguration" if name == shared::tag::DEFAULT_VALIDATOR => default_validator(cp),
        "Deployment" | "DaemonSet" | "PodDisruptionBudget" | "Service" => {
            pod_selector(o).and_then(|sel| used_by(foreign, o, |p| selects(sel, &p.labels)))
        }
        "Pod" => runs_another_proxy(o, revision, pods),
        "ServiceAccount" => used_by(foreign, o, |p| p.service_account.as_deref() == Some(name)),
        "ConfigMap" => used_by(foreign, o, |p| p.configmaps.contains(name)),
        "Secret" => used_by(foreign, o, |p| p.secrets.contains(name)),
        _ => None,
    }
}

/// A revision tag's webhook: it moves with the tag, not with the revision.
fn tag_webhook(o: &DynamicObject) -> Option<String> {
    let tag = o.metadata.labels.as_ref()?.get(labels::TAG)?;
    Some(format!(
        "webhook of revision tag {tag}; move the tag with `kubectl mesh relabel --tag {tag}`"
    ))
}

/// istiod-default-validator validates for the default tag while it exists.
fn default_validator(cp: &ControlPlane) -> Option<String> {
    cp.tags
        .get(labels::DEFAULT_TAG)
        .map(|t| format!("validates for the default tag (→ {})", t.revision))
}

/// A selected pod that runs another revision's proxy.
fn runs_another_proxy(o: &DynamicObject, revision: &str, pods: &[LivePod]) -> Option<String> {
    let ns = o.metadata.namespace.as_deref();
    let name = o.metadata.name.as_deref();
    let p = pods
        .iter()
        .find(|p| Some(p.namespace.as_str()) == ns && Some(p.name.as_str()) == name)?;
    (p.revision.as_deref() != Some(revision))
        .then(|| format!("runs a proxy of {}", p.revision.as_deref().unwrap_or("no revision")))
}

/// The live pods of other revisions in the object's namespace that use it.
fn used_by(foreign: &[&LivePod], o: &DynamicObject, uses: impl Fn(&LivePod) -> bool) -> Option<String> {
    let ns = o.metadata.namespace.as_deref();
    let users: Vec<&LivePod> = foreign
        .iter()
        .copied()
        .filter(|p| Some(p.namespace.as_str()) == ns && uses(p))
        .collect();
    describe_pods(&users)
}

fn describe_pods(pods: &[&LivePod]) -> Option<String> {
    let first = pods.first()?;
    let revs: BTreeSet<&str> = pods
        .iter()
        .map(|p| p.revision.as_deref().unwrap_or("no revision"))
        .collect();
    Some(format!(
        "used by {} live pod(s) of {} (e.g. {})",
        pods.len(),
        revs.into_iter().collect::<Vec<_>>().join(", "),
        first.name
    ))
}

/// What a kept object needs is kept too: a kept Deployment's HPA, a kept ServiceAccount's
/// bindings and their roles; until nothing more is kept.
fn keep_what_kept_objects_need(selected: &[DynamicObject], keep: &mut Keep) {
    loop {
        let before = keep.len();
        for o in selected {
            let it = item(o);
            if keep.contains_key(&it) {
                continue;
            }
            let reason = match kind_of(o) {
                "HorizontalPodAutoscaler" => scales_kept(o, selected, keep),
                "RoleBinding" | "ClusterRoleBinding" => binds_kept_service_account(o, keep),
                "Role" | "ClusterRole" => bound_by_kept(o, selected, keep),
                _ => None,
            };
            if let Some(r) = reason {
                keep.insert(it, r);
            }
        }
        if keep.len() == before {
            return;
        }
    }
}

/// An HPA whose target stays (kept, or not selected at all).
fn scales_kept(o: &DynamicObject, selected: &[DynamicObject], keep: &Keep) -> Option<String> {
    let target = o.data.get("spec")?.get("scaleTargetRef")?;
    let (k, n) = (target.get("kind")?.as_str()?, target.get("name")?.as_str()?);
    let selected_target = selected.iter().find(|x| {
        kind_of(x) == k && x.metadata.name.as_deref() == Some(n) && x.metadata.namespace == o.metadata.namespace
    });
    match selected_target.map(item) {
        Some(t) if !keep.contains_key(&t) => None,
        _ => Some(format!("scales {}/{n}, which stays", k.to_lowercase())),
    }
}

/// A (Cluster)RoleBinding naming a ServiceAccount that stays.
fn binds_kept_service_account(o: &DynamicObject, keep: &Keep) -> Option<String> {
    let subjects = o.data.get("subjects").and_then(Value::as_array);
    subjects.into_iter().flatten().find_map(|s| {
        let (k, n) = (s.get("kind")?.as_str()?, s.get("name")?.as_str()?);
        let sns = s
            .get("namespace")
            .and_then(Value::as_str)
            .or(o.metadata.namespace.as_deref());
        let kept = keep
            .keys()
            .any(|i| i.kind == "ServiceAccount" && i.name == n && i.namespace.as_deref() == sns);
        (k == "ServiceAccount" && kept).then(|| format!("binds serviceaccount/{n}, which stays"))
    })
}

/// A (Cluster)Role that a kept binding of the same scope refers to.
fn bound_by_kept(o: &DynamicObject, selected: &[DynamicObject], keep: &Keep) -> Option<String> {
    let binding_kind = format!("{}Binding", kind_of(o));
    let name = o.metadata.name.as_deref().unwrap_or("");
    let refers_to_it = |b: &DynamicObject| {
        b.data
            .get("roleRef")
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
            == Some(name)
    };
    let binding = keep
        .keys()
        .filter(|i| i.kind == binding_kind)
        .find(|i| selected.iter().any(|b| item(b) == **i && refers_to_it(b)))?;
    Some(format!(
        "bound by {}, which stays",
        binding.to_string().split(' ').next().unwrap_or_default()
    ))
}

/// The selected objects in their order, each to delete or kept with its reason.
fn partition(selected: &[DynamicObject], keep: &Keep) -> (Vec<Item>, Vec<Kept>) {
    let mut delete = vec![];
    let mut kept = vec![];
    for o in selected {
        let it = item(o);
        match keep.get(&it) {
            Some(reason) => kept.push(Kept {
                item: it,
                reason: reason.clone(),
            }),
            None => delete.push(it),
        }
    }
    (delete, kept)
}

// ---- The plan ----

/// The whole plan.
pub(crate) fn plan(revision: &str, selected: &[DynamicObject], pods: &[LivePod], mesh: &Mesh) -> Plan {
    let (delete, keep) = split(revision, selected, pods, &mesh.control_plane);
    // Only workloads that prune deletes take their pods with them.
    let deleted_own: Vec<&DynamicObject> = selected
        .iter()
        .filter(|o| matches!(kind_of(o), "Deployment" | "DaemonSet"))
        .filter(|o| delete.contains(&item(o)))
        .collect();
    Plan {
        revision: revision.to_string(),
        selector: selector(revision),
        users: users(revision, mesh, pods, &deleted_own),
        delete,
        keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use shared::model::NamespaceBinding;

    fn docs(path: &str) -> Vec<Value> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let file = if path.starts_with("shared/") {
            dir.join("../..").join(path)
        } else {
            dir.join("tests/fixtures").join(path)
        };
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        serde_saphyr::from_multiple::<Value>(&text).unwrap()
    }

    fn of<T: serde::de::DeserializeOwned>(all: &[Value], kind: &str) -> Vec<T> {
        all.iter()
            .filter(|v| v["kind"] == kind)
            .map(|v| serde_json::from_value(v.clone()).unwrap())
            .collect()
    }

    /// The seed's canary cluster (shared fixtures), with these edits applied to the
    /// namespaces and the `default` tag.
    fn canary(namespace_labels: &[(&str, &str)], default_tag_on: &str, only_1_27: bool) -> Mesh {
        let cp_docs = docs("shared/tests/fixtures/canary-control-plane.yaml");
        let mut deployments: Vec<Deployment> = of(&cp_docs, "Deployment");
        let mut configmaps: Vec<ConfigMap> = of(&cp_docs, "ConfigMap");
        let mut webhooks: Vec<MutatingWebhookConfiguration> = of(&cp_docs, "MutatingWebhookConfiguration");
        let rev = |m: &Option<BTreeMap<String, String>>| m.as_ref().and_then(|l| l.get(labels::REV)).cloned();
        if only_1_27 {
            deployments.retain(|d| rev(&d.metadata.labels).as_deref() != Some("1-28"));
            configmaps.retain(|d| rev(&d.metadata.labels).as_deref() != Some("1-28"));
            webhooks.retain(|d| rev(&d.metadata.labels).as_deref() != Some("1-28"));
        }
        for w in &mut webhooks {
            if w.metadata.name.as_deref() == Some("istio-revision-tag-default") {
                w.metadata
                    .labels
                    .as_mut()
                    .unwrap()
                    .insert(labels::REV.into(), default_tag_on.into());
            }
        }
        let cp = ControlPlane::from_objects(&deployments, &configmaps, &webhooks);
        let mut nss: Vec<Namespace> = of(&docs("shared/tests/fixtures/canary-namespaces.yaml"), "Namespace");
        for ns in &mut nss {
            for (name, value) in namespace_labels {
                if ns.metadata.name.as_deref() == Some(name) {
                    ns.metadata
                        .labels
                        .as_mut()
                        .unwrap()
                        .insert(labels::REV.into(), value.to_string());
                }
            }
        }
        let bindings = nss.iter().map(|n| NamespaceBinding::from_namespace(n, &cp)).collect();
        Mesh::new(cp, bindings, vec![])
    }

    fn selected() -> Vec<DynamicObject> {
        docs("canary-1-27-selected.yaml")
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect()
    }

    fn pods(webapp_on: &str) -> Vec<LivePod> {
        let mut pods: Vec<Pod> = of(&docs("canary-pods.yaml"), "Pod");
        for p in &mut pods {
            if p.metadata.name.as_deref().unwrap().starts_with("webapp") {
                let ann = p.metadata.annotations.as_mut().unwrap();
                let status = ann[labels::SIDECAR_STATUS].replace("1-27", webapp_on);
                ann.insert(labels::SIDECAR_STATUS.into(), status);
            }
        }
        pods.iter().filter_map(LivePod::from_pod).collect()
    }

    fn names(items: &[Item]) -> Vec<String> {
        items.iter().map(|i| format!("{}/{}", i.kind, i.name)).collect()
    }

    #[test]
    fn selects_like_istioctl_uninstall() {
        assert_eq!(
            selector("1-27"),
            "istio.io/rev=1-27,operator.istio.io/component in (Pilot,IngressGateways,EgressGateways,Cni,Ztunnel)"
        );
        assert_eq!(kinds().len(), 16);
        assert_eq!(kinds()[0].kind, "MutatingWebhookConfiguration", "webhooks go first");
    }

    #[test]
    fn every_plural_is_the_api_servers() {
        let plurals: Vec<String> = kinds().iter().map(|k| k.api_resource().plural).collect();
        assert_eq!(
            plurals,
            [
                "mutatingwebhookconfigurations",
                "validatingwebhookconfigurations",
                "deployments",
                "daemonsets",
                "horizontalpodautoscalers",
                "poddisruptionbudgets",
                "pods",
                "services",
                "envoyfilters",
                "configmaps",
                "secrets",
                "rolebindings",
                "roles",
                "clusterrolebindings",
                "clusterroles",
                "serviceaccounts",
            ]
        );
    }

    #[test]
    fn completed_pods_are_not_live() {
        let live = pods("1-27");
        assert!(live.iter().all(|p| !p.name.starts_with("report-")));
        let gw = live
            .iter()
            .find(|p| p.name.starts_with("istio-ingressgateway"))
            .unwrap();
        assert_eq!(gw.revision.as_deref(), Some("1-28"));
    }

    #[test]
    fn refuses_while_in_use_and_names_every_user_and_its_fix() {
        let mesh = canary(&[], "1-27", false);
        let plan = plan("1-27", &selected(), &pods("1-27"), &mesh);
        let text: Vec<String> = plan.users.iter().map(|u| format!("{} => {}", u.what, u.fix)).collect();
        let all = text.join("\n");
        assert!(
            all.contains("revision tag default points to 1-27") && all.contains("fleet"),
            "{all}"
        );
        assert!(all.contains("=> kubectl mesh relabel --tag default --to 1-28"), "{all}");
        assert!(
            all.contains(
                "namespace default is labelled istio.io/rev=1-27 => kubectl mesh relabel --from 1-27 --to 1-28 -A"
            ),
            "{all}"
        );
        // batch is istio-injection=disabled: its istio.io/rev=1-27 label means nothing.
        assert!(!all.contains("namespace batch"), "{all}");
        assert!(all.contains("pod(s) in namespace default carry proxies injected by 1-27: webapp-d688b487-kh22b => kubectl mesh roll -n default"), "{all}");
        assert!(!all.contains("report-"), "completed pods never block: {all}");
        assert!(
            !all.contains("istiod-1-27-"),
            "the revision's own istiod is not a user: {all}"
        );
        assert_eq!(plan.users.len(), 3, "{all}");
    }

    #[test]
    fn after_the_move_deletes_exactly_the_revision_and_keeps_what_1_28_uses() {
        let mesh = canary(&[("default", "1-28"), ("batch", "1-28")], "1-28", false);
        let plan = plan("1-27", &selected(), &pods("1-28"), &mesh);
        assert_eq!(plan.users, vec![], "nothing uses 1-27 any more");
        let mut deleted = names(&plan.delete);
        deleted.sort();
        assert_eq!(
            deleted,
            [
                "ClusterRole/istio-reader-clusterrole-1-27-istio-system",
                "ClusterRole/istiod-clusterrole-1-27-istio-system",
                "ClusterRole/istiod-gateway-controller-1-27-istio-system",
                "ClusterRoleBinding/istio-reader-clusterrole-1-27-istio-system",
                "ClusterRoleBinding/istiod-clusterrole-1-27-istio-system",
                "ClusterRoleBinding/istiod-gateway-controller-1-27-istio-system",
                "ConfigMap/istio-1-27",
                "ConfigMap/istio-sidecar-injector-1-27",
                "ConfigMap/values-1-27",
                "Deployment/istiod-1-27",
                "MutatingWebhookConfiguration/istio-sidecar-injector-1-27",
                "PodDisruptionBudget/istiod-1-27",
                "Role/istiod-1-27",
                "RoleBinding/istiod-1-27",
                "Service/istiod-1-27",
                "ServiceAccount/istiod-1-27",
                "ValidatingWebhookConfiguration/istio-validator-1-27-istio-system",
            ]
        );
        let kept: BTreeMap<String, &str> = plan
            .keep
            .iter()
            .map(|k| (format!("{}/{}", k.item.kind, k.item.name), k.reason.as_str()))
            .collect();
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert!(
            kept["PodDisruptionBudget/istio-ingressgateway"].contains("live pod(s) of 1-28"),
            "{kept:?}"
        );
        assert!(kept["PodDisruptionBudget/istio-egressgateway"].contains("istio-egressgateway-748b694b4-qfdw6"));
        assert!(kept["MutatingWebhookConfiguration/istio-revision-tag-default"].contains("revision tag default"));
        assert!(kept["ValidatingWebhookConfiguration/istiod-default-validator"].contains("default tag (→ 1-28)"));
    }

    #[test]
    fn the_only_revision_is_refused() {
        let mesh = canary(&[], "1-27", true);
        let plan = plan("1-27", &selected(), &pods("1-27"), &mesh);
        assert!(
            plan.users[0].what.contains("only control-plane revision"),
            "{:?}",
            plan.users
        );
    }

    #[test]
    fn kept_service_accounts_keep_their_bindings_and_roles() {
        let mut sel = selected();
        // A gateway ServiceAccount still labelled 1-27, used by the 1-28 gateway pod.
        sel.push(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "istio-ingressgateway-service-account", "namespace": "istio-system", "uid": "sa-gw"}
            }))
            .unwrap(),
        );
        sel.push(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "istio-ingressgateway-sds", "namespace": "istio-system", "uid": "rb-gw"},
                "roleRef": {"kind": "Role", "name": "istio-ingressgateway-sds"},
                "subjects": [{"kind": "ServiceAccount", "name": "istio-ingressgateway-service-account"}]
            }))
            .unwrap(),
        );
        sel.push(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "istio-ingressgateway-sds", "namespace": "istio-system", "uid": "r-gw"}
            }))
            .unwrap(),
        );
        let (delete, keep) = split("1-27", &sel, &pods("1-28"), &canary(&[], "1-28", false).control_plane);
        let kept: Vec<String> = keep
            .iter()
            .map(|k| format!("{}/{}", k.item.kind, k.item.name))
            .collect();
        for k in [
            "ServiceAccount/istio-ingressgateway-service-account",
            "RoleBinding/istio-ingressgateway-sds",
            "Role/istio-ingressgateway-sds",
        ] {
            assert!(kept.contains(&k.to_string()), "{k} not kept: {kept:?}");
        }
        assert!(names(&delete).contains(&"RoleBinding/istiod-1-27".to_string()));
    }

    #[test]
    fn a_tag_or_an_unknown_revision_is_a_usage_error_naming_the_revisions() {
        let cp = canary(&[], "1-27", false).control_plane;
        let tag = not_a_tag("default", &cp).unwrap_err();
        assert!(
            matches!(&tag, shared::Error::Usage(m) if m.contains("pointing to 1-27")),
            "{tag}"
        );
        let missing = found("1-26", &cp, &[]).unwrap_err();
        assert!(
            matches!(&missing, shared::Error::Usage(m) if m.contains("revision 1-26 not found") && m.contains("(revisions: 1-27, 1-28)")),
            "{missing}"
        );
        assert!(found("1-27", &cp, &[]).is_ok());
        assert!(
            found("1-26", &cp, &selected()).is_ok(),
            "what an interrupted prune left is still pruned"
        );
        assert!(matches!(revision_arg("  "), Err(shared::Error::Usage(_))));
    }

    #[test]
    fn label_selectors_match_like_the_api_server() {
        let l: BTreeMap<String, String> = [
            ("app".to_string(), "x".to_string()),
            ("tier".to_string(), "a".to_string()),
        ]
        .into();
        assert!(selects(&serde_json::json!({"app": "x"}), &l));
        assert!(selects(&serde_json::json!({"matchLabels": {"app": "x"}}), &l));
        assert!(!selects(&serde_json::json!({"matchLabels": {"app": "y"}}), &l));
        assert!(selects(
            &serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "gone", "operator": "DoesNotExist"}]}),
            &l
        ));
        assert!(
            !selects(&serde_json::json!({}), &l),
            "an empty selector selects nothing here"
        );
    }
}
