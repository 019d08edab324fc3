//! What a new pod of the same workload would get: a sidecar from which revision, a
//! Deployment re-rendered by which istiod, or no sidecar and why.

use serde::Serialize;

use super::controlplane::ControlPlane;
use super::labels;
use super::namespace::{Injection, NamespaceBinding};
use super::proxy::{Proxy, ProxyKind};
use super::selector::Labels;

/// Namespaces istiod never injects (pkg/kube/inject/initializer.go IgnoredNamespaces).
pub const IGNORED_NAMESPACES: [&str; 4] = ["kube-system", "kube-public", "kube-node-lease", "local-path-storage"];

/// What a restart (or, for rendered gateways, istiod) gives a data-plane pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Expectation {
    /// A new pod gets this revision's sidecar, from this webhook.
    #[serde(rename_all = "camelCase")]
    Injected {
        revision: String,
        tag: Option<String>,
        webhook: String,
    },
    /// This revision's istiod renders the Deployment (Gateway API gateways and waypoints,
    /// pilot/pkg/config/kube/gateway/deploymentcontroller.go): a restart does not re-inject
    /// it; istiod re-renders it when the Gateway's revision moves.
    #[serde(rename_all = "camelCase")]
    Rendered { revision: String },
    /// No istiod counts the Gateway's `istio.io/rev` as its own: nothing renders it.
    #[serde(rename_all = "camelCase")]
    NoController { selected: Option<String> },
    /// Its chart wrote the proxy into the DaemonSet or Deployment (ztunnel, istio-cni,
    /// istioctl's gateways): a restart keeps the image written there.
    Installed,
    /// A new pod gets no sidecar.
    NoSidecar { reason: NoSidecar },
}

impl Expectation {
    /// The revision a new pod belongs to: the injecting or rendering one.
    pub fn revision(&self) -> Option<&str> {
        match self {
            Expectation::Injected { revision, .. } | Expectation::Rendered { revision } => Some(revision),
            _ => None,
        }
    }

    /// Whether restarting the workload can change its proxy. Not for rendered gateways
    /// (istiod re-renders them), installed components, nor pods that opted out of
    /// injection themselves (their proxy was not put there by an injector that a restart
    /// would call again).
    pub fn restart_helps(&self) -> bool {
        match self {
            Expectation::Injected { .. } => true,
            Expectation::NoSidecar { reason } => reason.namespace_wide(),
            _ => false,
        }
    }
}

impl std::fmt::Display for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expectation::Injected { revision, .. } => write!(f, "a restart injects revision {revision}"),
            Expectation::Rendered { revision } => write!(f, "istiod {revision} renders it"),
            Expectation::NoController { selected } => write!(
                f,
                "no istiod renders it (istio.io/rev={})",
                selected.as_deref().unwrap_or("<none>")
            ),
            Expectation::Installed => f.write_str("installed by its chart; a restart keeps its image"),
            Expectation::NoSidecar { reason } => write!(f, "{reason}: a restart gives no sidecar"),
        }
    }
}

/// Why a new pod gets no sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NoSidecar {
    /// `sidecar.istio.io/inject=false`, as a label (which wins) or else an annotation.
    #[serde(rename_all = "camelCase")]
    OptedOut { by: String },
    /// `hostNetwork: true` pods are never injected.
    HostNetwork,
    /// kube-system, kube-public, kube-node-lease and local-path-storage are never injected.
    #[serde(rename_all = "camelCase")]
    IgnoredNamespace { namespace: String },
    /// The namespace has `istio-injection=disabled`.
    NamespaceDisabled,
    /// The injecting revision has `global.proxy.autoInject=disabled` and the pod does not
    /// ask for a sidecar.
    #[serde(rename_all = "camelCase")]
    PolicyDisabled { revision: String },
    /// No injector webhook matches the pod's labels and its namespace's.
    NoWebhook,
}

impl NoSidecar {
    /// Decided by the namespace or the control plane rather than by the pod itself.
    pub fn namespace_wide(&self) -> bool {
        matches!(
            self,
            NoSidecar::NamespaceDisabled | NoSidecar::NoWebhook | NoSidecar::PolicyDisabled { .. }
        )
    }
}

impl std::fmt::Display for NoSidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoSidecar::OptedOut { by } => write!(f, "{}=false ({by})", labels::SIDECAR_INJECT),
            NoSidecar::HostNetwork => f.write_str("hostNetwork pods are never injected"),
            NoSidecar::IgnoredNamespace { namespace } => write!(f, "namespace {namespace} is never injected"),
            NoSidecar::NamespaceDisabled => write!(f, "{}=disabled", labels::INJECTION),
            NoSidecar::PolicyDisabled { revision } => {
                write!(
                    f,
                    "revision {revision} injects only pods asking for it (autoInject disabled)"
                )
            }
            NoSidecar::NoWebhook => f.write_str("no injector webhook matches"),
        }
    }
}

/// What a new pod of this proxy's workload would get.
pub fn expectation(p: &Proxy, ns: Option<&NamespaceBinding>, cp: &ControlPlane) -> Expectation {
    if p.kind.is_node_agent() {
        return Expectation::Installed;
    }
    if p.rendered_by_istiod() {
        return rendered(p, ns, cp);
    }
    if !p.injected && p.kind != ProxyKind::Sidecar {
        return Expectation::Installed;
    }
    if let Some(reason) = opt_out(p) {
        return Expectation::NoSidecar { reason };
    }
    injected(p, ns, cp)
}

/// The per-pod checks istiod makes before injecting (pkg/kube/inject/inject.go injectRequired).
pub fn opt_out(p: &Proxy) -> Option<NoSidecar> {
    if p.host_network {
        return Some(NoSidecar::HostNetwork);
    }
    if IGNORED_NAMESPACES.contains(&p.namespace.as_str()) {
        return Some(NoSidecar::IgnoredNamespace {
            namespace: p.namespace.clone(),
        });
    }
    let (value, by) = match (&p.inject_label, &p.inject_annotation) {
        (Some(l), _) => (l, "label"),
        (None, Some(a)) => (a, "annotation"),
        (None, None) => return None,
    };
    (value == "false").then(|| NoSidecar::OptedOut { by: by.into() })
}

/// The webhooks the API server calls for the pod, then istiod's injection policy.
fn injected(p: &Proxy, ns: Option<&NamespaceBinding>, cp: &ControlPlane) -> Expectation {
    if ns.is_some_and(|n| n.injection == Injection::Disabled) {
        return Expectation::NoSidecar {
            reason: NoSidecar::NamespaceDisabled,
        };
    }
    let fallback;
    let ns_labels = match ns {
        Some(n) => &n.labels,
        None => {
            fallback = Labels::from([(labels::NAMESPACE_NAME.to_string(), p.namespace.clone())]);
            &fallback
        }
    };
    let mut pod = Labels::new();
    for (k, v) in [(labels::REV, &p.rev_label), (labels::SIDECAR_INJECT, &p.inject_label)] {
        if let Some(v) = v {
            pod.insert(k.to_string(), v.clone());
        }
    }
    let Some(m) = cp.injector_for(ns_labels, &pod) else {
        return Expectation::NoSidecar {
            reason: NoSidecar::NoWebhook,
        };
    };
    let asks = p
        .inject_label
        .as_ref()
        .or(p.inject_annotation.as_ref())
        .is_some_and(|v| v == "true");
    let policy = cp
        .revisions
        .get(m.revision)
        .and_then(|r| r.injector.as_ref())
        .and_then(|i| i.policy.as_deref());
    if policy == Some("disabled") && !asks {
        return Expectation::NoSidecar {
            reason: NoSidecar::PolicyDisabled {
                revision: m.revision.to_string(),
            },
        };
    }
    Expectation::Injected {
        revision: m.revision.to_string(),
        tag: m.tag.map(String::from),
        webhook: format!("{}/{}", m.webhook.configuration, m.webhook.name),
    }
}

/// The istiod whose gateway controller renders this pod: by the Gateway's `istio.io/rev`
/// label (copied onto the pod with the Gateway's labels), else its namespace's.
fn rendered(p: &Proxy, ns: Option<&NamespaceBinding>, cp: &ControlPlane) -> Expectation {
    let selected = p
        .rev_label
        .as_deref()
        .or_else(|| ns.and_then(|n| n.rev_label.as_deref()));
    let owners = cp.gateway_controllers(selected);
    // Several istiods may claim one Gateway (a revision and a tag of the same name); the
    // one that rendered it keeps it.
    let owner = owners
        .iter()
        .find(|r| Some(**r) == p.revision.as_deref())
        .or(owners.first());
    match owner {
        Some(r) => Expectation::Rendered {
            revision: r.to_string(),
        },
        None => Expectation::NoController {
            selected: selected.map(String::from),
        },
    }
}
