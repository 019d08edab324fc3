//! Revisions, tags and the injector webhooks, read from istiod Deployments, injector
//! ConfigMaps, MutatingWebhookConfigurations and tag Services
//! (manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml,
//! revision-tags-mwc.yaml, revision-tags-svc.yaml).
//!
//! Which revision injects a pod is decided the way the API server decides it: by the
//! `namespaceSelector` and `objectSelector` of every injector webhook, never by the name
//! of a configuration. `istioctl tag set default` leaves the unrevisioned
//! `istio-sidecar-injector` in place with selectors that match nothing
//! (istioctl/pkg/tag/util.go DeactivateIstioInjectionWebhook).

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;

use super::image::ImageRef;
use super::labels;
use super::selector::{self, Labels};

/// One revision's istiod Deployment.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Istiod {
    pub namespace: String,
    pub name: String,
    pub image: String,
    /// The image tag without variant: the control plane version.
    pub version: Option<String>,
    pub replicas: i32,
    pub ready_replicas: i32,
    pub updated_replicas: i32,
}

impl Istiod {
    /// Ready when the rollout is complete and every wanted replica is ready.
    pub fn ready(&self) -> bool {
        self.replicas > 0 && self.ready_replicas >= self.replicas && self.updated_replicas >= self.replicas
    }
}

/// What a revision's injector ConfigMap (`values` JSON) says it injects.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InjectorConfig {
    pub namespace: String,
    pub configmap: String,
    /// `global.hub`.
    pub hub: Option<String>,
    /// `global.tag`.
    pub tag: Option<String>,
    /// `global.proxy.image`: an image name (`proxyv2` when unset), or a whole image when it
    /// contains a `/`.
    pub proxy_image: Option<String>,
    /// `global.variant` (`distroless`, `debug`), empty for the default image.
    pub variant: Option<String>,
    /// `global.proxy.autoInject`: with `disabled`, only pods asking for a sidecar
    /// (`sidecar.istio.io/inject=true`) get one (pkg/kube/inject/inject.go injectRequired).
    pub policy: Option<String>,
}

impl InjectorConfig {
    /// The image this injector writes into a pod's `istio-proxy` container: `global.proxy.image`
    /// verbatim when it contains a `/` (files/injection-template.yaml), else
    /// `<global.hub>/<global.proxy.image or proxyv2>:<global.tag>[-<variant>]`
    /// (pkg/kube/inject/inject.go ProxyImage, imageURL). `None` without hub or tag.
    pub fn injected_image(&self) -> Option<String> {
        let name = self
            .proxy_image
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or("proxyv2");
        if name.contains('/') {
            return Some(name.to_string());
        }
        let hub = self.hub.as_deref().filter(|h| !h.is_empty())?;
        let tag = self.tag.as_deref().filter(|t| !t.is_empty())?;
        Some(format!("{hub}/{name}:{}", with_variant(tag, self.variant.as_deref())))
    }
}

/// `updateImageTypeIfPresent` (pkg/kube/inject/inject.go): a known variant already in the tag
/// is replaced, `default` means none.
fn with_variant(tag: &str, variant: Option<&str>) -> String {
    let Some(variant) = variant.filter(|v| !v.is_empty()) else {
        return tag.to_string();
    };
    let base = ["distroless", "debug"]
        .iter()
        .find_map(|v| tag.strip_suffix(&format!("-{v}")))
        .unwrap_or(tag);
    if variant == "default" {
        base.to_string()
    } else {
        format!("{base}-{variant}")
    }
}

/// One control-plane revision.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub name: String,
    pub istiod: Option<Istiod>,
    pub injector: Option<InjectorConfig>,
    /// The MutatingWebhookConfiguration `istio-sidecar-injector[-<rev>]`.
    pub webhook: Option<String>,
    /// Every webhook of that configuration has istioctl's never-match selector: it injects
    /// nothing (istioctl/pkg/tag/util.go DeactivateIstioInjectionWebhook).
    pub deactivated: bool,
    /// Tags pointing at this revision, sorted.
    pub tags: Vec<String>,
    /// Whether this revision serves `istio-injection=enabled` (the default revision).
    pub default: bool,
}

impl Revision {
    fn new(name: &str) -> Revision {
        Revision {
            name: name.to_string(),
            istiod: None,
            injector: None,
            webhook: None,
            deactivated: false,
            tags: vec![],
            default: false,
        }
    }

    /// istiod's version, else the injector's tag: what the revision is called by.
    pub fn version(&self) -> Option<&str> {
        self.istiod
            .as_ref()
            .and_then(|i| i.version.as_deref())
            .or_else(|| self.injector.as_ref().and_then(|i| i.tag.as_deref()))
    }

    /// The proxy image this revision injects (see [`InjectorConfig::injected_image`]).
    pub fn injected_image(&self) -> Option<String> {
        self.injector.as_ref().and_then(InjectorConfig::injected_image)
    }

    /// The proxy version this revision injects: its injected image's tag without variant,
    /// else istiod's version. istiod's own tag can differ (`pilot.tag`).
    pub fn proxy_version(&self) -> Option<String> {
        self.injected_image()
            .and_then(|i| ImageRef::parse(&i).version)
            .or_else(|| self.version().map(String::from))
    }

    pub fn ready(&self) -> bool {
        self.istiod.as_ref().is_some_and(Istiod::ready)
    }
}

/// A revision tag: `istio-revision-tag-<tag>` (and, from 1.28, Service
/// `istiod-revision-tag-<tag>`) pointing at a revision.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub name: String,
    pub revision: String,
    /// The MutatingWebhookConfiguration, empty for a tag that exists only as a Service.
    pub webhook: String,
    /// The Service `istiod-revision-tag-<tag>` (revision-tags-svc.yaml), if any.
    pub service: Option<String>,
}

/// One webhook of an injector MutatingWebhookConfiguration (a revision's or a tag's).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InjectorWebhook {
    /// The MutatingWebhookConfiguration.
    pub configuration: String,
    /// `rev.namespace.sidecar-injector.istio.io`, `namespace.sidecar-injector.istio.io`, …
    pub name: String,
    /// The revision whose istiod it calls: the configuration's `istio.io/rev` label.
    pub revision: String,
    /// The configuration's `istio.io/tag` label, for a tag's webhooks.
    pub tag: Option<String>,
    pub namespace_selector: Option<LabelSelector>,
    pub object_selector: Option<LabelSelector>,
}

impl InjectorWebhook {
    /// Whether the API server calls this webhook for a new pod with these labels in a
    /// namespace with these labels.
    pub fn matches(&self, namespace: &Labels, pod: &Labels) -> bool {
        selector::matches(self.namespace_selector.as_ref(), namespace)
            && selector::matches(self.object_selector.as_ref(), pod)
    }

    /// istioctl's never-match selector: `istio.io/deactivated=never-match`.
    pub fn deactivated(&self) -> bool {
        let never = |s: &Option<LabelSelector>| {
            s.as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .is_some_and(|m| m.get(labels::DEACTIVATED).is_some_and(|v| v == "never-match"))
        };
        never(&self.namespace_selector) || never(&self.object_selector)
    }

    /// The namespace label this webhook asks for: `istio.io/rev` (`rev.namespace.`),
    /// `istio-injection` (`namespace.`), else its own name (`auto.`, object selectors).
    pub fn decided_by(&self) -> String {
        selector::requirements(self.namespace_selector.as_ref())
            .find(|(k, op)| matches!(*op, "In" | "Exists") && (*k == labels::REV || *k == labels::INJECTION))
            .map_or_else(|| self.name.clone(), |(k, _)| k.to_string())
    }
}

/// The injector that a new pod gets its sidecar from.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectorMatch<'a> {
    /// The revision whose sidecar the pod ends up with. The API server calls every matching
    /// webhook in turn (configurations sorted by name); each istiod re-injects and
    /// overwrites the status annotation (pkg/kube/inject/webhook.go), so the last one wins.
    pub revision: &'a str,
    /// The tag whose webhook matched for that revision, if one did.
    pub tag: Option<&'a str>,
    /// The deciding webhook.
    pub webhook: &'a InjectorWebhook,
    /// Every revision whose webhook matched, in call order, without repeats: more than one
    /// is a conflict.
    pub revisions: Vec<&'a str>,
}

/// What a name in `istio.io/rev` resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    Revision(&'a str),
    Tag { tag: &'a str, revision: &'a str },
    Unknown,
}

/// Every revision and tag of the cluster.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlane {
    pub revisions: BTreeMap<String, Revision>,
    pub tags: BTreeMap<String, Tag>,
    /// The revision that injects `istio-injection=enabled` namespaces and
    /// `sidecar.istio.io/inject=true` pods, if any.
    pub default_revision: Option<String>,
    /// Every injector webhook, in the order the API server calls them.
    pub webhooks: Vec<InjectorWebhook>,
}

impl ControlPlane {
    /// Build the picture from the objects a revision consists of. Objects that are not
    /// Istio's are ignored, so callers may pass wider lists.
    pub fn from_objects(
        deployments: &[Deployment],
        configmaps: &[ConfigMap],
        webhooks: &[MutatingWebhookConfiguration],
    ) -> ControlPlane {
        Self::from_objects_and_services(deployments, configmaps, webhooks, &[])
    }

    /// As [`ControlPlane::from_objects`], with the Services labelled `istio.io/tag`
    /// (`istiod-revision-tag-<tag>`, written from 1.28): a tag may exist only as such a
    /// Service, and `istioctl tag list` and istiod's tag watcher count it
    /// (istioctl/pkg/tag/tag.go uniqTagsFromServices, pkg/revisions/tag_watcher.go).
    pub fn from_objects_and_services(
        deployments: &[Deployment],
        configmaps: &[ConfigMap],
        webhooks: &[MutatingWebhookConfiguration],
        services: &[Service],
    ) -> ControlPlane {
        let mut cp = ControlPlane::default();
        for d in deployments.iter().filter(|d| is_istiod(d)) {
            let rev = label(&d.metadata.labels, labels::REV).unwrap_or(labels::DEFAULT_REVISION);
            cp.revision_mut(rev).istiod = Some(istiod(d));
        }
        for cm in configmaps {
            cp.add_injector_configmap(cm);
        }
        let mut sorted: Vec<_> = webhooks.iter().collect();
        // The API server calls configurations sorted by name, webhooks in their order
        // (k8s.io/apiserver pkg/admission/configuration/mutating_webhook_manager.go).
        sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for mwc in sorted {
            cp.add_webhook_configuration(mwc);
        }
        for svc in services {
            cp.add_tag_service(svc);
        }
        cp.finish();
        cp
    }

    fn revision_mut(&mut self, rev: &str) -> &mut Revision {
        self.revisions
            .entry(rev.to_string())
            .or_insert_with(|| Revision::new(rev))
    }

    fn add_injector_configmap(&mut self, cm: &ConfigMap) {
        let name = cm.metadata.name.as_deref().unwrap_or("");
        let Some(rev) = injector_configmap_revision(name) else {
            return;
        };
        let rev = label(&cm.metadata.labels, labels::REV).unwrap_or(rev);
        let values = cm.data.as_ref().and_then(|d| d.get("values"));
        let parsed: Option<serde_json::Value> = values.and_then(|v| serde_json::from_str(v).ok());
        let global = parsed.as_ref().and_then(|v| v.get("global"));
        let text = |path: &[&str]| {
            let v = path.iter().try_fold(global?, |v, k| v.get(k))?;
            // `global.tag` may be written as a number; istiod formats it with %v.
            v.as_str()
                .map(String::from)
                .or_else(|| v.is_number().then(|| v.to_string()))
        };
        self.revision_mut(rev).injector = Some(InjectorConfig {
            namespace: cm.metadata.namespace.clone().unwrap_or_default(),
            configmap: name.to_string(),
            hub: text(&["hub"]),
            tag: text(&["tag"]),
            proxy_image: text(&["proxy", "image"]),
            variant: text(&["variant"]),
            policy: text(&["proxy", "autoInject"]),
        });
    }

    fn add_webhook_configuration(&mut self, mwc: &MutatingWebhookConfiguration) {
        let name = mwc.metadata.name.as_deref().unwrap_or("");
        let lbls = &mwc.metadata.labels;
        let Some(rev) = label(lbls, labels::REV) else { return };
        let tag = label(lbls, labels::TAG);
        let injectors: Vec<InjectorWebhook> = mwc
            .webhooks
            .iter()
            .flatten()
            .filter(|w| is_injector_webhook(w))
            .map(|w| InjectorWebhook {
                configuration: name.to_string(),
                name: w.name.clone(),
                revision: rev.to_string(),
                tag: tag.map(String::from),
                namespace_selector: w.namespace_selector.clone(),
                object_selector: w.object_selector.clone(),
            })
            .collect();
        if let Some(tag) = tag {
            let entry = self.tags.entry(tag.to_string()).or_insert_with(|| Tag {
                name: tag.to_string(),
                revision: rev.to_string(),
                webhook: String::new(),
                service: None,
            });
            entry.revision = rev.to_string();
            entry.webhook = name.to_string();
        } else if name == "istio-sidecar-injector" || name.starts_with("istio-sidecar-injector-") {
            let deactivated = !injectors.is_empty() && injectors.iter().all(InjectorWebhook::deactivated);
            let entry = self.revision_mut(rev);
            entry.webhook = Some(name.to_string());
            entry.deactivated = deactivated;
        }
        self.webhooks.extend(injectors);
    }

    fn add_tag_service(&mut self, svc: &Service) {
        let lbls = &svc.metadata.labels;
        let (Some(tag), Some(rev)) = (label(lbls, labels::TAG), label(lbls, labels::REV)) else {
            return;
        };
        let entry = self.tags.entry(tag.to_string()).or_insert_with(|| Tag {
            name: tag.to_string(),
            revision: rev.to_string(),
            webhook: String::new(),
            service: None,
        });
        entry.service = svc.metadata.name.clone();
    }

    /// Tags on their revisions, and the default revision from what the webhooks match.
    fn finish(&mut self) {
        for tag in self.tags.values() {
            if let Some(r) = self.revisions.get_mut(&tag.revision) {
                r.tags.push(tag.name.clone());
            }
        }
        self.default_revision = self.find_default_revision();
        if let Some(d) = self.default_revision.clone()
            && let Some(r) = self.revisions.get_mut(&d)
        {
            r.default = true;
        }
    }

    /// The revision a pod gets in an `istio-injection=enabled` namespace, else the one a
    /// `sidecar.istio.io/inject=true` pod gets in an unlabelled namespace.
    fn find_default_revision(&self) -> Option<String> {
        let enabled = Labels::from([(labels::INJECTION.to_string(), "enabled".to_string())]);
        let asks = Labels::from([(labels::SIDECAR_INJECT.to_string(), "true".to_string())]);
        self.injector_for(&enabled, &Labels::new())
            .or_else(|| self.injector_for(&Labels::new(), &asks))
            .map(|m| m.revision.to_string())
    }

    /// Every injector webhook the API server would call for a new pod with these labels
    /// in a namespace with these labels, in call order.
    pub fn matching_webhooks<'a>(
        &'a self,
        namespace: &'a Labels,
        pod: &'a Labels,
    ) -> impl Iterator<Item = &'a InjectorWebhook> + 'a {
        self.webhooks.iter().filter(move |w| w.matches(namespace, pod))
    }

    /// The injector a new pod with these labels gets its sidecar from, in a namespace with
    /// these labels; `None` when no injector webhook matches. Per-pod opt-outs that istiod
    /// applies after the webhook matched are not considered here (see
    /// [`crate::model::expectation`]).
    pub fn injector_for<'a>(&'a self, namespace: &Labels, pod: &Labels) -> Option<InjectorMatch<'a>> {
        let matched: Vec<&InjectorWebhook> = self.webhooks.iter().filter(|w| w.matches(namespace, pod)).collect();
        let last = *matched.last()?;
        let mut revisions: Vec<&str> = Vec::new();
        for w in &matched {
            if !revisions.contains(&w.revision.as_str()) {
                revisions.push(&w.revision);
            }
        }
        let tag = matched
            .iter()
            .filter(|w| w.revision == last.revision)
            .find_map(|w| w.tag.as_deref());
        Some(InjectorMatch {
            revision: &last.revision,
            tag,
            webhook: last,
            revisions,
        })
    }

    /// Resolve a value of `istio.io/rev` as a namespace label: the revision whose webhook
    /// matches it, through a tag or directly. A name no webhook matches resolves by name
    /// (a revision, else a tag), so a control plane read without webhooks still resolves.
    pub fn resolve<'a>(&'a self, name: &'a str) -> Target<'a> {
        let ns = Labels::from([(labels::REV.to_string(), name.to_string())]);
        if let Some(m) = self.injector_for(&ns, &Labels::new()) {
            return match m.tag {
                _ if m.revision == name => Target::Revision(m.revision),
                Some(tag) => Target::Tag {
                    tag,
                    revision: m.revision,
                },
                None => Target::Revision(m.revision),
            };
        }
        self.resolve_by_name(name)
    }

    /// A revision of that name, else a tag of that name: how istiod's tag watcher reads
    /// `istio.io/rev` on a Gateway (pkg/revisions/tag_watcher.go).
    pub fn resolve_by_name<'a>(&'a self, name: &'a str) -> Target<'a> {
        if let Some((name, _)) = self.revisions.get_key_value(name) {
            Target::Revision(name)
        } else if let Some(t) = self.tags.get(name) {
            Target::Tag {
                tag: &t.name,
                revision: &t.revision,
            }
        } else {
            Target::Unknown
        }
    }

    /// The revision a name resolves to, if any.
    pub fn revision_of(&self, name: &str) -> Option<&Revision> {
        match self.resolve(name) {
            Target::Revision(r) | Target::Tag { revision: r, .. } => self.revisions.get(r),
            Target::Unknown => None,
        }
    }
}

impl ControlPlane {
    /// The tags a revision's istiod counts as its own: its name, the tags whose webhook or
    /// Service points at it (pkg/revisions/tag_watcher.go GetMyTags).
    pub fn names_of(&self, revision: &str) -> Vec<&str> {
        let mut out = vec![];
        if let Some((name, _)) = self.revisions.get_key_value(revision) {
            out.push(name.as_str());
        }
        out.extend(
            self.tags
                .values()
                .filter(|t| t.revision == revision)
                .map(|t| t.name.as_str()),
        );
        out
    }

    /// The revisions whose istiod renders a Gateway API gateway or waypoint, given the
    /// Gateway's `istio.io/rev` label, else its namespace's (`selected`): those that count
    /// the name as theirs; for no name, those holding the `default` tag, else the default
    /// revision when no `default` tag exists (pkg/revisions/tag_watcher.go IsMine, called by
    /// pilot/pkg/config/kube/gateway/deploymentcontroller.go Reconcile). Only revisions
    /// with an istiod run a controller (all of them when no istiod was read).
    pub fn gateway_controllers(&self, selected: Option<&str>) -> Vec<&str> {
        let any_istiod = self.revisions.values().any(|r| r.istiod.is_some());
        let default_tag = self.tags.get(labels::DEFAULT_TAG).map(|t| t.revision.as_str());
        self.revisions
            .values()
            .filter(|r| !any_istiod || r.istiod.is_some())
            .filter(|r| {
                let mine = self.names_of(&r.name);
                match selected {
                    Some(name) => mine.contains(&name),
                    None => {
                        mine.contains(&labels::DEFAULT_TAG)
                            || (default_tag.is_none() && self.default_revision.as_deref() == Some(r.name.as_str()))
                    }
                }
            })
            .map(|r| r.name.as_str())
            .collect()
    }
}

fn is_istiod(d: &Deployment) -> bool {
    label(&d.metadata.labels, "app") == Some("istiod")
}

/// `istio-sidecar-injector` → default, `istio-sidecar-injector-1-27` → 1-27.
fn injector_configmap_revision(name: &str) -> Option<&str> {
    if name == "istio-sidecar-injector" {
        Some(labels::DEFAULT_REVISION)
    } else {
        name.strip_prefix("istio-sidecar-injector-")
    }
}

/// Istio names every injector webhook `<prefix>sidecar-injector.istio.io` (`rev.namespace.`,
/// `rev.object.`, `namespace.`, `object.`, `auto.`: mutatingwebhook.yaml, revision-tags-mwc.yaml).
fn is_injector_webhook(w: &MutatingWebhook) -> bool {
    w.name.ends_with("sidecar-injector.istio.io")
}

fn istiod(d: &Deployment) -> Istiod {
    let image = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| {
            s.containers
                .iter()
                .find(|c| c.name == "discovery")
                .or(s.containers.first())
        })
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let current = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    Istiod {
        namespace: d.metadata.namespace.clone().unwrap_or_default(),
        name: d.metadata.name.clone().unwrap_or_default(),
        version: ImageRef::parse(&image).version,
        image,
        replicas: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        ready_replicas: status.ready_replicas.unwrap_or(0),
        // An old status says nothing about the current spec.
        updated_replicas: if current {
            status.updated_replicas.unwrap_or(0)
        } else {
            0
        },
    }
}

pub(crate) fn label<'a>(map: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    map.as_ref().and_then(|m| m.get(key)).map(String::as_str)
}

/// Why a revision cannot inject a new pod now. Its injector webhooks fail closed
/// (`failurePolicy: Fail`, istio-discovery/templates/mutatingwebhook.yaml), so every pod a
/// restart creates would be rejected.
#[derive(Debug, Clone, PartialEq)]
pub enum InjectProblem {
    /// No istiod Deployment (`app=istiod`, `istio.io/rev=<revision>`).
    NoIstiod,
    /// Its istiod Deployment is scaled to 0.
    ScaledToZero { istiod: Istiod },
    /// None of its istiod replicas is ready.
    NotReady { istiod: Istiod },
    /// No injector ConfigMap: istiod then serves no injection at all ("Skipping sidecar
    /// injector, template not found", pilot/pkg/bootstrap/sidecarinjector.go).
    NoInjectorConfigMap { configmap: String },
}

impl ControlPlane {
    /// Everything that stops `revision` from injecting a new pod now; empty when it can.
    pub fn inject_problems(&self, revision: &str) -> Vec<InjectProblem> {
        let r = self.revisions.get(revision);
        let mut out = vec![];
        match r.and_then(|r| r.istiod.as_ref()) {
            None => out.push(InjectProblem::NoIstiod),
            Some(i) if i.replicas == 0 => out.push(InjectProblem::ScaledToZero { istiod: i.clone() }),
            Some(i) if i.ready_replicas == 0 => out.push(InjectProblem::NotReady { istiod: i.clone() }),
            Some(_) => {}
        }
        if r.and_then(|r| r.injector.as_ref()).is_none() {
            out.push(InjectProblem::NoInjectorConfigMap {
                configmap: injector_configmap(revision),
            });
        }
        out
    }
}

/// The injector ConfigMap istiod of a revision injects from: `istio-sidecar-injector`, or
/// `istio-sidecar-injector-<rev>` (istio-discovery/templates/istiod-injector-configmap.yaml,
/// pilot/pkg/bootstrap/sidecarinjector.go).
pub fn injector_configmap(revision: &str) -> String {
    if revision == labels::DEFAULT_REVISION {
        "istio-sidecar-injector".to_string()
    } else {
        format!("istio-sidecar-injector-{revision}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injector(hub: &str, tag: &str, image: Option<&str>, variant: Option<&str>) -> InjectorConfig {
        InjectorConfig {
            namespace: "istio-system".into(),
            configmap: "istio-sidecar-injector".into(),
            hub: Some(hub.into()),
            tag: Some(tag.into()),
            proxy_image: image.map(String::from),
            variant: variant.map(String::from),
            policy: None,
        }
    }

    #[test]
    fn injected_image_as_proxy_image_builds_it() {
        let image = |i: InjectorConfig| i.injected_image().unwrap();
        assert_eq!(
            image(injector("docker.io/istio", "1.28.3", Some("proxyv2"), Some(""))),
            "docker.io/istio/proxyv2:1.28.3"
        );
        assert_eq!(
            image(injector("docker.io/istio", "1.28.3", None, None)),
            "docker.io/istio/proxyv2:1.28.3",
            "global.proxy.image defaults to proxyv2"
        );
        assert_eq!(
            image(injector(
                "gcr.io/istio-release",
                "1.28.3",
                Some("proxyv2"),
                Some("distroless")
            )),
            "gcr.io/istio-release/proxyv2:1.28.3-distroless"
        );
        // A variant already in the tag is replaced; `default` means none (updateImageTypeIfPresent).
        assert_eq!(
            image(injector("h", "1.28.3-debug", None, Some("distroless"))),
            "h/proxyv2:1.28.3-distroless"
        );
        assert_eq!(
            image(injector("h", "1.28.3-debug", None, Some("default"))),
            "h/proxyv2:1.28.3"
        );
        // With a `/`, global.proxy.image is the whole image (files/injection-template.yaml).
        assert_eq!(
            image(injector(
                "docker.io/istio",
                "1.28.3",
                Some("registry.example/fips/proxy:1.28.3-fips"),
                None
            )),
            "registry.example/fips/proxy:1.28.3-fips"
        );
        assert_eq!(injector("", "1.28.3", None, None).injected_image(), None);
    }
}
