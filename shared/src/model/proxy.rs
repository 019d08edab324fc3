//! An injected pod: who injected it, which proxy it runs, which workload owns it
//! (istio-facts.md §1).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde::Serialize;

use super::controlplane::label;
use super::image::ImageRef;
use super::labels;

/// What owns a pod, as `kubectl rollout restart` would address it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub kind: String,
    pub name: String,
}

impl Workload {
    /// Kinds `kubectl rollout restart` can restart.
    pub fn restartable(&self) -> bool {
        matches!(self.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet")
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.to_lowercase(), self.name)
    }
}

/// ReplicaSet name → its controller (kind, name), per namespace: how a pod's Deployment is
/// found without reading the Deployment.
pub type ReplicaSetOwners = HashMap<(String, String), Option<Workload>>;

/// An injected pod's proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proxy {
    pub namespace: String,
    pub pod: String,
    pub workload: Workload,
    /// The revision that injected it (status annotation), `None` if nothing says.
    pub revision: Option<String>,
    pub image: String,
    /// The proxy version from the image tag, `None` when overridden or untagged.
    pub version: Option<String>,
    pub variant: Option<String>,
    /// `sidecar.istio.io/proxyImage` chose the image: its tag says nothing about Istio.
    pub image_override: bool,
    /// The proxy is a native sidecar (an init container with restartPolicy Always).
    pub native: bool,
    pub gateway: bool,
    pub phase: String,
    /// Succeeded or Failed: kept apart, never out of date, never blocking.
    pub terminal: bool,
    /// The pod's own `istio.io/rev` label (object-selector injection).
    #[serde(skip)]
    pub rev_label: Option<String>,
    /// The pod's own `sidecar.istio.io/inject` label.
    #[serde(skip)]
    pub inject_label: Option<String>,
}

impl Proxy {
    /// The proxy of an injected pod; `None` for a pod without one.
    pub fn from_pod(pod: &Pod, rs_owners: &ReplicaSetOwners) -> Option<Proxy> {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref()?;
        let annotations = &meta.annotations;
        let status = label(annotations, labels::SIDECAR_STATUS);
        let in_containers = spec.containers.iter().find(|c| c.name == labels::PROXY_CONTAINER);
        let in_init = spec
            .init_containers
            .iter()
            .flatten()
            .find(|c| c.name == labels::PROXY_CONTAINER);
        let container: &Container = in_containers.or(in_init)?;
        let image = container.image.clone().unwrap_or_default();
        let image_override = label(annotations, labels::PROXY_IMAGE).is_some();
        let parsed = ImageRef::parse(&image);
        let namespace = meta.namespace.clone().unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into());
        Some(Proxy {
            workload: owner(pod, &namespace, rs_owners),
            pod: meta.name.clone().unwrap_or_default(),
            namespace,
            revision: status
                .and_then(status_revision)
                .or_else(|| label(annotations, labels::REV).map(String::from))
                .or_else(|| ca_addr_revision(container)),
            version: if image_override { None } else { parsed.version },
            variant: parsed.variant,
            image,
            image_override,
            native: in_containers.is_none() && in_init.is_some(),
            gateway: is_gateway(pod, container),
            terminal: matches!(phase.as_str(), "Succeeded" | "Failed"),
            phase,
            rev_label: label(&meta.labels, labels::REV).map(String::from),
            inject_label: label(&meta.labels, labels::SIDECAR_INJECT).map(String::from),
        })
    }
}

/// Injected gateways (istio/gateway chart) ask for the `gateway` template; the gateways
/// `istioctl install` writes are not injected at all: their own istio-proxy runs
/// `proxy router` and the pod carries `operator.istio.io/component`.
fn is_gateway(pod: &Pod, proxy: &Container) -> bool {
    let meta = &pod.metadata;
    label(&meta.annotations, labels::INJECT_TEMPLATES).is_some_and(|t| t.split(',').any(|t| t.trim() == "gateway"))
        || matches!(
            label(&meta.labels, labels::OPERATOR_COMPONENT),
            Some("IngressGateways" | "EgressGateways")
        )
        || proxy
            .args
            .as_deref()
            .is_some_and(|a| a.len() >= 2 && a[0] == "proxy" && a[1] == "router")
}

fn status_revision(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.get("revision")?.as_str().filter(|s| !s.is_empty()).map(String::from)
}

/// `CA_ADDR=istiod-1-27.istio-system.svc:15012` names the revision too.
fn ca_addr_revision(c: &Container) -> Option<String> {
    let value = c.env.iter().flatten().find(|e| e.name == "CA_ADDR")?.value.as_deref()?;
    let host = value.split('.').next()?;
    match host.strip_prefix("istiod-") {
        Some(rev) => Some(rev.to_string()),
        None if host == "istiod" => Some(labels::DEFAULT_REVISION.to_string()),
        None => None,
    }
}

fn controller(refs: &Option<Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs.as_ref()?.iter().find(|r| r.controller == Some(true))
}

fn owner(pod: &Pod, namespace: &str, rs_owners: &ReplicaSetOwners) -> Workload {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let Some(r) = controller(&pod.metadata.owner_references) else {
        return Workload {
            kind: "Pod".into(),
            name,
        };
    };
    if r.kind == "ReplicaSet" {
        // Through the ReplicaSet to its Deployment; a ReplicaSet we did not see, or one
        // without a controller, is the workload itself.
        return match rs_owners.get(&(namespace.to_string(), r.name.clone())) {
            Some(Some(w)) => w.clone(),
            _ => Workload {
                kind: "ReplicaSet".into(),
                name: r.name.clone(),
            },
        };
    }
    Workload {
        kind: r.kind.clone(),
        name: r.name.clone(),
    }
}

/// The controller of a ReplicaSet, from its metadata (all the owner lookup needs).
pub fn replicaset_owner(refs: &Option<Vec<OwnerReference>>) -> Option<Workload> {
    controller(refs).map(|r| Workload {
        kind: r.kind.clone(),
        name: r.name.clone(),
    })
}
