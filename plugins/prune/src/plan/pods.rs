//! The pods prune looks at: the revision each one belongs to and what it uses.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use shared::model::pod_revision;

/// A live (running or pending) pod, with what objects it depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LivePod {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    /// The revision it belongs to, read by the model's one rule (`pod_revision` in
    /// shared/src/model/proxy.rs): the injector's `sidecar.istio.io/status`, else the
    /// `istio.io/rev` annotation (all that marks Gateway API gateways and waypoints,
    /// istio-discovery/files/kube-gateway.yaml and waypoint.yaml), else the proxy's
    /// `CA_ADDR`, and for control-plane pods their `istio.io/rev` label.
    pub(crate) revision: Option<String>,
    pub(crate) service_account: Option<String>,
    pub(crate) configmaps: BTreeSet<String>,
    pub(crate) secrets: BTreeSet<String>,
}

impl LivePod {
    /// `None` for Succeeded and Failed pods: they keep their revision forever and use nothing.
    pub(crate) fn from_pod(pod: &Pod) -> Option<LivePod> {
        if !is_live(pod) {
            return None;
        }
        let spec = pod.spec.as_ref();
        let (configmaps, secrets) = spec.map(mounted).unwrap_or_default();
        Some(LivePod {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            revision: pod_revision(pod),
            service_account: spec.and_then(|s| s.service_account_name.clone()),
            configmaps,
            secrets,
        })
    }

    /// The revision's own istiod, which prune deletes with it.
    pub(crate) fn is_istiod(&self) -> bool {
        self.labels.get("app").map(String::as_str) == Some("istiod")
    }
}

fn is_live(pod: &Pod) -> bool {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    !matches!(phase, "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// Every pod of the revision, completed ones included, as `pod/<name> -n <namespace>`.
pub(crate) fn pods_of(revision: &str, pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter(|p| pod_revision(p).as_deref() == Some(revision))
        .map(|p| {
            format!(
                "pod/{} -n {}",
                p.metadata.name.as_deref().unwrap_or_default(),
                p.metadata.namespace.as_deref().unwrap_or_default()
            )
        })
        .collect()
}

/// The ConfigMaps and Secrets a pod mounts, directly or through a projected volume.
fn mounted(spec: &PodSpec) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut configmaps = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    for v in spec.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            configmaps.insert(cm.name.clone());
        }
        if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            secrets.insert(s);
        }
        let projected = v.projected.as_ref().and_then(|p| p.sources.as_ref());
        for src in projected.into_iter().flatten() {
            if let Some(cm) = &src.config_map {
                configmaps.insert(cm.name.clone());
            }
            if let Some(s) = &src.secret {
                secrets.insert(s.name.clone());
            }
        }
    }
    (configmaps, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixture_pods(file: &str) -> Vec<Pod> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(file);
        let text = std::fs::read_to_string(path).unwrap();
        serde_saphyr::from_multiple::<Value>(&text)
            .unwrap()
            .into_iter()
            .filter(|v| v["kind"] == "Pod")
            .map(|v| serde_json::from_value(v).unwrap())
            .collect()
    }

    #[test]
    fn gateway_api_pods_belong_to_the_revision_in_their_annotation() {
        let live: Vec<LivePod> = fixture_pods("gateway-api-pods.yaml")
            .iter()
            .filter_map(LivePod::from_pod)
            .collect();
        assert_eq!(live.len(), 2);
        assert!(live.iter().all(|p| p.revision.as_deref() == Some("1-27")), "{live:?}");
        let istiod: Pod = serde_saphyr::from_str("metadata: {labels: {app: istiod, istio.io/rev: 1-27}}").unwrap();
        assert_eq!(LivePod::from_pod(&istiod).unwrap().revision.as_deref(), Some("1-27"));
        let app: Pod = serde_saphyr::from_str("metadata: {labels: {app: web, istio.io/rev: 1-27}}").unwrap();
        assert_eq!(
            LivePod::from_pod(&app).unwrap().revision,
            None,
            "an app's label asks for a revision; it is none"
        );
    }
}
