//! What relabel does to one namespace, decided from its labels and the control plane alone.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::model::{ControlPlane, Injection, NamespaceBinding, Target, labels};

/// Annotation holding the labels a relabel replaced and the ones it set, so `--undo` can
/// put back exactly what was there, and can tell when someone changed the labels since.
pub const PREVIOUS: &str = "kubectl-mesh.io/relabel-previous";

/// The two labels that decide injection (istio-facts.md §2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectionLabels {
    #[serde(rename = "istio.io/rev")]
    pub rev: Option<String>,
    #[serde(rename = "istio-injection")]
    pub injection: Option<String>,
}

impl InjectionLabels {
    pub fn rev(rev: &str) -> Self {
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

/// The content of the [`PREVIOUS`] annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    pub previous: InjectionLabels,
    pub set: InjectionLabels,
}

/// One namespace as read, with what relabel needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceState {
    pub name: String,
    pub labels: InjectionLabels,
    /// The [`PREVIOUS`] annotation, if present; `Err` when it is not ours to parse.
    pub remembered: Option<Result<Remembered, String>>,
    pub resource_version: Option<String>,
}

impl NamespaceState {
    pub fn from_namespace(ns: &Namespace) -> Self {
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

/// How a namespace came to be chosen: only a namespace named with `-n` may be moved out of
/// `istio-injection=disabled` or away from a tag it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    Named,
    Selector,
    All,
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    To { target: String, from: Option<String> },
    Undo { force: bool },
}

/// The decision for one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write these labels (and remember, or forget, the previous ones).
    Change {
        from: InjectionLabels,
        to: InjectionLabels,
        /// The annotation to write; `None` removes it (after an undo).
        remember: Option<Remembered>,
    },
    /// Already as asked: nothing is written.
    Unchanged { reason: String },
    /// Left alone on purpose, and worth telling the user.
    Skip { reason: String },
    /// Not concerned by the request (not bound to `--from`, not in the mesh): not reported.
    Ignore,
}

/// Decide what to do with one namespace.
pub fn decide(ns: &NamespaceState, chosen: Chosen, request: &Request, cp: &ControlPlane) -> Decision {
    match request {
        Request::To { target, from } => decide_to(ns, chosen, target, from.as_deref(), cp),
        Request::Undo { force } => decide_undo(ns, chosen, *force, cp),
    }
}

fn binding(ns: &NamespaceState, cp: &ControlPlane) -> NamespaceBinding {
    NamespaceBinding::new(&ns.name, ns.labels.rev.as_deref(), ns.labels.injection.as_deref(), cp)
}

/// The tag a namespace follows and the revision it points at, if it follows one.
pub fn followed_tag(ns: &NamespaceState, cp: &ControlPlane) -> Option<(String, String)> {
    match binding(ns, cp).injection {
        Injection::Revision {
            revision,
            tag: Some(tag),
            ..
        } => Some((tag, revision)),
        _ => None,
    }
}

fn decide_to(ns: &NamespaceState, chosen: Chosen, target: &str, from: Option<&str>, cp: &ControlPlane) -> Decision {
    let named = chosen == Chosen::Named;
    let disabled = ns.labels.injection.as_deref() == Some("disabled");
    let b = binding(ns, cp);
    if let Some(from) = from {
        let bound = match &b.injection {
            Injection::Revision { revision, tag, .. } => {
                tag.as_deref() == Some(from) || revision == from || ns.labels.rev.as_deref() == Some(from)
            }
            // A label naming a revision that is gone is still bound to that name.
            _ => !disabled && ns.labels.rev.as_deref() == Some(from),
        };
        if !bound {
            return Decision::Ignore;
        }
    } else if chosen == Chosen::All && ns.labels.rev.is_none() && ns.labels.injection.as_deref() != Some("enabled") {
        // -A without --from means "the namespaces in the mesh", never kube-system and friends.
        return Decision::Ignore;
    }
    if disabled && !named {
        return Decision::Skip {
            reason: "istio-injection=disabled; name it with -n to change it".into(),
        };
    }
    if let Injection::Revision {
        revision,
        tag: Some(tag),
        by,
    } = &b.injection
        && !named
        && from != Some(tag.as_str())
        && target != tag
    {
        let how = if by == labels::INJECTION {
            "istio-injection=enabled".to_string()
        } else {
            format!("istio.io/rev={tag}")
        };
        return Decision::Skip {
            reason: format!(
                "follows tag {tag} (→ {revision}) through {how}: move the tag with `kubectl mesh relabel --tag {tag} --to {target}`, or name the namespace with -n to relabel it"
            ),
        };
    }
    let wanted = InjectionLabels::rev(target);
    if ns.labels == wanted {
        return Decision::Unchanged {
            reason: format!("already istio.io/rev={target}"),
        };
    }
    Decision::Change {
        from: ns.labels.clone(),
        to: wanted.clone(),
        remember: Some(Remembered {
            previous: ns.labels.clone(),
            set: wanted,
        }),
    }
}

fn decide_undo(ns: &NamespaceState, chosen: Chosen, force: bool, cp: &ControlPlane) -> Decision {
    let remembered = match &ns.remembered {
        None if chosen == Chosen::Named => {
            return Decision::Skip {
                reason: format!("no {PREVIOUS} annotation: nothing to undo"),
            };
        }
        None => return Decision::Ignore,
        Some(Err(e)) => {
            return Decision::Skip {
                reason: format!("the {PREVIOUS} annotation cannot be read ({e}); fix or remove it by hand"),
            };
        }
        Some(Ok(r)) => r,
    };
    if ns.labels != remembered.set {
        return Decision::Skip {
            reason: format!(
                "labels changed since relabel set {} (now {}); not undoing",
                remembered.set, ns.labels
            ),
        };
    }
    if let Some(rev) = &remembered.previous.rev
        && let Err(problem) = check_target(rev, cp, force)
    {
        return Decision::Skip {
            reason: format!("cannot restore istio.io/rev={rev}: {problem}"),
        };
    }
    Decision::Change {
        from: ns.labels.clone(),
        to: remembered.previous.clone(),
        remember: None,
    }
}

/// Pre-flight for a target: it must exist with an istiod, and that istiod must be ready
/// unless `force`. The error says what is missing.
pub fn check_target(name: &str, cp: &ControlPlane, force: bool) -> Result<(), String> {
    let (revision, via) = match cp.resolve(name) {
        Target::Revision(r) => (r, String::new()),
        Target::Tag { tag, revision } => (revision, format!("tag {tag} points to revision {revision}, ")),
        Target::Unknown => {
            let known: Vec<_> = cp.revisions.keys().chain(cp.tags.keys()).map(String::as_str).collect();
            return Err(format!(
                "{name} is neither a revision nor a tag (known: {}); see `kubectl mesh revisions`",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
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

/// The merge patch for a change: conditional on the resourceVersion read, so a concurrent
/// edit makes the API server answer 409 Conflict instead of being overwritten.
pub fn patch(ns: &NamespaceState, to: &InjectionLabels, remember: Option<&Remembered>) -> Value {
    let remembered = remember.map(|r| serde_json::to_string(r).expect("labels serialise"));
    json!({
        "metadata": {
            "resourceVersion": ns.resource_version,
            "labels": { labels::REV: to.rev, labels::INJECTION: to.injection },
            "annotations": { PREVIOUS: remembered },
        }
    })
}

/// Namespaces that follow each tag, for the "these move with the tag" list.
pub fn namespaces_following(tag: &str, states: &[NamespaceState], cp: &ControlPlane) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for ns in states {
        if let Some((t, _)) = followed_tag(ns, cp)
            && t == tag
        {
            let how = if ns.labels.rev.as_deref() == Some(tag) && ns.labels.injection.is_none() {
                format!("istio.io/rev={tag}")
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
    use super::*;
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use k8s_openapi::api::apps::v1::Deployment;

    fn istiod(rev: &str, ready: i32) -> Deployment {
        serde_saphyr::from_str(&format!(
            "metadata: {{name: istiod-{rev}, namespace: istio-system, generation: 1, labels: {{app: istiod, istio.io/rev: \"{rev}\"}}}}\n\
             spec: {{replicas: 1, selector: {{}}, template: {{spec: {{containers: [{{name: discovery, image: docker.io/istio/pilot:1.27.4}}]}}}}}}\n\
             status: {{observedGeneration: 1, replicas: 1, readyReplicas: {ready}, updatedReplicas: 1}}\n"
        ))
        .unwrap()
    }

    fn tag(name: &str, rev: &str) -> MutatingWebhookConfiguration {
        let default_hooks = if name == "default" {
            "- {name: namespace.sidecar-injector.istio.io, clientConfig: {}, sideEffects: None, admissionReviewVersions: [v1]}\n"
        } else {
            ""
        };
        serde_saphyr::from_str(&format!(
            "metadata: {{name: istio-revision-tag-{name}, labels: {{istio.io/tag: {name}, istio.io/rev: \"{rev}\"}}}}\n\
             webhooks:\n- {{name: rev.namespace.sidecar-injector.istio.io, clientConfig: {{}}, sideEffects: None, admissionReviewVersions: [v1]}}\n{default_hooks}"
        ))
        .unwrap()
    }

    /// The canary scenario: 1-27 and 1-28 installed, `default` still on 1-27, 1-29 not ready.
    fn canary() -> ControlPlane {
        ControlPlane::from_objects(
            &[istiod("1-27", 1), istiod("1-28", 1), istiod("1-29", 0)],
            &[],
            &[tag("default", "1-27"), tag("canary", "1-28")],
        )
    }

    fn ns(name: &str, rev: Option<&str>, injection: Option<&str>) -> NamespaceState {
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

    fn to(target: &str, from: Option<&str>) -> Request {
        Request::To {
            target: target.into(),
            from: from.map(String::from),
        }
    }

    #[test]
    fn moves_a_namespace_and_remembers_what_was_there() {
        let d = decide(
            &ns("default", Some("1-27"), None),
            Chosen::Named,
            &to("1-28", None),
            &canary(),
        );
        let Decision::Change { from, to, remember } = d else {
            panic!("{d:?}")
        };
        assert_eq!(from, InjectionLabels::rev("1-27"));
        assert_eq!(to, InjectionLabels::rev("1-28"));
        assert_eq!(remember.unwrap().previous, InjectionLabels::rev("1-27"));
    }

    #[test]
    fn removes_istio_injection_which_would_override_the_new_label() {
        let both = ns("shop", Some("1-27"), Some("enabled"));
        let Decision::Change { to, remember, .. } = decide(&both, Chosen::Named, &to("1-28", None), &canary()) else {
            panic!()
        };
        assert_eq!(to.injection, None);
        assert_eq!(remember.unwrap().previous.injection.as_deref(), Some("enabled"));
    }

    #[test]
    fn already_there_writes_nothing() {
        let d = decide(
            &ns("default", Some("1-28"), None),
            Chosen::All,
            &to("1-28", None),
            &canary(),
        );
        assert!(matches!(d, Decision::Unchanged { .. }), "{d:?}");
    }

    #[test]
    fn disabled_namespaces_only_when_named() {
        let off = ns("kube-public", None, Some("disabled"));
        assert!(matches!(
            decide(&off, Chosen::Selector, &to("1-28", None), &canary()),
            Decision::Skip { .. }
        ));
        assert!(matches!(
            decide(&off, Chosen::Named, &to("1-28", None), &canary()),
            Decision::Change { .. }
        ));
        // With --from, a disabled namespace is not bound to anything.
        let off_rev = ns("legacy", Some("1-27"), Some("disabled"));
        assert_eq!(
            decide(&off_rev, Chosen::All, &to("1-28", Some("1-27")), &canary()),
            Decision::Ignore
        );
    }

    #[test]
    fn from_selects_only_namespaces_bound_to_it() {
        let cp = canary();
        let req = to("1-28", Some("1-27"));
        assert!(matches!(
            decide(&ns("a", Some("1-27"), None), Chosen::All, &req, &cp),
            Decision::Change { .. }
        ));
        assert_eq!(
            decide(&ns("b", Some("1-28"), None), Chosen::All, &req, &cp),
            Decision::Ignore
        );
        assert_eq!(
            decide(&ns("kube-system", None, None), Chosen::All, &req, &cp),
            Decision::Ignore
        );
    }

    #[test]
    fn namespaces_following_a_tag_are_pointed_at_the_tag() {
        let cp = canary();
        let enabled = ns("legacy", None, Some("enabled"));
        let d = decide(&enabled, Chosen::All, &to("1-28", Some("1-27")), &cp);
        let Decision::Skip { reason } = d else { panic!("{d:?}") };
        assert!(reason.contains("follows tag default (→ 1-27)"), "{reason}");
        assert!(
            reason.contains("kubectl mesh relabel --tag default --to 1-28"),
            "{reason}"
        );
        // Named, it is relabeled (and istio-injection removed).
        assert!(matches!(
            decide(&enabled, Chosen::Named, &to("1-28", None), &cp),
            Decision::Change { .. }
        ));
        // --from the tag itself moves it.
        assert!(matches!(
            decide(
                &ns("x", Some("canary"), None),
                Chosen::All,
                &to("1-28", Some("canary")),
                &cp
            ),
            Decision::Change { .. }
        ));
        assert_eq!(
            namespaces_following("default", &[enabled, ns("d", Some("default"), None)], &cp),
            vec![
                ("d".to_string(), "istio.io/rev=default".to_string()),
                ("legacy".to_string(), "istio-injection=enabled".to_string())
            ]
        );
    }

    #[test]
    fn all_without_from_keeps_to_the_mesh() {
        assert_eq!(
            decide(
                &ns("kube-system", None, None),
                Chosen::All,
                &to("1-28", None),
                &canary()
            ),
            Decision::Ignore
        );
    }

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

    #[test]
    fn undo_restores_exactly_and_refuses_when_labels_moved_on() {
        let cp = canary();
        let mut moved = ns("shop", Some("1-28"), None);
        moved.remembered = Some(Ok(Remembered {
            previous: InjectionLabels {
                rev: Some("1-27".into()),
                injection: Some("enabled".into()),
            },
            set: InjectionLabels::rev("1-28"),
        }));
        let d = decide(&moved, Chosen::All, &Request::Undo { force: false }, &cp);
        let Decision::Change { to, remember, .. } = d else {
            panic!("{d:?}")
        };
        assert_eq!(to.injection.as_deref(), Some("enabled"));
        assert_eq!(to.rev.as_deref(), Some("1-27"));
        assert_eq!(remember, None, "undo forgets the annotation");

        moved.labels = InjectionLabels::rev("1-29");
        assert!(matches!(
            decide(&moved, Chosen::All, &Request::Undo { force: false }, &cp),
            Decision::Skip { .. }
        ));
        assert_eq!(
            decide(
                &ns("plain", Some("1-28"), None),
                Chosen::All,
                &Request::Undo { force: false },
                &cp
            ),
            Decision::Ignore
        );
    }

    #[test]
    fn the_patch_is_conditional_and_removes_labels_with_null() {
        let p = patch(
            &ns("a", Some("1-27"), Some("enabled")),
            &InjectionLabels::rev("1-28"),
            None,
        );
        assert_eq!(p["metadata"]["resourceVersion"], "7");
        assert_eq!(p["metadata"]["labels"]["istio.io/rev"], "1-28");
        assert!(p["metadata"]["labels"]["istio-injection"].is_null());
        assert!(p["metadata"]["annotations"][PREVIOUS].is_null());
    }
}
