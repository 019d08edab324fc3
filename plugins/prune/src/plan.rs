//! What prune would delete, what it keeps and why, and who still uses the revision: pure
//! decisions from the objects read.
//!
//! The selection is `istioctl uninstall --revision`'s (`GetPrunedResources` in Istio's
//! `operator/pkg/uninstall/prune.go`). What istioctl only warns about (proxies still pointing
//! to the revision, `preCheckWarnings` in `operator/cmd/mesh/uninstall.go`) refuses here, and
//! what another revision still needs is kept.

mod pods;
mod traces;
mod users;
mod webhooks;

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde::Serialize;
use serde_json::Value;
use shared::Scope;
use shared::model::{ControlPlane, Mesh, labels};

pub(crate) use pods::{LivePod, pods_of};
pub(crate) use traces::remembered;
pub(crate) use webhooks::WebhookConfig;

/// What the plan is made from.
pub(crate) struct Cluster {
    /// The control plane, the namespaces, and every live proxy with the revision a restart
    /// would give it.
    pub(crate) mesh: Mesh,
    /// What the revision's selector selects, in deletion order.
    pub(crate) selected: Vec<DynamicObject>,
    pub(crate) pods: Vec<LivePod>,
    /// Every Mutating- and ValidatingWebhookConfiguration.
    pub(crate) webhooks: Vec<WebhookConfig>,
    /// What still carries the revision when nothing of its control plane is left (read only
    /// then): objects labelled `istio.io/rev=<revision>`, pods of it, and relabel's records
    /// of namespaces and tags moved off it.
    pub(crate) traces: Vec<String>,
}

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

/// The revision's own webhook configurations that the selector above misses: Helm's
/// istio-discovery chart labels `istio-validator-<rev>-<ns>` with `istio.io/rev` but not with
/// `operator.istio.io/component` (templates/validatingwebhookconfiguration.yaml), so
/// `istioctl uninstall` would leave it behind calling a deleted istiod. Tags are not the
/// revision's own.
pub(crate) fn own_webhooks_selector(revision: &str) -> String {
    format!(
        "{}={revision},!{},!{}",
        labels::REV,
        labels::TAG,
        labels::OPERATOR_COMPONENT
    )
}

/// Of the configurations [`own_webhooks_selector`] lists, those whose every webhook calls
/// this revision's istiod Service: nothing else depends on them, and nothing works through
/// them once it is gone. istio-base's `istiod-default-validator` is not one: it belongs to
/// the default tag and moves with it (base/templates/
/// defaultrevision-validatingwebhookconfiguration.yaml).
pub(crate) fn is_own_webhook(revision: &str, o: &DynamicObject) -> bool {
    if o.metadata.name.as_deref() == Some(shared::tag::DEFAULT_VALIDATOR) {
        return false;
    }
    let service = webhooks::istiod_service(revision);
    let hooks = o.data.get("webhooks").and_then(Value::as_array);
    let mut calls = hooks
        .into_iter()
        .flatten()
        .map(|w| w.pointer("/clientConfig/service/name").and_then(Value::as_str));
    hooks.is_some_and(|h| !h.is_empty()) && calls.all(|s| s == Some(service.as_str()))
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

/// Namespaces are never deleted; a namespace labelled with the revision only shows that the
/// revision existed.
pub(crate) const NAMESPACE: ResourceKind = kind("", "v1", "Namespace");

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

/// A revision tag is not a revision: prune takes the revision it points to. The
/// unrevisioned control plane's revision is named `default` like the default tag; while it
/// exists, `default` names it.
pub(crate) fn not_a_tag(revision: &str, cp: &ControlPlane) -> shared::Result<()> {
    match cp.tags.get(revision) {
        Some(t) if !cp.revisions.contains_key(revision) => Err(shared::Error::Usage(format!(
            "{revision} is a revision tag (pointing to {}), not a revision; prune takes a revision, see `kubectl mesh revisions`",
            t.revision
        ))),
        _ => Ok(()),
    }
}

/// Whether the revision is there to prune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// It has a control plane, or something its selector selects is left (an interrupted
    /// prune is finished by running it again).
    Installed,
    /// Nothing of its control plane is left, but something still carries its name: a
    /// previous prune finished. The traces are listed for information.
    Pruned(Vec<String>),
}

/// Is the revision there? A name that nothing carries (no object labelled with it, no pod of
/// it) never was a revision: a usage error naming the revisions there are.
pub(crate) fn found(
    revision: &str,
    cp: &ControlPlane,
    selected: &[DynamicObject],
    traces: &[String],
) -> shared::Result<Found> {
    if cp.revisions.contains_key(revision) || !selected.is_empty() {
        return Ok(Found::Installed);
    }
    if !traces.is_empty() {
        return Ok(Found::Pruned(traces.to_vec()));
    }
    Err(shared::Error::Usage(format!(
        "revision {revision} not found: no object is labelled istio.io/rev={revision} and no pod runs it (revisions: {}); see `kubectl mesh revisions`",
        shared::error::known(cp.revisions.keys().map(String::as_str))
    )))
}

/// Whether [`found`] needs the traces: only when neither the control plane nor the
/// selection knows the revision.
pub(crate) fn needs_traces(revision: &str, cp: &ControlPlane, selected: &[DynamicObject]) -> bool {
    !cp.revisions.contains_key(revision) && selected.is_empty()
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

impl From<&DynamicObject> for Item {
    fn from(o: &DynamicObject) -> Item {
        item(o)
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

/// The whole plan. `include_gateways`: the revision's own gateways with live pods are
/// deleted rather than refused.
pub(crate) fn plan(revision: &str, cluster: &Cluster, include_gateways: bool) -> Plan {
    let (delete, keep) = split(revision, &cluster.selected, &cluster.pods, &cluster.mesh.control_plane);
    Plan {
        revision: revision.to_string(),
        selector: selector(revision),
        users: users::users(revision, cluster, &delete, include_gateways),
        delete,
        keep,
    }
}

/// `-n`: the namespace of the revision's control plane, as istioctl's `--istioNamespace`
/// names it. A revision is cluster-wide (its webhooks, its proxies in every namespace), so
/// prune deletes and checks for users across the cluster whatever `-n` says: a narrower
/// check would delete a control plane still in use. `-n` guards against naming the wrong
/// one: the revision must have an object selected (to delete or to keep) in one of those
/// namespaces, unless all that is left of it is cluster-scoped. `-A`, the default, takes it
/// wherever it is.
pub(crate) fn check_scope(plan: &Plan, scope: &Scope) -> shared::Result<()> {
    let Scope::Namespaces(wanted) = scope else {
        return Ok(());
    };
    let found: BTreeSet<&str> = plan
        .delete
        .iter()
        .chain(plan.keep.iter().map(|k| &k.item))
        .filter_map(|i| i.namespace.as_deref())
        .collect();
    if found.is_empty() || wanted.iter().any(|n| found.contains(n.as_str())) {
        return Ok(());
    }
    let found: Vec<&str> = found.into_iter().collect();
    Err(shared::Error::Usage(format!(
        "revision {} has nothing in namespace {}: its control plane is in {}. -n names the namespace of the revision's control plane (prune always removes the whole revision, cluster-wide): use -n {} or -A",
        plan.revision,
        wanted.join(", "),
        found.join(", "),
        found[0]
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
    use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
    use shared::model::proxy::replicaset_owners;
    use shared::model::{NamespaceBinding, Proxy, ReplicaSetOwners};

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
    /// namespaces and the `default` tag (moved as `relabel --tag` moves it: label and
    /// Services), and its pods, webapp injected by `webapp_on`.
    fn canary(namespace_labels: &[(&str, &str)], default_tag_on: &str, only_1_27: bool, webapp_on: &str) -> Cluster {
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
                for hook in w.webhooks.iter_mut().flatten() {
                    if let Some(s) = hook.client_config.service.as_mut() {
                        s.name = format!("istiod-{default_tag_on}");
                    }
                }
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
        let pods = canary_pods(webapp_on);
        Cluster {
            mesh: Mesh::new(cp, bindings, proxies(&pods, &[])),
            selected: selected(),
            pods: pods.iter().filter_map(LivePod::from_pod).collect(),
            webhooks: webhooks.iter().map(WebhookConfig::mutating).collect(),
            traces: vec![],
        }
    }

    /// The proxies of these pods, their workloads found through these ReplicaSets.
    fn proxies(pods: &[Pod], replicasets: &[ReplicaSet]) -> Vec<Proxy> {
        let owners: ReplicaSetOwners = replicaset_owners(replicasets);
        pods.iter().filter_map(|p| Proxy::from_pod(p, &owners)).collect()
    }

    fn selected() -> Vec<DynamicObject> {
        docs("canary-1-27-selected.yaml")
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect()
    }

    fn canary_pods(webapp_on: &str) -> Vec<Pod> {
        let mut pods: Vec<Pod> = of(&docs("canary-pods.yaml"), "Pod");
        for p in &mut pods {
            if p.metadata.name.as_deref().unwrap().starts_with("webapp") {
                let ann = p.metadata.annotations.as_mut().unwrap();
                let status = ann[labels::SIDECAR_STATUS].replace("1-27", webapp_on);
                ann.insert(labels::SIDECAR_STATUS.into(), status);
            }
        }
        pods
    }

    fn pods(webapp_on: &str) -> Vec<LivePod> {
        canary_pods(webapp_on).iter().filter_map(LivePod::from_pod).collect()
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
        let plan = plan("1-27", &canary(&[], "1-27", false, "1-27"), false);
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
        let cluster = canary(&[("default", "1-28"), ("batch", "1-28")], "1-28", false, "1-28");
        let plan = plan("1-27", &cluster, false);
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
        let plan = plan("1-27", &canary(&[], "1-27", true, "1-27"), false);
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
        let (delete, keep) = split(
            "1-27",
            &sel,
            &pods("1-28"),
            &canary(&[], "1-28", false, "1-28").mesh.control_plane,
        );
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
        let cp = canary(&[], "1-27", false, "1-27").mesh.control_plane;
        let tag = not_a_tag("default", &cp).unwrap_err();
        assert!(
            matches!(&tag, shared::Error::Usage(m) if m.contains("pointing to 1-27")),
            "{tag}"
        );
        let missing = found("1-26", &cp, &[], &[]).unwrap_err();
        assert!(
            matches!(&missing, shared::Error::Usage(m) if m.contains("revision 1-26 not found") && m.contains("(revisions: 1-27, 1-28)")),
            "{missing}"
        );
        assert!(found("1-27", &cp, &[], &[]).is_ok());
        assert!(
            found("1-26", &cp, &selected(), &[]).is_ok(),
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

    // ---- Clusters made of the sandbox's Istio objects (tests/sandbox/istio) ----

    /// The objects of these files under tests/sandbox/istio, applied in order as the
    /// sandbox's `up` does: a later object replaces one of the same kind, namespace and name.
    fn applied(files: &[&str]) -> Vec<Value> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sandbox/istio");
        let key = |v: &Value| {
            [&v["kind"], &v["metadata"]["namespace"], &v["metadata"]["name"]].map(|k| k.as_str().map(String::from))
        };
        let mut out: Vec<Value> = vec![];
        for f in files {
            let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            for doc in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
                if doc.is_object() {
                    out.retain(|o| key(o) != key(&doc));
                    out.push(doc);
                }
            }
        }
        out
    }

    /// Point the `default` tag's webhook (and, with `validator`, istiod-default-validator)
    /// at another revision: its label and every webhook's Service, as a tag move writes them.
    fn move_default_tag(objects: &mut [Value], to: &str, validator: bool) {
        for o in objects.iter_mut() {
            let tag = o["metadata"]["labels"][labels::TAG] == "default";
            let is_validator = o["metadata"]["name"] == shared::tag::DEFAULT_VALIDATOR;
            if !(tag || (validator && is_validator)) {
                continue;
            }
            o["metadata"]["labels"][labels::REV] = Value::from(to);
            for hook in o["webhooks"].as_array_mut().into_iter().flatten() {
                hook["clientConfig"]["service"]["name"] = Value::from(format!("istiod-{to}"));
            }
        }
    }

    /// A running pod of every Deployment, made from its template as its ReplicaSet makes
    /// it, with that ReplicaSet.
    fn deployment_pods(objects: &[Value]) -> Vec<Value> {
        let mut out = vec![];
        for d in objects.iter().filter(|o| o["kind"] == "Deployment") {
            let (ns, name) = (&d["metadata"]["namespace"], d["metadata"]["name"].as_str().unwrap());
            let rs = format!("{name}-5d8f7c6b9");
            let mut labels = d["spec"]["template"]["metadata"]["labels"].clone();
            labels["pod-template-hash"] = Value::from("5d8f7c6b9");
            let owner = |kind: &str, name: &str| serde_json::json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": format!("uid-{name}"), "controller": true}]);
            out.push(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs, "namespace": ns, "ownerReferences": owner("Deployment", name)}
            }));
            out.push(serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": format!("{rs}-x7k2p"), "namespace": ns, "labels": labels,
                    "annotations": d["spec"]["template"]["metadata"]["annotations"],
                    "ownerReferences": owner("ReplicaSet", &rs)
                },
                "spec": d["spec"]["template"]["spec"],
                "status": {"phase": "Running"}
            }));
        }
        out
    }

    /// The cluster these objects make, with namespaces labelled so, a pod for every
    /// Deployment and these other pods (and ReplicaSets), read to prune `revision`: its
    /// selection is what the API server returns for [`selector`].
    fn cluster_of(
        revision: &str,
        objects: &[Value],
        namespaces: &[(&str, &[(&str, &str)])],
        other: &[Value],
    ) -> Cluster {
        let deployments: Vec<Deployment> = of(objects, "Deployment");
        let configmaps: Vec<ConfigMap> = of(objects, "ConfigMap");
        let mutating: Vec<MutatingWebhookConfiguration> = of(objects, "MutatingWebhookConfiguration");
        let validating: Vec<ValidatingWebhookConfiguration> = of(objects, "ValidatingWebhookConfiguration");
        let cp = ControlPlane::from_objects(&deployments, &configmaps, &mutating);
        let bindings = namespaces
            .iter()
            .map(|(name, l)| {
                let l: BTreeMap<&str, &str> = l.iter().copied().collect();
                let ns: Namespace =
                    serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": l}})).unwrap();
                NamespaceBinding::from_namespace(&ns, &cp)
            })
            .collect();
        let all: Vec<Value> = deployment_pods(objects)
            .into_iter()
            .chain(other.iter().cloned())
            .collect();
        let pods: Vec<Pod> = of(&all, "Pod");
        // What read.rs lists: istioctl's selector, and the revision's own webhook
        // configurations outside it.
        let selects_it = |o: &Value| {
            let l = &o["metadata"]["labels"];
            let istioctls = l[labels::REV] == revision
                && l[labels::OPERATOR_COMPONENT]
                    .as_str()
                    .is_some_and(|c| COMPONENTS.contains(&c));
            let own_webhook = l[labels::REV] == revision
                && l[labels::TAG].is_null()
                && l[labels::OPERATOR_COMPONENT].is_null()
                && o["kind"].as_str().is_some_and(|k| k.ends_with("WebhookConfiguration"))
                && is_own_webhook(revision, &serde_json::from_value(o.clone()).unwrap());
            istioctls || own_webhook
        };
        let mut selected: Vec<DynamicObject> = objects
            .iter()
            .filter(|o| selects_it(o) && o["kind"].as_str().and_then(resource_kind).is_some())
            .map(|o| serde_json::from_value(o.clone()).unwrap())
            .collect();
        selected.sort_by_key(|o| kinds().iter().position(|k| k.kind == kind_of(o)));
        Cluster {
            mesh: Mesh::new(cp, bindings, proxies(&pods, &of(&all, "ReplicaSet"))),
            selected,
            pods: pods.iter().filter_map(LivePod::from_pod).collect(),
            webhooks: mutating
                .iter()
                .map(WebhookConfig::mutating)
                .chain(validating.iter().map(WebhookConfig::validating))
                .collect(),
            traces: vec![],
        }
    }

    /// The sandbox's istioctl canary scenario: 1-27 with the default tag, then 1-28, which
    /// took over the gateways.
    fn istioctl_canary() -> Vec<Value> {
        applied(&["revision-1-27.yaml", "tag-default-1-27.yaml", "revision-1-28.yaml"])
    }

    fn users_text(plan: &Plan) -> String {
        let text: Vec<String> = plan.users.iter().map(|u| format!("{} => {}", u.what, u.fix)).collect();
        text.join("\n")
    }

    #[test]
    fn gateway_api_gateways_and_waypoints_use_the_revision_that_renders_them() {
        // After STEP 3: the app and the default tag moved to 1-28; istiod 1-27 still runs a
        // Gateway API gateway and a waypoint in namespace shop.
        let mut objects = istioctl_canary();
        move_default_tag(&mut objects, "1-28", true);
        let namespaces: &[(&str, &[(&str, &str)])] = &[("default", &[("istio.io/rev", "1-28")]), ("shop", &[])];
        let cluster = cluster_of("1-27", &objects, namespaces, &docs("gateway-api-pods.yaml"));
        let plan = plan("1-27", &cluster, false);
        let all = users_text(&plan);
        assert_eq!(plan.users.len(), 2, "{all}");
        assert!(
            all.contains("Gateway API gateway shop-gateway in namespace shop runs on 1-27 (istiod 1-27 renders its Deployment): shop-gateway-istio-6b8f9c7d54-x7k2p => kubectl label gateway shop-gateway -n shop istio.io/rev=1-28 --overwrite"),
            "{all}"
        );
        assert!(
            all.contains("waypoint waypoint in namespace shop runs on 1-27 (istiod 1-27 renders its Deployment): waypoint-7d4c9b8f6-q2lzm => kubectl label gateway waypoint -n shop istio.io/rev=1-28 --overwrite"),
            "{all}"
        );
        assert!(names(&plan.delete).contains(&"Deployment/istiod-1-27".to_string()));

        // Without them nothing uses 1-27.
        let free = cluster_of("1-27", &objects, namespaces, &[]);
        assert_eq!(plan_users(&free), "");
    }

    fn plan_users(cluster: &Cluster) -> String {
        users_text(&plan("1-27", cluster, false))
    }

    #[test]
    fn the_revisions_own_gateways_with_live_pods_are_refused_unless_included() {
        // The sandbox's canary as loaded: pruning 1-28 would take the gateways it took over.
        let objects = istioctl_canary();
        let cluster = cluster_of("1-28", &objects, &[("default", &[("istio.io/rev", "1-27")])], &[]);
        let refused = plan("1-28", &cluster, false);
        let all = users_text(&refused);
        assert_eq!(refused.users.len(), 2, "{all}");
        assert!(
            all.contains("gateway deployment/istio-ingressgateway -n istio-system runs on 1-28 with 1 live pod(s) (istio-ingressgateway-5d8f7c6b9-x7k2p): pruning deletes it with service/istio-ingressgateway (LoadBalancer) and the traffic through it stops => reinstall the gateway with revision 1-27 first"),
            "{all}"
        );
        assert!(
            all.contains("gateway deployment/istio-egressgateway -n istio-system"),
            "{all}"
        );
        assert!(all.contains("or pass --include-gateways to delete it"), "{all}");

        let included = plan("1-28", &cluster, true);
        assert_eq!(included.users, vec![], "{}", users_text(&included));
        let deleted = names(&included.delete);
        for gw in [
            "Deployment/istio-ingressgateway",
            "Service/istio-ingressgateway",
            "Deployment/istio-egressgateway",
        ] {
            assert!(deleted.contains(&gw.to_string()), "{gw}: {deleted:?}");
        }
        assert_eq!(
            included.delete, refused.delete,
            "the flag changes the verdict, not the selection"
        );
    }

    #[test]
    fn webhooks_still_calling_the_revisions_istiod_are_users() {
        // Helm's helm-canary-from-default after the app moved to 1-28: istio-base's
        // istiod-default-validator and istiod's own validator (neither labelled with a
        // component, so neither selected) still call `istiod`.
        let objects = applied(&[
            "helm/default-base-1.27.4.yaml",
            "helm/default-istiod-1.27.4.yaml",
            "helm/istiod-1-28.yaml",
        ]);
        let cluster = cluster_of("default", &objects, &[("default", &[("istio.io/rev", "1-28")])], &[]);
        let plan = plan("default", &cluster, false);
        let all = users_text(&plan);
        assert_eq!(plan.users.len(), 1, "{all}");
        assert!(
            all.contains("validatingwebhookconfiguration/istiod-default-validator still calls service istio-system/istiod: without it every create and update of an Istio resource is rejected, cluster-wide => kubectl mesh relabel --tag default --to 1-28 (it points the validator at 1-28 too), or, as Helm release istio-base installed it, `helm upgrade istio-base istio/base -n istio-system --reuse-values --set defaultRevision=1-28`"),
            "{all}"
        );
        // istiod's own validator (Helm labels it with the revision but no component) calls
        // only this istiod: it goes with the revision instead of blocking it.
        assert!(!all.contains("istio-validator-istio-system"), "{all}");
        assert!(
            names(&plan.delete).contains(&"ValidatingWebhookConfiguration/istio-validator-istio-system".to_string())
        );
        assert!(names(&plan.delete).contains(&"MutatingWebhookConfiguration/istio-sidecar-injector".to_string()));

        // helm-canary, the default tag moved by `helm upgrade istiod-1-28 --set
        // revisionTags={default}`: istio-base's validator still calls istiod-1-27.
        let mut objects = applied(&[
            "helm/canary-base-1.27.4.yaml",
            "helm/canary-istiod-1-27.yaml",
            "helm/istiod-1-28.yaml",
        ]);
        move_default_tag(&mut objects, "1-28", false);
        let cluster = cluster_of("1-27", &objects, &[("default", &[("istio-injection", "enabled")])], &[]);
        let all = plan_users(&cluster);
        assert!(
            all.contains("istiod-default-validator still calls service istio-system/istiod-1-27")
                && all.contains("--set defaultRevision=1-28"),
            "{all}"
        );
        assert!(!all.contains("revision tag default"), "the tag moved: {all}");

        // A tag move that rewrites the validator too (relabel, istioctl tag set) frees it.
        move_default_tag(&mut objects, "1-28", true);
        let cluster = cluster_of("1-27", &objects, &[("default", &[("istio-injection", "enabled")])], &[]);
        assert!(!plan_users(&cluster).contains("istiod-default-validator"));
    }

    #[test]
    fn pods_a_restart_would_strip_are_freed_by_a_restart_or_a_relabel_not_by_roll() {
        let mut objects = istioctl_canary();
        move_default_tag(&mut objects, "1-28", true);
        let webapp = docs("webapp-1-27.yaml");
        let with = |labels: &[(&str, &str)]| cluster_of("1-27", &objects, &[("default", labels)], &webapp);

        let disabled = with(&[("istio-injection", "disabled"), ("istio.io/rev", "1-27")]);
        // Roll plans nothing there: a restart gives no revision, so the proxy is not out of date.
        assert!(disabled.mesh.out_of_date_workloads().is_empty());
        let all = plan_users(&disabled);
        assert_eq!(
            all,
            "1 running or pending pod(s) in namespace default carry proxies injected by 1-27: webapp-fb6f78c4d-7xzq6; namespace default is labelled istio-injection=disabled, so a restart removes their sidecar and `kubectl mesh roll` restarts nothing => kubectl rollout restart deployment/webapp -n default (they run on without a sidecar), or to keep them in the mesh: kubectl mesh relabel --to 1-28 -n default, then kubectl mesh roll -n default"
        );

        let dangling = plan_users(&with(&[("istio.io/rev", "1-26")]));
        assert!(
            dangling.contains(
                "namespace default: istio.io/rev=1-26 names no revision and no tag, so a restart removes their sidecar"
            ) && dangling.contains("=> kubectl rollout restart deployment/webapp -n default"),
            "{dangling}"
        );

        // Still selected by its namespace: roll frees them once the namespace moves.
        let selected = plan_users(&with(&[("istio.io/rev", "1-27")]));
        assert!(
            selected.contains(
                "namespace default is labelled istio.io/rev=1-27 => kubectl mesh relabel --from 1-27 --to 1-28 -A"
            ),
            "{selected}"
        );
        assert!(
            selected.contains(
                "webapp-fb6f78c4d-7xzq6 => kubectl mesh roll -n default, once new pods there no longer get 1-27"
            ),
            "{selected}"
        );

        // Moved: roll restarts them.
        let moved = with(&[("istio.io/rev", "1-28")]);
        assert_eq!(moved.mesh.out_of_date_workloads().len(), 1);
        assert!(plan_users(&moved).ends_with("webapp-fb6f78c4d-7xzq6 => kubectl mesh roll -n default"));
    }

    #[test]
    fn a_revision_pruned_before_is_done_and_a_name_never_installed_is_unknown() {
        let cp = canary(&[], "1-28", true, "1-28").mesh.control_plane;
        let traces = vec![
            "namespace/batch".to_string(),
            "pod/report-29123-abcde -n default".to_string(),
        ];
        assert_eq!(found("1-26", &cp, &[], &traces).unwrap(), Found::Pruned(traces.clone()));
        let unknown = found("1-26", &cp, &[], &[]).unwrap_err();
        assert!(
            matches!(&unknown, shared::Error::Usage(m) if m.contains("no object is labelled istio.io/rev=1-26 and no pod runs it")),
            "{unknown}"
        );
        assert!(needs_traces("1-26", &cp, &[]));
        assert!(!needs_traces("1-27", &cp, &[]));
        assert!(!needs_traces("1-26", &cp, &selected()));
        // Completed pods keep the revision's name, so they count.
        let of_1_27 = pods_of("1-27", &canary_pods("1-27"));
        assert!(
            of_1_27.contains(&"pod/report-29123-abcde -n default".to_string()),
            "{of_1_27:?}"
        );
        assert!(
            of_1_27.contains(&"pod/webapp-d688b487-kh22b -n default".to_string()),
            "{of_1_27:?}"
        );
    }

    #[test]
    fn the_default_revision_stays_prunable_once_the_default_tag_points_elsewhere() {
        // helm-canary-from-default after `relabel --tag default --to 1-28`.
        let mut objects = applied(&[
            "helm/default-base-1.27.4.yaml",
            "helm/default-istiod-1.27.4.yaml",
            "helm/istiod-1-28.yaml",
            "tag-default-1-27.yaml",
        ]);
        move_default_tag(&mut objects, "1-28", true);
        let cluster = cluster_of("default", &objects, &[("default", &[("istio.io/rev", "1-28")])], &[]);
        let cp = &cluster.mesh.control_plane;
        assert_eq!(cp.tags["default"].revision, "1-28");
        assert!(
            not_a_tag("default", cp).is_ok(),
            "`default` names the unrevisioned revision"
        );
        let all = plan_users(&cluster);
        assert!(!all.contains("istiod-default-validator"), "{all}");
    }

    #[test]
    fn n_names_the_namespace_of_the_control_plane_and_narrows_nothing() {
        let item = |ns: Option<&str>, name: &str| Item {
            kind: if ns.is_some() { "Deployment" } else { "ClusterRole" }.into(),
            namespace: ns.map(Into::into),
            name: name.into(),
            uid: "u".into(),
        };
        let plan = Plan {
            revision: "1-27".into(),
            delete: vec![
                item(None, "istiod-clusterrole-1-27"),
                item(Some("istio-system"), "istiod-1-27"),
            ],
            keep: vec![Kept {
                item: item(Some("istio-ingress"), "istio-ingressgateway"),
                reason: "used by another revision".into(),
            }],
            ..Plan::default()
        };
        let ns = |list: &[&str]| Scope::Namespaces(list.iter().map(ToString::to_string).collect());
        assert!(check_scope(&plan, &Scope::All).is_ok());
        assert!(check_scope(&plan, &ns(&["istio-system"])).is_ok());
        assert!(
            check_scope(&plan, &ns(&["istio-ingress"])).is_ok(),
            "a kept object is the revision's too"
        );
        assert!(check_scope(&plan, &ns(&["default", "istio-system"])).is_ok());
        let err = check_scope(&plan, &ns(&["default"])).unwrap_err();
        assert!(matches!(err, shared::Error::Usage(_)), "{err}");
        assert!(
            err.to_string().contains(
                "revision 1-27 has nothing in namespace default: its control plane is in istio-ingress, istio-system."
            ),
            "{err}"
        );
        let cluster_scoped_only = Plan {
            delete: vec![item(None, "istiod-clusterrole-1-27")],
            keep: vec![],
            ..plan
        };
        assert!(check_scope(&cluster_scoped_only, &ns(&["default"])).is_ok());
    }
}
