//! Restarts the API server would reject: the revision a restart sends a pod to has no istiod
//! ready to answer its injector webhook, or no injector ConfigMap for istiod to inject
//! from. Istio's injector webhooks have `failurePolicy: Fail`
//! (istio-discovery/templates/mutatingwebhook.yaml, revision-tags-mwc.yaml), so the new
//! pods are refused and the rollout stalls: saying "a restart would get 1-28" then would
//! send a user into an outage.

use std::collections::{BTreeMap, BTreeSet};

use shared::model::{ControlPlane, Expectation, InjectProblem, Mesh, ProxyState, Warning};

/// Why each revision a restart would send pods to cannot inject them.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    why: BTreeMap<String, String>,
    /// The namespaces of the out-of-date proxies each such revision would reject, and how
    /// many proxies.
    rejected: BTreeMap<String, (BTreeSet<String>, usize)>,
}

impl Rejections {
    pub(crate) fn new(mesh: &Mesh) -> Rejections {
        let cp = &mesh.control_plane;
        let mut out = Rejections::default();
        // A cluster with no istiod at all is a remote cluster whose webhooks call an istiod
        // elsewhere (the remote profile): nothing here says whether it answers.
        if !cp.revisions.values().any(|r| r.istiod.is_some()) {
            return out;
        }
        for p in mesh.proxies.iter().filter(|p| p.restart_fixes()) {
            let Expectation::Injected { revision, .. } = &p.expected else {
                continue;
            };
            let Some(why) = cannot_inject(cp, revision) else {
                continue;
            };
            out.why.insert(revision.clone(), why);
            let (namespaces, count) = out.rejected.entry(revision.clone()).or_default();
            namespaces.insert(p.proxy.namespace.clone());
            *count += 1;
        }
        out
    }

    /// Why a restart of this proxy would be rejected, if it is out of date and would be.
    pub(crate) fn of(&self, p: &ProxyState) -> Option<&str> {
        match &p.expected {
            Expectation::Injected { revision, .. } if p.restart_fixes() => self.why.get(revision).map(String::as_str),
            _ => None,
        }
    }

    /// `RestartRejected`, one per revision that would reject restarted pods.
    pub(crate) fn warnings(&self) -> Vec<Warning> {
        self.rejected
            .iter()
            .map(|(revision, (namespaces, count))| Warning {
                code: "RestartRejected".into(),
                message: format!(
                    "{}: a restart of the {count} out-of-date pods it would inject ({} {}) would be rejected, as its injector webhook has failurePolicy Fail; fix that before `kubectl mesh roll`",
                    self.why[revision],
                    if namespaces.len() == 1 { "namespace" } else { "namespaces" },
                    namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            })
            .collect()
    }
}

/// Why revision `name` cannot inject a new pod: no istiod, no ready istiod replica (one
/// ready replica answers every call), or no injector ConfigMap (without
/// `istio-sidecar-injector[-<rev>]` istiod skips its injector and serves no `/inject`:
/// pilot/pkg/bootstrap/sidecarinjector.go initSidecarInjector).
pub(crate) fn cannot_inject(cp: &ControlPlane, name: &str) -> Option<String> {
    // The first problem, in revisions' words; the rule is the model's.
    let problem = cp.inject_problems(name).into_iter().next()?;
    Some(match problem {
        InjectProblem::NoIstiod => format!("revision {name} has no istiod"),
        InjectProblem::ScaledToZero { .. } => format!("revision {name}'s istiod is scaled to 0"),
        InjectProblem::NotReady { istiod: i } => format!(
            "revision {name}'s istiod is not ready ({}/{})",
            i.ready_replicas, i.replicas
        ),
        InjectProblem::NoInjectorConfigMap { configmap } => {
            format!("revision {name} has no injector ConfigMap ({configmap})")
        }
    })
}

#[cfg(test)]
mod tests {
    use shared::model::{ControlPlane, InjectorConfig, Istiod, Revision};

    use super::cannot_inject;

    fn revision(istiod: Option<(i32, i32)>, injector: bool) -> Revision {
        Revision {
            name: "1-28".into(),
            istiod: istiod.map(|(ready, replicas)| Istiod {
                namespace: "istio-system".into(),
                name: "istiod-1-28".into(),
                image: "docker.io/istio/pilot:1.28.3".into(),
                version: Some("1.28.3".into()),
                replicas,
                ready_replicas: ready,
                updated_replicas: replicas,
            }),
            injector: injector.then(|| InjectorConfig {
                namespace: "istio-system".into(),
                configmap: "istio-sidecar-injector-1-28".into(),
                hub: Some("docker.io/istio".into()),
                tag: Some("1.28.3".into()),
                proxy_image: None,
                variant: None,
                policy: None,
            }),
            webhook: Some("istio-sidecar-injector-1-28".into()),
            deactivated: false,
            tags: vec![],
            default: false,
        }
    }

    fn why(r: Revision) -> Option<String> {
        let mut cp = ControlPlane::default();
        cp.revisions.insert(r.name.clone(), r);
        cannot_inject(&cp, "1-28")
    }

    #[test]
    fn a_revision_answers_with_one_ready_istiod_replica_and_its_injector_configmap() {
        assert_eq!(why(revision(Some((1, 1)), true)), None);
        assert_eq!(why(revision(Some((1, 2)), true)), None, "one ready replica answers");
        assert_eq!(
            why(revision(Some((0, 1)), true)).as_deref(),
            Some("revision 1-28's istiod is not ready (0/1)")
        );
        assert_eq!(
            why(revision(Some((0, 0)), true)).as_deref(),
            Some("revision 1-28's istiod is scaled to 0")
        );
        assert_eq!(
            why(revision(None, true)).as_deref(),
            Some("revision 1-28 has no istiod")
        );
        assert_eq!(
            why(revision(Some((1, 1)), false)).as_deref(),
            Some("revision 1-28 has no injector ConfigMap (istio-sidecar-injector-1-28)")
        );
        assert_eq!(
            cannot_inject(&ControlPlane::default(), "1-28").as_deref(),
            Some("revision 1-28 has no istiod")
        );
    }
}
