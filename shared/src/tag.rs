//! Point a revision tag at another revision, the way `istioctl tag set <tag> --revision
//! <rev> --overwrite` does (`Generate` in `istioctl/pkg/tag/generate.go`): the tag's
//! MutatingWebhookConfiguration is rebuilt from the target revision's injector webhook with
//! the selectors of `manifests/charts/istio-control/istio-discovery/templates/revision-tags-mwc.yaml`,
//! the tag's Service (`revision-tags-svc.yaml`, when the install made one) selects the
//! target istiod, and for `default` the cluster-wide validator calls the target istiod.
//! Pure: objects in, objects out.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};

use crate::model::labels;

/// The ValidatingWebhookConfiguration that the `default` tag carries (`vwhBaseTemplateName`
/// in `istioctl/pkg/tag/generate.go`).
pub const DEFAULT_VALIDATOR: &str = "istiod-default-validator";

/// `istio-revision-tag-<tag>`, with `-<namespace>` when istiod is not in istio-system
/// (`revision-tags-mwc.yaml`).
fn webhook_name(tag: &str, istio_namespace: &str) -> String {
    if istio_namespace == "istio-system" {
        format!("istio-revision-tag-{tag}")
    } else {
        format!("istio-revision-tag-{tag}-{istio_namespace}")
    }
}

/// `istiod-revision-tag-<tag>`, made by installs that list the tag in `revisionTags`
/// (`manifests/charts/istio-control/istio-discovery/templates/revision-tags-svc.yaml`).
pub fn service_name(tag: &str) -> String {
    format!("istiod-revision-tag-{tag}")
}

/// The tag's own configuration, labelled `istio.io/tag=<tag>` (`GetWebhooksWithTag` in
/// `istioctl/pkg/tag/util.go`).
pub fn tag_webhook<'a>(
    webhooks: &'a [MutatingWebhookConfiguration],
    tag: &str,
) -> Option<&'a MutatingWebhookConfiguration> {
    webhooks.iter().find(|w| {
        w.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::TAG))
            .map(String::as_str)
            == Some(tag)
    })
}

/// The revision's own injector configuration (`istio-sidecar-injector-<rev>`): the one
/// labelled `istio.io/rev=<rev>` without `istio.io/tag` (`GetWebhooksWithRevision` in
/// `istioctl/pkg/tag/util.go`). istioctl's `Generate` refuses when there is none or more
/// than one; so do we.
pub fn revision_injector<'a>(
    webhooks: &'a [MutatingWebhookConfiguration],
    revision: &str,
) -> Result<&'a MutatingWebhookConfiguration, String> {
    let found: Vec<_> = webhooks
        .iter()
        .filter(|w| {
            let l = w.metadata.labels.as_ref();
            l.and_then(|l| l.get(labels::REV)).map(String::as_str) == Some(revision)
                && l.is_none_or(|l| !l.contains_key(labels::TAG))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "no MutatingWebhookConfiguration of revision {revision} (label istio.io/rev={revision} without istio.io/tag)"
        )),
        many => Err(format!(
            "several MutatingWebhookConfigurations claim revision {revision}: {}",
            many.iter()
                .filter_map(|w| w.metadata.name.as_deref())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The injector webhook a tag's webhooks are copied from: the first `*sidecar-injector.istio.io`
/// (`tagWebhookConfigFromCanonicalWebhook` in `istioctl/pkg/tag/generate.go`).
fn canonical_webhook(injector: &MutatingWebhookConfiguration) -> Result<&MutatingWebhook, String> {
    injector
        .webhooks
        .iter()
        .flatten()
        .find(|w| w.name.ends_with("sidecar-injector.istio.io"))
        .ok_or_else(|| {
            format!(
                "MutatingWebhookConfiguration {} has no sidecar-injector.istio.io webhook",
                injector.metadata.name.as_deref().unwrap_or("?")
            )
        })
}

/// The namespace of the istiod a revision's injector calls (istio-system unless installed elsewhere).
pub fn istio_namespace(injector: &MutatingWebhookConfiguration) -> String {
    injector
        .webhooks
        .iter()
        .flatten()
        .find_map(|w| w.client_config.service.as_ref().map(|s| s.namespace.clone()))
        .unwrap_or_else(|| "istio-system".to_string())
}

fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_string(),
        operator: operator.to_string(),
        values: (!values.is_empty()).then(|| values.iter().map(ToString::to_string).collect()),
    }
}

fn selector(reqs: Vec<LabelSelectorRequirement>) -> Option<LabelSelector> {
    Some(LabelSelector {
        match_expressions: Some(reqs),
        match_labels: None,
    })
}

/// The webhooks of a tag, with the selectors of
/// `manifests/charts/istio-control/istio-discovery/templates/revision-tags-mwc.yaml`:
/// `rev.namespace.` and `rev.object.` match the tag's name; `default` adds the
/// `istio-injection=enabled` and `sidecar.istio.io/inject=true` webhooks.
fn tag_webhooks(tag: &str, base: &MutatingWebhook) -> Vec<MutatingWebhook> {
    let with = |prefix: &str, ns: Vec<LabelSelectorRequirement>, obj: Vec<LabelSelectorRequirement>| {
        let mut w = base.clone();
        w.name = format!("{prefix}sidecar-injector.istio.io");
        w.namespace_selector = selector(ns);
        w.object_selector = selector(obj);
        w
    };
    let not_opted_out = || requirement(labels::SIDECAR_INJECT, "NotIn", &["false"]);
    let mut out = vec![
        with(
            "rev.namespace.",
            vec![
                requirement(labels::REV, "In", &[tag]),
                requirement(labels::INJECTION, "DoesNotExist", &[]),
            ],
            vec![not_opted_out()],
        ),
        with(
            "rev.object.",
            vec![
                requirement(labels::REV, "DoesNotExist", &[]),
                requirement(labels::INJECTION, "DoesNotExist", &[]),
            ],
            vec![not_opted_out(), requirement(labels::REV, "In", &[tag])],
        ),
    ];
    if tag == labels::DEFAULT_TAG {
        out.push(with(
            "namespace.",
            vec![requirement(labels::INJECTION, "In", &["enabled"])],
            vec![not_opted_out()],
        ));
        out.push(with(
            "object.",
            vec![
                requirement(labels::INJECTION, "DoesNotExist", &[]),
                requirement(labels::REV, "DoesNotExist", &[]),
            ],
            vec![
                requirement(labels::SIDECAR_INJECT, "In", &["true"]),
                requirement(labels::REV, "DoesNotExist", &[]),
            ],
        ));
    }
    out
}

/// The tag's MutatingWebhookConfiguration pointing at `revision`. `existing` (the tag's
/// current configuration) keeps its name, resourceVersion, labels and annotations, so the
/// result can be sent as a conditional replace; without it a new configuration is made.
/// Labels are merged as istioctl does (`tagWebhookConfigFromCanonicalWebhook` and
/// `generateLabels` in `istioctl/pkg/tag/generate.go`): the revision injector's labels
/// except `app`, then the tag's own.
pub fn tag_webhook_configuration(
    tag: &str,
    revision: &str,
    injector: &MutatingWebhookConfiguration,
    existing: Option<&MutatingWebhookConfiguration>,
) -> Result<MutatingWebhookConfiguration, String> {
    let base = canonical_webhook(injector)?;
    let mut metadata = match existing {
        Some(e) => ObjectMeta {
            name: e.metadata.name.clone(),
            resource_version: e.metadata.resource_version.clone(),
            labels: e.metadata.labels.clone(),
            annotations: e.metadata.annotations.clone(),
            ..ObjectMeta::default()
        },
        None => ObjectMeta {
            name: Some(webhook_name(tag, &istio_namespace(injector))),
            ..ObjectMeta::default()
        },
    };
    let mut lbls: BTreeMap<String, String> = metadata.labels.take().unwrap_or_default();
    for (k, v) in injector.metadata.labels.iter().flatten() {
        if k != "app" {
            lbls.insert(k.clone(), v.clone());
        }
    }
    lbls.insert(labels::TAG.into(), tag.into());
    lbls.insert(labels::REV.into(), revision.into());
    lbls.insert("app".into(), "sidecar-injector".into());
    metadata.labels = Some(lbls);
    Ok(MutatingWebhookConfiguration {
        metadata,
        webhooks: Some(tag_webhooks(tag, base)),
    })
}

/// The revision a tag's configuration points at now (its `istio.io/rev` label;
/// `GetWebhookRevision` in `istioctl/pkg/tag/util.go`).
pub fn tag_revision(existing: &MutatingWebhookConfiguration) -> Option<&str> {
    existing
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::REV))
        .map(String::as_str)
}

/// `istiod-default-validator` calling `revision`'s istiod (service `istiod-<rev>`, path
/// `/validate`), with the CA bundle of the revision's injector: istioctl takes the endpoint
/// from the mutating webhook too (`Generate` and `fixWhConfig` in
/// `istioctl/pkg/tag/generate.go`).
pub fn default_validator(
    existing: &ValidatingWebhookConfiguration,
    revision: &str,
    injector: &MutatingWebhookConfiguration,
) -> Result<ValidatingWebhookConfiguration, String> {
    let base = canonical_webhook(injector)?;
    let mut out = existing.clone();
    out.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(labels::REV.into(), revision.into());
    for w in out.webhooks.iter_mut().flatten() {
        w.client_config.ca_bundle = base.client_config.ca_bundle.clone();
        match (
            &mut w.client_config.service,
            &base.client_config.service,
            &base.client_config.url,
        ) {
            (Some(svc), Some(target), _) => {
                svc.name = target.name.clone();
                svc.namespace = target.namespace.clone();
            }
            (_, _, Some(url)) => {
                w.client_config.service = None;
                w.client_config.url = Some(validation_url(url));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// istioctl derives the validation URL from the injection URL by replacing the path
/// (`fixWhConfig` in `istioctl/pkg/tag/generate.go`).
fn validation_url(injection_url: &str) -> String {
    match injection_url.find("://").map(|i| i + 3) {
        Some(start) => match injection_url[start..].find('/') {
            Some(p) => format!("{}/validate", &injection_url[..start + p]),
            None => format!("{injection_url}/validate"),
        },
        None => injection_url.to_string(),
    }
}

/// The tag's Service selecting `revision`'s istiod: `istio.io/rev=<rev>`, or `istio: pilot`
/// for the unrevisioned `default` (`revision-tags-svc.yaml`).
pub fn tag_service(existing: &Service, revision: &str) -> Service {
    let mut out = existing.clone();
    out.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(labels::REV.into(), revision.into());
    if let Some(spec) = out.spec.as_mut() {
        let sel = spec.selector.get_or_insert_with(BTreeMap::new);
        if revision == labels::DEFAULT_REVISION {
            sel.remove(labels::REV);
            sel.insert("istio".into(), "pilot".into());
        } else {
            sel.insert(labels::REV.into(), revision.into());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injector(rev: &str) -> MutatingWebhookConfiguration {
        serde_saphyr::from_str(&format!(
            r#"
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: istio-sidecar-injector-{rev}
  labels:
    app: sidecar-injector
    istio.io/rev: "{rev}"
    operator.istio.io/component: Pilot
    install.operator.istio.io/owning-resource: unknown
webhooks:
- name: rev.namespace.sidecar-injector.istio.io
  admissionReviewVersions: [v1]
  clientConfig:
    caBundle: Q0E=
    service: {{name: istiod-{rev}, namespace: istio-system, path: /inject, port: 443}}
  failurePolicy: Fail
  reinvocationPolicy: Never
  sideEffects: None
  rules:
  - {{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}}
  namespaceSelector:
    matchExpressions:
    - {{key: istio.io/rev, operator: In, values: ["{rev}"]}}
    - {{key: istio-injection, operator: DoesNotExist}}
"#
        ))
        .unwrap()
    }

    fn existing_default_tag() -> MutatingWebhookConfiguration {
        let mut t = tag_webhook_configuration("default", "1-27", &injector("1-27"), None).unwrap();
        t.metadata.resource_version = Some("42".into());
        t.metadata.annotations = Some([("keep".to_string(), "me".to_string())].into());
        t
    }

    #[test]
    fn the_injector_is_the_revision_webhook_without_tag() {
        let tag = existing_default_tag();
        let all = vec![tag, injector("1-27"), injector("1-28")];
        assert_eq!(
            revision_injector(&all, "1-28").unwrap().metadata.name.as_deref(),
            Some("istio-sidecar-injector-1-28")
        );
        assert!(
            revision_injector(&all, "1-29")
                .unwrap_err()
                .contains("no MutatingWebhookConfiguration")
        );
    }

    #[test]
    fn the_tag_webhook_is_found_by_its_tag_label() {
        let all = vec![injector("1-27"), existing_default_tag(), injector("1-28")];
        assert_eq!(tag_webhook(&all, "default").and_then(tag_revision), Some("1-27"));
        assert!(tag_webhook(&all, "canary").is_none());
        assert!(tag_webhook(&all, "1-27").is_none(), "a revision is not a tag");
    }

    #[test]
    fn moving_default_calls_the_new_istiod_with_the_tag_selectors() {
        let moved =
            tag_webhook_configuration("default", "1-28", &injector("1-28"), Some(&existing_default_tag())).unwrap();
        assert_eq!(moved.metadata.name.as_deref(), Some("istio-revision-tag-default"));
        assert_eq!(
            moved.metadata.resource_version.as_deref(),
            Some("42"),
            "replace is conditional"
        );
        let l = moved.metadata.labels.as_ref().unwrap();
        assert_eq!(l["istio.io/rev"], "1-28");
        assert_eq!(l["istio.io/tag"], "default");
        assert_eq!(l["app"], "sidecar-injector");
        assert_eq!(moved.metadata.annotations.as_ref().unwrap()["keep"], "me");
        let hooks = moved.webhooks.unwrap();
        let names: Vec<_> = hooks.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rev.namespace.sidecar-injector.istio.io",
                "rev.object.sidecar-injector.istio.io",
                "namespace.sidecar-injector.istio.io",
                "object.sidecar-injector.istio.io"
            ]
        );
        for w in &hooks {
            assert_eq!(w.client_config.service.as_ref().unwrap().name, "istiod-1-28");
        }
        // The tag's own name, never the revision's, selects namespaces.
        let ns = hooks[0]
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .as_ref()
            .unwrap();
        assert_eq!(ns[0].values.as_deref(), Some(&["default".to_string()][..]));
        let enabled = hooks[2]
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .as_ref()
            .unwrap();
        assert_eq!(enabled[0].key, "istio-injection");
    }

    #[test]
    fn other_tags_get_only_the_revision_webhooks() {
        let t = tag_webhook_configuration("canary", "1-28", &injector("1-28"), None).unwrap();
        assert_eq!(t.metadata.name.as_deref(), Some("istio-revision-tag-canary"));
        assert_eq!(t.webhooks.unwrap().len(), 2);
    }

    #[test]
    fn validator_and_service_follow_the_revision() {
        let vwc: ValidatingWebhookConfiguration = serde_saphyr::from_str(
            r#"
metadata: {name: istiod-default-validator, labels: {istio.io/rev: "1-27"}}
webhooks:
- name: validation.istio.io
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig: {service: {name: istiod-1-27, namespace: istio-system, path: /validate}}
"#,
        )
        .unwrap();
        let v = default_validator(&vwc, "1-28", &injector("1-28")).unwrap();
        let svc = v.webhooks.as_ref().unwrap()[0].client_config.service.as_ref().unwrap();
        assert_eq!(
            (svc.name.as_str(), svc.path.as_deref()),
            ("istiod-1-28", Some("/validate"))
        );
        assert_eq!(v.metadata.labels.unwrap()["istio.io/rev"], "1-28");

        let s: Service = serde_saphyr::from_str(
            "metadata: {name: istiod-revision-tag-default, labels: {istio.io/rev: \"1-27\"}}\nspec: {selector: {app: istiod, istio.io/rev: \"1-27\"}}\n",
        )
        .unwrap();
        let s = tag_service(&s, "1-28");
        assert_eq!(s.spec.unwrap().selector.unwrap()["istio.io/rev"], "1-28");
        assert_eq!(
            validation_url("https://istiod.example:15017/inject/cluster/x"),
            "https://istiod.example:15017/validate"
        );
    }
}
