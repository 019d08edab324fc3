//! Webhook configurations that still call the revision's istiod: once it is gone the API
//! server cannot reach them, and those that fail closed reject every request they match.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use shared::model::{ControlPlane, labels};
use shared::tag::DEFAULT_VALIDATOR;

use super::{Item, User};

/// Helm records the release that installed an object in these annotations.
const HELM_RELEASE: &str = "meta.helm.sh/release-name";
const HELM_NAMESPACE: &str = "meta.helm.sh/release-namespace";

/// A Mutating- or ValidatingWebhookConfiguration, as far as prune needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebhookConfig {
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    /// The Services its webhooks call, as (namespace, name).
    pub(crate) services: BTreeSet<(String, String)>,
    /// Some webhook rejects what it matches when its Service does not answer (`failurePolicy`
    /// Fail, the API's default).
    pub(crate) fails_closed: bool,
}

impl WebhookConfig {
    pub(crate) fn mutating(c: &MutatingWebhookConfiguration) -> Self {
        let hooks = c.webhooks.iter().flatten();
        Self::new(
            "MutatingWebhookConfiguration",
            &c.metadata,
            hooks.map(|w| (&w.client_config, w.failure_policy.as_deref())),
        )
    }

    pub(crate) fn validating(c: &ValidatingWebhookConfiguration) -> Self {
        let hooks = c.webhooks.iter().flatten();
        Self::new(
            "ValidatingWebhookConfiguration",
            &c.metadata,
            hooks.map(|w| (&w.client_config, w.failure_policy.as_deref())),
        )
    }

    fn new<'a>(
        kind: &'static str,
        meta: &ObjectMeta,
        hooks: impl Iterator<Item = (&'a WebhookClientConfig, Option<&'a str>)>,
    ) -> Self {
        let mut services = BTreeSet::new();
        let mut fails_closed = false;
        for (client, policy) in hooks {
            if let Some(s) = &client.service {
                services.insert((s.namespace.clone(), s.name.clone()));
            }
            fails_closed |= policy.unwrap_or("Fail") == "Fail";
        }
        WebhookConfig {
            kind,
            name: meta.name.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            annotations: meta.annotations.clone().unwrap_or_default(),
            services,
            fails_closed,
        }
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    fn resource(&self) -> String {
        format!("{}/{}", self.kind.to_lowercase(), self.name)
    }

    /// The Helm release that installed it, and the release's namespace.
    fn helm_release(&self) -> Option<(&str, &str)> {
        let release = self.annotations.get(HELM_RELEASE)?;
        let ns = self
            .annotations
            .get(HELM_NAMESPACE)
            .map_or("istio-system", String::as_str);
        Some((release, ns))
    }

    /// Rejects what it matches without its Service: it says so, or it is a validator that
    /// the revision's istiod switches to `failurePolicy: Fail` once ready (istiod manages
    /// every ValidatingWebhookConfiguration labelled with its revision,
    /// pkg/webhooks/validation/controller/controller.go).
    fn rejects(&self) -> bool {
        self.fails_closed || (self.kind == "ValidatingWebhookConfiguration" && self.labels.contains_key(labels::REV))
    }
}

/// The revision's istiod Service: `istiod-<rev>`, `istiod` for the default revision (the
/// `service` of every webhook in istio-discovery/templates/mutatingwebhook.yaml and
/// validatingwebhookconfiguration.yaml, and of base/templates/
/// defaultrevision-validatingwebhookconfiguration.yaml).
pub(crate) fn istiod_service(revision: &str) -> String {
    if revision == labels::DEFAULT_REVISION {
        "istiod".to_string()
    } else {
        format!("istiod-{revision}")
    }
}

/// Where the revision's istiod runs, when anything of it says.
fn istiod_namespace<'a>(revision: &str, cp: &'a ControlPlane) -> Option<&'a str> {
    let rev = cp.revisions.get(revision)?;
    rev.istiod
        .as_ref()
        .map(|i| i.namespace.as_str())
        .or_else(|| rev.injector.as_ref().map(|i| i.namespace.as_str()))
}

/// Every webhook configuration that still calls the revision's istiod and that prune does
/// not delete. A tag's webhook and, while the `default` tag points to the revision,
/// istiod-default-validator are not listed: the tag's own user names the move that
/// rewrites them.
pub(crate) fn users(
    revision: &str,
    cp: &ControlPlane,
    webhooks: &[WebhookConfig],
    delete: &[Item],
    to: &str,
) -> Vec<User> {
    let service = istiod_service(revision);
    let namespace = istiod_namespace(revision, cp);
    let calls = |w: &WebhookConfig| {
        w.services
            .iter()
            .any(|(ns, name)| *name == service && namespace.is_none_or(|n| n == ns))
    };
    let deleted = |w: &WebhookConfig| delete.iter().any(|i| i.kind == w.kind && i.name == w.name);
    let moves_with_a_tag = |w: &WebhookConfig| {
        let tag = match w.label(labels::TAG) {
            Some(t) => Some(t),
            None if w.name == DEFAULT_VALIDATOR => Some(labels::DEFAULT_TAG),
            None => None,
        };
        tag.and_then(|t| cp.tags.get(t)).is_some_and(|t| t.revision == revision)
    };
    webhooks
        .iter()
        .filter(|w| calls(w) && !deleted(w) && !moves_with_a_tag(w))
        .map(|w| User {
            what: calls_istiod(w, namespace.unwrap_or("istio-system"), &service),
            fix: free(w, revision, cp, to),
        })
        .collect()
}

fn calls_istiod(w: &WebhookConfig, namespace: &str, service: &str) -> String {
    let effect = match (w.kind, w.rejects()) {
        ("ValidatingWebhookConfiguration", true) if w.name == DEFAULT_VALIDATOR => {
            "every create and update of an Istio resource is rejected, cluster-wide"
        }
        ("ValidatingWebhookConfiguration", true) => {
            "every create and update of the Istio resources it validates is rejected"
        }
        (_, true) => "every request it matches is rejected (failurePolicy Fail)",
        (_, false) => "the API server calls it in vain for every request it matches",
    };
    format!(
        "{} still calls service {namespace}/{service}: without it {effect}",
        w.resource()
    )
}

/// The command that stops the webhook calling the revision's istiod.
fn free(w: &WebhookConfig, revision: &str, cp: &ControlPlane, to: &str) -> String {
    if w.name == DEFAULT_VALIDATOR {
        let relabel = format!("kubectl mesh relabel --tag default --to {to} (it points the validator at {to} too)");
        return match w.helm_release() {
            Some((release, ns)) => format!(
                "{relabel}, or, as Helm release {release} installed it, `helm upgrade {release} istio/base -n {ns} --reuse-values --set defaultRevision={to}`"
            ),
            None => relabel,
        };
    }
    if let Some(tag) = w.label(labels::TAG) {
        let target = w
            .label(labels::REV)
            .filter(|r| *r != revision && cp.revisions.contains_key(*r))
            .unwrap_or(to);
        return format!("kubectl mesh relabel --tag {tag} --to {target} (rewrites the tag's webhooks)");
    }
    if w.label(labels::REV) == Some(revision) {
        let installed_by = w
            .helm_release()
            .map(|(release, _)| format!(", installed by Helm release {release}"))
            .unwrap_or_default();
        return format!(
            "kubectl delete {} {} (revision {revision}'s own{installed_by}, outside the istio.io/rev + operator.istio.io/component selection)",
            w.kind.to_lowercase(),
            w.name
        );
    }
    format!(
        "point its clientConfig.service at {} (`kubectl edit {} {}`), or delete it",
        istiod_service(to),
        w.kind.to_lowercase(),
        w.name
    )
}
