//! The whole picture: control plane, namespaces and proxies, and the staleness rule every
//! step relies on.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::controlplane::{ControlPlane, Target};
use super::namespace::{Injection, NamespaceBinding};
use super::proxy::{Proxy, Workload};

/// Why a proxy is out of date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum OutOfDateReason {
    /// Canary upgrade: injected by another revision than the one a restart would pick.
    #[serde(rename_all = "camelCase")]
    Revision { injected: Option<String>, expected: String },
    /// In-place upgrade: older (or newer) than its own revision's istiod.
    #[serde(rename_all = "camelCase")]
    Version { version: String, control_plane: String },
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
    /// The revision that would inject this pod if it were created now.
    pub expected_revision: Option<String>,
    /// Empty when up to date.
    pub out_of_date: Vec<OutOfDateReason>,
}

impl ProxyState {
    pub fn is_out_of_date(&self) -> bool {
        !self.out_of_date.is_empty()
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
        let namespaces: BTreeMap<_, _> = namespaces.into_iter().map(|n| (n.name.clone(), n)).collect();
        let mut live = Vec::new();
        let mut terminal = Vec::new();
        for p in proxies {
            if p.terminal {
                terminal.push(p);
                continue;
            }
            let expected = expected_revision(&p, namespaces.get(&p.namespace), &control_plane);
            let out_of_date = out_of_date_reasons(&p, expected.as_deref(), &control_plane);
            live.push(ProxyState {
                proxy: p,
                expected_revision: expected,
                out_of_date,
            });
        }
        live.sort_by(|a, b| (&a.proxy.namespace, &a.proxy.pod).cmp(&(&b.proxy.namespace, &b.proxy.pod)));
        terminal.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
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

    /// Live proxies injected by this revision.
    pub fn proxies_of<'a>(&'a self, revision: &'a str) -> impl Iterator<Item = &'a ProxyState> + 'a {
        self.proxies
            .iter()
            .filter(move |p| p.proxy.revision.as_deref() == Some(revision))
    }

    /// Proxy counts by version (`override` for a proxyImage override, `unknown` untagged).
    pub fn versions_of(&self, revision: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for p in self.proxies_of(revision) {
            *out.entry(version_key(&p.proxy)).or_default() += 1;
        }
        out
    }

    /// Workloads with at least one out-of-date proxy, sorted by namespace, kind, name.
    pub fn out_of_date_workloads(&self) -> Vec<OutOfDateWorkload> {
        let mut by: BTreeMap<(String, Workload), OutOfDateWorkload> = BTreeMap::new();
        for p in &self.proxies {
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
            if p.is_out_of_date() {
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
                    .and_then(|r| r.version().map(String::from));
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
        for n in self.namespaces.values() {
            if n.has_both_labels() && n.injection_label.as_deref() != Some("disabled") {
                warn(
                    "BothLabels",
                    format!(
                        "namespace {} has both istio-injection={} and istio.io/rev={}: istio-injection wins and the revision label is ignored (IST0123); `kubectl mesh relabel` removes istio-injection",
                        n.name,
                        n.injection_label.as_deref().unwrap_or(""),
                        n.rev_label.as_deref().unwrap_or("")
                    ),
                );
            }
            if let Injection::Broken { reason } = &n.injection {
                warn(
                    "DanglingLabel",
                    format!("namespace {}: {reason}; new pods get no sidecar", n.name),
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
        let apps = || self.proxies.iter().filter(|p| !p.proxy.gateway);
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

pub fn version_key(p: &Proxy) -> String {
    if p.image_override {
        "override".into()
    } else {
        p.version.clone().unwrap_or_else(|| "unknown".into())
    }
}

/// The revision Istio's webhooks would pick for this pod if it were created now.
pub fn expected_revision(p: &Proxy, ns: Option<&NamespaceBinding>, cp: &ControlPlane) -> Option<String> {
    match ns.map(|n| &n.injection) {
        Some(Injection::Revision { revision, .. }) => Some(revision.clone()),
        Some(Injection::Disabled) | Some(Injection::Broken { .. }) => None,
        // A namespace without labels: the pod's own labels decide (object selectors).
        Some(Injection::NotLabeled) | None => {
            if p.inject_label.as_deref() == Some("false") {
                return None;
            }
            match p.rev_label.as_deref() {
                Some(name) => match cp.resolve(name) {
                    Target::Revision(r) | Target::Tag { revision: r, .. } => Some(r.to_string()),
                    Target::Unknown => None,
                },
                None if p.inject_label.as_deref() == Some("true") => cp.default_revision.clone(),
                None => None,
            }
        }
    }
}

/// A proxy is out of date when the revision that injected it is not the one a restart
/// would pick (canary upgrade), or when its version is not its own revision's istiod
/// version (in-place upgrade).
pub fn out_of_date_reasons(p: &Proxy, expected: Option<&str>, cp: &ControlPlane) -> Vec<OutOfDateReason> {
    if p.terminal {
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
        Some((_, Some(rev))) => {
            if let (Some(v), Some(cv)) = (p.version.as_deref(), rev.version())
                && v != cv
            {
                out.push(OutOfDateReason::Version {
                    version: v.to_string(),
                    control_plane: cv.to_string(),
                });
            }
        }
        Some((r, None)) if out.is_empty() => out.push(OutOfDateReason::NoControlPlane {
            revision: r.to_string(),
        }),
        _ => {}
    }
    out
}
