//! What relabel decides, from the objects read alone: for each namespace ([`namespaces`]) or
//! for a revision tag ([`tags`]). Pure: no API call, no printing.

pub(crate) mod namespaces;
pub(crate) mod tags;

use k8s_openapi::api::core::v1::Namespace;
use serde::{Deserialize, Serialize};
use shared::model::{ControlPlane, Injection, NamespaceBinding, Target, labels};

/// Annotation holding the labels a relabel replaced and the ones it set, so `--undo` can
/// put back exactly what was there, and can tell when someone changed the labels since.
/// On a tag's MutatingWebhookConfiguration it holds the revision the tag pointed to.
pub(crate) const PREVIOUS: &str = "kubectl-mesh.io/relabel-previous";

/// The two namespace labels that decide injection: `istio-injection` wins over
/// `istio.io/rev` (the namespace selectors of
/// `manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InjectionLabels {
    #[serde(rename = "istio.io/rev")]
    pub(crate) rev: Option<String>,
    #[serde(rename = "istio-injection")]
    pub(crate) injection: Option<String>,
}

impl InjectionLabels {
    pub(crate) fn rev(rev: &str) -> Self {
        InjectionLabels {
            rev: Some(rev.to_string()),
            injection: None,
        }
    }
}

impl std::fmt::Display for InjectionLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = vec![];
        if let Some(r) = &self.rev {
            parts.push(format!("{}={r}", labels::REV));
        }
        if let Some(i) = &self.injection {
            parts.push(format!("{}={i}", labels::INJECTION));
        }
        if parts.is_empty() {
            f.write_str("(no injection label)")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

/// The content of the [`PREVIOUS`] annotation of a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Remembered {
    pub(crate) previous: InjectionLabels,
    pub(crate) set: InjectionLabels,
}

/// One namespace as read, with what relabel needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamespaceState {
    pub(crate) name: String,
    pub(crate) labels: InjectionLabels,
    /// The [`PREVIOUS`] annotation, if present; `Err` when it is not ours to parse.
    pub(crate) remembered: Option<Result<Remembered, String>>,
    pub(crate) resource_version: Option<String>,
}

impl NamespaceState {
    pub(crate) fn from_namespace(ns: &Namespace) -> Self {
        let l = ns.metadata.labels.as_ref();
        let get = |k: &str| l.and_then(|l| l.get(k)).cloned();
        NamespaceState {
            name: ns.metadata.name.clone().unwrap_or_default(),
            labels: InjectionLabels {
                rev: get(labels::REV),
                injection: get(labels::INJECTION),
            },
            remembered: ns
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(PREVIOUS))
                .map(|text| serde_json::from_str(text).map_err(|e| e.to_string())),
            resource_version: ns.metadata.resource_version.clone(),
        }
    }
}

fn binding(ns: &NamespaceState, cp: &ControlPlane) -> NamespaceBinding {
    NamespaceBinding::new(&ns.name, ns.labels.rev.as_deref(), ns.labels.injection.as_deref(), cp)
}

/// The tag a namespace follows and the revision it points at, if it follows one.
pub(crate) fn followed_tag(ns: &NamespaceState, cp: &ControlPlane) -> Option<(String, String)> {
    match binding(ns, cp).injection {
        Injection::Revision {
            revision,
            tag: Some(tag),
            ..
        } => Some((tag, revision)),
        _ => None,
    }
}

/// Pre-flight for a target: it must exist with an istiod, and that istiod must be ready
/// unless `force`. The error says what is missing.
pub(crate) fn check_target(name: &str, cp: &ControlPlane, force: bool) -> Result<(), String> {
    let (revision, via) = match cp.resolve(name) {
        Target::Revision(r) => (r, String::new()),
        Target::Tag { tag, revision } => (revision, format!("tag {tag} points to revision {revision}, ")),
        Target::Unknown => {
            let known = shared::error::known(cp.revisions.keys().chain(cp.tags.keys()).map(String::as_str));
            return Err(format!(
                "{name} is neither a revision nor a tag (known: {known}); see `kubectl mesh revisions`"
            ));
        }
    };
    let Some(rev) = cp.revisions.get(revision) else {
        return Err(format!("{via}which does not exist"));
    };
    let Some(istiod) = &rev.istiod else {
        return Err(format!("{via}revision {revision} has no istiod Deployment"));
    };
    if !force && !istiod.ready() {
        return Err(format!(
            "{via}istiod {}/{} of revision {revision} is not ready ({}/{} ready); wait for it, or pass --force to relabel anyway",
            istiod.namespace, istiod.name, istiod.ready_replicas, istiod.replicas
        ));
    }
    Ok(())
}

/// Control planes for the unit tests of [`namespaces`] and [`tags`].
#[cfg(test)]
pub(crate) mod fixtures {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use k8s_openapi::api::apps::v1::Deployment;
    use shared::model::ControlPlane;

    use super::{InjectionLabels, NamespaceState};

    pub(crate) fn istiod(rev: &str, ready: i32) -> Deployment {
        serde_saphyr::from_str(&format!(
            "metadata: {{name: istiod-{rev}, namespace: istio-system, generation: 1, labels: {{app: istiod, istio.io/rev: \"{rev}\"}}}}\n\
             spec: {{replicas: 1, selector: {{}}, template: {{spec: {{containers: [{{name: discovery, image: docker.io/istio/pilot:1.27.4}}]}}}}}}\n\
             status: {{observedGeneration: 1, replicas: 1, readyReplicas: {ready}, updatedReplicas: 1}}\n"
        ))
        .unwrap()
    }

    /// A tag's configuration with the selectors of `revision-tags-mwc.yaml` (the `rev.`
    /// webhooks, and for `default` the `istio-injection=enabled` one).
    pub(crate) fn tag(name: &str, rev: &str) -> MutatingWebhookConfiguration {
        let hook = |prefix: &str, ns: &str| {
            format!(
                "- {{name: {prefix}sidecar-injector.istio.io, sideEffects: None, admissionReviewVersions: [v1], \
                 clientConfig: {{service: {{name: istiod-{rev}, namespace: istio-system, path: /inject}}}}, \
                 namespaceSelector: {{matchExpressions: [{ns}]}}}}\n"
            )
        };
        let mut hooks = hook(
            "rev.namespace.",
            &format!(
                "{{key: istio.io/rev, operator: In, values: [{name}]}}, {{key: istio-injection, operator: DoesNotExist}}"
            ),
        );
        if name == "default" {
            hooks.push_str(&hook(
                "namespace.",
                "{key: istio-injection, operator: In, values: [enabled]}",
            ));
        }
        serde_saphyr::from_str(&format!(
            "metadata: {{name: istio-revision-tag-{name}, labels: {{istio.io/tag: {name}, istio.io/rev: \"{rev}\"}}}}\n\
             webhooks:\n{hooks}"
        ))
        .unwrap()
    }

    /// The canary scenario: 1-27 and 1-28 installed, `default` still on 1-27, 1-29 not ready.
    pub(crate) fn canary() -> ControlPlane {
        ControlPlane::from_objects(
            &[istiod("1-27", 1), istiod("1-28", 1), istiod("1-29", 0)],
            &[],
            &[tag("default", "1-27"), tag("canary", "1-28")],
        )
    }

    pub(crate) fn ns(name: &str, rev: Option<&str>, injection: Option<&str>) -> NamespaceState {
        NamespaceState {
            name: name.into(),
            labels: InjectionLabels {
                rev: rev.map(String::from),
                injection: injection.map(String::from),
            },
            remembered: None,
            resource_version: Some("7".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::canary;
    use super::*;

    #[test]
    fn preflight_names_what_is_missing() {
        let cp = canary();
        assert!(check_target("1-28", &cp, false).is_ok());
        assert!(check_target("canary", &cp, false).is_ok());
        let e = check_target("1-30", &cp, false).unwrap_err();
        assert!(
            e.contains("1-30 is neither a revision nor a tag") && e.contains("1-27, 1-28, 1-29"),
            "{e}"
        );
        let e = check_target("1-29", &cp, false).unwrap_err();
        assert!(e.contains("not ready (0/1 ready)") && e.contains("--force"), "{e}");
        assert!(check_target("1-29", &cp, true).is_ok());
    }
}
