//! What relabel does to one namespace, decided from its labels and the control plane alone.

use serde_json::{Value, json};
use shared::model::{ControlPlane, Injection, labels};

use super::{InjectionLabels, NamespaceState, PREVIOUS, Remembered, binding, check_target};

/// How a namespace came to be chosen: only a namespace named with `-n` may be moved out of
/// `istio-injection=disabled` or away from a tag it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chosen {
    Named,
    Selector,
    All,
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    To { target: String, from: Option<String> },
    Undo { force: bool },
}

impl Request {
    /// `--to <target> [--from <from>]`, checked against the control plane, or `--undo`.
    ///
    /// # Errors
    ///
    /// [`shared::Error::Refused`] when the target does not exist or its istiod is not ready
    /// (unless `force`).
    pub(crate) fn new(to: Option<&str>, from: Option<&str>, force: bool, cp: &ControlPlane) -> shared::Result<Request> {
        let Some(target) = to else {
            return Ok(Request::Undo { force });
        };
        check_target(target, cp, force)
            .map_err(|problem| shared::Error::Refused(format!("refusing to relabel to {target}: {problem}")))?;
        Ok(Request::To {
            target: target.to_string(),
            from: from.map(String::from),
        })
    }
}

/// `--from` must name something: a revision, a tag, or at least a label some namespace in
/// scope carries (a revision already removed). Otherwise a typo would read as "nothing to
/// do".
pub(crate) fn check_from(from: Option<&str>, namespaces: &[NamespaceState], cp: &ControlPlane) -> shared::Result<()> {
    let Some(from) = from else { return Ok(()) };
    let known = cp.revisions.contains_key(from) || cp.tags.contains_key(from);
    let labelled = namespaces.iter().any(|n| n.labels.rev.as_deref() == Some(from));
    if known || labelled {
        return Ok(());
    }
    Err(shared::Error::Usage(format!(
        "--from {from} names no revision, no tag and no namespace label (revisions and tags: {}); see `kubectl mesh revisions`",
        shared::error::known(cp.revisions.keys().chain(cp.tags.keys()).map(String::as_str))
    )))
}

/// The decision for one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
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

/// A namespace as read and what to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) namespace: NamespaceState,
    pub(crate) decision: Decision,
}

/// The decision for every namespace read, in the order read.
pub(crate) fn plan(
    namespaces: &[NamespaceState],
    chosen: Chosen,
    request: &Request,
    cp: &ControlPlane,
) -> Vec<Planned> {
    namespaces
        .iter()
        .map(|ns| Planned {
            namespace: ns.clone(),
            decision: decide(ns, chosen, request, cp),
        })
        .collect()
}

/// Decide what to do with one namespace.
pub(crate) fn decide(ns: &NamespaceState, chosen: Chosen, request: &Request, cp: &ControlPlane) -> Decision {
    match request {
        Request::To { target, from } => decide_to(ns, chosen, target, from.as_deref(), cp),
        Request::Undo { force } => decide_undo(ns, chosen, *force, cp),
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

/// The merge patch for a change: conditional on the resourceVersion read, so a concurrent
/// edit makes the API server answer 409 Conflict instead of being overwritten.
pub(crate) fn patch(ns: &NamespaceState, to: &InjectionLabels, remember: Option<&Remembered>) -> Value {
    let remembered = remember.map(|r| serde_json::to_string(r).expect("labels serialise"));
    json!({
        "metadata": {
            "resourceVersion": ns.resource_version,
            "labels": { labels::REV: to.rev, labels::INJECTION: to.injection },
            "annotations": { PREVIOUS: remembered },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{canary, ns};
    use super::super::tags::namespaces_following;
    use super::*;

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
            namespaces_following("default", &[enabled, ns("d", Some("default"), None)]),
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
