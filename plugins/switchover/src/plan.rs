//! Whether the new cluster can take the old one's load, worked out from both clusters'
//! objects. Pure, so it is tested from fixtures without a cluster.
//!
//! Three questions, each answered with the reasons it fails:
//! - parity: every Deployment, StatefulSet, DaemonSet and Service of the old cluster's
//!   meshed namespaces is in the new one, with the same application images and at least as
//!   many ready pods, and the same ports;
//! - the mesh on the new side: the namespaces select a revision whose istiod is ready,
//!   every pod carries a proxy of that revision (none out of date), and the ingress gateway
//!   is ready with an external address for the load balancer to send traffic to;
//! - statelessness: a workload that keeps its data in a PersistentVolumeClaim cannot be
//!   switched by moving traffic; each is a blocker until acknowledged.

mod mesh;
mod objects;
mod parity;

use std::collections::BTreeSet;

use serde::Serialize;
use shared::model::Mesh;

pub use mesh::{GatewayCheck, MeshCheck};
pub use objects::{ServiceInfo, Workload};
pub use parity::{Parity, ServiceRow, WorkloadRow};

/// One cluster as read: its mesh and its workloads and Services in every namespace.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The kubeconfig context it was read through.
    pub context: String,
    pub mesh: Mesh,
    pub workloads: Vec<Workload>,
    pub services: Vec<ServiceInfo>,
}

/// `NAMESPACE/NAME`, as the flags take it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `NAMESPACE/NAME` → [`ObjectRef`], for clap.
pub fn object_ref(text: &str) -> Result<ObjectRef, String> {
    let (ns, name) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not NAMESPACE/NAME (e.g. default/postgres)"))?;
    let ns = shared::model::labels::namespace_name(ns)?;
    if name.is_empty() || name.contains('/') {
        return Err(format!("{text:?} is not NAMESPACE/NAME (e.g. default/postgres)"));
    }
    Ok(ObjectRef {
        namespace: ns,
        name: name.to_string(),
    })
}

/// What the check compares and what it lets pass.
#[derive(Debug, Clone)]
pub struct Options {
    /// `-n`: these namespaces instead of every meshed one of the old cluster.
    pub namespaces: Option<Vec<String>>,
    /// The ingress gateway's Deployment and Service on the new side.
    pub gateway: ObjectRef,
    /// `--allow-stateful`: stateful workloads the operator has dealt with.
    pub allow_stateful: Vec<ObjectRef>,
}

/// Why the new cluster cannot take the load yet. `code` is stable for scripts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    /// `Missing`, `ImageDiffers`, `FewerReady`, `ServiceMissing`, `PortsDiffer`,
    /// `NotMeshed`, `IstiodNotReady`, `NotInjected`, `OutOfDate`, `GatewayMissing`,
    /// `GatewayNotReady`, `NoExternalAddress`, `Stateful`, `NothingToCompare`.
    pub code: String,
    pub message: String,
}

fn reason(code: &str, message: String) -> Reason {
    Reason {
        code: code.to_string(),
        message,
    }
}

/// A stateful workload in either cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatefulRow {
    /// `old` or `new`: where it was seen (`both` when in each).
    pub cluster: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Why it holds data: the claims it mounts, its volumeClaimTemplates.
    pub why: String,
    /// Acknowledged with `--allow-stateful`.
    pub allowed: bool,
}

/// The body of the `-o json|yaml` document (kind `MeshSwitchover`, documented in README.md).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The old cluster's context.
    pub from: String,
    /// The new cluster's context.
    pub to: String,
    /// True when nothing below blocks the switchover.
    pub ready: bool,
    /// The namespaces compared.
    pub namespaces: Vec<String>,
    pub workloads: Vec<WorkloadRow>,
    pub services: Vec<ServiceRow>,
    pub mesh: MeshCheck,
    pub stateful: Vec<StatefulRow>,
    /// Every blocker, sorted by code; empty when ready.
    pub reasons: Vec<Reason>,
    /// `--allow-stateful` values that named no stateful workload.
    #[serde(skip)]
    pub unmatched_allowances: Vec<ObjectRef>,
}

/// Compare the two clusters.
pub fn plan(old: &Cluster, new: &Cluster, options: &Options) -> Report {
    let namespaces = compared_namespaces(&old.mesh, options);
    let mut reasons = vec![];
    if namespaces.is_empty() {
        reasons.push(reason(
            "NothingToCompare",
            format!(
                "no namespace of {} selects a revision or is ambient: label the application's namespaces, or name them with -n",
                old.context
            ),
        ));
    }
    let workloads = parity::workloads(old, new, &namespaces, &mut reasons);
    let services = parity::services(old, new, &namespaces, &mut reasons);
    let mesh = mesh::check(new, &namespaces, &options.gateway, &mut reasons);
    let (stateful, unmatched_allowances) = stateful(old, new, &namespaces, &options.allow_stateful, &mut reasons);
    reasons.sort();
    Report {
        from: old.context.clone(),
        to: new.context.clone(),
        ready: reasons.is_empty(),
        namespaces: namespaces.into_iter().collect(),
        workloads,
        services,
        mesh,
        stateful,
        reasons,
        unmatched_allowances,
    }
}

/// `-n`'s namespaces, else every namespace of the old cluster whose pods get a sidecar or
/// are ambient.
fn compared_namespaces(old: &Mesh, options: &Options) -> BTreeSet<String> {
    match &options.namespaces {
        Some(list) => list.iter().cloned().collect(),
        None => old
            .namespaces
            .values()
            .filter(|n| n.injection.revision().is_some() || n.ambient.is_some())
            .map(|n| n.name.clone())
            .collect(),
    }
}

/// Stateful workloads in the compared namespaces of either cluster; each one not allowed
/// is a blocker. Also returns the allowances that matched nothing.
fn stateful(
    old: &Cluster,
    new: &Cluster,
    namespaces: &BTreeSet<String>,
    allow: &[ObjectRef],
    reasons: &mut Vec<Reason>,
) -> (Vec<StatefulRow>, Vec<ObjectRef>) {
    let mut rows: Vec<StatefulRow> = vec![];
    for (side, cluster) in [("old", old), ("new", new)] {
        for w in cluster
            .workloads
            .iter()
            .filter(|w| w.stateful() && namespaces.contains(&w.namespace))
        {
            if let Some(row) = rows
                .iter_mut()
                .find(|r| r.kind == w.kind && r.namespace == w.namespace && r.name == w.name)
            {
                row.cluster = "both".into();
                continue;
            }
            let allowed = allow.iter().any(|a| a.namespace == w.namespace && a.name == w.name);
            rows.push(StatefulRow {
                cluster: side.into(),
                kind: w.kind.clone(),
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                why: why_stateful(w),
                allowed,
            });
        }
    }
    rows.sort_by(|a, b| (&a.namespace, &a.kind, &a.name).cmp(&(&b.namespace, &b.kind, &b.name)));
    for r in rows.iter().filter(|r| !r.allowed) {
        let context = match r.cluster.as_str() {
            "old" => old.context.as_str(),
            "new" => new.context.as_str(),
            _ => "both clusters",
        };
        reasons.push(reason(
            "Stateful",
            format!(
                "{}/{} in {} ({context}) {}: its data stays behind when traffic moves; move it to storage both clusters reach, then acknowledge with --allow-stateful {}/{}",
                r.kind.to_lowercase(),
                r.name,
                r.namespace,
                r.why,
                r.namespace,
                r.name
            ),
        ));
    }
    let unmatched = allow
        .iter()
        .filter(|a| !rows.iter().any(|r| r.namespace == a.namespace && r.name == a.name))
        .cloned()
        .collect();
    (rows, unmatched)
}

fn why_stateful(w: &Workload) -> String {
    let mut why = vec![];
    if !w.claims.is_empty() {
        why.push(format!("mounts PersistentVolumeClaim {}", w.claims.join(", ")));
    }
    if !w.claim_templates.is_empty() {
        why.push(format!(
            "makes a PersistentVolumeClaim per pod (volumeClaimTemplates {})",
            w.claim_templates.join(", ")
        ));
    }
    why.join("; ")
}
