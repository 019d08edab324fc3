//! Which injector a namespace's labels select, by evaluating every injector webhook's
//! selectors against them as the API server does
//! (manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml).

use k8s_openapi::api::core::v1::Namespace;
use serde::Serialize;

use super::controlplane::{ControlPlane, Target};
use super::labels;
use super::selector::Labels;

/// What a namespace's labels make of a new pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Injection {
    /// New pods get this revision's sidecar.
    #[serde(rename_all = "camelCase")]
    Revision {
        revision: String,
        /// Set when the webhook that matched is a tag's rather than the revision's own.
        tag: Option<String>,
        /// Which label decided: `istio.io/rev` or `istio-injection` (or, for a webhook
        /// matching unlabelled namespaces, the webhook's name).
        by: String,
    },
    /// `istio-injection=disabled`: no sidecar, whatever else is set.
    Disabled,
    /// No injection label: only pods that ask for it themselves get a sidecar.
    NotLabeled,
    /// Labels that no webhook matches: pods get no sidecar. The reason says why.
    Broken { reason: String },
}

impl Injection {
    pub fn revision(&self) -> Option<&str> {
        match self {
            Injection::Revision { revision, .. } => Some(revision),
            _ => None,
        }
    }
}

/// An ambient namespace (`istio.io/dataplane-mode=ambient`): its pods get no sidecar;
/// ztunnel on each node carries their traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ambient {
    /// The revision of the ztunnel serving it (the ztunnel pods' revision), when the
    /// ztunnel pods were read and agree on one.
    pub revision: Option<String>,
}

/// One namespace's injection labels and what they select.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceBinding {
    pub name: String,
    /// The `istio.io/rev` label.
    pub rev_label: Option<String>,
    /// The `istio-injection` label.
    pub injection_label: Option<String>,
    pub injection: Injection,
    /// The `istio.io/dataplane-mode` label.
    pub dataplane_mode: Option<String>,
    /// Set for `istio.io/dataplane-mode=ambient`.
    pub ambient: Option<Ambient>,
    /// Every revision whose injector webhook matches a new pod here, in the order the API
    /// server calls them. More than one is a conflict: each re-injects and the last wins.
    pub injectors: Vec<String>,
    /// The namespace's labels, which the webhooks' namespace selectors are evaluated on.
    #[serde(skip)]
    pub labels: Labels,
}

impl NamespaceBinding {
    pub fn new(name: &str, rev_label: Option<&str>, injection_label: Option<&str>, cp: &ControlPlane) -> Self {
        let mut l = Labels::new();
        for (k, v) in [(labels::REV, rev_label), (labels::INJECTION, injection_label)] {
            if let Some(v) = v {
                l.insert(k.to_string(), v.to_string());
            }
        }
        Self::from_labels(name, &l, cp)
    }

    pub fn from_namespace(ns: &Namespace, cp: &ControlPlane) -> Self {
        let name = ns.metadata.name.as_deref().unwrap_or("");
        Self::from_labels(name, &ns.metadata.labels.clone().unwrap_or_default(), cp)
    }

    /// A namespace with these labels; `kubernetes.io/metadata.name`, which the API server
    /// sets on every namespace, is added when missing.
    pub fn from_labels(name: &str, namespace_labels: &Labels, cp: &ControlPlane) -> Self {
        let mut l = namespace_labels.clone();
        l.entry(labels::NAMESPACE_NAME.to_string())
            .or_insert_with(|| name.to_string());
        let get = |k: &str| l.get(k).cloned();
        let dataplane_mode = get(labels::DATAPLANE_MODE);
        let (injection, injectors) = effective(&l, cp);
        NamespaceBinding {
            name: name.to_string(),
            rev_label: get(labels::REV),
            injection_label: get(labels::INJECTION),
            injection,
            ambient: (dataplane_mode.as_deref() == Some("ambient")).then_some(Ambient { revision: None }),
            dataplane_mode,
            injectors,
            labels: l,
        }
    }

    /// Both labels set: `istio-injection` wins and `istio.io/rev` is ignored (IST0123).
    pub fn has_both_labels(&self) -> bool {
        self.rev_label.is_some() && self.injection_label.is_some()
    }

    /// The labels Istio's analyzer counts as competing ways to join the mesh, `key=value`:
    /// `istio-injection`, then `istio.io/rev` and `istio.io/dataplane-mode` unless
    /// `istio-injection` is set to something else than `enabled`. More than one is IST0123
    /// (pkg/config/analysis/analyzers/injection/injection.go).
    pub fn mesh_labels(&self) -> Vec<String> {
        let mut out = vec![];
        if let Some(v) = &self.injection_label {
            out.push(format!("{}={v}", labels::INJECTION));
        }
        if self.injection_label.as_deref().is_none_or(|v| v == "enabled") {
            for key in [labels::REV, labels::DATAPLANE_MODE] {
                if let Some(v) = self.labels.get(key) {
                    out.push(format!("{key}={v}"));
                }
            }
        }
        out
    }
}

/// What the injector webhooks make of an unlabelled pod in a namespace with these labels,
/// and why nothing when nothing matches.
fn effective(ns: &Labels, cp: &ControlPlane) -> (Injection, Vec<String>) {
    let injection = ns.get(labels::INJECTION).map(String::as_str);
    if injection == Some("disabled") {
        return (Injection::Disabled, vec![]);
    }
    if let Some(m) = cp.injector_for(ns, &Labels::new()) {
        let injectors = m.revisions.iter().map(ToString::to_string).collect();
        let found = Injection::Revision {
            revision: m.revision.to_string(),
            tag: m.tag.map(String::from),
            by: m.webhook.decided_by(),
        };
        return (found, injectors);
    }
    let reason = match (injection, ns.get(labels::REV)) {
        (Some("enabled"), _) => "istio-injection=enabled but no default revision exists (no `default` tag and no \
                                 active unrevisioned istio-sidecar-injector webhook matches it)"
            .to_string(),
        (Some(other), _) => {
            format!("istio-injection={other} matches no injector (only enabled and disabled mean anything)")
        }
        (None, Some(name)) => unmatched_rev(name, cp),
        (None, None) => return (Injection::NotLabeled, vec![]),
    };
    (Injection::Broken { reason }, vec![])
}

/// Why no webhook matches `istio.io/rev=<name>`.
fn unmatched_rev(name: &str, cp: &ControlPlane) -> String {
    match cp.resolve_by_name(name) {
        Target::Unknown => format!("istio.io/rev={name} names no revision and no tag"),
        Target::Revision(r) if cp.revisions.get(r).is_some_and(|r| r.deactivated) => {
            format!("istio.io/rev={name}: the webhooks of revision {name} are deactivated (istioctl tag set default)")
        }
        Target::Tag { tag, .. } if cp.tags.get(tag).is_some_and(|t| t.webhook.is_empty()) => {
            format!("istio.io/rev={name}: tag {name} exists only as a Service, no injector webhook serves it")
        }
        _ => {
            format!("istio.io/rev={name}: no injector webhook matches it (its MutatingWebhookConfiguration is missing)")
        }
    }
}
