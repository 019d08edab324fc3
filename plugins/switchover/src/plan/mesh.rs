//! The mesh on the new side: revisions ready, every pod on its revision's proxy, and an
//! ingress gateway the load balancer can send traffic to.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use shared::model::{Mesh, ProxyKind};

use super::{Cluster, ObjectRef, Reason, reason};

/// A revision the compared namespaces (or the gateway) use on the new side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionState {
    pub name: String,
    pub version: Option<String>,
    /// istiod's Deployment has every replica ready.
    pub ready: bool,
    pub installed: bool,
}

/// The ingress gateway on the new side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayCheck {
    pub namespace: String,
    pub name: String,
    /// `ready/replicas` of its Deployment, `None` when there is none.
    pub replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    /// Its Service's `status.loadBalancer.ingress`; `None` when there is no Service.
    pub external: Option<Vec<String>>,
}

/// What the mesh of the new cluster looks like where the load goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshCheck {
    pub revisions: Vec<RevisionState>,
    /// Live proxies in the compared namespaces and the gateway's.
    pub proxies: usize,
    pub out_of_date: usize,
    /// Workloads with ready pods that carry no sidecar, as `namespace/kind/name`.
    pub not_injected: Vec<String>,
    pub gateway: GatewayCheck,
}

/// Check the new cluster's mesh for the compared namespaces.
pub(super) fn check(
    new: &Cluster,
    namespaces: &BTreeSet<String>,
    gateway: &ObjectRef,
    reasons: &mut Vec<Reason>,
) -> MeshCheck {
    let mesh = &new.mesh;
    let mut used = BTreeSet::new();
    for ns in namespaces {
        let binding = mesh.namespaces.get(ns);
        match binding.and_then(|b| b.injection.revision()) {
            Some(rev) => {
                used.insert(rev.to_string());
            }
            None if binding.is_some_and(|b| b.ambient.is_some()) => {}
            None => reasons.push(reason(
                "NotMeshed",
                format!(
                    "namespace {ns} in {} selects no revision: label it (istio.io/rev=<revision>) before moving traffic",
                    new.context
                ),
            )),
        }
    }
    let in_scope = |ns: &str| namespaces.contains(ns) || ns == gateway.namespace;
    let live: Vec<_> = mesh
        .proxies
        .iter()
        .filter(|p| !p.proxy.kind.is_node_agent() && in_scope(&p.proxy.namespace))
        .collect();
    used.extend(
        live.iter()
            .filter(|p| p.proxy.namespace == gateway.namespace && p.proxy.workload.name == gateway.name)
            .filter_map(|p| p.proxy.revision.clone()),
    );
    let revisions = revisions(mesh, &used, &new.context, reasons);
    out_of_date(&live, &new.context, reasons);
    let not_injected = not_injected(new, namespaces, reasons);
    MeshCheck {
        revisions,
        proxies: live.len(),
        out_of_date: live.iter().filter(|p| p.is_out_of_date()).count(),
        not_injected,
        gateway: gateway_check(new, gateway, reasons),
    }
}

fn revisions(mesh: &Mesh, used: &BTreeSet<String>, context: &str, reasons: &mut Vec<Reason>) -> Vec<RevisionState> {
    used.iter()
        .map(|name| {
            let rev = mesh.control_plane.revisions.get(name);
            let state = RevisionState {
                name: name.clone(),
                version: rev.and_then(|r| r.version().map(String::from)),
                ready: rev.is_some_and(shared::model::Revision::ready),
                installed: rev.is_some_and(|r| r.istiod.is_some()),
            };
            if !state.ready {
                let istiod = rev.and_then(|r| r.istiod.as_ref()).map_or_else(
                    || "has no istiod".to_string(),
                    |i| format!("istiod {} has {}/{} ready", i.name, i.ready_replicas, i.replicas),
                );
                reasons.push(reason(
                    "IstiodNotReady",
                    format!("revision {name} in {context} {istiod}: no proxy gets its configuration"),
                ));
            }
            state
        })
        .collect()
}

/// One reason per workload with out-of-date proxies.
fn out_of_date(live: &[&shared::model::ProxyState], context: &str, reasons: &mut Vec<Reason>) {
    let mut by: BTreeMap<(String, String), (usize, usize, BTreeSet<String>)> = BTreeMap::new();
    for p in live {
        let entry = by
            .entry((p.proxy.namespace.clone(), p.proxy.workload.to_string()))
            .or_default();
        entry.0 += 1;
        if p.is_out_of_date() {
            entry.1 += 1;
            entry.2.extend(p.out_of_date.iter().map(ToString::to_string));
        }
    }
    for ((ns, workload), (pods, stale, why)) in by.into_iter().filter(|(_, v)| v.1 > 0) {
        reasons.push(reason(
            "OutOfDate",
            format!(
                "{workload} in {ns} ({context}): {stale} of {pods} proxies out of date ({}); restart it there with `kubectl mesh roll --context {context} -n {ns}`",
                why.into_iter().collect::<Vec<_>>().join("; ")
            ),
        ));
    }
}

/// Workloads of meshed namespaces whose ready pods carry no sidecar.
fn not_injected(new: &Cluster, namespaces: &BTreeSet<String>, reasons: &mut Vec<Reason>) -> Vec<String> {
    let mut out = vec![];
    for w in new.workloads.iter().filter(|w| namespaces.contains(&w.namespace)) {
        let binding = new.mesh.namespaces.get(&w.namespace);
        let sidecar_namespace = binding.is_some_and(|b| b.injection.revision().is_some() && b.ambient.is_none());
        if !sidecar_namespace || w.opts_out || w.ready == 0 {
            continue;
        }
        let sidecars = new
            .mesh
            .proxies
            .iter()
            .filter(|p| {
                p.proxy.kind == ProxyKind::Sidecar
                    && p.proxy.namespace == w.namespace
                    && p.proxy.workload.kind == w.kind
                    && p.proxy.workload.name == w.name
            })
            .count();
        if sidecars < usize::try_from(w.ready).unwrap_or(0) {
            reasons.push(reason(
                "NotInjected",
                format!(
                    "{} in {} ({}): {sidecars} of {} ready pods carry a sidecar; restart it there so the injector adds one",
                    w.display(),
                    w.namespace,
                    new.context,
                    w.ready
                ),
            ));
            out.push(format!("{}/{}", w.namespace, w.display()));
        }
    }
    out
}

fn gateway_check(new: &Cluster, gateway: &ObjectRef, reasons: &mut Vec<Reason>) -> GatewayCheck {
    let deployment = new
        .workloads
        .iter()
        .find(|w| w.kind == "Deployment" && w.namespace == gateway.namespace && w.name == gateway.name);
    let service = new
        .services
        .iter()
        .find(|s| s.namespace == gateway.namespace && s.name == gateway.name);
    match deployment {
        None => reasons.push(reason(
            "GatewayMissing",
            format!(
                "{} has no ingress gateway Deployment {gateway} (name another with --gateway NAMESPACE/NAME)",
                new.context
            ),
        )),
        Some(d) if d.ready == 0 || d.ready < d.replicas => reasons.push(reason(
            "GatewayNotReady",
            format!(
                "ingress gateway {gateway} in {}: {}/{} ready",
                new.context, d.ready, d.replicas
            ),
        )),
        Some(_) => {}
    }
    match service {
        None => reasons.push(reason(
            "GatewayMissing",
            format!("{} has no ingress gateway Service {gateway}", new.context),
        )),
        Some(s) if s.external.is_empty() => reasons.push(reason(
            "NoExternalAddress",
            format!(
                "service {gateway} in {} ({}) has no external address (status.loadBalancer.ingress): the load balancer has nothing to send traffic to",
                new.context, s.type_
            ),
        )),
        Some(_) => {}
    }
    GatewayCheck {
        namespace: gateway.namespace.clone(),
        name: gateway.name.clone(),
        replicas: deployment.map(|d| d.replicas),
        ready_replicas: deployment.map(|d| d.ready),
        external: service.map(|s| s.external.clone()),
    }
}
