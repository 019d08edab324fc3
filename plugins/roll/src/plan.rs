//! Which out-of-date workloads to restart, in which order, and which to leave alone and why.
//! Pure: the mesh's out-of-date workloads and a few facts about the workload objects in, a
//! plan out.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use serde::Serialize;
use shared::error::known;
use shared::model::{Mesh, OutOfDateWorkload, Target, Workload};

/// `(namespace, kind, name)`, kind as the API spells it (`Deployment`).
pub(crate) type Key = (String, String, String);

fn key(w: &OutOfDateWorkload) -> Key {
    (w.namespace.clone(), w.workload.kind.clone(), w.workload.name.clone())
}

/// `--exclude [NAMESPACE/]KIND/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclude {
    pub namespace: Option<String>,
    pub kind: String,
    pub name: String,
}

impl std::str::FromStr for Exclude {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let (namespace, kind, name) = match parts.as_slice() {
            [kind, name] => (None, *kind, *name),
            [ns, kind, name] if !ns.is_empty() => (Some(ns.to_string()), *kind, *name),
            _ => {
                return Err(format!(
                    "{text:?} is not KIND/NAME or NAMESPACE/KIND/NAME (e.g. deployment/webapp, default/sts/db)"
                ));
            }
        };
        let kind = kind_of(kind).ok_or_else(|| {
            format!("{text:?}: unknown kind {kind:?} (use deployment, statefulset or daemonset; deploy, sts, ds)")
        })?;
        if name.is_empty() {
            return Err(format!("{text:?}: the name is empty"));
        }
        Ok(Exclude {
            namespace,
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }
}

impl Exclude {
    fn matches(&self, k: &Key) -> bool {
        self.namespace.as_ref().is_none_or(|n| *n == k.0) && self.kind == k.1 && self.name == k.2
    }
}

/// kubectl's names and short names for the kinds a roll restarts.
fn kind_of(word: &str) -> Option<&'static str> {
    match word.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" | "deployment.apps" => Some(Deployment::KIND),
        "statefulset" | "statefulsets" | "sts" | "statefulset.apps" => Some(StatefulSet::KIND),
        "daemonset" | "daemonsets" | "ds" | "daemonset.apps" => Some(DaemonSet::KIND),
        _ => None,
    }
}

/// `--revision NAME`: a revision, the revision a tag points to, or a revision only proxies
/// still name (its control plane already removed).
pub(crate) fn revision(mesh: &Mesh, name: &str) -> shared::Result<String> {
    match mesh.control_plane.resolve(name) {
        Target::Revision(r) | Target::Tag { revision: r, .. } => Ok(r.to_string()),
        Target::Unknown if mesh.proxies.iter().any(|p| p.proxy.revision.as_deref() == Some(name)) => {
            Ok(name.to_string())
        }
        Target::Unknown => Err(shared::Error::Usage(format!(
            "--revision {name}: no such revision or tag, and no proxy was injected by it (revisions: {})",
            known(mesh.control_plane.revisions.keys().map(String::as_str))
        ))),
    }
}

/// What the flags ask for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    /// Only workloads with a proxy injected by this revision.
    pub(crate) revision: Option<String>,
    pub(crate) exclude: Vec<Exclude>,
    pub(crate) include_gateways: bool,
    /// `-l` was given: only the workload objects it selected are eligible.
    pub(crate) selected_only: bool,
}

/// What the workload objects say, read just before planning.
#[derive(Debug, Clone, Default)]
pub(crate) struct Objects {
    /// Every Deployment, StatefulSet and DaemonSet read (those `-l` selected, with it), and
    /// why a restart would not replace its pods, if so.
    pub(crate) found: BTreeMap<Key, Option<String>>,
}

/// Why an out-of-date workload is left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Skipped {
    #[serde(flatten)]
    pub(crate) workload: OutOfDateWorkload,
    pub(crate) reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Plan {
    /// Restarted in this order.
    pub(crate) roll: Vec<OutOfDateWorkload>,
    /// Restartable but left alone: gateways without --include-gateways, --exclude, paused.
    pub(crate) skipped: Vec<Skipped>,
    /// Pods no `rollout restart` can replace: bare pods, Job pods, orphan ReplicaSets.
    pub(crate) manual: Vec<Skipped>,
    /// `--exclude` values that matched no out-of-date workload.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) unused_excludes: Vec<String>,
}

/// Applications first (by namespace, kind, name), gateways last: a gateway carries every
/// request into the mesh, so it moves only once the applications behind it did.
pub(crate) fn plan(out_of_date: Vec<OutOfDateWorkload>, filters: &Filters, objects: &Objects) -> Plan {
    let mut out = Plan::default();
    let mut used = BTreeSet::new();
    let (mut apps, gateways): (Vec<_>, Vec<_>) = out_of_date.into_iter().partition(|w| !w.gateway);
    apps.sort_by_key(key);
    let mut ordered = apps;
    let mut gateways = gateways;
    gateways.sort_by_key(key);
    ordered.extend(gateways);
    for w in ordered {
        if let Some(rev) = &filters.revision
            && !w.from_revisions.contains(rev)
        {
            continue;
        }
        let k = key(&w);
        if !w.workload.restartable() {
            if !filters.selected_only {
                let reason = manual_reason(&w.workload);
                out.manual.push(Skipped { workload: w, reason });
            }
            continue;
        }
        let blocker = match objects.found.get(&k) {
            Some(b) => b.clone(),
            None if filters.selected_only => continue,
            None => Some("not found (deleted since its pods were read?)".to_string()),
        };
        let skip = |w: OutOfDateWorkload, reason: String| Skipped { workload: w, reason };
        if let Some(i) = filters.exclude.iter().position(|e| e.matches(&k)) {
            used.insert(i);
            out.skipped.push(skip(w, "excluded (--exclude)".into()));
        } else if w.gateway && !filters.include_gateways {
            out.skipped.push(skip(
                w,
                "a gateway: restarted only with --include-gateways, once the applications behind it run the new proxy"
                    .into(),
            ));
        } else if let Some(b) = blocker {
            out.skipped.push(skip(w, b));
        } else {
            out.roll.push(w);
        }
    }
    out.unused_excludes = filters
        .exclude
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .map(|(_, e)| match &e.namespace {
            Some(n) => format!("{n}/{}/{}", e.kind.to_lowercase(), e.name),
            None => format!("{}/{}", e.kind.to_lowercase(), e.name),
        })
        .collect();
    out
}

fn manual_reason(w: &Workload) -> String {
    match w.kind.as_str() {
        "Pod" => "a bare pod: nothing recreates it; delete and recreate it yourself".into(),
        "Job" => "a Job's pod: it gets the new proxy when the Job runs again".into(),
        "ReplicaSet" => "a ReplicaSet without a Deployment: delete its pods one by one to replace them".into(),
        other => format!("owned by a {other}: restart it the way its controller expects"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out_of_date(ns: &str, kind: &str, name: &str, gateway: bool, from: &str) -> OutOfDateWorkload {
        OutOfDateWorkload {
            namespace: ns.into(),
            workload: Workload {
                kind: kind.into(),
                name: name.into(),
            },
            gateway,
            pods: 1,
            out_of_date_pods: 1,
            from_revisions: [from.to_string()].into(),
            to_revision: Some("1-28".into()),
            to_version: Some("1.28.3".into()),
            reasons: BTreeSet::new(),
        }
    }

    fn found(keys: &[(&str, &str, &str)]) -> Objects {
        Objects {
            found: keys
                .iter()
                .map(|(n, k, w)| ((n.to_string(), k.to_string(), w.to_string()), None))
                .collect(),
        }
    }

    fn names(ws: &[OutOfDateWorkload]) -> Vec<String> {
        ws.iter().map(|w| format!("{}/{}", w.namespace, w.workload)).collect()
    }

    #[test]
    fn order_is_applications_then_gateways_each_sorted() {
        let workloads = vec![
            out_of_date("istio-system", "Deployment", "istio-ingressgateway", true, "1-27"),
            out_of_date("default", "Deployment", "webapp", false, "1-27"),
            out_of_date("apps", "StatefulSet", "db", false, "1-27"),
            out_of_date("default", "DaemonSet", "agent", false, "1-27"),
        ];
        let objects = found(&[
            ("istio-system", "Deployment", "istio-ingressgateway"),
            ("default", "Deployment", "webapp"),
            ("apps", "StatefulSet", "db"),
            ("default", "DaemonSet", "agent"),
        ]);
        let filters = Filters {
            include_gateways: true,
            ..Default::default()
        };
        let p = plan(workloads.clone(), &filters, &objects);
        assert_eq!(
            names(&p.roll),
            [
                "apps/statefulset/db",
                "default/daemonset/agent",
                "default/deployment/webapp",
                "istio-system/deployment/istio-ingressgateway"
            ]
        );
        // Without --include-gateways the gateway is listed, not restarted.
        let p = plan(workloads, &Filters::default(), &objects);
        assert_eq!(p.roll.len(), 3);
        assert_eq!(p.skipped.len(), 1);
        assert!(p.skipped[0].reason.contains("--include-gateways"));
    }

    #[test]
    fn manual_pods_are_listed_never_rolled() {
        let workloads = vec![
            out_of_date("default", "Pod", "debug", false, "1-27"),
            out_of_date("default", "Job", "migrate", false, "1-27"),
            out_of_date("default", "ReplicaSet", "orphan-5d8f", false, "1-27"),
            out_of_date("default", "Rollout", "canary", false, "1-27"),
        ];
        let p = plan(workloads.clone(), &Filters::default(), &Objects::default());
        assert!(p.roll.is_empty());
        let reason = |kind: &str| {
            p.manual
                .iter()
                .find(|s| s.workload.workload.kind == kind)
                .map(|s| s.reason.clone())
                .unwrap()
        };
        assert!(reason("Pod").contains("bare pod"));
        assert!(reason("Job").contains("Job"));
        assert!(reason("ReplicaSet").contains("without a Deployment"));
        assert!(reason("Rollout").contains("Rollout"));
        // -l selects workload objects: pods that have none are not part of the answer.
        let selected = Filters {
            selected_only: true,
            ..Default::default()
        };
        assert!(plan(workloads, &selected, &Objects::default()).manual.is_empty());
    }

    #[test]
    fn filters_revision_exclude_selector_and_blockers() {
        let workloads = vec![
            out_of_date("default", "Deployment", "a", false, "1-26"),
            out_of_date("default", "Deployment", "b", false, "1-27"),
            out_of_date("default", "Deployment", "c", false, "1-27"),
            out_of_date("other", "Deployment", "c", false, "1-27"),
            out_of_date("default", "Deployment", "paused", false, "1-27"),
        ];
        let mut objects = found(&[
            ("default", "Deployment", "a"),
            ("default", "Deployment", "b"),
            ("default", "Deployment", "c"),
            ("other", "Deployment", "c"),
        ]);
        objects.found.insert(
            ("default".into(), "Deployment".into(), "paused".into()),
            Some("it is paused".into()),
        );
        let filters = Filters {
            revision: Some("1-27".into()),
            exclude: vec![
                "default/deploy/c".parse().unwrap(),
                "deployment/missing".parse().unwrap(),
            ],
            ..Default::default()
        };
        let p = plan(workloads.clone(), &filters, &objects);
        assert_eq!(names(&p.roll), ["default/deployment/b", "other/deployment/c"]);
        let skipped: Vec<_> = p
            .skipped
            .iter()
            .map(|s| (s.workload.workload.name.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(skipped, [("c", "excluded (--exclude)"), ("paused", "it is paused")]);
        assert_eq!(p.unused_excludes, ["deployment/missing"]);

        // With -l, workloads it did not select are simply out of scope.
        let mut only_b = found(&[("default", "Deployment", "b")]);
        only_b.found.extend(std::iter::empty());
        let selected = Filters {
            selected_only: true,
            ..Default::default()
        };
        assert_eq!(
            names(&plan(workloads.clone(), &selected, &only_b).roll),
            ["default/deployment/b"]
        );
        // Without -l, a workload whose object is gone is reported, not restarted.
        let p = plan(workloads, &Filters::default(), &only_b);
        assert_eq!(p.roll.len(), 1);
        assert!(p.skipped.iter().any(|s| s.reason.contains("not found")));
    }

    #[test]
    fn exclude_reads_kubectl_kinds() {
        let e: Exclude = "sts/db".parse().unwrap();
        assert_eq!(
            (e.kind.as_str(), e.name.as_str(), e.namespace),
            ("StatefulSet", "db", None)
        );
        let e: Exclude = "prod/DaemonSet/agent".parse().unwrap();
        assert_eq!(e.namespace.as_deref(), Some("prod"));
        assert!("pod/x".parse::<Exclude>().unwrap_err().contains("unknown kind"));
        assert!("webapp".parse::<Exclude>().unwrap_err().contains("KIND/NAME"));
        assert!("deploy/".parse::<Exclude>().unwrap_err().contains("empty"));
    }

    #[test]
    fn revision_names_a_revision_a_tag_or_what_proxies_say() {
        let mut mesh = Mesh::default();
        let err = revision(&mesh, "9-99").unwrap_err().to_string();
        assert!(
            err.contains("no such revision") && err.ends_with("(revisions: none)"),
            "{err}"
        );
        mesh.control_plane.tags.insert(
            "stable".into(),
            shared::model::Tag {
                name: "stable".into(),
                revision: "1-27".into(),
                webhook: "istio-revision-tag-stable".into(),
                service: None,
            },
        );
        assert_eq!(revision(&mesh, "stable").unwrap(), "1-27");
        assert!(matches!(revision(&mesh, "1-26"), Err(shared::Error::Usage(_))));
    }
}
