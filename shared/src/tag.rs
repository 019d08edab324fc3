//! Revision tags as `istioctl tag set <tag> --revision <rev> --overwrite` writes them
//! (`Generate` in `istioctl/pkg/tag/generate.go`, Istio 1.28): the tag's
//! MutatingWebhookConfiguration rendered from
//! `manifests/charts/istio-control/istio-discovery/templates/revision-tags-mwc.yaml` with
//! the target revision injector's endpoint, labels and annotations; the tag's Service
//! (`revision-tags-svc.yaml`); for `default` the cluster-wide validator
//! (`manifests/charts/default/templates/validatingwebhook.yaml`) and the deactivation of the
//! unrevisioned injector (`DeactivateIstioInjectionWebhook` in `istioctl/pkg/tag/util.go`).
//! Pure: objects in, objects out.
//!
//! istioctl server-side applies what it renders (`ApplyYAMLContents` in
//! `pkg/kube/client.go`, with force): fields it does not render stay as they were. The
//! builders here give the whole object that results, so it can be sent as one conditional
//! replace: the labels and annotations already there, overlaid by istioctl's.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::model::labels;

/// The ValidatingWebhookConfiguration that the `default` tag carries (`vwhBaseTemplateName`
/// in `istioctl/pkg/tag/generate.go`).
pub const DEFAULT_VALIDATOR: &str = "istiod-default-validator";

/// The label of the selector that matches nothing, which `istioctl tag set default` puts on
/// every webhook of the unrevisioned injector (`NeverMatch` in `istioctl/pkg/util/common.go`).
pub const DEACTIVATED: &str = "istio.io/deactivated";
const NEVER_MATCH: &str = "never-match";

/// A tag is user-managed: `generateLabels` drops every label containing this
/// (`operatorNamespace` in `istioctl/pkg/tag/generate.go`), so `istioctl uninstall` leaves it.
const OPERATOR_NAMESPACE: &str = "operator.istio.io";

/// The Helm release name istioctl renders its charts with (`operator/pkg/helm/helm.go`).
const RELEASE: &str = "istio";

/// `istio-revision-tag-<tag>`, with `-<namespace>` when istiod is not in istio-system
/// (`revision-tags-mwc.yaml`).
fn webhook_name(tag: &str, istio_namespace: &str) -> String {
    if istio_namespace == "istio-system" {
        format!("istio-revision-tag-{tag}")
    } else {
        format!("istio-revision-tag-{tag}-{istio_namespace}")
    }
}

/// `istiod-revision-tag-<tag>` (`revision-tags-svc.yaml`).
pub fn service_name(tag: &str) -> String {
    format!("istiod-revision-tag-{tag}")
}

fn label_of<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str)
}

/// The tag's own configuration, labelled `istio.io/tag=<tag>` (`GetWebhooksWithTag` in
/// `istioctl/pkg/tag/util.go`).
pub fn tag_webhook<'a>(
    webhooks: &'a [MutatingWebhookConfiguration],
    tag: &str,
) -> Option<&'a MutatingWebhookConfiguration> {
    tag_webhooks(webhooks, tag).next()
}

/// Every configuration labelled `istio.io/tag=<tag>`: what `istioctl tag remove` deletes
/// (`DeleteTagWebhooks` in `istioctl/pkg/tag/util.go`).
pub fn tag_webhooks<'a, 'b>(
    webhooks: &'a [MutatingWebhookConfiguration],
    tag: &'b str,
) -> impl Iterator<Item = &'a MutatingWebhookConfiguration> + use<'a, 'b> {
    webhooks
        .iter()
        .filter(move |w| label_of(&w.metadata, labels::TAG) == Some(tag))
}

/// The configurations labelled `istio.io/rev=<rev>` without `istio.io/tag`: a revision's
/// own injector (`GetWebhooksWithRevision` in `istioctl/pkg/tag/util.go`).
pub fn revision_webhooks<'a, 'b>(
    webhooks: &'a [MutatingWebhookConfiguration],
    revision: &'b str,
) -> impl Iterator<Item = &'a MutatingWebhookConfiguration> + use<'a, 'b> {
    webhooks.iter().filter(move |w| {
        label_of(&w.metadata, labels::REV) == Some(revision) && label_of(&w.metadata, labels::TAG).is_none()
    })
}

/// The revision's own injector configuration (`istio-sidecar-injector-<rev>`): istioctl's
/// `Generate` refuses when there is none or more than one
/// (`checkControlPlaneExistenceOrDuplicate`); so do we.
pub fn revision_injector<'a>(
    webhooks: &'a [MutatingWebhookConfiguration],
    revision: &str,
) -> Result<&'a MutatingWebhookConfiguration, String> {
    let found: Vec<_> = revision_webhooks(webhooks, revision).collect();
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

/// The revision a tag's configuration points at now (its `istio.io/rev` label;
/// `GetWebhookRevision` in `istioctl/pkg/tag/util.go`).
pub fn tag_revision(existing: &MutatingWebhookConfiguration) -> Option<&str> {
    label_of(&existing.metadata, labels::REV)
}

// ------------------------------------------------------------------ the unrevisioned injector

/// The selector that matches nothing (`NeverMatch` in `istioctl/pkg/util/common.go`).
pub fn never_match() -> LabelSelector {
    LabelSelector {
        match_labels: Some([(DEACTIVATED.to_string(), NEVER_MATCH.to_string())].into()),
        match_expressions: None,
    }
}

/// The configurations `istioctl tag set default` deactivates: the unrevisioned install's
/// injector (`istio.io/rev=default`, no `istio.io/tag`; `DeactivateIstioInjectionWebhook`).
pub fn unrevisioned_injectors(webhooks: &[MutatingWebhookConfiguration]) -> Vec<&MutatingWebhookConfiguration> {
    revision_webhooks(webhooks, labels::DEFAULT_REVISION).collect()
}

/// Whether every webhook of `config` already matches nothing.
pub fn is_deactivated(config: &MutatingWebhookConfiguration) -> bool {
    let never = Some(never_match());
    config
        .webhooks
        .iter()
        .flatten()
        .all(|w| w.namespace_selector == never && w.object_selector == never)
}

/// `config` with every webhook's namespace and object selector replaced by [`never_match`],
/// as `DeactivateIstioInjectionWebhook` (`istioctl/pkg/tag/util.go`) updates it: kept, so
/// that it can be switched back, but matching nothing.
pub fn deactivated(config: &MutatingWebhookConfiguration) -> MutatingWebhookConfiguration {
    let mut out = config.clone();
    for w in out.webhooks.iter_mut().flatten() {
        w.namespace_selector = Some(never_match());
        w.object_selector = Some(never_match());
    }
    out
}

// ------------------------------------------------------------------ rendering

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

/// Labels from literal pairs.
fn label_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

/// `istio.labels` of the charts' `zzz_profile.yaml`, as istioctl renders them (release
/// `istio`, service Helm). The chart version is the one that installed the target revision
/// (its injector's `app.kubernetes.io/version`): a released istioctl renders its own, and
/// the istioctl of that release is the one that matches the revision.
fn chart_labels(chart: &str, version: Option<&str>) -> BTreeMap<String, String> {
    let mut out = label_map(&[
        ("app.kubernetes.io/managed-by", "Helm"),
        ("app.kubernetes.io/instance", RELEASE),
        ("app.kubernetes.io/part-of", "istio"),
    ]);
    if let Some(v) = version {
        out.insert("app.kubernetes.io/version".into(), v.to_string());
        out.insert("helm.sh/chart".into(), format!("{chart}-{v}"));
    }
    out
}

/// `generateLabels` with `UserManaged` (`istioctl/pkg/tag/generate.go`): the template's
/// labels overlaid by the injector's, without any `*operator.istio.io*` label.
fn user_managed(template: BTreeMap<String, String>, injector: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = template;
    out.extend(injector.iter().map(|(k, v)| (k.clone(), v.clone())));
    out.retain(|k, _| !k.contains(OPERATOR_NAMESPACE));
    out
}

/// What the server holds after istioctl's forced apply: `existing` overlaid by `applied`.
fn overlay(
    existing: Option<&BTreeMap<String, String>>,
    applied: BTreeMap<String, String>,
) -> Option<BTreeMap<String, String>> {
    let mut out = existing.cloned().unwrap_or_default();
    out.extend(applied);
    (!out.is_empty()).then_some(out)
}

/// What `tagWebhookConfigFromCanonicalWebhook` takes from the target revision's injector.
struct Canonical<'a> {
    webhook: &'a MutatingWebhook,
    /// Its labels but `app`, and its annotations.
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    /// The revision as rendered: `""` for the unrevisioned `default`.
    revision: &'a str,
    namespace: String,
    version: Option<&'a str>,
}

impl<'a> Canonical<'a> {
    fn of(injector: &'a MutatingWebhookConfiguration, revision: &'a str) -> Result<Self, String> {
        let mut lbls = injector.metadata.labels.clone().unwrap_or_default();
        lbls.remove("app");
        Ok(Canonical {
            webhook: canonical_webhook(injector)?,
            labels: lbls,
            annotations: injector.metadata.annotations.clone().unwrap_or_default(),
            revision: if revision == labels::DEFAULT_REVISION {
                ""
            } else {
                revision
            },
            namespace: istio_namespace(injector),
            version: label_of(&injector.metadata, "app.kubernetes.io/version"),
        })
    }

    /// `{{ .Values.revision | default "default" }}`.
    fn rev_label(&self) -> &str {
        if self.revision.is_empty() {
            labels::DEFAULT_REVISION
        } else {
            self.revision
        }
    }

    /// The metadata as istioctl's apply leaves it over `existing`: the `template` labels of
    /// `chart` overlaid by the injector's, without operator labels; the injector's annotations
    /// (`generateMutatingWebhook`, `generateValidatingWebhook`).
    fn metadata(
        &self,
        name: String,
        template: &[(&str, &str)],
        chart: &str,
        existing: Option<&ObjectMeta>,
    ) -> ObjectMeta {
        let mut lbls = label_map(template);
        lbls.extend(chart_labels(chart, self.version));
        ObjectMeta {
            name: Some(name),
            resource_version: existing.and_then(|m| m.resource_version.clone()),
            labels: overlay(
                existing.and_then(|m| m.labels.as_ref()),
                user_managed(lbls, &self.labels),
            ),
            annotations: overlay(existing.and_then(|m| m.annotations.as_ref()), self.annotations.clone()),
            ..ObjectMeta::default()
        }
    }

    /// The `core` webhook of `revision-tags-mwc.yaml`: the injector's URL, or its Service
    /// name and path (`generateMutatingWebhook`) on port 443; its CA bundle and reinvocation
    /// policy.
    fn core(
        &self,
        prefix: &str,
        ns: Vec<LabelSelectorRequirement>,
        obj: Vec<LabelSelectorRequirement>,
    ) -> MutatingWebhook {
        let base = &self.webhook.client_config;
        let service = match (&base.url, &base.service) {
            (Some(_), _) => None,
            (None, svc) => Some(ServiceReference {
                name: svc.as_ref().map_or_else(|| "istiod".into(), |s| s.name.clone()),
                namespace: self.namespace.clone(),
                path: Some(svc.as_ref().and_then(|s| s.path.clone()).unwrap_or_default()),
                port: Some(443),
            }),
        };
        MutatingWebhook {
            name: format!("{prefix}sidecar-injector.istio.io"),
            client_config: WebhookClientConfig {
                url: base.url.clone(),
                service,
                ca_bundle: base.ca_bundle.clone(),
            },
            side_effects: "None".into(),
            rules: Some(pod_creation()),
            failure_policy: Some("Fail".into()),
            reinvocation_policy: Some(
                self.webhook
                    .reinvocation_policy
                    .clone()
                    .unwrap_or_else(|| "Never".into()),
            ),
            admission_review_versions: strings(&["v1"]),
            namespace_selector: selector(ns),
            object_selector: selector(obj),
            ..MutatingWebhook::default()
        }
    }
}

fn pod_creation() -> Vec<RuleWithOperations> {
    vec![RuleWithOperations {
        operations: Some(strings(&["CREATE"])),
        api_groups: Some(strings(&[""])),
        api_versions: Some(strings(&["v1"])),
        resources: Some(strings(&["pods"])),
        scope: None,
    }]
}

/// Whether the injector has the `auto.` webhook that `enableNamespacesByDefault` renders.
fn injects_by_default(injector: &MutatingWebhookConfiguration) -> bool {
    injector.webhooks.iter().flatten().any(|w| w.name.starts_with("auto."))
}

/// The webhooks of `revision-tags-mwc.yaml`: `rev.namespace.` and `rev.object.` match the
/// tag's name; `default` adds the `istio-injection=enabled` and `sidecar.istio.io/inject=true`
/// webhooks, and `auto.` (every namespace without a label) when `auto_inject`.
fn tag_webhooks_for(tag: &str, c: &Canonical<'_>, auto_inject: bool) -> Vec<MutatingWebhook> {
    let not_opted_out = || requirement(labels::SIDECAR_INJECT, "NotIn", &["false"]);
    let no_labels = || {
        vec![
            requirement(labels::INJECTION, "DoesNotExist", &[]),
            requirement(labels::REV, "DoesNotExist", &[]),
        ]
    };
    let mut out = vec![
        c.core(
            "rev.namespace.",
            vec![
                requirement(labels::REV, "In", &[tag]),
                requirement(labels::INJECTION, "DoesNotExist", &[]),
            ],
            vec![not_opted_out()],
        ),
        c.core(
            "rev.object.",
            vec![
                requirement(labels::REV, "DoesNotExist", &[]),
                requirement(labels::INJECTION, "DoesNotExist", &[]),
            ],
            vec![not_opted_out(), requirement(labels::REV, "In", &[tag])],
        ),
    ];
    if tag != labels::DEFAULT_TAG {
        return out;
    }
    out.push(c.core(
        "namespace.",
        vec![requirement(labels::INJECTION, "In", &["enabled"])],
        vec![not_opted_out()],
    ));
    out.push(c.core(
        "object.",
        no_labels(),
        vec![
            requirement(labels::SIDECAR_INJECT, "In", &["true"]),
            requirement(labels::REV, "DoesNotExist", &[]),
        ],
    ));
    if auto_inject {
        let mut ns = no_labels();
        ns.push(requirement(
            "kubernetes.io/metadata.name",
            "NotIn",
            &["kube-system", "kube-public", "kube-node-lease", "local-path-storage"],
        ));
        out.push(c.core(
            "auto.",
            ns,
            vec![
                requirement(labels::SIDECAR_INJECT, "DoesNotExist", &[]),
                requirement(labels::REV, "DoesNotExist", &[]),
            ],
        ));
    }
    out
}

/// The tag's MutatingWebhookConfiguration pointing at `revision`, as `istioctl tag set`
/// leaves it (`generateMutatingWebhook` in `istioctl/pkg/tag/generate.go`). `existing` (the
/// tag's current configuration) keeps its name, resourceVersion, and the labels and
/// annotations istioctl does not render, so the result can be sent as a conditional
/// replace; without it a new configuration is made. Labels: the template's overlaid by the
/// revision injector's (but `app`), without operator labels; annotations: the injector's.
/// The `auto.` webhook is rendered when the injector has one (`enableNamespacesByDefault`).
pub fn tag_webhook_configuration(
    tag: &str,
    revision: &str,
    injector: &MutatingWebhookConfiguration,
    existing: Option<&MutatingWebhookConfiguration>,
) -> Result<MutatingWebhookConfiguration, String> {
    let c = Canonical::of(injector, revision)?;
    let existing = existing.map(|e| &e.metadata);
    let name = existing
        .and_then(|m| m.name.clone())
        .unwrap_or_else(|| webhook_name(tag, &c.namespace));
    let template = [
        (labels::TAG, tag),
        (labels::REV, c.rev_label()),
        ("app", "sidecar-injector"),
        ("release", RELEASE),
        ("app.kubernetes.io/name", "istiod"),
    ];
    Ok(MutatingWebhookConfiguration {
        metadata: c.metadata(name, &template, "istiod", existing),
        webhooks: Some(tag_webhooks_for(tag, &c, injects_by_default(injector))),
    })
}

/// `istiod-default-validator` calling `revision`'s istiod, as `istioctl tag set default`
/// applies it (`generateValidatingWebhook` and `fixWhConfig` in
/// `istioctl/pkg/tag/generate.go`, template `manifests/charts/default/templates/validatingwebhook.yaml`):
/// service `istiod[-<rev>]` path `/validate`, or the injector's URL with path `/validate`,
/// with the injector's CA bundle; labels as the tag's; `failurePolicy` left as it is (istiod
/// flips it to Fail once ready), `Ignore` on a new one. `existing` is kept as for the tag.
pub fn default_validator(
    revision: &str,
    injector: &MutatingWebhookConfiguration,
    existing: Option<&ValidatingWebhookConfiguration>,
) -> Result<ValidatingWebhookConfiguration, String> {
    let c = Canonical::of(injector, revision)?;
    let base = &c.webhook.client_config;
    let client_config = WebhookClientConfig {
        url: base.url.as_deref().map(validation_url),
        service: base.url.is_none().then(|| ServiceReference {
            name: if c.revision.is_empty() {
                "istiod".into()
            } else {
                format!("istiod-{}", c.revision)
            },
            namespace: c.namespace.clone(),
            path: Some("/validate".into()),
            port: None,
        }),
        ca_bundle: base.ca_bundle.clone(),
    };
    let name = "validation.istio.io";
    let failure_policy = existing
        .and_then(|e| e.webhooks.iter().flatten().find(|w| w.name == name))
        .map_or_else(|| Some("Ignore".to_string()), |w| w.failure_policy.clone());
    let webhook = ValidatingWebhook {
        name: name.into(),
        client_config,
        rules: Some(vec![RuleWithOperations {
            operations: Some(strings(&["CREATE", "UPDATE"])),
            api_groups: Some(strings(&[
                "security.istio.io",
                "networking.istio.io",
                "telemetry.istio.io",
                "extensions.istio.io",
            ])),
            api_versions: Some(strings(&["*"])),
            resources: Some(strings(&["*"])),
            scope: None,
        }]),
        failure_policy,
        side_effects: "None".into(),
        admission_review_versions: strings(&["v1"]),
        object_selector: selector(vec![requirement(labels::REV, "DoesNotExist", &[])]),
        ..ValidatingWebhook::default()
    };
    let template = [
        ("app", "istiod"),
        ("istio", "istiod"),
        (labels::REV, c.rev_label()),
        (labels::TAG, labels::DEFAULT_TAG),
        ("app.kubernetes.io/name", "istiod"),
    ];
    let existing = existing.map(|e| &e.metadata);
    Ok(ValidatingWebhookConfiguration {
        metadata: c.metadata(DEFAULT_VALIDATOR.into(), &template, "istio-default", existing),
        webhooks: Some(vec![webhook]),
    })
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

/// The ports of `revision-tags-svc.yaml`.
fn istiod_ports() -> Vec<ServicePort> {
    let port = |name: &str, port: i32, target: i32| ServicePort {
        name: Some(name.into()),
        port,
        target_port: (port != target).then_some(IntOrString::Int(target)),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    };
    vec![
        port("grpc-xds", 15010, 15010),
        port("https-dns", 15012, 15012),
        port("https-webhook", 443, 15017),
        port("http-monitoring", 15014, 15014),
    ]
}

/// The tag's Service selecting `revision`'s istiod, as `istioctl tag set` (1.28) applies it
/// (`generateTagService` in `istioctl/pkg/tag/generate.go`, template `revision-tags-svc.yaml`
/// rendered with the revision as given, so `istio.io/rev: <rev>` selects istiod): its own
/// labels without operator labels, nothing from the injector. `existing` is kept as for the
/// tag; its other ports stay (they are merged by port, as server-side apply does).
pub fn tag_service(
    tag: &str,
    revision: &str,
    injector: &MutatingWebhookConfiguration,
    existing: Option<&Service>,
) -> Service {
    let version = label_of(&injector.metadata, "app.kubernetes.io/version");
    let mut template = label_map(&[
        (labels::REV, revision),
        (labels::TAG, tag),
        ("app", "istiod"),
        ("istio", "pilot"),
        ("release", RELEASE),
        ("app.kubernetes.io/name", "istiod"),
    ]);
    template.extend(chart_labels("istiod", version));
    let mut out = existing.cloned().unwrap_or_default();
    out.metadata.name = Some(service_name(tag));
    out.metadata.namespace.get_or_insert_with(|| istio_namespace(injector));
    out.metadata.labels = overlay(out.metadata.labels.as_ref(), user_managed(template, &BTreeMap::new()));
    let spec = out.spec.get_or_insert_with(ServiceSpec::default);
    let mut ports = spec.ports.take().unwrap_or_default();
    for p in istiod_ports() {
        let same = |q: &ServicePort| q.port == p.port && q.protocol.as_deref().unwrap_or("TCP") == "TCP";
        match ports.iter_mut().find(|q| same(q)) {
            Some(q) => {
                q.name.clone_from(&p.name);
                q.target_port = p.target_port.or_else(|| q.target_port.take());
            }
            None => ports.push(p),
        }
    }
    spec.ports = Some(ports);
    spec.selector = Some(label_map(&[("app", "istiod"), (labels::REV, revision)]));
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
        let v = default_validator("1-28", &injector("1-28"), Some(&vwc)).unwrap();
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
        let s = tag_service("default", "1-28", &injector("1-28"), Some(&s));
        assert_eq!(s.spec.unwrap().selector.unwrap()["istio.io/rev"], "1-28");
        assert_eq!(
            validation_url("https://istiod.example:15017/inject/cluster/x"),
            "https://istiod.example:15017/validate"
        );
    }

    #[test]
    fn a_new_tag_is_user_managed_without_operator_labels() {
        let mut inj = injector("1-28");
        inj.metadata.annotations = Some([("meta.helm.sh/release-name".to_string(), "istiod-1-28".to_string())].into());
        inj.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("app.kubernetes.io/version".into(), "1.28.3".into());
        let t = tag_webhook_configuration("prod", "1-28", &inj, None).unwrap();
        let l = t.metadata.labels.unwrap();
        assert!(
            l.keys().all(|k| !k.contains("operator.istio.io")),
            "istioctl strips operator labels: {l:?}"
        );
        assert_eq!(l["app.kubernetes.io/instance"], "istio");
        assert_eq!(l["helm.sh/chart"], "istiod-1.28.3");
        assert_eq!(l["release"], "istio");
        assert_eq!(
            t.metadata.annotations.unwrap()["meta.helm.sh/release-name"],
            "istiod-1-28",
            "the injector's annotations are copied"
        );
        let w = &t.webhooks.unwrap()[0];
        let svc = w.client_config.service.as_ref().unwrap();
        assert_eq!((svc.path.as_deref(), svc.port), (Some("/inject"), Some(443)));
        assert_eq!(w.client_config.ca_bundle.as_ref().unwrap().0, b"CA");
        assert_eq!(w.reinvocation_policy.as_deref(), Some("Never"));

        // An existing tag keeps the labels istioctl does not render, as its apply does.
        let mut existing = tag_webhook_configuration("prod", "1-27", &injector("1-27"), None).unwrap();
        existing
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("operator.istio.io/component".into(), "Pilot".into());
        let moved = tag_webhook_configuration("prod", "1-28", &inj, Some(&existing)).unwrap();
        assert_eq!(moved.metadata.labels.unwrap()["operator.istio.io/component"], "Pilot");
    }

    #[test]
    fn the_auto_webhook_follows_the_injector() {
        let mut inj = injector("default");
        let mut auto = inj.webhooks.as_ref().unwrap()[0].clone();
        auto.name = "auto.sidecar-injector.istio.io".into();
        inj.webhooks.as_mut().unwrap().push(auto);
        let t = tag_webhook_configuration("default", "default", &inj, None).unwrap();
        let names: Vec<_> = t.webhooks.unwrap().into_iter().map(|w| w.name).collect();
        assert_eq!(names.last().map(String::as_str), Some("auto.sidecar-injector.istio.io"));
        assert_eq!(
            tag_webhook_configuration("prod", "default", &inj, None)
                .unwrap()
                .webhooks
                .unwrap()
                .len(),
            2,
            "only the default tag carries the default webhooks"
        );
    }

    #[test]
    fn the_unrevisioned_injector_is_deactivated_not_deleted() {
        let mut unrevisioned = injector("default");
        unrevisioned.metadata.name = Some("istio-sidecar-injector".into());
        let tag = existing_default_tag();
        let all = vec![unrevisioned.clone(), tag, injector("1-28")];
        let found = unrevisioned_injectors(&all);
        assert_eq!(found.len(), 1);
        assert!(!is_deactivated(found[0]));
        let off = deactivated(found[0]);
        assert!(is_deactivated(&off));
        assert_eq!(off.metadata, unrevisioned.metadata, "labels and name kept");
        let w = &off.webhooks.as_ref().unwrap()[0];
        assert_eq!(
            w.namespace_selector.as_ref().unwrap().match_labels.as_ref().unwrap()["istio.io/deactivated"],
            "never-match"
        );
        assert_eq!(w.client_config, unrevisioned.webhooks.unwrap()[0].client_config);
    }

    #[test]
    fn a_new_validator_and_service_are_rendered_whole() {
        let v = default_validator("1-28", &injector("1-28"), None).unwrap();
        let w = &v.webhooks.as_ref().unwrap()[0];
        assert_eq!(w.failure_policy.as_deref(), Some("Ignore"));
        let l = v.metadata.labels.unwrap();
        assert_eq!((l["istio.io/tag"].as_str(), l["app"].as_str()), ("default", "istiod"));
        assert!(l.keys().all(|k| !k.contains("operator.istio.io")), "{l:?}");

        let mut failing = default_validator("1-27", &injector("1-27"), None).unwrap();
        failing.webhooks.as_mut().unwrap()[0].failure_policy = Some("Fail".into());
        let v = default_validator("1-28", &injector("1-28"), Some(&failing)).unwrap();
        assert_eq!(
            v.webhooks.unwrap()[0].failure_policy.as_deref(),
            Some("Fail"),
            "istiod's Fail is left as it is"
        );

        let s = tag_service("prod", "1-28", &injector("1-28"), None);
        assert_eq!(s.metadata.name.as_deref(), Some("istiod-revision-tag-prod"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("istio-system"));
        let spec = s.spec.unwrap();
        assert_eq!(spec.ports.unwrap().len(), 4);
        assert_eq!(spec.selector.unwrap()["istio.io/rev"], "1-28");
        let l = s.metadata.labels.unwrap();
        assert_eq!((l["istio.io/tag"].as_str(), l["istio"].as_str()), ("prod", "pilot"));
    }
}
