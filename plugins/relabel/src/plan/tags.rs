//! `relabel --tag <tag>`: where the tag should point and the objects that say so, checked
//! and built as `istioctl tag set <tag> --revision <rev> --overwrite` does (`Generate` in
//! `istioctl/pkg/tag/generate.go`); `--remove` as `istioctl tag remove` (`removeTag` in
//! `istioctl/pkg/tag/tag.go`); `--undo` puts back what the last relabel of the tag changed.

mod conflicts;
mod remember;
mod writes;

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use serde::Serialize;
use shared::model::{ControlPlane, labels};
use shared::tag;

pub(crate) use self::writes::{Object, Write, writes};
use super::{NamespaceState, check_target};
use crate::read::TagCluster;
use remember::RememberedTag;

/// What the user asked of the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagRequest<'a> {
    /// `--to`: point it there, creating it if needed.
    To(&'a str),
    /// `--undo`: put back what the last relabel of the tag changed.
    Undo,
    /// `--remove`: delete it.
    Remove,
}

/// What becomes of the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum TagResult {
    Moved,
    Unchanged,
    Created,
    Removed,
}

/// What is done to one object of a tag change (`Failed` once tried).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum ObjectAction {
    Created,
    Replaced,
    Deleted,
    /// The unrevisioned injector's webhooks now match nothing.
    Deactivated,
    /// Put back as the last relabel found it.
    Restored,
    Failed,
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
    /// `None` when the tag is removed.
    pub(crate) to: Option<String>,
    pub(crate) result: TagResult,
    /// The namespaces that move with the tag (or keep following it, or lose it).
    pub(crate) following: Vec<Following>,
    /// What is written when the tag points somewhere new.
    pub(crate) change: Option<TagChange<'a>>,
    /// What is deleted when the tag goes.
    pub(crate) removal: Option<Removal<'a>>,
}

/// The unrevisioned injector as a `default` change leaves it.
#[derive(Debug)]
pub(crate) struct Unrevisioned {
    pub(crate) config: MutatingWebhookConfiguration,
    /// [`ObjectAction::Deactivated`] or [`ObjectAction::Restored`].
    pub(crate) action: ObjectAction,
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
    /// The tag's Service.
    pub(crate) service: String,
    /// The cluster-wide validator, which only the `default` tag carries.
    pub(crate) validator: Option<&'static str>,
    /// `default` only: the unrevisioned injector, deactivated by a move, restored by its undo.
    pub(crate) unrevisioned: Option<Unrevisioned>,
    /// An undo: no conflict check, and the Service and validator go back to what they
    /// remember rather than being rendered again.
    pub(crate) undo: bool,
}

/// What `istioctl tag remove` deletes, or the undo of a tag's creation.
#[derive(Debug)]
pub(crate) struct Removal<'a> {
    /// Every configuration labelled `istio.io/tag=<tag>`.
    pub(crate) configs: Vec<&'a MutatingWebhookConfiguration>,
    /// Where the tag's Services are.
    pub(crate) istio_namespace: String,
    /// Undo of the creation of `default`: the validator goes back to what it remembers.
    pub(crate) validator: Option<&'static str>,
    /// Undo of the creation of `default`: the injector it deactivated, restored.
    pub(crate) unrevisioned: Option<Unrevisioned>,
}

impl TagPlan<'_> {
    /// Where to read the tag's Services, and the validator to read: `None` when nothing
    /// is written.
    pub(crate) fn companions(&self) -> Option<(&str, Option<&'static str>)> {
        match (&self.change, &self.removal) {
            (Some(c), _) => Some((&c.istio_namespace, c.validator)),
            (None, Some(r)) => Some((&r.istio_namespace, r.validator)),
            (None, None) => None,
        }
    }
}

/// The plan for `tag`, or `None` when `--undo` finds nothing remembered to go back to.
///
/// # Errors
///
/// [`shared::Error::Refused`] when the tag cannot be changed so: undo of a tag that does
/// not exist or whose annotation is unreadable, a tag named like a revision, a target that
/// is a tag or has no ready istiod, no single injector configuration to copy, several
/// unrevisioned injectors, or namespaces that would lose their injector (unless `force`).
pub(crate) fn plan<'a>(
    tag_name: &str,
    request: TagRequest<'_>,
    cluster: &'a TagCluster,
    force: bool,
) -> shared::Result<Option<TagPlan<'a>>> {
    let existing = tag::tag_webhook(&cluster.webhooks, tag_name);
    match request {
        TagRequest::To(to) => set(tag_name, to, existing, None, cluster, force).map(Some),
        TagRequest::Remove => remove(tag_name, None, cluster, force).map(Some),
        TagRequest::Undo => match remembered(tag_name, existing, &cluster.control_plane)? {
            None => Ok(None),
            Some(r) => match &r.revision {
                Some(to) => set(tag_name, to, existing, Some(&r), cluster, force).map(Some),
                None => remove(tag_name, Some(&r), cluster, force).map(Some),
            },
        },
    }
}

/// What the tag's [`super::PREVIOUS`] annotation remembers for `--undo` (`None`: nothing).
fn remembered(
    tag_name: &str,
    existing: Option<&MutatingWebhookConfiguration>,
    cp: &ControlPlane,
) -> shared::Result<Option<RememberedTag>> {
    let Some(e) = existing else {
        return Err(shared::Error::Usage(format!(
            "revision tag {tag_name} does not exist, so there is nothing to undo (tags: {}); see `kubectl mesh revisions`",
            shared::error::known(cp.tags.keys().map(String::as_str))
        )));
    };
    match RememberedTag::of(e) {
        None => Ok(None),
        Some(Ok(r)) => Ok(Some(r)),
        Some(Err(err)) => Err(shared::Error::Refused(format!(
            "the {} annotation of {} cannot be read ({err}); fix or remove it by hand",
            super::PREVIOUS,
            e.metadata.name.as_deref().unwrap_or("?")
        ))),
    }
}

/// Point the tag at `to` (`undo`: as the last relabel found it).
fn set<'a>(
    tag_name: &str,
    to: &str,
    existing: Option<&'a MutatingWebhookConfiguration>,
    undo: Option<&RememberedTag>,
    cluster: &'a TagCluster,
    force: bool,
) -> shared::Result<TagPlan<'a>> {
    let from = existing.and_then(tag::tag_revision).map(String::from);
    let injector = preflight(tag_name, to, &cluster.control_plane, &cluster.webhooks, force)?;
    let unrevisioned = match undo {
        Some(r) => reactivation(r, &cluster.webhooks)?,
        None if tag_name == labels::DEFAULT_TAG => deactivation(&cluster.webhooks)?,
        None => None,
    };
    let result = match existing {
        _ if undo.is_none() && from.as_deref() == Some(to) && unrevisioned.is_none() => TagResult::Unchanged,
        None => TagResult::Created,
        Some(_) => TagResult::Moved,
    };
    let change = match result {
        TagResult::Unchanged => None,
        _ => Some(change(
            tag_name,
            to,
            from.as_deref(),
            undo.is_some(),
            injector,
            existing,
            unrevisioned,
        )?),
    };
    Ok(TagPlan {
        tag: tag_name.to_string(),
        from,
        to: Some(to.to_string()),
        result,
        following: following(tag_name, &cluster.namespaces),
        change,
        removal: None,
    })
}

/// Delete the tag (`undo`: the last relabel created it), refusing while namespaces would
/// lose their injector, unless `force`.
fn remove<'a>(
    tag_name: &str,
    undo: Option<&RememberedTag>,
    cluster: &'a TagCluster,
    force: bool,
) -> shared::Result<TagPlan<'a>> {
    let configs: Vec<_> = tag::tag_webhooks(&cluster.webhooks, tag_name).collect();
    let unrevisioned = match undo {
        Some(r) => reactivation(r, &cluster.webhooks)?,
        None => None,
    };
    let following = following(tag_name, &cluster.namespaces);
    if !force && !following.is_empty() && unrevisioned.is_none() {
        let names: Vec<String> = following
            .iter()
            .map(|f| format!("{} ({})", f.namespace, f.via))
            .collect();
        return Err(shared::Error::Refused(format!(
            "refusing to remove revision tag {tag_name}: namespaces still use it and would get no sidecar: {}; \
             relabel them first (kubectl mesh relabel --to REVISION -n NAMESPACE), or pass --force",
            names.join(", ")
        )));
    }
    let default_undo = undo.is_some() && tag_name == labels::DEFAULT_TAG;
    Ok(TagPlan {
        tag: tag_name.to_string(),
        from: configs.first().and_then(|c| tag::tag_revision(c)).map(String::from),
        to: None,
        result: TagResult::Removed,
        following,
        change: None,
        removal: Some(Removal {
            istio_namespace: configs
                .first()
                .map_or_else(|| "istio-system".to_string(), |c| tag::istio_namespace(c)),
            configs,
            validator: default_undo.then_some(tag::DEFAULT_VALIDATOR),
            unrevisioned,
        }),
    })
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
    // `default` names both a revision and a tag on an unrevisioned install: the revision.
    if let Some(t) = cp.tags.get(to).filter(|_| !cp.revisions.contains_key(to)) {
        return Err(shared::Error::Usage(format!(
            "{to} is a tag (pointing to revision {}); a tag points to a revision: use --to {}",
            t.revision, t.revision
        )));
    }
    let refuse =
        |problem: String| shared::Error::Refused(format!("refusing to move tag {tag_name} to {to}: {problem}"));
    check_target(to, cp, force).map_err(refuse)?;
    tag::revision_injector(webhooks, to).map_err(refuse)
}

/// `istioctl tag set default` deactivates the unrevisioned injector
/// (`DeactivateIstioInjectionWebhook` in `istioctl/pkg/tag/util.go`), which would otherwise
/// still inject `istio-injection=enabled` namespaces; nothing to do when there is none or
/// it is deactivated already. istioctl refuses when there are several; so do we.
fn deactivation(webhooks: &[MutatingWebhookConfiguration]) -> shared::Result<Option<Unrevisioned>> {
    match tag::unrevisioned_injectors(webhooks).as_slice() {
        [] => Ok(None),
        [one] if tag::is_deactivated(one) => Ok(None),
        [one] => Ok(Some(Unrevisioned {
            config: remember::deactivate(one)?,
            action: ObjectAction::Deactivated,
        })),
        many => Err(shared::Error::Refused(format!(
            "refusing to move tag default: istioctl expects a single webhook configuration for the default revision \
             to deactivate, found {}",
            many.iter()
                .filter_map(|w| w.metadata.name.as_deref())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The injector the last relabel deactivated, with its selectors back (`None`: it did not
/// deactivate one, or that configuration is gone).
fn reactivation(r: &RememberedTag, webhooks: &[MutatingWebhookConfiguration]) -> shared::Result<Option<Unrevisioned>> {
    let Some(name) = &r.deactivated else { return Ok(None) };
    let Some(config) = webhooks.iter().find(|w| w.metadata.name.as_ref() == Some(name)) else {
        return Ok(None);
    };
    let config = remember::reactivate(config).map_err(|e| shared::Error::Refused(format!("cannot undo: {e}")))?;
    Ok(Some(Unrevisioned {
        config,
        action: ObjectAction::Restored,
    }))
}

/// The tag's configuration pointing at `to`, remembering what this move did for `--undo`
/// (and forgetting it after an undo).
fn change<'a>(
    tag_name: &str,
    to: &str,
    from: Option<&str>,
    undo: bool,
    injector: &'a MutatingWebhookConfiguration,
    existing: Option<&MutatingWebhookConfiguration>,
    unrevisioned: Option<Unrevisioned>,
) -> shared::Result<TagChange<'a>> {
    let mut webhook = tag::tag_webhook_configuration(tag_name, to, injector, existing)
        .map_err(|e| shared::Error::Refused(format!("refusing to move tag {tag_name}: {e}")))?;
    if undo {
        remember::forget(&mut webhook.metadata);
    } else {
        let deactivated = unrevisioned
            .as_ref()
            .filter(|u| u.action == ObjectAction::Deactivated)
            .and_then(|u| u.config.metadata.name.clone());
        RememberedTag {
            revision: from.map(String::from),
            created: existing.is_none(),
            deactivated,
        }
        .write(&mut webhook.metadata)?;
    }
    Ok(TagChange {
        webhook,
        create: existing.is_none(),
        injector,
        istio_namespace: tag::istio_namespace(injector),
        service: tag::service_name(tag_name),
        validator: (tag_name == labels::DEFAULT_TAG).then_some(tag::DEFAULT_VALIDATOR),
        unrevisioned,
        undo,
    })
}

/// The namespaces the tag's webhooks select (`revision-tags-mwc.yaml`): `istio.io/rev=<tag>`
/// without `istio-injection`, and for `default` also `istio-injection=enabled`; with the
/// label through which they do.
pub(crate) fn namespaces_following(tag_name: &str, states: &[NamespaceState]) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for ns in states {
        let via = match (ns.labels.injection.as_deref(), ns.labels.rev.as_deref()) {
            (Some("enabled"), _) if tag_name == labels::DEFAULT_TAG => "istio-injection=enabled".to_string(),
            (None, Some(rev)) if rev == tag_name => format!("istio.io/rev={tag_name}"),
            _ => continue,
        };
        out.insert(ns.name.clone(), via);
    }
    out.into_iter().collect()
}

fn following(tag_name: &str, states: &[NamespaceState]) -> Vec<Following> {
    namespaces_following(tag_name, states)
        .into_iter()
        .map(|(namespace, via)| Following { namespace, via })
        .collect()
}

#[cfg(test)]
mod istioctl;

#[cfg(test)]
mod tests {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::Service;
    use shared::model::ControlPlane;

    use super::super::PREVIOUS;
    use super::super::fixtures::{istiod, ns, tag};
    use super::*;
    use crate::read::Companions;

    /// A revision's own injector configuration, as an install makes it.
    fn injector(rev: &str) -> MutatingWebhookConfiguration {
        serde_saphyr::from_str(&format!(
            "metadata: {{name: istio-sidecar-injector-{rev}, labels: {{app: sidecar-injector, istio.io/rev: \"{rev}\"}}}}\n\
             webhooks:\n- {{name: rev.namespace.sidecar-injector.istio.io, admissionReviewVersions: [v1], sideEffects: None, \
             clientConfig: {{service: {{name: istiod-{rev}, namespace: istio-system, path: /inject}}}}, \
             namespaceSelector: {{matchExpressions: [{{key: istio.io/rev, operator: In, values: [\"{rev}\"]}}, \
             {{key: istio-injection, operator: DoesNotExist}}]}}}}\n"
        ))
        .unwrap()
    }

    /// The Service of a revision's istiod, or of a tag.
    fn service(name: &str, rev: &str, tag: Option<&str>) -> Service {
        let tag = tag.map(|t| format!(", istio.io/tag: {t}")).unwrap_or_default();
        serde_saphyr::from_str(&format!(
            "metadata: {{name: {name}, namespace: istio-system, labels: {{app: istiod, istio.io/rev: \"{rev}\"{tag}}}}}\n\
             spec: {{selector: {{app: istiod, istio.io/rev: \"{rev}\"}}}}\n"
        ))
        .unwrap()
    }

    fn istiod_services() -> Vec<Service> {
        vec![
            service("istiod-1-27", "1-27", None),
            service("istiod-1-28", "1-28", None),
        ]
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

    /// A planning problem: refused (exit 4), or a usage error (exit 2) when the words
    /// given cannot name what was meant; never an API error.
    fn refused<T: std::fmt::Debug>(r: shared::Result<T>) -> String {
        match r {
            Err(shared::Error::Refused(m) | shared::Error::Usage(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn moving_default_remembers_where_it_pointed() {
        let c = cluster(tag("default", "1-27"));
        let p = plan("default", TagRequest::To("1-28"), &c, false).unwrap().unwrap();
        assert_eq!((p.from.as_deref(), p.to.as_deref()), (Some("1-27"), Some("1-28")));
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
        assert!(p.companions().is_none(), "nothing is read or written");
    }

    #[test]
    fn a_new_tag_is_created_without_the_default_validator() {
        let c = cluster(tag("default", "1-27"));
        let p = plan("next", TagRequest::To("1-28"), &c, false).unwrap().unwrap();
        assert_eq!(p.from, None);
        assert_eq!(p.result, TagResult::Created);
        let change = p.change.unwrap();
        assert!(change.create);
        assert_eq!(change.webhook.metadata.name.as_deref(), Some("istio-revision-tag-next"));
        assert_eq!(
            change.webhook.metadata.annotations.as_ref().unwrap()[PREVIOUS],
            r#"{"created":true}"#,
            "undo removes what this relabel created"
        );
        assert_eq!(change.validator, None);
        assert!(p.following.is_empty());
    }

    #[test]
    fn undo_points_back_and_forgets() {
        let c = cluster(remembering(tag("default", "1-28"), r#"{"revision":"1-27"}"#));
        let p = plan("default", TagRequest::Undo, &c, false).unwrap().unwrap();
        assert_eq!((p.from.as_deref(), p.to.as_deref()), (Some("1-28"), Some("1-27")));
        let change = p.change.unwrap();
        assert!(
            change
                .webhook
                .metadata
                .annotations
                .is_none_or(|a| !a.contains_key(PREVIOUS))
        );

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
    fn undo_of_a_created_tag_removes_it() {
        let mut c = cluster(tag("default", "1-27"));
        c.webhooks.push(remembering(tag("next", "1-28"), r#"{"created":true}"#));
        let p = plan("next", TagRequest::Undo, &c, false).unwrap().unwrap();
        assert_eq!((p.result, p.to.as_deref()), (TagResult::Removed, None));
        let companions = Companions {
            services: Ok(vec![service("istiod-revision-tag-next", "1-28", Some("next"))]),
            validator: Ok(None),
        };
        let w = writes(&p, &c.webhooks, companions, false).unwrap();
        let done: Vec<_> = w.iter().map(|w| (w.kind, w.name.as_str(), w.action)).collect();
        assert_eq!(
            done,
            [
                (
                    "MutatingWebhookConfiguration",
                    "istio-revision-tag-next",
                    ObjectAction::Deleted
                ),
                ("Service", "istiod-revision-tag-next", ObjectAction::Deleted),
            ]
        );
        // A namespace uses it: it would get no sidecar.
        c.namespaces.push(ns("shop-next", Some("next"), None));
        let m = refused(plan("next", TagRequest::Undo, &c, false));
        assert!(
            m.contains("shop-next (istio.io/rev=next)") && m.contains("--force"),
            "{m}"
        );
        assert!(plan("next", TagRequest::Undo, &c, true).is_ok());
    }

    #[test]
    fn remove_deletes_what_istioctl_tag_remove_deletes() {
        let c = cluster(tag("default", "1-27"));
        let p = plan("canary", TagRequest::Remove, &c, false).unwrap().unwrap();
        assert_eq!((p.result, p.from.as_deref()), (TagResult::Removed, Some("1-28")));
        let companions = || Companions {
            services: Ok([
                istiod_services(),
                vec![service("istiod-revision-tag-canary", "1-28", Some("canary"))],
            ]
            .concat()),
            validator: Ok(None),
        };
        let w = writes(&p, &c.webhooks, companions(), false).unwrap();
        let done: Vec<_> = w.iter().map(|w| (w.name.as_str(), w.action)).collect();
        assert_eq!(
            done,
            [
                ("istio-revision-tag-canary", ObjectAction::Deleted),
                ("istiod-revision-tag-canary", ObjectAction::Deleted)
            ]
        );
        let m = refused(plan("default", TagRequest::Remove, &c, false));
        assert!(
            m.contains("legacy (istio-injection=enabled), shop (istio.io/rev=default)"),
            "{m}"
        );
        let p = plan("nothing", TagRequest::Remove, &c, false).unwrap().unwrap();
        let m = refused(writes(&p, &c.webhooks, companions(), false));
        assert!(
            m.contains("cannot find MutatingWebhookConfiguration or Service for tag"),
            "{m}"
        );
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
    fn default_names_the_unrevisioned_revision_even_beside_the_default_tag() {
        // An unrevisioned istioctl install: revision `default`, and the tag `default` on it.
        let mut unrevisioned = injector("default");
        unrevisioned.metadata.name = Some("istio-sidecar-injector".into());
        let webhooks = vec![unrevisioned, injector("1-28"), tag("default", "default")];
        let c = TagCluster {
            control_plane: ControlPlane::from_objects(&[istiod("default", 1), istiod("1-28", 1)], &[], &webhooks),
            webhooks,
            namespaces: vec![],
        };
        let p = plan("prod", TagRequest::To("default"), &c, false).unwrap().unwrap();
        assert_eq!((p.result, p.to.as_deref()), (TagResult::Created, Some("default")));
    }

    #[test]
    fn a_webhook_conflict_is_refused_unless_forced() {
        // A hand-made configuration that also injects istio-injection=enabled namespaces.
        let mut stray = tag("default", "1-27");
        stray.metadata.name = Some("legacy-injector".into());
        stray.metadata.labels = Some([("istio.io/rev".to_string(), "1-27".to_string())].into());
        let mut c = cluster(tag("default", "1-27"));
        c.webhooks.push(stray);
        let p = plan("default", TagRequest::To("1-28"), &c, false).unwrap().unwrap();
        let companions = || Companions {
            services: Ok(istiod_services()),
            validator: Ok(None),
        };
        let m = refused(writes(&p, &c.webhooks, companions(), false));
        assert!(
            m.contains(
                "Error [IST0139] (MutatingWebhookConfiguration istio-revision-tag-default) Webhook overlaps with others: \
                 [legacy-injector/namespace.sidecar-injector.istio.io]"
            ),
            "{m}"
        );
        assert!(
            writes(&p, &c.webhooks, companions(), true).is_ok(),
            "--force writes anyway"
        );

        // A webhook calling a Service that is not there.
        let c = cluster(tag("default", "1-27"));
        let p = plan("default", TagRequest::To("1-28"), &c, false).unwrap().unwrap();
        let without = Companions {
            services: Ok(vec![service("istiod-1-27", "1-27", None)]),
            validator: Ok(None),
        };
        let m = refused(writes(&p, &c.webhooks, without, false));
        assert!(
            m.contains("Injector refers to a control plane service that does not exist: istio-system/istiod-1-28."),
            "{m}"
        );
        let twice = Companions {
            services: Ok([istiod_services(), vec![service("istiod-1-28-copy", "1-28", None)]].concat()),
            validator: Ok(None),
        };
        let m = refused(writes(&p, &c.webhooks, twice, true));
        assert!(
            m.contains("found multiple canonical services with revision 1-28"),
            "{m}"
        );
    }

    #[test]
    fn the_webhook_is_written_first_then_what_exists() {
        let c = cluster(tag("default", "1-27"));
        let p = plan("default", TagRequest::To("1-28"), &c, false).unwrap().unwrap();
        let svc: Service = serde_saphyr::from_str(
            "metadata: {name: istiod-revision-tag-default, namespace: istio-system}\nspec: {selector: {app: istiod, istio.io/rev: \"1-27\"}}\n",
        )
        .unwrap();
        let companions = Companions {
            services: Ok([istiod_services(), vec![svc]].concat()),
            validator: Err(shared::Error::Forbidden {
                action: "get validatingwebhookconfiguration istiod-default-validator".into(),
                message: "no".into(),
            }),
        };
        let planned = writes(&p, &c.webhooks, companions, false).unwrap();
        let kinds: Vec<_> = planned.iter().map(|w| (w.kind, w.name.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("MutatingWebhookConfiguration", "istio-revision-tag-default"),
                ("Service", "istiod-revision-tag-default"),
                ("ValidatingWebhookConfiguration", "istiod-default-validator"),
            ]
        );
        assert!(matches!(planned[0].object, Ok(Object::Webhook(_))));
        assert_eq!(planned[0].action, ObjectAction::Replaced);
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

        // Neither there: istioctl (1.28) creates both.
        let none = Companions {
            services: Ok(istiod_services()),
            validator: Ok(None),
        };
        let created: Vec<_> = writes(&p, &c.webhooks, none, false)
            .unwrap()
            .into_iter()
            .map(|w| (w.kind, w.action))
            .collect();
        assert_eq!(
            created,
            [
                ("MutatingWebhookConfiguration", ObjectAction::Replaced),
                ("Service", ObjectAction::Created),
                ("ValidatingWebhookConfiguration", ObjectAction::Created),
            ]
        );
    }
}
