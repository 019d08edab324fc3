//! A data-plane pod: what it is (sidecar, gateway, waypoint, ztunnel, istio-cni), which
//! revision it belongs to, which proxy it runs, which workload owns it.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
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

/// What a data-plane pod is. Only `proxyv2` proxies (or a `sidecar.istio.io/proxyImage`
/// override) are sidecars; the others are components of their own kind, installed or
/// rendered rather than injected, which a restart never turns into a sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProxyKind {
    /// An injected application sidecar.
    Sidecar,
    /// A gateway: injected with the `gateway` template (istio/gateway chart), installed by
    /// istioctl (`proxy router`), or rendered by istiod for a Gateway API Gateway
    /// (istio-discovery/files/kube-gateway.yaml).
    Gateway,
    /// An ambient waypoint, rendered by istiod (istio-discovery/files/waypoint.yaml,
    /// `proxy waypoint`).
    Waypoint,
    /// The ambient node proxy: DaemonSet `ztunnel`, container `istio-proxy`, image
    /// `<hub>/ztunnel:<tag>`, `proxy ztunnel` (manifests/charts/ztunnel).
    Ztunnel,
    /// The istio-cni node agent: container `install-cni` (manifests/charts/istio-cni).
    Cni,
}

impl ProxyKind {
    /// Gateways and waypoints: the `gateway` field of a [`Proxy`].
    pub fn is_gateway(self) -> bool {
        matches!(self, ProxyKind::Gateway | ProxyKind::Waypoint)
    }

    /// Node agents installed as DaemonSets by their own charts.
    pub fn is_node_agent(self) -> bool {
        matches!(self, ProxyKind::Ztunnel | ProxyKind::Cni)
    }
}

impl std::fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProxyKind::Sidecar => "sidecar",
            ProxyKind::Gateway => "gateway",
            ProxyKind::Waypoint => "waypoint",
            ProxyKind::Ztunnel => "ztunnel",
            ProxyKind::Cni => "cni",
        })
    }
}

/// A data-plane pod: an injected sidecar, a gateway, a waypoint, ztunnel or istio-cni.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proxy {
    pub namespace: String,
    pub pod: String,
    pub workload: Workload,
    /// The revision the pod belongs to ([`pod_revision`]), `None` if nothing says.
    pub revision: Option<String>,
    pub image: String,
    /// The proxy version from the image tag, `None` when overridden or untagged.
    pub version: Option<String>,
    pub variant: Option<String>,
    /// `sidecar.istio.io/proxyImage` chose the image: its tag says nothing about Istio.
    pub image_override: bool,
    /// The proxy is a native sidecar (an init container with restartPolicy Always).
    pub native: bool,
    /// A gateway or a waypoint (`kind` says which).
    pub gateway: bool,
    pub kind: ProxyKind,
    /// The pod carries `sidecar.istio.io/status`: an injector put its proxy there.
    pub injected: bool,
    /// The Gateway API Gateway it was rendered for (`gateway.networking.k8s.io/gateway-name`).
    pub gateway_name: Option<String>,
    pub phase: String,
    /// The pod's `Ready` condition is `True` (kubectl's READY).
    pub ready: bool,
    /// Succeeded or Failed: kept apart, never out of date, never blocking.
    pub terminal: bool,
    /// The pod's own `istio.io/rev` label (object-selector injection; for a Gateway API
    /// gateway, the Gateway's label copied onto it).
    #[serde(skip)]
    pub rev_label: Option<String>,
    /// The pod's own `sidecar.istio.io/inject` label.
    #[serde(skip)]
    pub inject_label: Option<String>,
    /// The pod's `sidecar.istio.io/inject` annotation (the label wins over it).
    #[serde(skip)]
    pub inject_annotation: Option<String>,
    /// `spec.hostNetwork`: never injected.
    #[serde(skip)]
    pub host_network: bool,
}

impl Proxy {
    /// The proxy of a data-plane pod; `None` for a pod without one.
    pub fn from_pod(pod: &Pod, rs_owners: &ReplicaSetOwners) -> Option<Proxy> {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref()?;
        let (container, native) = proxy_container(spec)?;
        let kind = kind_of(pod, container)?;
        let image = container.image.clone().unwrap_or_default();
        let image_override = label(&meta.annotations, labels::PROXY_IMAGE).is_some();
        let parsed = ImageRef::parse(&image);
        let namespace = meta.namespace.clone().unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into());
        let text = |m: &Option<std::collections::BTreeMap<String, String>>, k: &str| label(m, k).map(String::from);
        Some(Proxy {
            workload: owner(pod, &namespace, rs_owners),
            pod: meta.name.clone().unwrap_or_default(),
            namespace,
            revision: pod_revision(pod),
            version: if image_override { None } else { parsed.version },
            variant: parsed.variant,
            image,
            image_override,
            native,
            gateway: kind.is_gateway(),
            kind,
            injected: label(&meta.annotations, labels::SIDECAR_STATUS).is_some(),
            gateway_name: text(&meta.labels, labels::GATEWAY_NAME)
                .or_else(|| text(&meta.labels, labels::LEGACY_GATEWAY_NAME)),
            terminal: matches!(phase.as_str(), "Succeeded" | "Failed"),
            phase,
            ready: pod_ready(pod),
            rev_label: text(&meta.labels, labels::REV),
            inject_label: text(&meta.labels, labels::SIDECAR_INJECT),
            inject_annotation: text(&meta.annotations, labels::SIDECAR_INJECT),
            host_network: spec.host_network == Some(true),
        })
    }

    /// istiod's gateway deployment controller renders this pod's Deployment (Gateway API
    /// gateways and waypoints): a restart does not re-inject it, istiod re-renders it.
    pub fn rendered_by_istiod(&self) -> bool {
        self.kind == ProxyKind::Waypoint || (self.kind == ProxyKind::Gateway && self.gateway_name.is_some())
    }
}

/// The pod's `Ready` condition, as kubectl's READY column reads it
/// (kubectl's pkg/util/podutils/podutils.go IsPodReady).
fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The container that makes a pod part of the data plane, and whether it is a native
/// sidecar: `istio-proxy` in `containers`, else in `initContainers`, else `install-cni`.
fn proxy_container(spec: &PodSpec) -> Option<(&Container, bool)> {
    let named = |name: &str| spec.containers.iter().find(|c| c.name == name);
    let in_init = || {
        spec.init_containers
            .iter()
            .flatten()
            .find(|c| c.name == labels::PROXY_CONTAINER)
    };
    named(labels::PROXY_CONTAINER)
        .map(|c| (c, false))
        .or_else(|| in_init().map(|c| (c, true)))
        .or_else(|| named(labels::CNI_CONTAINER).map(|c| (c, false)))
}

/// Whether a pod list entry with this container may be part of the data plane: what
/// `collect` keeps of each page of pods.
pub fn is_data_plane_container(name: &str) -> bool {
    name == labels::PROXY_CONTAINER || name == labels::CNI_CONTAINER
}

/// What the pod is, from its proxy container's args (`proxy router|waypoint|ztunnel`),
/// image and labels; `None` for an `istio-proxy` container that is none of Istio's.
fn kind_of(pod: &Pod, c: &Container) -> Option<ProxyKind> {
    let image = ImageRef::parse(c.image.as_deref().unwrap_or(""));
    let meta = &pod.metadata;
    if c.name == labels::CNI_CONTAINER {
        return (image.name() == "install-cni").then_some(ProxyKind::Cni);
    }
    let args = c.args.as_deref().unwrap_or_default();
    let role = (args.len() >= 2 && args[0] == "proxy").then(|| args[1].as_str());
    let managed = label(&meta.labels, labels::GATEWAY_MANAGED);
    if role == Some("ztunnel") || image.name() == "ztunnel" {
        return Some(ProxyKind::Ztunnel);
    }
    if managed == Some("istio.io-mesh-controller") || (role == Some("waypoint") && managed.is_none()) {
        return Some(ProxyKind::Waypoint);
    }
    if role == Some("router") || managed.is_some() || is_gateway(pod) {
        return Some(ProxyKind::Gateway);
    }
    let sidecar = image.name() == "proxyv2"
        || label(&meta.annotations, labels::PROXY_IMAGE).is_some()
        || label(&meta.annotations, labels::SIDECAR_STATUS).is_some();
    sidecar.then_some(ProxyKind::Sidecar)
}

/// Injected gateways (istio/gateway chart) ask for the `gateway` template; the gateways
/// `istioctl install` writes carry `operator.istio.io/component`; Gateway API gateways
/// carry the Gateway's name.
fn is_gateway(pod: &Pod) -> bool {
    let meta = &pod.metadata;
    label(&meta.annotations, labels::INJECT_TEMPLATES).is_some_and(|t| t.split(',').any(|t| t.trim() == "gateway"))
        || matches!(
            label(&meta.labels, labels::OPERATOR_COMPONENT),
            Some("IngressGateways" | "EgressGateways")
        )
        || label(&meta.labels, labels::GATEWAY_NAME).is_some()
        || label(&meta.labels, labels::LEGACY_GATEWAY_NAME).is_some()
}

/// The revision a pod belongs to, the one rule every step uses:
/// 1. the `revision` of its `sidecar.istio.io/status` annotation (the istiod that injected
///    it; pkg/kube/inject/webhook.go);
/// 2. else its `istio.io/rev` annotation (what istiod rendered into Gateway API gateways and
///    waypoints, kube-gateway.yaml / waypoint.yaml; ztunnel's chart writes it too);
/// 3. else the istiod its proxy talks to: `CA_ADDR` (ztunnel: `CA_ADDRESS`) naming
///    `istiod-<rev>`, or `istiod` for the unrevisioned `default`;
/// 4. else, for control-plane pods (`app=istiod`, `istio=pilot` or an
///    `operator.istio.io/component`), their `istio.io/rev` label.
pub fn pod_revision(pod: &Pod) -> Option<String> {
    let meta = &pod.metadata;
    let annotations = &meta.annotations;
    let control_plane = label(&meta.labels, "app") == Some("istiod")
        || label(&meta.labels, "istio") == Some("pilot")
        || label(&meta.labels, labels::OPERATOR_COMPONENT).is_some();
    label(annotations, labels::SIDECAR_STATUS)
        .and_then(status_revision)
        .or_else(|| label(annotations, labels::REV).map(String::from))
        .or_else(|| {
            let spec = pod.spec.as_ref()?;
            spec.containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .filter(|c| c.name == labels::PROXY_CONTAINER)
                .find_map(ca_addr_revision)
        })
        .or_else(|| {
            control_plane
                .then(|| label(&meta.labels, labels::REV).map(String::from))
                .flatten()
        })
}

/// [`pod_revision`] as a method of a Pod.
pub trait PodRevision {
    /// The revision this pod belongs to (see [`pod_revision`]).
    fn istio_revision(&self) -> Option<String>;
}

impl PodRevision for Pod {
    fn istio_revision(&self) -> Option<String> {
        pod_revision(self)
    }
}

fn status_revision(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.get("revision")?.as_str().filter(|s| !s.is_empty()).map(String::from)
}

/// `CA_ADDR=istiod-1-27.istio-system.svc:15012` names the revision too (ztunnel's chart
/// writes `CA_ADDRESS`).
fn ca_addr_revision(c: &Container) -> Option<String> {
    let env = c.env.iter().flatten();
    let value = env
        .filter(|e| e.name == "CA_ADDR" || e.name == "CA_ADDRESS")
        .find_map(|e| e.value.as_deref())?;
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

/// ReplicaSet → owner for whole ReplicaSet objects (fixtures, saved clusters), keyed as
/// `collect::read_replicaset_owners` keys the metadata it reads.
pub fn replicaset_owners<'a>(
    replicasets: impl IntoIterator<Item = &'a k8s_openapi::api::apps::v1::ReplicaSet>,
) -> ReplicaSetOwners {
    replicasets
        .into_iter()
        .map(|rs| {
            let key = (
                rs.metadata.namespace.clone().unwrap_or_default(),
                rs.metadata.name.clone().unwrap_or_default(),
            );
            (key, replicaset_owner(&rs.metadata.owner_references))
        })
        .collect()
}

/// The controller of a ReplicaSet, from its metadata (all the owner lookup needs).
pub fn replicaset_owner(refs: &Option<Vec<OwnerReference>>) -> Option<Workload> {
    controller(refs).map(|r| Workload {
        kind: r.kind.clone(),
        name: r.name.clone(),
    })
}
