//! The whole picture: control plane, namespaces and proxies, and the staleness rule every
//! step relies on.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::controlplane::{ControlPlane, Revision};
use super::expectation::{Expectation, expectation};
use super::image::ImageRef;
use super::namespace::{Ambient, Injection, NamespaceBinding};
use super::proxy::{Proxy, ProxyKind, Workload};

/// Why a proxy is out of date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum OutOfDateReason {
    /// Canary upgrade: injected by another revision than the one a restart would pick.
    #[serde(rename_all = "camelCase")]
    Revision { injected: Option<String>, expected: String },
    /// In-place upgrade: another version than its own revision injects (the injector's
    /// `global.tag`, else istiod's version).
    #[serde(rename_all = "camelCase")]
    Version { version: String, control_plane: String },
    /// The version its revision injects, from another image: another hub or image name
    /// (`global.hub`, `global.proxy.image`).
    #[serde(rename_all = "camelCase")]
    Image { image: String, expected: String },
    /// Its revision's control plane is gone.
    #[serde(rename_all = "camelCase")]
    NoControlPlane { revision: String },
}

impl std::fmt::Display for OutOfDateReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutOfDateReason::Revision { injected, expected } => write!(
                f,
                "injected by {}, a restart would get {expected}",
                injected.as_deref().unwrap_or("an unknown revision")
            ),
            OutOfDateReason::Version { version, control_plane } => {
                write!(f, "proxy {version}, its control plane runs {control_plane}")
            }
            OutOfDateReason::Image { image, expected } => {
                write!(f, "proxy image {image}, its control plane injects {expected}")
            }
            OutOfDateReason::NoControlPlane { revision } => write!(f, "revision {revision} has no control plane"),
        }
    }
}

/// A live proxy with what a restart would give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyState {
    #[serde(flatten)]
    pub proxy: Proxy,
    /// The revision that would inject this pod if it were created now (for Gateway API
    /// gateways and waypoints, the one whose istiod renders them).
    pub expected_revision: Option<String>,
    /// What a new pod would get, and why no sidecar when none.
    pub expected: Expectation,
    /// Empty when up to date.
    pub out_of_date: Vec<OutOfDateReason>,
}

impl ProxyState {
    pub fn is_out_of_date(&self) -> bool {
        !self.out_of_date.is_empty()
    }

    /// Out of date, and a restart of its workload is what brings it up to date.
    pub fn restart_fixes(&self) -> bool {
        self.is_out_of_date() && self.expected.restart_helps()
    }
}

/// Something worth knowing before an upgrade step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    /// Stable identifier for scripts: `BothLabels`, `DanglingLabel`, `GatewayVersion`,
    /// `ProxyImageOverride`, `IstiodNotReady`, `DanglingTag`.
    pub code: String,
    pub message: String,
}

/// Every out-of-date proxy of one workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutOfDateWorkload {
    pub namespace: String,
    pub workload: Workload,
    pub gateway: bool,
    pub pods: usize,
    pub out_of_date_pods: usize,
    /// Revisions the stale proxies were injected by.
    pub from_revisions: BTreeSet<String>,
    /// The revision a restart gives the pods, if they agree on one.
    pub to_revision: Option<String>,
    /// The version that revision injects.
    pub to_version: Option<String>,
    pub reasons: BTreeSet<String>,
}

/// The mesh as read in one pass.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mesh {
    pub control_plane: ControlPlane,
    pub namespaces: BTreeMap<String, NamespaceBinding>,
    /// Running and pending injected pods.
    pub proxies: Vec<ProxyState>,
    /// Succeeded or Failed injected pods: they keep their old revision and block nothing.
    pub terminal: Vec<Proxy>,
}

impl Mesh {
    /// Assemble the picture; proxies are judged against the namespaces given.
    pub fn new(control_plane: ControlPlane, namespaces: Vec<NamespaceBinding>, proxies: Vec<Proxy>) -> Mesh {
        let mut namespaces: BTreeMap<_, _> = namespaces.into_iter().map(|n| (n.name.clone(), n)).collect();
        let mut live = Vec::new();
        let mut terminal = Vec::new();
        for p in proxies {
            if p.terminal {
                terminal.push(p);
                continue;
            }
            let expected = expectation(&p, namespaces.get(&p.namespace), &control_plane);
            let expected_revision = expected.revision().map(String::from);
            let out_of_date = out_of_date_reasons(&p, expected_revision.as_deref(), &control_plane);
            live.push(ProxyState {
                proxy: p,
                expected_revision,
                expected,
                out_of_date,
            });
        }
        live.sort_by(|a, b| (&a.proxy.namespace, &a.proxy.pod).cmp(&(&b.proxy.namespace, &b.proxy.pod)));
        terminal.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
        let ztunnel = ztunnel_revision(&live);
        for n in namespaces.values_mut() {
            if n.ambient.is_some() {
                n.ambient = Some(Ambient {
                    revision: ztunnel.clone(),
                });
            }
        }
        Mesh {
            control_plane,
            namespaces,
            proxies: live,
            terminal,
        }
    }

    pub fn out_of_date_count(&self) -> usize {
        self.proxies.iter().filter(|p| p.is_out_of_date()).count()
    }

    /// Namespaces whose labels select this revision (directly or through a tag).
    pub fn namespaces_using(&self, revision: &str) -> Vec<&NamespaceBinding> {
        self.namespaces
            .values()
            .filter(|n| n.injection.revision() == Some(revision))
            .collect()
    }

    /// Live proxies of this revision: sidecars, gateways and waypoints (not ztunnel and
    /// istio-cni, see [`Mesh::components`]).
    pub fn proxies_of<'a>(&'a self, revision: &'a str) -> impl Iterator<Item = &'a ProxyState> + 'a {
        self.proxies
            .iter()
            .filter(move |p| p.proxy.revision.as_deref() == Some(revision) && !p.proxy.kind.is_node_agent())
    }

    /// Proxy counts by version (`override` for a proxyImage override, `unknown` untagged).
    pub fn versions_of(&self, revision: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for p in self.proxies_of(revision) {
            *out.entry(version_key(&p.proxy)).or_default() += 1;
        }
        out
    }

    /// Workloads with at least one out-of-date proxy that a restart brings up to date,
    /// sorted by namespace, kind, name. Never ztunnel or istio-cni, nor Gateway API gateways
    /// and waypoints (istiod re-renders them), nor pods that opted out of injection.
    pub fn out_of_date_workloads(&self) -> Vec<OutOfDateWorkload> {
        let mut by: BTreeMap<(String, Workload), OutOfDateWorkload> = BTreeMap::new();
        for p in self.proxies.iter().filter(|p| !p.proxy.kind.is_node_agent()) {
            let key = (p.proxy.namespace.clone(), p.proxy.workload.clone());
            let entry = by.entry(key).or_insert_with(|| OutOfDateWorkload {
                namespace: p.proxy.namespace.clone(),
                workload: p.proxy.workload.clone(),
                gateway: false,
                pods: 0,
                out_of_date_pods: 0,
                from_revisions: BTreeSet::new(),
                to_revision: p.expected_revision.clone(),
                to_version: None,
                reasons: BTreeSet::new(),
            });
            entry.pods += 1;
            entry.gateway |= p.proxy.gateway;
            if entry.to_revision != p.expected_revision {
                entry.to_revision = None;
            }
            if p.restart_fixes() {
                entry.out_of_date_pods += 1;
                if let Some(r) = &p.proxy.revision {
                    entry.from_revisions.insert(r.clone());
                }
                entry.reasons.extend(p.out_of_date.iter().map(ToString::to_string));
            }
        }
        by.into_values()
            .filter(|w| w.out_of_date_pods > 0)
            .map(|mut w| {
                w.to_version = w
                    .to_revision
                    .as_deref()
                    .and_then(|r| self.control_plane.revisions.get(r))
                    .and_then(Revision::proxy_version);
                w
            })
            .collect()
    }

    /// The warnings that matter before an upgrade step, sorted by code.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out = BTreeSet::new();
        let mut warn = |code: &str, message: String| {
            out.insert(Warning {
                code: code.into(),
                message,
            });
        };
        self.namespace_warnings(&mut warn);
        self.control_plane_warnings(&mut warn);
        self.proxy_warnings(&mut warn);
        out.into_iter().collect()
    }

    fn namespace_warnings(&self, warn: &mut impl FnMut(&str, String)) {
        // Istio's analyzer leaves istio-system alone (analyzers/injection/injection.go).
        for n in self.namespaces.values().filter(|n| n.name != "istio-system") {
            let mesh_labels = n.mesh_labels();
            if mesh_labels.len() > 1 {
                warn("BothLabels", both_labels_message(n, &mesh_labels));
            }
            if let Injection::Broken { reason } = &n.injection {
                warn(
                    "DanglingLabel",
                    format!("namespace {}: {reason}; new pods get no sidecar", n.name),
                );
            }
            if n.injectors.len() > 1 {
                warn(
                    "InjectorConflict",
                    format!(
                        "namespace {}: the webhooks of revisions {} all inject new pods; each re-injects and the last one called ({}) wins; remove or deactivate the others",
                        n.name,
                        n.injectors.join(", "),
                        n.injection.revision().unwrap_or("-")
                    ),
                );
            }
        }
    }

    fn control_plane_warnings(&self, warn: &mut impl FnMut(&str, String)) {
        for t in self.control_plane.tags.values() {
            if !self.control_plane.revisions.contains_key(&t.revision) {
                warn(
                    "DanglingTag",
                    format!("tag {} points to revision {}, which does not exist", t.name, t.revision),
                );
            }
        }
        for r in self.control_plane.revisions.values() {
            match &r.istiod {
                None => warn(
                    "IstiodNotReady",
                    format!("revision {} has no istiod Deployment", r.name),
                ),
                Some(i) if !i.ready() => warn(
                    "IstiodNotReady",
                    format!(
                        "{}/{} is not ready ({}/{} replicas ready)",
                        i.namespace, i.name, i.ready_replicas, i.replicas
                    ),
                ),
                _ => {}
            }
        }
    }

    fn proxy_warnings(&self, warn: &mut impl FnMut(&str, String)) {
        let apps = || self.proxies.iter().filter(|p| p.proxy.kind == ProxyKind::Sidecar);
        let app_revisions: BTreeSet<_> = apps().filter_map(|p| p.proxy.revision.clone()).collect();
        let app_versions: BTreeSet<_> = apps().map(|p| version_key(&p.proxy)).collect();
        for p in self.proxies.iter().filter(|p| p.proxy.gateway) {
            let rev = p.proxy.revision.clone().unwrap_or_default();
            let version = version_key(&p.proxy);
            if !app_revisions.is_empty() && !app_versions.contains(&version) {
                warn(
                    "GatewayVersion",
                    format!(
                        "gateway {}/{} runs {version} (revision {rev}) while no application proxy does ({})",
                        p.proxy.namespace,
                        p.proxy.workload.name,
                        app_versions.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        for p in self.proxies.iter().filter(|p| p.proxy.image_override) {
            warn(
                "ProxyImageOverride",
                format!(
                    "{}/{} sets sidecar.istio.io/proxyImage={}: its version cannot be checked against its control plane",
                    p.proxy.namespace, p.proxy.workload.name, p.proxy.image
                ),
            );
        }
    }
}

/// One row of `istioctl tag list` (istioctl/pkg/tag/tag.go listTags): TAG REVISION NAMESPACES.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagListing {
    pub tag: String,
    pub revision: String,
    /// Namespaces labelled `istio.io/rev=<tag>` (tag.go GetNamespacesWithTag), whether or
    /// not another label overrides it.
    pub namespaces: Vec<String>,
}

/// The pods of one data-plane workload of a kind (a gateway, a waypoint, ztunnel, istio-cni).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub namespace: String,
    pub workload: Workload,
    pub kind: ProxyKind,
    /// The Gateway API Gateway, for rendered gateways and waypoints.
    pub gateway_name: Option<String>,
    /// The revisions its pods belong to: for a waypoint or a Gateway API gateway, the
    /// istiod that rendered it and serves it.
    pub revisions: BTreeSet<String>,
    /// What a new pod would belong to, if its pods agree.
    pub expected_revision: Option<String>,
    /// Pods by proxy version (see [`version_key`]).
    pub versions: BTreeMap<String, usize>,
    pub pods: usize,
    pub out_of_date_pods: usize,
}

impl Mesh {
    /// Every tag, as `istioctl tag list` prints them: sorted by revision, then tag.
    pub fn tag_list(&self) -> Vec<TagListing> {
        let mut out: Vec<TagListing> = self
            .control_plane
            .tags
            .values()
            .map(|t| TagListing {
                tag: t.name.clone(),
                revision: t.revision.clone(),
                namespaces: self
                    .namespaces_labelled(&t.name)
                    .iter()
                    .map(|n| n.name.clone())
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| (&a.revision, &a.tag).cmp(&(&b.revision, &b.tag)));
        out
    }

    /// Namespaces labelled `istio.io/rev=<name>`, whatever their labels select.
    pub fn namespaces_labelled(&self, name: &str) -> Vec<&NamespaceBinding> {
        self.namespaces
            .values()
            .filter(|n| n.rev_label.as_deref() == Some(name))
            .collect()
    }

    /// Ambient namespaces (`istio.io/dataplane-mode=ambient`).
    pub fn ambient_namespaces(&self) -> Vec<&NamespaceBinding> {
        self.namespaces.values().filter(|n| n.ambient.is_some()).collect()
    }

    /// The workloads of one kind, with the revisions that serve them, sorted by
    /// namespace, kind, name: `components(ProxyKind::Waypoint)` lists the waypoints.
    pub fn components(&self, kind: ProxyKind) -> Vec<Component> {
        let mut by: BTreeMap<(String, Workload), Component> = BTreeMap::new();
        for p in self.proxies.iter().filter(|p| p.proxy.kind == kind) {
            let key = (p.proxy.namespace.clone(), p.proxy.workload.clone());
            let c = by.entry(key).or_insert_with(|| Component {
                namespace: p.proxy.namespace.clone(),
                workload: p.proxy.workload.clone(),
                kind,
                gateway_name: p.proxy.gateway_name.clone(),
                revisions: BTreeSet::new(),
                expected_revision: p.expected_revision.clone(),
                versions: BTreeMap::new(),
                pods: 0,
                out_of_date_pods: 0,
            });
            c.pods += 1;
            c.out_of_date_pods += usize::from(p.is_out_of_date());
            c.revisions.extend(p.proxy.revision.clone());
            *c.versions.entry(version_key(&p.proxy)).or_default() += 1;
            if c.expected_revision != p.expected_revision {
                c.expected_revision = None;
            }
        }
        by.into_values().collect()
    }
}

/// IST0123: the competing labels, in Istio's words where it is the classic pair.
fn both_labels_message(n: &NamespaceBinding, mesh_labels: &[String]) -> String {
    if let (Some(inj), Some(rev)) = (&n.injection_label, &n.rev_label) {
        format!(
            "namespace {} has both istio-injection={inj} and istio.io/rev={rev}: istio-injection wins and the revision label is ignored (IST0123); `kubectl mesh relabel` removes istio-injection",
            n.name
        )
    } else {
        format!(
            "namespace {} has {}: sidecar injection and istio.io/dataplane-mode compete (IST0123); keep one",
            n.name,
            mesh_labels.join(" and ")
        )
    }
}

/// The revision of the ztunnel pods, when they agree on one.
fn ztunnel_revision(proxies: &[ProxyState]) -> Option<String> {
    let revisions: BTreeSet<_> = proxies
        .iter()
        .filter(|p| p.proxy.kind == ProxyKind::Ztunnel)
        .map(|p| p.proxy.revision.clone())
        .collect();
    match revisions.len() {
        1 => revisions.into_iter().next().flatten(),
        _ => None,
    }
}

pub fn version_key(p: &Proxy) -> String {
    if p.image_override {
        "override".into()
    } else {
        p.version.clone().unwrap_or_else(|| "unknown".into())
    }
}

/// The revision Istio's webhooks would pick for this pod if it were created now (for
/// Gateway API gateways and waypoints, the one whose istiod renders them); `None` when a
/// new pod would get no sidecar ([`expectation`] says why).
pub fn expected_revision(p: &Proxy, ns: Option<&NamespaceBinding>, cp: &ControlPlane) -> Option<String> {
    expectation(p, ns, cp).revision().map(String::from)
}

/// A proxy is out of date when the revision that injected it is not the one a restart
/// would pick (canary upgrade), or when it does not run the image its own revision injects
/// (in-place upgrade): another version, or the same version from another hub. ztunnel and
/// istio-cni are upgraded by their own charts and never out of date here.
pub fn out_of_date_reasons(p: &Proxy, expected: Option<&str>, cp: &ControlPlane) -> Vec<OutOfDateReason> {
    if p.terminal || p.kind.is_node_agent() {
        return vec![];
    }
    let mut out = vec![];
    if let Some(e) = expected
        && p.revision.as_deref() != Some(e)
    {
        out.push(OutOfDateReason::Revision {
            injected: p.revision.clone(),
            expected: e.to_string(),
        });
    }
    match p.revision.as_deref().map(|r| (r, cp.revisions.get(r))) {
        Some((_, Some(rev))) if !p.image_override => out.extend(image_reason(p, rev)),
        Some((r, None)) if out.is_empty() => out.push(OutOfDateReason::NoControlPlane {
            revision: r.to_string(),
        }),
        _ => {}
    }
    out
}

/// The proxy against the image its revision injects (pkg/kube/inject/inject.go
/// ProxyImage): the version first, then hub and image name. The variant is left out: a
/// pod or a ProxyConfig may choose its own (`sidecar.istio.io/proxyImageType`).
/// Without an injector image, against istiod's version.
fn image_reason(p: &Proxy, rev: &Revision) -> Option<OutOfDateReason> {
    let version = p.version.as_deref()?;
    let Some(expected) = rev.injected_image() else {
        let cv = rev.version()?;
        return (version != cv).then(|| OutOfDateReason::Version {
            version: version.to_string(),
            control_plane: cv.to_string(),
        });
    };
    let e = ImageRef::parse(&expected);
    let expected_version = e.version.as_deref()?;
    if version != expected_version {
        return Some(OutOfDateReason::Version {
            version: version.to_string(),
            control_plane: expected_version.to_string(),
        });
    }
    (ImageRef::parse(&p.image).repository != e.repository).then(|| OutOfDateReason::Image {
        image: p.image.clone(),
        expected,
    })
}
