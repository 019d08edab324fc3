//! The data-plane workloads that are not application sidecars, one row each: the node
//! agents (ztunnel, istio-cni) that their own charts install, and the waypoints and Gateway
//! API gateways whose Deployments an istiod renders.

use serde::Serialize;
use shared::model::{Component, Mesh, ProxyKind};

/// One component, with how many of its pods are ready.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentRow {
    #[serde(flatten)]
    pub component: Component,
    /// Pods whose `Ready` condition is `True`.
    pub ready: usize,
}

impl ComponentRow {
    /// What `kubectl get` users call it: `ztunnel`, `istio-cni`, `waypoint`, `gateway`.
    pub fn label(&self) -> &'static str {
        match self.component.kind {
            ProxyKind::Cni => "istio-cni",
            ProxyKind::Ztunnel => "ztunnel",
            ProxyKind::Waypoint => "waypoint",
            ProxyKind::Gateway => "gateway",
            ProxyKind::Sidecar => "sidecar",
        }
    }

    /// The Gateway API Gateway for rendered ones, else the workload's name.
    pub fn name(&self) -> &str {
        self.component
            .gateway_name
            .as_deref()
            .unwrap_or(&self.component.workload.name)
    }
}

/// ztunnel, istio-cni, waypoints, then Gateway API gateways (istiod-rendered: the gateways
/// istioctl installs or the istio/gateway chart injects are proxies like sidecars).
pub(crate) fn rows(mesh: &Mesh) -> Vec<ComponentRow> {
    [
        ProxyKind::Ztunnel,
        ProxyKind::Cni,
        ProxyKind::Waypoint,
        ProxyKind::Gateway,
    ]
    .into_iter()
    .flat_map(|kind| mesh.components(kind))
    .filter(|c| c.kind != ProxyKind::Gateway || c.gateway_name.is_some())
    .map(|component| ComponentRow {
        ready: ready_pods(mesh, &component),
        component,
    })
    .collect()
}

fn ready_pods(mesh: &Mesh, c: &Component) -> usize {
    mesh.proxies
        .iter()
        .filter(|p| p.proxy.kind == c.kind && p.proxy.namespace == c.namespace && p.proxy.workload == c.workload)
        .filter(|p| p.proxy.ready)
        .count()
}
