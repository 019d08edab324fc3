//! The writes of a tag change, in the order they are sent, built from the plan and the
//! objects read for it (the tag's Services, the default validator): what
//! `istioctl tag set` applies, or what `istioctl tag remove` deletes, or what an undo puts
//! back. The first write decides: when it fails, nothing else is sent.

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Service;
use shared::model::labels;
use shared::tag;

use super::remember::{self, Companion, Restore};
use super::{ObjectAction, Removal, TagChange, TagPlan, conflicts};
use crate::read::Companions;

/// An object of a tag change, built to be sent (or, to be deleted, as read).
#[derive(Debug)]
pub(crate) enum Object {
    Webhook(Box<MutatingWebhookConfiguration>),
    Service(Box<Service>),
    Validator(Box<ValidatingWebhookConfiguration>),
}

/// One write of a tag change, in the order they are sent.
#[derive(Debug)]
pub(crate) struct Write {
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    /// What the write does: created, replaced, deleted, deactivated or restored.
    pub(crate) action: ObjectAction,
    /// The object to send, or why it could not be read or built.
    pub(crate) object: shared::Result<Object>,
}

/// Builds a companion as istioctl applies it, from what is there now.
type Render<'a, T> = &'a dyn Fn(Option<&T>) -> shared::Result<T>;

const WEBHOOK: &str = "MutatingWebhookConfiguration";
const SERVICE: &str = "Service";
const VALIDATOR: &str = "ValidatingWebhookConfiguration";

fn webhook_write(config: &MutatingWebhookConfiguration, action: ObjectAction) -> Write {
    Write {
        kind: WEBHOOK,
        name: config.metadata.name.clone().unwrap_or_default(),
        namespace: None,
        action,
        object: Ok(Object::Webhook(Box::new(config.clone()))),
    }
}

/// The writes of `plan`, in order.
///
/// # Errors
///
/// [`shared::Error::Refused`] when istioctl would not write it: IST0139 conflicts (unless
/// `force`), several Services claiming the target revision, a tag to remove that has
/// neither configuration nor Service, a validator that cannot be pointed at the target.
pub(crate) fn writes(
    plan: &TagPlan<'_>,
    webhooks: &[MutatingWebhookConfiguration],
    companions: Companions,
    force: bool,
) -> shared::Result<Vec<Write>> {
    match (&plan.change, &plan.removal) {
        (Some(change), _) => set(plan, change, webhooks, companions, force),
        (None, Some(removal)) => remove(&plan.tag, removal, companions),
        (None, None) => Ok(vec![]),
    }
}

/// The tag's configuration first (it is what decides injection), then the unrevisioned
/// injector, the tag's Service, and for `default` the validator.
fn set(
    plan: &TagPlan<'_>,
    change: &TagChange<'_>,
    webhooks: &[MutatingWebhookConfiguration],
    companions: Companions,
    force: bool,
) -> shared::Result<Vec<Write>> {
    let to = plan.to.as_deref().unwrap_or_default();
    if !change.undo {
        check(plan, change, webhooks, &companions, force)?;
    }
    let action = if change.create {
        ObjectAction::Created
    } else {
        ObjectAction::Replaced
    };
    let mut out = vec![webhook_write(&change.webhook, action)];
    out.extend(change.unrevisioned.iter().map(|u| webhook_write(&u.config, u.action)));
    let (ns, service_name) = (&change.istio_namespace, &change.service);
    let service = companions
        .services
        .map(|all| all.into_iter().find(|s| s.metadata.name.as_ref() == Some(service_name)));
    let render_service =
        |old: Option<&Service>| remember::remember(tag::tag_service(&plan.tag, to, change.injector, old), old);
    out.extend(companion(
        (SERVICE, service_name, Some(ns)),
        service,
        change.undo,
        Some(&render_service),
        Object::Service,
    ));
    let Some(validator_name) = change.validator else {
        return Ok(out);
    };
    let render_validator = |old: Option<&ValidatingWebhookConfiguration>| {
        let new = tag::default_validator(to, change.injector, old)
            .map_err(|e| shared::Error::Refused(format!("refusing to point {validator_name} at revision {to}: {e}")))?;
        remember::remember(new, old)
    };
    let validator = companion(
        (VALIDATOR, validator_name, None),
        companions.validator,
        change.undo,
        Some(&render_validator),
        Object::Validator,
    );
    match validator {
        Some(Write {
            object: Err(shared::Error::Refused(m)),
            ..
        }) => Err(shared::Error::Refused(m)),
        other => {
            out.extend(other);
            Ok(out)
        }
    }
}

/// A Service or validator: rendered as istioctl applies it (created, or replaced remembering
/// what it replaces); on undo, put back as it remembers, or else rendered again as
/// `istioctl tag set` back would (without `render`: left alone). An object that could not
/// be read is reported as failed.
fn companion<T: Companion>(
    (kind, name, namespace): (&'static str, &str, Option<&String>),
    current: shared::Result<Option<T>>,
    undo: bool,
    render: Option<Render<'_, T>>,
    wrap: fn(Box<T>) -> Object,
) -> Option<Write> {
    let write = |action, object: shared::Result<T>| Write {
        kind,
        name: name.to_string(),
        namespace: namespace.cloned(),
        action,
        object: object.map(|o| wrap(Box::new(o))),
    };
    let old = match current {
        Err(e) => return Some(write(ObjectAction::Replaced, Err(e))),
        Ok(old) => old,
    };
    match (old, undo) {
        (None, true) => None,
        (None, false) => render.map(|r| write(ObjectAction::Created, r(None))),
        (Some(old), true) => match remember::restore(&old) {
            Some(Ok(Restore::Delete)) => Some(write(ObjectAction::Deleted, Ok(old))),
            Some(Ok(Restore::Replace(back))) => Some(write(ObjectAction::Restored, Ok(back))),
            Some(Err(e)) => Some(write(ObjectAction::Restored, Err(anyhow::anyhow!(e).into()))),
            None => render.map(|r| write(ObjectAction::Replaced, r(Some(&old)))),
        },
        (Some(old), false) => render.map(|r| write(ObjectAction::Replaced, r(Some(&old)))),
    }
}

/// What `istioctl tag set` checks before it writes: one canonical Service for the revision
/// (`checkControlPlaneExistenceOrDuplicate` in `istioctl/pkg/tag/generate.go`), and no
/// IST0139 on the tag's configuration as the webhooks would be (`analyzeWebhook` in
/// `istioctl/pkg/tag/tag.go`; istioctl asks "Apply anyways?", `force` says yes).
fn check(
    plan: &TagPlan<'_>,
    change: &TagChange<'_>,
    webhooks: &[MutatingWebhookConfiguration],
    companions: &Companions,
    force: bool,
) -> shared::Result<()> {
    let to = plan.to.as_deref().unwrap_or_default();
    // Services that could not be read are reported with the Service's write; the webhooks'
    // overlaps are checked all the same.
    let (services, services_namespace) = match &companions.services {
        Ok(all) => (all.as_slice(), change.istio_namespace.as_str()),
        Err(_) => (&[][..], ""),
    };
    let canonical = services
        .iter()
        .filter(|s| {
            let l = s.metadata.labels.as_ref();
            let get = |k: &str| l.and_then(|l| l.get(k)).map(String::as_str);
            get(labels::REV) == Some(to) && get(labels::TAG).is_none() && get("app") == Some("istiod")
        })
        .count();
    if canonical > 1 {
        return Err(shared::Error::Refused(format!(
            "refusing to move tag {}: found multiple canonical services with revision {to} in namespace {}",
            plan.tag, change.istio_namespace
        )));
    }
    if force {
        return Ok(());
    }
    let name = change.webhook.metadata.name.as_deref().unwrap_or_default();
    let replaced = |w: &MutatingWebhookConfiguration| {
        w.metadata.name.as_deref() == Some(name)
            || change
                .unrevisioned
                .as_ref()
                .is_some_and(|u| w.metadata.name == u.config.metadata.name)
    };
    let mut after: Vec<&MutatingWebhookConfiguration> = webhooks.iter().filter(|w| !replaced(w)).collect();
    after.push(&change.webhook);
    after.extend(change.unrevisioned.as_ref().map(|u| &u.config));
    let found = conflicts::conflicts(&after, name, services, services_namespace);
    if found.is_empty() {
        return Ok(());
    }
    Err(shared::Error::Refused(format!(
        "refusing to move tag {} to {to}: it would conflict (istioctl's webhook analysis):\n  {}\n\
         Fix the webhooks named, or pass --force to write it anyway (as istioctl's \"Apply anyways?\").",
        plan.tag,
        found.join("\n  ")
    )))
}

/// `istioctl tag remove`: the tag's configurations, then its Services. The undo of a
/// creation puts the unrevisioned injector back first (so `istio-injection=enabled`
/// namespaces are never without an injector) and the validator last.
fn remove(tag_name: &str, removal: &Removal<'_>, companions: Companions) -> shared::Result<Vec<Write>> {
    let mut out: Vec<Write> = removal
        .unrevisioned
        .iter()
        .map(|u| webhook_write(&u.config, u.action))
        .collect();
    out.extend(removal.configs.iter().map(|c| webhook_write(c, ObjectAction::Deleted)));
    let ns = Some(removal.istio_namespace.clone());
    match companions.services {
        Ok(all) => out.extend(
            all.into_iter()
                .filter(|s| {
                    s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(labels::TAG))
                        .map(String::as_str)
                        == Some(tag_name)
                })
                .map(|s| Write {
                    kind: SERVICE,
                    name: s.metadata.name.clone().unwrap_or_default(),
                    namespace: ns.clone(),
                    action: ObjectAction::Deleted,
                    object: Ok(Object::Service(Box::new(s))),
                }),
        ),
        Err(e) => out.push(Write {
            kind: SERVICE,
            name: tag::service_name(tag_name),
            namespace: ns,
            action: ObjectAction::Deleted,
            object: Err(e),
        }),
    }
    if removal.configs.is_empty() && !out.iter().any(|w| w.kind == SERVICE) {
        return Err(shared::Error::Refused(format!(
            "cannot remove tag {tag_name}: cannot find MutatingWebhookConfiguration or Service for tag"
        )));
    }
    if let Some(name) = removal.validator {
        out.extend(companion(
            (VALIDATOR, name, None),
            companions.validator,
            true,
            None,
            Object::Validator,
        ));
    }
    Ok(out)
}
