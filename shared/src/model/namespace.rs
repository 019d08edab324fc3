//! Which injector a namespace's labels select, by Istio's webhook rules (istio-facts.md §2).

use k8s_openapi::api::core::v1::Namespace;
use serde::Serialize;

use super::controlplane::{ControlPlane, Target, label};
use super::labels;

/// What a namespace's labels make of a new pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Injection {
    /// New pods get this revision's sidecar.
    #[serde(rename_all = "camelCase")]
    Revision {
        revision: String,
        /// Set when the label names a tag rather than the revision itself.
        tag: Option<String>,
        /// Which label decided: `istio.io/rev` or `istio-injection`.
        by: String,
    },
    /// `istio-injection=disabled`: no sidecar, whatever else is set.
    Disabled,
    /// No injection label: only pods that ask for it themselves get a sidecar.
    NotLabeled,
    /// Labels that no webhook matches: pods get no sidecar. The reason says why.
    Broken { reason: String },
}

impl Injection {
    pub fn revision(&self) -> Option<&str> {
        match self {
            Injection::Revision { revision, .. } => Some(revision),
            _ => None,
        }
    }
}

/// One namespace's injection labels and what they select.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceBinding {
    pub name: String,
    /// The `istio.io/rev` label.
    pub rev_label: Option<String>,
    /// The `istio-injection` label.
    pub injection_label: Option<String>,
    pub injection: Injection,
}

impl NamespaceBinding {
    pub fn new(name: &str, rev_label: Option<&str>, injection_label: Option<&str>, cp: &ControlPlane) -> Self {
        NamespaceBinding {
            name: name.to_string(),
            rev_label: rev_label.map(String::from),
            injection_label: injection_label.map(String::from),
            injection: effective(rev_label, injection_label, cp),
        }
    }

    pub fn from_namespace(ns: &Namespace, cp: &ControlPlane) -> Self {
        let l = &ns.metadata.labels;
        Self::new(
            ns.metadata.name.as_deref().unwrap_or(""),
            label(l, labels::REV),
            label(l, labels::INJECTION),
            cp,
        )
    }

    /// Both labels set: `istio-injection` wins and `istio.io/rev` is ignored (IST0123).
    pub fn has_both_labels(&self) -> bool {
        self.rev_label.is_some() && self.injection_label.is_some()
    }
}

/// Istio's webhook selectors, in the order that decides (istio-facts.md §2).
fn effective(rev: Option<&str>, injection: Option<&str>, cp: &ControlPlane) -> Injection {
    match injection {
        Some("disabled") => return Injection::Disabled,
        Some("enabled") => {
            return match &cp.default_revision {
                Some(r) => Injection::Revision { revision: r.clone(), tag: default_tag(cp), by: labels::INJECTION.into() },
                None => Injection::Broken {
                    reason: "istio-injection=enabled but no default revision exists (no `default` tag and no unrevisioned istiod)".into(),
                },
            };
        }
        Some(other) => {
            return Injection::Broken {
                reason: format!(
                    "istio-injection={other} matches no injector (only enabled and disabled mean anything)"
                ),
            };
        }
        None => {}
    }
    match rev {
        None => Injection::NotLabeled,
        Some(name) => match cp.resolve(name) {
            Target::Revision(r) => Injection::Revision {
                revision: r.to_string(),
                tag: None,
                by: labels::REV.into(),
            },
            Target::Tag { tag, revision } => Injection::Revision {
                revision: revision.to_string(),
                tag: Some(tag.to_string()),
                by: labels::REV.into(),
            },
            Target::Unknown => Injection::Broken {
                reason: format!("istio.io/rev={name} names no revision and no tag"),
            },
        },
    }
}

fn default_tag(cp: &ControlPlane) -> Option<String> {
    cp.tags
        .contains_key(labels::DEFAULT_TAG)
        .then(|| labels::DEFAULT_TAG.to_string())
}
