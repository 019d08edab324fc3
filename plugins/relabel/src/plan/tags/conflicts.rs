//! The check `istioctl tag set` runs before it writes (`analyzeWebhook` in
//! `istioctl/pkg/tag/tag.go`): Istio's webhook analyzer (IST0139, `InvalidWebhook`;
//! `pkg/config/analysis/analyzers/webhook/webhook.go`) over the webhook configurations as
//! they would be, keeping the messages about the tag's own configuration.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use shared::model::labels;

type Labels = BTreeMap<String, String>;

/// The IST0139 messages about the webhooks of `config` (a configuration's name) among
/// `webhooks`, as `istioctl analyze` prints them (each once): a combination of namespace and pod labels that two webhooks match (the pod
/// would be injected twice), and a webhook calling a Service that does not exist. `services`
/// are those of `services_namespace`; Services elsewhere are not checked.
pub(crate) fn conflicts(
    webhooks: &[&MutatingWebhookConfiguration],
    config: &str,
    services: &[Service],
    services_namespace: &str,
) -> Vec<String> {
    let istio: Vec<&MutatingWebhookConfiguration> = webhooks
        .iter()
        .copied()
        .filter(|w| !revisions(w).is_empty() || is_istio_webhook(w))
        .collect();
    let revs: BTreeSet<String> = istio.iter().flat_map(|w| revisions(w)).collect();
    let mut out = BTreeSet::new();
    for ns in label_sets(labels::INJECTION, &revs) {
        for obj in label_sets(labels::SIDECAR_INJECT, &revs) {
            let matching: BTreeSet<String> = istio
                .iter()
                .flat_map(|c| c.webhooks.iter().flatten().map(move |w| (*c, w)))
                .filter(|(_, w)| {
                    matches(w.namespace_selector.as_ref(), &ns) && matches(w.object_selector.as_ref(), &obj)
                })
                .map(|(c, w)| format!("{}/{}", c.metadata.name.as_deref().unwrap_or(""), w.name))
                .collect();
            if matching.len() < 2 {
                continue;
            }
            for m in matching.iter().filter(|m| m.starts_with(&format!("{config}/"))) {
                let others: Vec<&str> = matching.iter().filter(|o| *o != m).map(String::as_str).collect();
                out.insert(format!(
                    "Error [IST0139] (MutatingWebhookConfiguration {config}) Webhook overlaps with others: [{}]. \
                     This may cause injection to occur twice.",
                    others.join(" ")
                ));
            }
        }
    }
    for c in istio.iter().filter(|c| c.metadata.name.as_deref() == Some(config)) {
        for w in c.webhooks.iter().flatten() {
            if let Some(missing) = missing_service(w, services, services_namespace) {
                out.insert(format!(
                    "Error [IST0139] (MutatingWebhookConfiguration {config}) Injector refers to a control plane \
                     service that does not exist: {missing}."
                ));
            }
        }
    }
    out.into_iter().collect()
}

fn missing_service(w: &MutatingWebhook, services: &[Service], namespace: &str) -> Option<String> {
    let svc = w.client_config.service.as_ref()?;
    let exists = services
        .iter()
        .any(|s| s.metadata.name.as_deref() == Some(svc.name.as_str()));
    (svc.namespace == namespace && !exists).then(|| format!("{}/{}", svc.namespace, svc.name))
}

/// `isIstioWebhook`: a webhook named `*istio.io`.
fn is_istio_webhook(c: &MutatingWebhookConfiguration) -> bool {
    c.webhooks.iter().flatten().any(|w| w.name.ends_with("istio.io"))
}

/// `extractRevisions`: the `istio.io/rev` label and every `istio.io/rev` value its
/// webhooks' selectors name.
fn revisions(c: &MutatingWebhookConfiguration) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = c
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| *k == labels::REV)
        .map(|(_, v)| v.clone())
        .collect();
    for w in c.webhooks.iter().flatten() {
        for s in [&w.namespace_selector, &w.object_selector].into_iter().flatten() {
            out.extend(
                s.match_labels
                    .iter()
                    .flatten()
                    .filter(|(k, _)| *k == labels::REV)
                    .map(|(_, v)| v.clone()),
            );
            for e in s.match_expressions.iter().flatten().filter(|e| e.key == labels::REV) {
                out.extend(e.values.iter().flatten().cloned());
            }
        }
    }
    out
}

/// `getNamespaceLabels` / `getObjectLabels` and their permutations with each revision:
/// no label, `<key>=enabled|true`, `<key>=disabled|false`, each alone and with `istio.io/rev`.
fn label_sets(key: &str, revs: &BTreeSet<String>) -> Vec<Labels> {
    let (yes, no) = if key == labels::INJECTION {
        ("enabled", "disabled")
    } else {
        ("true", "false")
    };
    let base = || -> Vec<Labels> {
        vec![
            Labels::new(),
            [(key.to_string(), yes.to_string())].into(),
            [(key.to_string(), no.to_string())].into(),
        ]
    };
    let mut out = base();
    for rev in revs {
        out.extend(base().into_iter().map(|mut l| {
            l.insert(labels::REV.to_string(), rev.clone());
            l
        }));
    }
    out
}

/// `selectorMatches`: a missing selector matches everything; one that is not valid
/// (`LabelSelectorAsSelector` fails) matches nothing.
pub(crate) fn matches(selector: Option<&LabelSelector>, set: &Labels) -> bool {
    let Some(s) = selector else { return true };
    let labels_match = s.match_labels.iter().flatten().all(|(k, v)| set.get(k) == Some(v));
    labels_match
        && s.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => !values.is_empty() && set.get(&e.key).is_some_and(|v| values.contains(v)),
                "NotIn" => !values.is_empty() && set.get(&e.key).is_none_or(|v| !values.contains(v)),
                "Exists" => values.is_empty() && set.contains_key(&e.key),
                "DoesNotExist" => values.is_empty() && !set.contains_key(&e.key),
                _ => false,
            }
        })
}
