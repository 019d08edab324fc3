//! Revisions, tags and the default injector, read from istiod Deployments, injector
//! ConfigMaps and MutatingWebhookConfigurations (istio-facts.md §2–§4).

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use serde::Serialize;

use super::image::ImageRef;
use super::labels;

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

/// What a revision's injector ConfigMap says it injects.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InjectorConfig {
    pub namespace: String,
    pub configmap: String,
    pub hub: Option<String>,
    pub tag: Option<String>,
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
            tags: vec![],
            default: false,
        }
    }

    /// The version proxies of this revision should run: istiod's, else the injector's tag.
    pub fn version(&self) -> Option<&str> {
        self.istiod
            .as_ref()
            .and_then(|i| i.version.as_deref())
            .or_else(|| self.injector.as_ref().and_then(|i| i.tag.as_deref()))
    }

    pub fn ready(&self) -> bool {
        self.istiod.as_ref().is_some_and(Istiod::ready)
    }
}

/// A revision tag: `istio-revision-tag-<tag>` pointing at a revision.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub name: String,
    pub revision: String,
    pub webhook: String,
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
}

impl ControlPlane {
    /// Build the picture from the objects a revision consists of. Objects that are not
    /// Istio's are ignored, so callers may pass wider lists.
    pub fn from_objects(
        deployments: &[Deployment],
        configmaps: &[ConfigMap],
        webhooks: &[MutatingWebhookConfiguration],
    ) -> ControlPlane {
        let mut cp = ControlPlane::default();
        for d in deployments.iter().filter(|d| is_istiod(d)) {
            let rev = label(&d.metadata.labels, labels::REV).unwrap_or(labels::DEFAULT_REVISION);
            let entry = cp
                .revisions
                .entry(rev.to_string())
                .or_insert_with(|| Revision::new(rev));
            entry.istiod = Some(istiod(d));
        }
        for cm in configmaps {
            let name = cm.metadata.name.as_deref().unwrap_or("");
            let Some(rev) = injector_configmap_revision(name) else {
                continue;
            };
            let rev = label(&cm.metadata.labels, labels::REV).unwrap_or(rev);
            let values = cm.data.as_ref().and_then(|d| d.get("values"));
            let parsed: Option<serde_json::Value> = values.and_then(|v| serde_json::from_str(v).ok());
            let global = parsed.as_ref().and_then(|v| v.get("global"));
            let text = |k: &str| global.and_then(|g| g.get(k)).and_then(|v| v.as_str()).map(String::from);
            let entry = cp
                .revisions
                .entry(rev.to_string())
                .or_insert_with(|| Revision::new(rev));
            entry.injector = Some(InjectorConfig {
                namespace: cm.metadata.namespace.clone().unwrap_or_default(),
                configmap: name.to_string(),
                hub: text("hub"),
                tag: text("tag"),
            });
        }
        for mwc in webhooks {
            let name = mwc.metadata.name.as_deref().unwrap_or("");
            let lbls = &mwc.metadata.labels;
            let Some(rev) = label(lbls, labels::REV) else { continue };
            let serves_default = mwc.webhooks.iter().flatten().any(|w| is_default_webhook(&w.name));
            if let Some(tag) = label(lbls, labels::TAG) {
                cp.tags.insert(
                    tag.to_string(),
                    Tag {
                        name: tag.to_string(),
                        revision: rev.to_string(),
                        webhook: name.to_string(),
                    },
                );
                if serves_default {
                    cp.default_revision = Some(rev.to_string());
                }
            } else if name == "istio-sidecar-injector" || name.starts_with("istio-sidecar-injector-") {
                let entry = cp
                    .revisions
                    .entry(rev.to_string())
                    .or_insert_with(|| Revision::new(rev));
                entry.webhook = Some(name.to_string());
                // A revision's own default webhooks lose to a `default` tag (istioctl removes
                // them when it creates the tag); only take them when no tag claims default.
                if serves_default && cp.default_revision.is_none() {
                    cp.default_revision = Some(rev.to_string());
                }
            }
        }
        // A `default` tag wins over a revision's own default webhooks, whatever the order.
        if let Some(t) = cp.tags.get(labels::DEFAULT_TAG) {
            cp.default_revision = Some(t.revision.clone());
        }
        for tag in cp.tags.values() {
            if let Some(r) = cp.revisions.get_mut(&tag.revision) {
                r.tags.push(tag.name.clone());
            }
        }
        if let Some(d) = cp.default_revision.clone()
            && let Some(r) = cp.revisions.get_mut(&d)
        {
            r.default = true;
        }
        cp
    }

    /// Resolve a value of `istio.io/rev`: a revision, or a tag and the revision it points to.
    pub fn resolve<'a>(&'a self, name: &'a str) -> Target<'a> {
        if self.revisions.contains_key(name) {
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

/// The webhooks that serve `istio-injection=enabled` and `sidecar.istio.io/inject=true`
/// (named `namespace.sidecar-injector.istio.io` and `object.sidecar-injector.istio.io`,
/// without the `rev.` prefix of the per-revision ones).
fn is_default_webhook(name: &str) -> bool {
    !name.starts_with("rev.")
        && (name.starts_with("namespace.sidecar-injector") || name.starts_with("object.sidecar-injector"))
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
