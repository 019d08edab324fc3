//! Parity: the old cluster's workloads and Services, each matched by kind, namespace and
//! name with the new cluster's.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Cluster, Reason, ServiceInfo, Workload, reason};

/// How an object of one cluster compares with the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Parity {
    /// In both, alike.
    Same,
    /// In the old cluster only: a blocker.
    Missing,
    /// In the new cluster only: listed, never a blocker.
    Extra,
    /// In both, but not alike (images, ready pods, ports): a blocker.
    Different,
}

impl std::fmt::Display for Parity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Parity::Same => "same",
            Parity::Missing => "missing",
            Parity::Extra => "extra",
            Parity::Different => "different",
        })
    }
}

/// One workload in either cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRow {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub parity: Parity,
    /// The old cluster's, when there.
    pub old: Option<Workload>,
    pub new: Option<Workload>,
    /// What differs, one phrase each.
    pub differences: Vec<String>,
}

/// One Service in either cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRow {
    pub namespace: String,
    pub name: String,
    pub parity: Parity,
    pub old_ports: Vec<String>,
    pub new_ports: Vec<String>,
    pub differences: Vec<String>,
}

/// Every Deployment, StatefulSet and DaemonSet of the compared namespaces, in either
/// cluster, sorted by namespace, kind, name.
pub(super) fn workloads(
    old: &Cluster,
    new: &Cluster,
    namespaces: &BTreeSet<String>,
    reasons: &mut Vec<Reason>,
) -> Vec<WorkloadRow> {
    let index = |c: &Cluster| -> BTreeMap<(String, String, String), Workload> {
        c.workloads
            .iter()
            .filter(|w| namespaces.contains(&w.namespace))
            .map(|w| ((w.namespace.clone(), w.kind.clone(), w.name.clone()), w.clone()))
            .collect()
    };
    let (olds, news) = (index(old), index(new));
    let keys: BTreeSet<_> = olds.keys().chain(news.keys()).cloned().collect();
    let mut rows = vec![];
    for key in keys {
        let (o, n) = (olds.get(&key).cloned(), news.get(&key).cloned());
        let (parity, differences) = match (&o, &n) {
            (Some(o), None) => {
                reasons.push(reason(
                    "Missing",
                    format!(
                        "{} in {} is in {} but not in {}",
                        o.display(),
                        o.namespace,
                        old.context,
                        new.context
                    ),
                ));
                (Parity::Missing, vec![])
            }
            (None, _) => (Parity::Extra, vec![]),
            (Some(o), Some(n)) => compare_workloads(o, n, &old.context, &new.context, reasons),
        };
        let (namespace, kind, name) = key;
        rows.push(WorkloadRow {
            kind,
            namespace,
            name,
            parity,
            old: o,
            new: n,
            differences,
        });
    }
    rows
}

/// Images container by container, then ready pods.
fn compare_workloads(
    o: &Workload,
    n: &Workload,
    from: &str,
    to: &str,
    reasons: &mut Vec<Reason>,
) -> (Parity, Vec<String>) {
    let mut differences = vec![];
    let containers: BTreeSet<&String> = o.images.keys().chain(n.images.keys()).collect();
    for c in containers {
        let (a, b) = (o.images.get(c), n.images.get(c));
        if a == b {
            continue;
        }
        let show = |i: Option<&String>| i.cloned().unwrap_or_else(|| "no such container".into());
        let text = format!("container {c}: {} in {from}, {} in {to}", show(a), show(b));
        reasons.push(reason(
            "ImageDiffers",
            format!("{} in {}: {text}", o.display(), o.namespace),
        ));
        differences.push(text);
    }
    if n.ready < o.ready {
        let text = format!("{} ready in {to}, {} in {from}", n.ready, o.ready);
        reasons.push(reason(
            "FewerReady",
            format!("{} in {}: {text}", o.display(), o.namespace),
        ));
        differences.push(text);
    }
    let parity = if differences.is_empty() {
        Parity::Same
    } else {
        Parity::Different
    };
    (parity, differences)
}

/// Every Service of the compared namespaces in either cluster but the API server's own
/// (`default/kubernetes`), compared by ports.
pub(super) fn services(
    old: &Cluster,
    new: &Cluster,
    namespaces: &BTreeSet<String>,
    reasons: &mut Vec<Reason>,
) -> Vec<ServiceRow> {
    let index = |c: &Cluster| -> BTreeMap<(String, String), ServiceInfo> {
        c.services
            .iter()
            .filter(|s| namespaces.contains(&s.namespace) && !(s.namespace == "default" && s.name == "kubernetes"))
            .map(|s| ((s.namespace.clone(), s.name.clone()), s.clone()))
            .collect()
    };
    let (olds, news) = (index(old), index(new));
    let keys: BTreeSet<_> = olds.keys().chain(news.keys()).cloned().collect();
    let mut rows = vec![];
    for (namespace, name) in keys {
        let key = (namespace.clone(), name.clone());
        let (o, n) = (olds.get(&key), news.get(&key));
        let ports = |s: Option<&ServiceInfo>| s.map(|s| s.ports.clone()).unwrap_or_default();
        let mut differences = vec![];
        let parity = match (o, n) {
            (Some(_), None) => {
                reasons.push(reason(
                    "ServiceMissing",
                    format!(
                        "service/{name} in {namespace} is in {} but not in {}",
                        old.context, new.context
                    ),
                ));
                Parity::Missing
            }
            (None, _) => Parity::Extra,
            (Some(a), Some(b)) if a.ports != b.ports => {
                let text = format!(
                    "ports {} in {}, {} in {}",
                    a.ports.join(", "),
                    old.context,
                    b.ports.join(", "),
                    new.context
                );
                reasons.push(reason("PortsDiffer", format!("service/{name} in {namespace}: {text}")));
                differences.push(text);
                Parity::Different
            }
            _ => Parity::Same,
        };
        rows.push(ServiceRow {
            namespace,
            name,
            parity,
            old_ports: ports(o),
            new_ports: ports(n),
            differences,
        });
    }
    rows
}
