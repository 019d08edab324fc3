//! What prune would delete, what it keeps and why, and who still uses the revision: pure
//! decisions from the objects read.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;
use shared::model::{ControlPlane, Mesh, labels};

/// The components `istioctl uninstall --revision` selects (operator/pkg/uninstall/prune.go).
pub const COMPONENTS: [&str; 5] = ["Pilot", "IngressGateways", "EgressGateways", "Cni", "Ztunnel"];

/// The label selector `istioctl uninstall --revision <rev>` uses.
pub fn selector(revision: &str) -> String {
    format!(
        "{}={revision},{} in ({})",
        labels::REV,
        labels::OPERATOR_COMPONENT,
        COMPONENTS.join(",")
    )
}

/// One kind `istioctl uninstall` deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Kind {
    Kind {
        group,
        version,
        kind,
        plural,
        namespaced,
    }
}

/// The kinds, in the order prune deletes them: the webhooks first so the revision injects
/// and validates nothing more, then the workloads, then what they used.
pub const KINDS: [Kind; 15] = [
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
    kind("apps", "v1", "Deployment", "deployments", true),
    kind("apps", "v1", "DaemonSet", "daemonsets", true),
    kind(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    kind("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true),
    kind("", "v1", "Pod", "pods", true),
    kind("", "v1", "Service", "services", true),
    kind("networking.istio.io", "v1alpha3", "EnvoyFilter", "envoyfilters", true),
    kind("", "v1", "ConfigMap", "configmaps", true),
    kind("", "v1", "Secret", "secrets", true),
    kind("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true),
    kind("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    kind("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false),
];

/// ServiceAccounts go last: the bindings deleted before them name them.
pub const SERVICE_ACCOUNT: Kind = kind("", "v1", "ServiceAccount", "serviceaccounts", true);

/// Every kind, in deletion order.
pub fn kinds() -> Vec<Kind> {
    let mut k = KINDS.to_vec();
    k.push(SERVICE_ACCOUNT);
    k
}

/// An object selected by the revision's label selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(skip)]
    pub uid: String,
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
pub struct LivePod {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The revision that injected it, or for control-plane pods their `istio.io/rev` label.
    pub revision: Option<String>,
    pub service_account: Option<String>,
    pub configmaps: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

impl LivePod {
    /// `None` for Succeeded and Failed pods: they keep their revision forever and use nothing.
    pub fn from_pod(pod: &Pod) -> Option<LivePod> {
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
        let mut configmaps = BTreeSet::new();
        let mut secrets = BTreeSet::new();
        for v in spec.and_then(|s| s.volumes.as_ref()).into_iter().flatten() {
            if let Some(cm) = &v.config_map {
                configmaps.insert(cm.name.clone());
            }
            if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
                secrets.insert(s);
            }
            for src in v
                .projected
                .as_ref()
                .and_then(|p| p.sources.as_ref())
                .into_iter()
                .flatten()
            {
                if let Some(cm) = &src.config_map {
                    configmaps.insert(cm.name.clone());
                }
                if let Some(s) = &src.secret {
                    secrets.insert(s.name.clone());
                }
            }
        }
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

/// An object kept, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kept {
    #[serde(flatten)]
    pub item: Item,
    pub reason: String,
}

/// Something that still uses the revision, and the command that frees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub what: String,
    pub fix: String,
}

/// The plan for one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub revision: String,
    pub selector: String,
    pub delete: Vec<Item>,
    pub keep: Vec<Kept>,
    /// Non-empty: prune refuses and deletes nothing.
    pub users: Vec<User>,
}

/// Does a Kubernetes label selector (`matchLabels` / `matchExpressions`, or a Service's
/// plain map) select these labels? An empty selector selects nothing here: no object we
/// look at means "every pod".
pub fn selects(selector: &Value, lbls: &BTreeMap<String, String>) -> bool {
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
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let have = lbls.get(key).map(String::as_str);
        let ok = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => have.is_some_and(|h| values.contains(&h)),
            "NotIn" => have.is_none_or(|h| !values.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    any
}

fn item(o: &DynamicObject) -> Item {
    Item {
        kind: o.types.as_ref().map(|t| t.kind.clone()).unwrap_or_default(),
        namespace: o.metadata.namespace.clone(),
        name: o.metadata.name.clone().unwrap_or_default(),
        uid: o.metadata.uid.clone().unwrap_or_default(),
    }
}

fn pod_selector(o: &DynamicObject) -> Option<&Value> {
    o.data.get("spec").and_then(|s| s.get("selector"))
}

/// Who still uses `revision`. Pods that prune itself removes (those of the revision's own
/// Deployments and DaemonSets) do not count.
pub fn users(revision: &str, mesh: &Mesh, pods: &[LivePod], own_workloads: &[&DynamicObject]) -> Vec<User> {
    let cp = &mesh.control_plane;
    let mut out = vec![];
    let others: Vec<&str> = cp
        .revisions
        .keys()
        .map(String::as_str)
        .filter(|r| *r != revision)
        .collect();
    let to = match others.as_slice() {
        [one] => one.to_string(),
        _ => "<revision>".to_string(),
    };
    if others.is_empty() {
        out.push(User {
            what: format!("{revision} is the only control-plane revision: pruning it would remove Istio"),
            fix:
                "install the revision that replaces it first; to remove Istio entirely use `istioctl uninstall --purge`"
                    .to_string(),
        });
    }
    if let Some(rev) = cp.revisions.get(revision) {
        for tag in &rev.tags {
            let following: Vec<&str> = mesh
                .namespaces
                .values()
                .filter(|n| matches!(&n.injection, shared::model::Injection::Revision { tag: Some(t), .. } if t == tag))
                .map(|n| n.name.as_str())
                .collect();
            let what = if tag == labels::DEFAULT_TAG {
                format!(
                    "revision tag default points to {revision} (it injects istio-injection=enabled namespaces{})",
                    if following.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", following.join(", "))
                    }
                )
            } else {
                format!(
                    "revision tag {tag} points to {revision}{}",
                    if following.is_empty() {
                        String::new()
                    } else {
                        format!(" (namespaces following it: {})", following.join(", "))
                    }
                )
            };
            out.push(User {
                what,
                fix: format!("kubectl mesh relabel --tag {tag} --to {to}"),
            });
        }
    }
    for ns in mesh.namespaces.values() {
        let direct = ns.rev_label.as_deref() == Some(revision) && ns.injection_label.is_none();
        let default_own =
            matches!(&ns.injection, shared::model::Injection::Revision { revision: r, tag: None, .. } if r == revision);
        if direct {
            out.push(User {
                what: format!("namespace {} is labelled istio.io/rev={revision}", ns.name),
                fix: format!("kubectl mesh relabel --from {revision} --to {to} -A"),
            });
        } else if default_own {
            out.push(User {
                what: format!(
                    "namespace {} ({}) gets its sidecars from {revision}",
                    ns.name,
                    ns.injection_label
                        .as_deref()
                        .map(|v| format!("istio-injection={v}"))
                        .unwrap_or_default()
                ),
                fix: format!("kubectl mesh relabel --to {to} -n {}", ns.name),
            });
        }
    }
    let owned_by_prune = |p: &LivePod| {
        own_workloads.iter().any(|w| {
            w.metadata.namespace.as_deref() == Some(p.namespace.as_str())
                && pod_selector(w).is_some_and(|s| selects(s, &p.labels))
        })
    };
    let mut by_ns: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut labelled: Vec<String> = vec![];
    for p in pods.iter().filter(|p| !owned_by_prune(p)) {
        let injected_by_it =
            p.revision.as_deref() == Some(revision) && p.labels.get("app").map(String::as_str) != Some("istiod");
        if injected_by_it {
            by_ns.entry(&p.namespace).or_default().push(&p.name);
        } else if let Some(l) = p.labels.get(labels::REV)
            && l != revision
            && cp.revision_of(l).is_some_and(|r| r.name == revision)
        {
            labelled.push(format!("{}/{} (istio.io/rev={l})", p.namespace, p.name));
        } else if p.labels.get(labels::REV).map(String::as_str) == Some(revision)
            && p.revision.as_deref() != Some(revision)
        {
            labelled.push(format!("{}/{} (istio.io/rev={revision})", p.namespace, p.name));
        }
    }
    for (ns, names) in by_ns {
        out.push(User {
            what: format!(
                "{} running or pending pod(s) in namespace {ns} carry proxies injected by {revision}: {}",
                names.len(),
                names.join(", ")
            ),
            fix: format!("kubectl mesh roll -n {ns}"),
        });
    }
    if !labelled.is_empty() {
        out.push(User {
            what: format!("pods labelled to be injected by {revision}: {}", labelled.join(", ")),
            fix: "change the istio.io/rev label in their workload's pod template, then kubectl mesh roll".to_string(),
        });
    }
    out
}

/// Split the selected objects into those to delete and those to keep. An object is kept
/// when it still serves something that is not the revision being pruned.
pub fn split(
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
    let mut keep: BTreeMap<Item, String> = BTreeMap::new();

    for o in selected {
        let it = item(o);
        let ns = o.metadata.namespace.as_deref();
        let in_ns = |p: &&&LivePod| Some(p.namespace.as_str()) == ns;
        let reason = match kind_of(o) {
            "MutatingWebhookConfiguration" => o
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::TAG))
                .map(|t| format!("webhook of revision tag {t}; move the tag with `kubectl mesh relabel --tag {t}`")),
            "ValidatingWebhookConfiguration" if it.name == shared::tag::DEFAULT_VALIDATOR => cp
                .tags
                .get(labels::DEFAULT_TAG)
                .map(|t| format!("validates for the default tag (→ {})", t.revision)),
            "Deployment" | "DaemonSet" | "PodDisruptionBudget" | "Service" => pod_selector(o).and_then(|sel| {
                let users: Vec<&&LivePod> = foreign
                    .iter()
                    .filter(in_ns)
                    .filter(|p| selects(sel, &p.labels))
                    .collect();
                describe_pods(&users)
            }),
            "Pod" => {
                let p = pods
                    .iter()
                    .find(|p| Some(p.namespace.as_str()) == ns && p.name == it.name);
                p.filter(|p| p.revision.as_deref() != Some(revision))
                    .map(|p| format!("runs a proxy of {}", p.revision.as_deref().unwrap_or("no revision")))
            }
            "ServiceAccount" => {
                let users: Vec<&&LivePod> = foreign
                    .iter()
                    .filter(in_ns)
                    .filter(|p| p.service_account.as_deref() == Some(it.name.as_str()))
                    .collect();
                describe_pods(&users)
            }
            "ConfigMap" => {
                let users: Vec<&&LivePod> = foreign
                    .iter()
                    .filter(in_ns)
                    .filter(|p| p.configmaps.contains(&it.name))
                    .collect();
                describe_pods(&users)
            }
            "Secret" => {
                let users: Vec<&&LivePod> = foreign
                    .iter()
                    .filter(in_ns)
                    .filter(|p| p.secrets.contains(&it.name))
                    .collect();
                describe_pods(&users)
            }
            _ => None,
        };
        if let Some(r) = reason {
            keep.insert(it, r);
        }
    }
    // What a kept object needs is kept too: a kept Deployment's HPA, a kept
    // ServiceAccount's bindings and their roles.
    for _ in 0..3 {
        for o in selected {
            let it = item(o);
            if keep.contains_key(&it) {
                continue;
            }
            let spec = o.data.get("spec");
            let reason = match kind_of(o) {
                "HorizontalPodAutoscaler" => spec.and_then(|s| s.get("scaleTargetRef")).and_then(|t| {
                    let (k, n) = (t.get("kind")?.as_str()?, t.get("name")?.as_str()?);
                    let target = selected.iter().find(|x| {
                        kind_of(x) == k
                            && x.metadata.name.as_deref() == Some(n)
                            && x.metadata.namespace == o.metadata.namespace
                    });
                    match target.map(item) {
                        Some(t) if !keep.contains_key(&t) => None,
                        _ => Some(format!("scales {}/{n}, which stays", k.to_lowercase())),
                    }
                }),
                "RoleBinding" | "ClusterRoleBinding" => {
                    let subjects = o.data.get("subjects").and_then(Value::as_array);
                    subjects.into_iter().flatten().find_map(|s| {
                        let (k, n) = (s.get("kind")?.as_str()?, s.get("name")?.as_str()?);
                        let sns = s
                            .get("namespace")
                            .and_then(Value::as_str)
                            .or(o.metadata.namespace.as_deref());
                        (k == "ServiceAccount"
                            && keep
                                .keys()
                                .any(|i| i.kind == "ServiceAccount" && i.name == n && i.namespace.as_deref() == sns))
                        .then(|| format!("binds serviceaccount/{n}, which stays"))
                    })
                }
                "Role" | "ClusterRole" => {
                    let kind = kind_of(o);
                    keep.keys()
                        .filter(|i| i.kind == format!("{kind}Binding"))
                        .find(|i| {
                            selected.iter().any(|b| {
                                item(b) == **i
                                    && b.data
                                        .get("roleRef")
                                        .and_then(|r| r.get("name"))
                                        .and_then(Value::as_str)
                                        == Some(it.name.as_str())
                            })
                        })
                        .map(|b| {
                            format!(
                                "bound by {}, which stays",
                                b.to_string().split(' ').next().unwrap_or_default()
                            )
                        })
                }
                _ => None,
            };
            if let Some(r) = reason {
                keep.insert(it, r);
            }
        }
    }
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

fn kind_of(o: &DynamicObject) -> &str {
    o.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("")
}

fn describe_pods(pods: &[&&LivePod]) -> Option<String> {
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

/// The whole plan.
pub fn plan(revision: &str, selected: &[DynamicObject], pods: &[LivePod], mesh: &Mesh) -> Plan {
    let own: Vec<&DynamicObject> = selected
        .iter()
        .filter(|o| {
            matches!(
                o.types.as_ref().map(|t| t.kind.as_str()),
                Some("Deployment" | "DaemonSet")
            )
        })
        .collect();
    let (delete, keep) = split(revision, selected, pods, &mesh.control_plane);
    // Only workloads that prune deletes take their pods with them.
    let deleted_own: Vec<&DynamicObject> = own.into_iter().filter(|o| delete.contains(&item(o))).collect();
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
