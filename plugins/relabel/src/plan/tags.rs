//! `relabel --tag <tag> --to <revision>`: where the tag should point and the objects that say
//! so, checked and built as `istioctl tag set <tag> --revision <rev> --overwrite` does
//! (`Generate` in `istioctl/pkg/tag/generate.go`); `--undo` points it back.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Service;
use serde::{Deserialize, Serialize};
use shared::model::{ControlPlane, labels};
use shared::tag;

use super::{NamespaceState, PREVIOUS, check_target, followed_tag};
use crate::read::{Companions, TagCluster};

/// What the user asked of the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagRequest<'a> {
    To(&'a str),
    Undo,
}

/// What a tag's [`PREVIOUS`] annotation remembers.
#[derive(Debug, Serialize, Deserialize)]
struct RememberedTag {
    revision: String,
}

/// Whether the tag changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum TagResult {
    Moved,
    Unchanged,
}

/// A namespace that follows the tag, and the label through which it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Following {
    pub(crate) namespace: String,
    pub(crate) via: String,
}

/// Where the tag points now and where it will point.
#[derive(Debug)]
pub(crate) struct TagPlan<'a> {
    pub(crate) tag: String,
    pub(crate) from: Option<String>,
    pub(crate) to: String,
    pub(crate) result: TagResult,
    /// The namespaces that move with the tag (or keep following it).
    pub(crate) following: Vec<Following>,
    /// What is written when the tag moves; `None` when it already points there.
    pub(crate) change: Option<TagChange<'a>>,
}

/// The tag's new configuration, and what else a move rewrites.
#[derive(Debug)]
pub(crate) struct TagChange<'a> {
    pub(crate) webhook: MutatingWebhookConfiguration,
    /// Create the configuration (the tag is new) rather than replace it.
    pub(crate) create: bool,
    /// The target revision's own injector configuration.
    pub(crate) injector: &'a MutatingWebhookConfiguration,
    /// Where the target's istiod runs, and the tag's Service with it.
    pub(crate) istio_namespace: String,
    /// The tag's Service, rewritten when the install made one.
    pub(crate) service: String,
    /// The cluster-wide validator, which only the `default` tag carries.
    pub(crate) validator: Option<&'static str>,
}

/// An object of a tag move, built to be sent.
#[derive(Debug)]
pub(crate) enum Object {
    /// The tag's MutatingWebhookConfiguration: created when the tag is new, else replaced.
    Webhook {
        config: Box<MutatingWebhookConfiguration>,
        create: bool,
    },
    Service(Box<Service>),
    Validator(Box<ValidatingWebhookConfiguration>),
}

/// One write of a tag move, in the order they are sent.
#[derive(Debug)]
pub(crate) struct Write {
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    /// The object to send, or why it could not be read.
    pub(crate) object: shared::Result<Object>,
}

/// The plan for `tag`, or `None` when `--undo` finds nothing remembered to go back to.
///
/// # Errors
///
/// [`shared::Error::Refused`] when the tag cannot be moved there: undo of a tag that does
/// not exist or whose annotation is unreadable, a tag named like a revision, a target that
/// is a tag or has no ready istiod, or no single injector configuration to copy.
pub(crate) fn plan<'a>(
    tag_name: &str,
    request: TagRequest<'_>,
    cluster: &'a TagCluster,
    force: bool,
) -> shared::Result<Option<TagPlan<'a>>> {
    let existing = tag::tag_webhook(&cluster.webhooks, tag_name);
    let from = existing.and_then(tag::tag_revision).map(String::from);
    let undo = request == TagRequest::Undo;
    let Some(to) = target(tag_name, request, existing)? else {
        return Ok(None);
    };
    let injector = preflight(tag_name, &to, &cluster.control_plane, &cluster.webhooks, force)?;
    let result = if from.as_deref() == Some(to.as_str()) && !undo {
        TagResult::Unchanged
    } else {
        TagResult::Moved
    };
    let change = match result {
        TagResult::Moved => Some(change(tag_name, &to, from.as_deref(), undo, injector, existing)?),
        TagResult::Unchanged => None,
    };
    let following = namespaces_following(tag_name, &cluster.namespaces, &cluster.control_plane)
        .into_iter()
        .map(|(namespace, via)| Following { namespace, via })
        .collect();
    Ok(Some(TagPlan {
        tag: tag_name.to_string(),
        from,
        to,
        result,
        following,
        change,
    }))
}

/// The revision asked for: `--to`, or the one remembered for `--undo` (`None`: nothing to undo).
fn target(
    tag_name: &str,
    request: TagRequest<'_>,
    existing: Option<&MutatingWebhookConfiguration>,
) -> shared::Result<Option<String>> {
    let TagRequest::To(to) = request else {
        let Some(e) = existing else {
            return Err(shared::Error::Refused(format!(
                "revision tag {tag_name} does not exist; nothing to undo"
            )));
        };
        let remembered = e.metadata.annotations.as_ref().and_then(|a| a.get(PREVIOUS));
        return match remembered.map(|t| serde_json::from_str::<RememberedTag>(t)) {
            Some(Ok(r)) => Ok(Some(r.revision)),
            Some(Err(err)) => Err(shared::Error::Refused(format!(
                "the {PREVIOUS} annotation of {} cannot be read ({err}); fix or remove it by hand",
                e.metadata.name.as_deref().unwrap_or("?")
            ))),
            None => Ok(None),
        };
    };
    Ok(Some(to.to_string()))
}

/// istioctl's checks before it writes: the tag may not shadow a revision, and must point at
/// a revision (not another tag) with one injector configuration to copy. The target must
/// also have a ready istiod, unless `force`. Gives that injector configuration.
fn preflight<'a>(
    tag_name: &str,
    to: &str,
    cp: &ControlPlane,
    webhooks: &'a [MutatingWebhookConfiguration],
    force: bool,
) -> shared::Result<&'a MutatingWebhookConfiguration> {
    if tag_name != labels::DEFAULT_TAG && cp.revisions.contains_key(tag_name) {
        return Err(shared::Error::Refused(format!(
            "a control-plane revision is named {tag_name}; a tag cannot have the same name"
        )));
    }
    if let Some(t) = cp.tags.get(to) {
        return Err(shared::Error::Refused(format!(
            "{to} is a tag (pointing to revision {}); a tag points to a revision: use --to {}",
            t.revision, t.revision
        )));
    }
    let refuse =
        |problem: String| shared::Error::Refused(format!("refusing to move tag {tag_name} to {to}: {problem}"));
    check_target(to, cp, force).map_err(refuse)?;
    tag::revision_injector(webhooks, to).map_err(refuse)
}

/// The tag's configuration pointing at `to`, remembering `from` for `--undo` (and
/// forgetting it after an undo).
fn change<'a>(
    tag_name: &str,
    to: &str,
    from: Option<&str>,
    undo: bool,
    injector: &'a MutatingWebhookConfiguration,
    existing: Option<&MutatingWebhookConfiguration>,
) -> shared::Result<TagChange<'a>> {
    let mut webhook = tag::tag_webhook_configuration(tag_name, to, injector, existing)
        .map_err(|e| shared::Error::Refused(format!("refusing to move tag {tag_name}: {e}")))?;
    let annotations = webhook.metadata.annotations.get_or_insert_with(Default::default);
    match (from, undo) {
        (Some(from), false) => {
            let remembered = RememberedTag {
                revision: from.to_string(),
            };
            let text = serde_json::to_string(&remembered).map_err(anyhow::Error::from)?;
            annotations.insert(PREVIOUS.to_string(), text);
        }
        _ => {
            annotations.remove(PREVIOUS);
        }
    }
    Ok(TagChange {
        webhook,
        create: existing.is_none(),
        injector,
        istio_namespace: tag::istio_namespace(injector),
        service: tag::service_name(tag_name),
        validator: (tag_name == labels::DEFAULT_TAG).then_some(tag::DEFAULT_VALIDATOR),
    })
}

/// The writes of a move, in order: the webhook first (it is what decides injection), then
/// the tag's Service and the `default` validator when they exist.
///
/// # Errors
///
/// [`shared::Error::Refused`] when the validator cannot be pointed at the target's injector.
pub(crate) fn writes(to: &str, change: &TagChange<'_>, companions: Companions) -> shared::Result<Vec<Write>> {
    let mut out = vec![Write {
        kind: "MutatingWebhookConfiguration",
        name: change.webhook.metadata.name.clone().unwrap_or_default(),
        namespace: None,
        object: Ok(Object::Webhook {
            config: Box::new(change.webhook.clone()),
            create: change.create,
        }),
    }];
    let service = |object| Write {
        kind: "Service",
        name: change.service.clone(),
        namespace: Some(change.istio_namespace.clone()),
        object,
    };
    match companions.service {
        Ok(Some(svc)) => out.push(service(Ok(Object::Service(Box::new(tag::tag_service(&svc, to)))))),
        Ok(None) => {}
        Err(e) => out.push(service(Err(e))),
    }
    let Some(validator_name) = change.validator else {
        return Ok(out);
    };
    let validator = |object| Write {
        kind: "ValidatingWebhookConfiguration",
        name: validator_name.to_string(),
        namespace: None,
        object,
    };
    match companions.validator {
        Ok(Some(vwc)) => {
            let new = tag::default_validator(&vwc, to, change.injector).map_err(|e| {
                shared::Error::Refused(format!("refusing to point {validator_name} at revision {to}: {e}"))
            })?;
            out.push(validator(Ok(Object::Validator(Box::new(new)))));
        }
        Ok(None) => {}
        Err(e) => out.push(validator(Err(e))),
    }
    Ok(out)
}

/// Namespaces that follow the tag, for the "these move with the tag" list, with the label
/// through which they do.
pub(crate) fn namespaces_following(
    tag_name: &str,
    states: &[NamespaceState],
    cp: &ControlPlane,
) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for ns in states {
        if let Some((t, _)) = followed_tag(ns, cp)
            && t == tag_name
        {
            let how = if ns.labels.rev.as_deref() == Some(tag_name) && ns.labels.injection.is_none() {
                format!("istio.io/rev={tag_name}")
            } else {
                "istio-injection=enabled".to_string()
            };
            out.insert(ns.name.clone(), how);
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use shared::model::ControlPlane;

    use super::super::fixtures::{istiod, ns, tag};
    use super::*;

    /// A revision's own injector configuration, as an install makes it.
    fn injector(rev: &str) -> MutatingWebhookConfiguration {
        serde_saphyr::from_str(&format!(
            "metadata: {{name: istio-sidecar-injector-{rev}, labels: {{app: sidecar-injector, istio.io/rev: \"{rev}\"}}}}\n\
             webhooks:\n- {{name: rev.namespace.sidecar-injector.istio.io, admissionReviewVersions: [v1], sideEffects: None, \
             clientConfig: {{service: {{name: istiod-{rev}, namespace: istio-system, path: /inject}}}}}}\n"
        ))
        .unwrap()
    }

    /// The canary scenario: injectors of 1-27 and 1-28, `default` on 1-27, `canary` on 1-28,
    /// and a namespace following `default` through istio-injection=enabled.
    fn cluster(default_tag: MutatingWebhookConfiguration) -> TagCluster {
        let webhooks = vec![injector("1-27"), injector("1-28"), default_tag, tag("canary", "1-28")];
        TagCluster {
            control_plane: ControlPlane::from_objects(&[istiod("1-27", 1), istiod("1-28", 1)], &[], &webhooks),
            webhooks,
            namespaces: vec![
                ns("legacy", None, Some("enabled")),
                ns("shop", Some("default"), None),
                ns("other", Some("1-28"), None),
            ],
        }
    }

    fn remembering(mut t: MutatingWebhookConfiguration, annotation: &str) -> MutatingWebhookConfiguration {
        t.metadata.annotations = Some([(PREVIOUS.to_string(), annotation.to_string())].into());
        t
    }

    fn refused(r: shared::Result<Option<TagPlan<'_>>>) -> String {
        match r {
            Err(shared::Error::Refused(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn moving_default_remembers_where_it_pointed() {
        let c = cluster(tag("default", "1-27"));
        let p = plan("default", TagRequest::To("1-28"), &c, false).unwrap().unwrap();
        assert_eq!((p.from.as_deref(), p.to.as_str()), (Some("1-27"), "1-28"));
        assert_eq!(p.result, TagResult::Moved);
        let change = p.change.as_ref().unwrap();
        assert!(!change.create, "the tag exists: replaced");
        let meta = &change.webhook.metadata;
        assert_eq!(meta.name.as_deref(), Some("istio-revision-tag-default"));
        assert_eq!(meta.labels.as_ref().unwrap()["istio.io/rev"], "1-28");
        assert_eq!(meta.annotations.as_ref().unwrap()[PREVIOUS], r#"{"revision":"1-27"}"#);
        assert_eq!(change.service, "istiod-revision-tag-default");
        assert_eq!(change.istio_namespace, "istio-system");
        assert_eq!(change.validator, Some(tag::DEFAULT_VALIDATOR));
        assert_eq!(
            p.following,
            [
                Following {
                    namespace: "legacy".into(),
                    via: "istio-injection=enabled".into()
                },
                Following {
                    namespace: "shop".into(),
                    via: "istio.io/rev=default".into()
                },
            ]
        );
    }

    #[test]
    fn a_tag_already_there_writes_nothing() {
        let c = cluster(tag("default", "1-27"));
        let p = plan("default", TagRequest::To("1-27"), &c, false).unwrap().unwrap();
        assert_eq!(p.result, TagResult::Unchanged);
        assert!(p.change.is_none());
    }

    #[test]
    fn a_new_tag_is_created_without_the_default_validator() {
        let c = cluster(tag("default", "1-27"));
        let p = plan("next", TagRequest::To("1-28"), &c, false).unwrap().unwrap();
        assert_eq!(p.from, None);
        let change = p.change.unwrap();
        assert!(change.create);
        assert_eq!(change.webhook.metadata.name.as_deref(), Some("istio-revision-tag-next"));
        assert_eq!(change.validator, None);
        assert!(p.following.is_empty());
    }

    #[test]
    fn undo_points_back_and_forgets() {
        let c = cluster(remembering(tag("default", "1-28"), r#"{"revision":"1-27"}"#));
        let p = plan("default", TagRequest::Undo, &c, false).unwrap().unwrap();
        assert_eq!((p.from.as_deref(), p.to.as_str()), (Some("1-28"), "1-27"));
        let change = p.change.unwrap();
        assert!(!change.webhook.metadata.annotations.unwrap().contains_key(PREVIOUS));

        let c = cluster(tag("default", "1-27"));
        assert!(
            plan("default", TagRequest::Undo, &c, false).unwrap().is_none(),
            "nothing remembered"
        );
        assert!(refused(plan("gone", TagRequest::Undo, &c, false)).contains("does not exist"));
        let c = cluster(remembering(tag("default", "1-28"), "not json"));
        assert!(refused(plan("default", TagRequest::Undo, &c, false)).contains("cannot be read"));
    }

    #[test]
    fn planning_problems_are_refusals_not_api_errors() {
        let c = cluster(tag("default", "1-27"));
        let m = refused(plan("1-28", TagRequest::To("1-27"), &c, false));
        assert!(m.contains("a control-plane revision is named 1-28"), "{m}");
        let m = refused(plan("default", TagRequest::To("canary"), &c, false));
        assert!(m.contains("canary is a tag (pointing to revision 1-28)"), "{m}");
        let m = refused(plan("default", TagRequest::To("1-30"), &c, false));
        assert!(m.contains("1-30 is neither a revision nor a tag"), "{m}");
        let mut c = cluster(tag("default", "1-27"));
        c.webhooks
            .retain(|w| w.metadata.name.as_deref() != Some("istio-sidecar-injector-1-28"));
        let m = refused(plan("default", TagRequest::To("1-28"), &c, false));
        assert!(m.contains("no MutatingWebhookConfiguration of revision 1-28"), "{m}");
    }

    #[test]
    fn the_webhook_is_written_first_then_what_exists() {
        let c = cluster(tag("default", "1-27"));
        let p = plan("default", TagRequest::To("1-28"), &c, false).unwrap().unwrap();
        let change = p.change.as_ref().unwrap();
        let svc: Service = serde_saphyr::from_str(
            "metadata: {name: istiod-revision-tag-default, namespace: istio-system}\nspec: {selector: {app: istiod, istio.io/rev: \"1-27\"}}\n",
        )
        .unwrap();
        let companions = Companions {
            service: Ok(Some(svc)),
            validator: Err(shared::Error::Forbidden {
                action: "get validatingwebhookconfiguration istiod-default-validator".into(),
                message: "no".into(),
            }),
        };
        let planned = writes(&p.to, change, companions).unwrap();
        let kinds: Vec<_> = planned.iter().map(|w| (w.kind, w.name.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("MutatingWebhookConfiguration", "istio-revision-tag-default"),
                ("Service", "istiod-revision-tag-default"),
                ("ValidatingWebhookConfiguration", "istiod-default-validator"),
            ]
        );
        assert!(matches!(planned[0].object, Ok(Object::Webhook { create: false, .. })));
        let Ok(Object::Service(svc)) = &planned[1].object else {
            panic!("{:?}", planned[1])
        };
        assert_eq!(
            svc.spec.as_ref().unwrap().selector.as_ref().unwrap()["istio.io/rev"],
            "1-28"
        );
        assert!(
            planned[2].object.is_err(),
            "an unreadable validator is reported, not fatal"
        );

        let none = Companions {
            service: Ok(None),
            validator: Ok(None),
        };
        assert_eq!(writes(&p.to, change, none).unwrap().len(), 1);
    }
}
