//! What `revisions` shows, worked out from the model: one row per revision, tag and
//! namespace, with the proxies each serves. Pure, so it is tested without a cluster.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use shared::model::{Injection, InjectorConfig, Istiod, Mesh, NamespaceBinding, ProxyState, Tag, Warning};

/// The body of the `-o json|yaml` document (documented in README.md); `schemaVersion` and
/// `kind` come from `shared::output::Envelope`. The tables show the same data.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub default_revision: Option<String>,
    pub revisions: Vec<RevisionRow>,
    pub tags: Vec<TagRow>,
    pub namespaces: Vec<NamespaceRow>,
    pub proxies: Vec<ProxyState>,
    /// Live injected pods.
    pub total_proxies: usize,
    pub out_of_date: usize,
    /// Succeeded/Failed injected pods, counted apart.
    pub terminal_pods: usize,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRow {
    pub name: String,
    pub tags: Vec<String>,
    pub default: bool,
    /// The version its proxies should run (istiod's image tag).
    pub version: Option<String>,
    pub istiod: Option<Istiod>,
    pub ready: bool,
    pub injector: Option<InjectorConfig>,
    pub webhook: Option<String>,
    /// False for a revision seen only on proxies: its control plane is gone.
    pub installed: bool,
    pub namespaces: Vec<String>,
    /// Live proxies by version (`override` for a proxyImage override).
    pub proxies: BTreeMap<String, usize>,
    pub out_of_date: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagRow {
    pub name: String,
    pub revision: String,
    pub webhook: String,
    pub namespaces: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceRow {
    pub name: String,
    pub rev_label: Option<String>,
    pub injection_label: Option<String>,
    pub injection: Injection,
    /// Live proxies by injecting revision.
    pub proxies: BTreeMap<String, usize>,
    pub out_of_date: usize,
}

impl Report {
    /// `narrowed`: the user named namespaces, so every one of them is listed even without
    /// labels or proxies.
    pub fn new(mesh: &Mesh, narrowed: bool) -> Report {
        Report {
            default_revision: mesh.control_plane.default_revision.clone(),
            revisions: revision_rows(mesh),
            tags: mesh.control_plane.tags.values().map(|t| tag_row(mesh, t)).collect(),
            namespaces: mesh
                .namespaces
                .values()
                .map(|n| namespace_row(mesh, n))
                .filter(|n| narrowed || n.in_the_mesh())
                .collect(),
            proxies: mesh.proxies.clone(),
            total_proxies: mesh.proxies.len(),
            out_of_date: mesh.out_of_date_count(),
            terminal_pods: mesh.terminal.len(),
            warnings: mesh.warnings(),
        }
    }
}

/// Every installed revision, and every revision a live proxy names even when its control
/// plane is gone, sorted by name.
fn revision_rows(mesh: &Mesh) -> Vec<RevisionRow> {
    let mut names: BTreeSet<&str> = mesh.control_plane.revisions.keys().map(String::as_str).collect();
    names.extend(mesh.proxies.iter().filter_map(|p| p.proxy.revision.as_deref()));
    names.into_iter().map(|name| revision_row(mesh, name)).collect()
}

fn revision_row(mesh: &Mesh, name: &str) -> RevisionRow {
    let rev = mesh.control_plane.revisions.get(name);
    RevisionRow {
        name: name.to_string(),
        tags: rev.map(|r| r.tags.clone()).unwrap_or_default(),
        default: rev.is_some_and(|r| r.default),
        version: rev.and_then(|r| r.version().map(String::from)),
        istiod: rev.and_then(|r| r.istiod.clone()),
        ready: rev.is_some_and(shared::model::Revision::ready),
        injector: rev.and_then(|r| r.injector.clone()),
        webhook: rev.and_then(|r| r.webhook.clone()),
        installed: rev.is_some(),
        namespaces: mesh.namespaces_using(name).iter().map(|n| n.name.clone()).collect(),
        proxies: mesh.versions_of(name),
        out_of_date: mesh.proxies_of(name).filter(|p| p.is_out_of_date()).count(),
    }
}

/// A tag with the namespaces whose `istio.io/rev` names it.
fn tag_row(mesh: &Mesh, tag: &Tag) -> TagRow {
    TagRow {
        name: tag.name.clone(),
        revision: tag.revision.clone(),
        webhook: tag.webhook.clone(),
        namespaces: mesh
            .namespaces
            .values()
            .filter(|n| matches!(&n.injection, Injection::Revision { tag: Some(t), .. } if *t == tag.name))
            .map(|n| n.name.clone())
            .collect(),
    }
}

fn namespace_row(mesh: &Mesh, ns: &NamespaceBinding) -> NamespaceRow {
    let mut proxies = BTreeMap::new();
    let mut out_of_date = 0;
    for p in mesh.proxies.iter().filter(|p| p.proxy.namespace == ns.name) {
        let revision = p.proxy.revision.clone().unwrap_or_else(|| "unknown".into());
        *proxies.entry(revision).or_default() += 1;
        out_of_date += usize::from(p.is_out_of_date());
    }
    NamespaceRow {
        name: ns.name.clone(),
        rev_label: ns.rev_label.clone(),
        injection_label: ns.injection_label.clone(),
        injection: ns.injection.clone(),
        proxies,
        out_of_date,
    }
}

impl NamespaceRow {
    /// An injection label or a proxy: worth a row when the whole mesh is shown.
    fn in_the_mesh(&self) -> bool {
        self.rev_label.is_some() || self.injection_label.is_some() || !self.proxies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::model::{ControlPlane, Proxy, ProxyKind, Revision, Workload};

    /// Revision 1-27 (tag `prod`, the default) is installed; 1-26 is gone but one proxy
    /// still carries it.
    fn mesh() -> Mesh {
        let mut cp = ControlPlane::default();
        cp.revisions.insert(
            "1-27".into(),
            Revision {
                name: "1-27".into(),
                istiod: Some(Istiod {
                    namespace: "istio-system".into(),
                    name: "istiod-1-27".into(),
                    image: "docker.io/istio/pilot:1.27.4".into(),
                    version: Some("1.27.4".into()),
                    replicas: 1,
                    ready_replicas: 1,
                    updated_replicas: 1,
                }),
                injector: None,
                webhook: Some("istio-sidecar-injector-1-27".into()),
                tags: vec!["prod".into()],
                default: true,
                deactivated: false,
            },
        );
        cp.tags.insert(
            "prod".into(),
            Tag {
                name: "prod".into(),
                revision: "1-27".into(),
                webhook: "istio-revision-tag-prod".into(),
                service: None,
            },
        );
        cp.default_revision = Some("1-27".into());
        let namespaces = vec![
            NamespaceBinding::new("web", Some("prod"), None, &cp),
            NamespaceBinding::new("shop", Some("1-27"), None, &cp),
            NamespaceBinding::new("quiet", None, None, &cp),
        ];
        let proxies = vec![
            proxy("web", "web-1", "1-27", "1.27.4"),
            proxy("web", "web-2", "1-26", "1.26.2"),
            proxy("shop", "cart-1", "1-27", "1.27.4"),
        ];
        Mesh::new(cp, namespaces, proxies)
    }

    fn proxy(namespace: &str, pod: &str, revision: &str, version: &str) -> Proxy {
        Proxy {
            namespace: namespace.into(),
            pod: pod.into(),
            workload: Workload {
                kind: "Deployment".into(),
                name: pod.into(),
            },
            revision: Some(revision.into()),
            image: format!("docker.io/istio/proxyv2:{version}"),
            version: Some(version.into()),
            variant: None,
            image_override: false,
            native: false,
            gateway: false,
            kind: ProxyKind::Sidecar,
            injected: true,
            gateway_name: None,
            phase: "Running".into(),
            ready: true,
            terminal: false,
            rev_label: None,
            inject_label: None,
            inject_annotation: None,
            host_network: false,
        }
    }

    #[test]
    fn a_revision_seen_only_on_proxies_gets_a_row_marked_not_installed() {
        let report = Report::new(&mesh(), false);
        let names: Vec<_> = report.revisions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["1-26", "1-27"]);
        let gone = &report.revisions[0];
        assert!(!gone.installed && !gone.ready && gone.istiod.is_none());
        assert_eq!(gone.proxies, BTreeMap::from([("1.26.2".to_string(), 1)]));
        assert_eq!(gone.out_of_date, 1);
        let live = &report.revisions[1];
        assert!(live.installed && live.ready && live.default);
        assert_eq!(live.version.as_deref(), Some("1.27.4"));
        assert_eq!(live.namespaces, ["shop", "web"]);
        assert_eq!(live.out_of_date, 0);
    }

    #[test]
    fn a_tag_lists_only_the_namespaces_that_name_it() {
        let report = Report::new(&mesh(), false);
        assert_eq!(report.tags.len(), 1);
        assert_eq!(report.tags[0].revision, "1-27");
        assert_eq!(report.tags[0].namespaces, ["web"]);
    }

    #[test]
    fn namespaces_count_proxies_by_revision_and_hide_the_unlabelled_empty_ones() {
        let report = Report::new(&mesh(), false);
        let names: Vec<_> = report.namespaces.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["shop", "web"]);
        let web = &report.namespaces[1];
        assert_eq!(
            web.proxies,
            BTreeMap::from([("1-26".to_string(), 1), ("1-27".to_string(), 1)])
        );
        assert_eq!(web.out_of_date, 1);
        let narrowed = Report::new(&mesh(), true);
        assert!(narrowed.namespaces.iter().any(|n| n.name == "quiet"));
    }

    #[test]
    fn totals_come_from_the_model() {
        let report = Report::new(&mesh(), false);
        assert_eq!(report.default_revision.as_deref(), Some("1-27"));
        assert_eq!(
            (report.total_proxies, report.out_of_date, report.terminal_pods),
            (3, 1, 0)
        );
    }
}
