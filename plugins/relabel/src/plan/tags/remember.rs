//! What a tag move remembers in the [`PREVIOUS`] annotation of each object it rewrites, so
//! that `--undo` puts back exactly what was there: on the tag's configuration, where the tag
//! pointed (or that the move created it); on the unrevisioned injector, its webhooks'
//! selectors before `istioctl tag set default` deactivated them; on the tag's Service and
//! the default validator, the fields the move replaced (or that it created them).

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::tag;

use super::super::PREVIOUS;

/// On a tag's configuration: what the last relabel of the tag did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RememberedTag {
    /// The revision the tag pointed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revision: Option<String>,
    /// The relabel created the tag: undo removes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) created: bool,
    /// The unrevisioned injector configuration the relabel deactivated: undo restores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deactivated: Option<String>,
}

impl RememberedTag {
    /// The record on `config`, if any; `Err` when it is not ours to read.
    pub(crate) fn of(config: &MutatingWebhookConfiguration) -> Option<Result<RememberedTag, String>> {
        let text = annotation(&config.metadata)?;
        Some(match serde_json::from_str::<RememberedTag>(text) {
            Ok(r) if r.revision.is_some() != r.created => Ok(r),
            Ok(_) => Err("it names neither a revision nor a creation".into()),
            Err(e) => Err(e.to_string()),
        })
    }

    pub(crate) fn write(&self, meta: &mut ObjectMeta) -> shared::Result<()> {
        let text = serde_json::to_string(self).map_err(anyhow::Error::from)?;
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(PREVIOUS.to_string(), text);
        Ok(())
    }
}

fn annotation(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations.as_ref()?.get(PREVIOUS).map(String::as_str)
}

/// Remove the [`PREVIOUS`] annotation (and an annotation map left empty).
pub(crate) fn forget(meta: &mut ObjectMeta) {
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(PREVIOUS);
        if a.is_empty() {
            meta.annotations = None;
        }
    }
}

/// One webhook's selectors, as they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Selectors {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object_selector: Option<LabelSelector>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RememberedSelectors {
    webhooks: Vec<Selectors>,
}

/// The unrevisioned injector deactivated as `istioctl tag set default` does it
/// (`DeactivateIstioInjectionWebhook` in `istioctl/pkg/tag/util.go`), its webhooks'
/// selectors remembered.
pub(crate) fn deactivate(injector: &MutatingWebhookConfiguration) -> shared::Result<MutatingWebhookConfiguration> {
    let remembered = RememberedSelectors {
        webhooks: injector
            .webhooks
            .iter()
            .flatten()
            .map(|w| Selectors {
                name: w.name.clone(),
                namespace_selector: w.namespace_selector.clone(),
                object_selector: w.object_selector.clone(),
            })
            .collect(),
    };
    let mut out = tag::deactivated(injector);
    let text = serde_json::to_string(&remembered).map_err(anyhow::Error::from)?;
    out.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(PREVIOUS.to_string(), text);
    Ok(out)
}

/// The injector with its webhooks' selectors put back as [`deactivate`] remembered them.
///
/// # Errors
///
/// When it remembers nothing, or nothing readable.
pub(crate) fn reactivate(injector: &MutatingWebhookConfiguration) -> Result<MutatingWebhookConfiguration, String> {
    let name = injector.metadata.name.as_deref().unwrap_or("?");
    let text = annotation(&injector.metadata)
        .ok_or_else(|| format!("{name} has no {PREVIOUS} annotation: its webhooks' selectors cannot be put back"))?;
    let remembered: RememberedSelectors = serde_json::from_str(text)
        .map_err(|e| format!("the {PREVIOUS} annotation of {name} cannot be read ({e}); fix or remove it by hand"))?;
    let mut out = injector.clone();
    for w in out.webhooks.iter_mut().flatten() {
        if let Some(was) = remembered.webhooks.iter().find(|s| s.name == w.name) {
            w.namespace_selector.clone_from(&was.namespace_selector);
            w.object_selector.clone_from(&was.object_selector);
        }
    }
    forget(&mut out.metadata);
    Ok(out)
}

/// An object a tag move rewrites besides the tag's configuration (its Service, the default
/// validator): which fields the move replaces.
pub(crate) trait Companion: Resource + Serialize + DeserializeOwned + Clone {
    /// The top-level fields besides `metadata`.
    const FIELDS: &'static [&'static str];
}

impl Companion for k8s_openapi::api::core::v1::Service {
    const FIELDS: &'static [&'static str] = &["spec"];
}

impl Companion for k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration {
    const FIELDS: &'static [&'static str] = &["webhooks"];
}

/// On a companion: `{"created":true}`, or the labels, annotations and [`Companion::FIELDS`]
/// it had.
#[derive(Debug, Serialize, Deserialize)]
struct RememberedObject {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    created: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<Value>,
}

/// `new` (what the move writes) remembering `old` (what it replaces; `None`: it creates it).
pub(crate) fn remember<T: Companion>(mut new: T, old: Option<&T>) -> shared::Result<T> {
    let remembered = match old {
        None => RememberedObject {
            created: true,
            previous: None,
        },
        Some(old) => {
            let mut meta = old.meta().clone();
            forget(&mut meta);
            let whole = serde_json::to_value(old).map_err(anyhow::Error::from)?;
            let mut previous = json!({"metadata": {"labels": meta.labels, "annotations": meta.annotations}});
            for f in T::FIELDS {
                previous[*f] = whole.get(*f).cloned().unwrap_or(Value::Null);
            }
            RememberedObject {
                created: false,
                previous: Some(previous),
            }
        }
    };
    let text = serde_json::to_string(&remembered).map_err(anyhow::Error::from)?;
    new.meta_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(PREVIOUS.to_string(), text);
    Ok(new)
}

/// What undo does to a companion.
#[derive(Debug)]
pub(crate) enum Restore<T> {
    /// The move created it.
    Delete,
    /// The move replaced these fields: put them back.
    Replace(T),
}

/// What `current` remembers, if anything.
pub(crate) fn restore<T: Companion>(current: &T) -> Option<Result<Restore<T>, String>> {
    let text = annotation(current.meta())?;
    let name = current.meta().name.as_deref().unwrap_or("?");
    let unreadable =
        |e: String| format!("the {PREVIOUS} annotation of {name} cannot be read ({e}); fix or remove it by hand");
    let remembered: RememberedObject = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => return Some(Err(unreadable(e.to_string()))),
    };
    Some(match (remembered.created, remembered.previous) {
        (true, _) => Ok(Restore::Delete),
        (false, Some(previous)) => put_back(current, &previous).map(Restore::Replace).map_err(unreadable),
        (false, None) => Err(unreadable("nothing remembered".into())),
    })
}

fn put_back<T: Companion>(current: &T, previous: &Value) -> Result<T, String> {
    let mut whole = serde_json::to_value(current).map_err(|e| e.to_string())?;
    for key in ["labels", "annotations"] {
        let was = &previous["metadata"][key];
        match whole["metadata"].as_object_mut() {
            Some(meta) if was.is_null() => drop(meta.remove(key)),
            Some(meta) => drop(meta.insert(key.to_string(), was.clone())),
            None => {}
        }
    }
    for f in T::FIELDS {
        whole[*f] = previous.get(*f).cloned().unwrap_or(Value::Null);
    }
    serde_json::from_value(whole).map_err(|e| e.to_string())
}
