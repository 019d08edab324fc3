//! The pods prune looks at: the revision each one belongs to, what it uses, and what kind
//! of proxy it runs (injected, written into its template, or rendered by istiod for a
//! Gateway API gateway or waypoint).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use shared::model::{Proxy, ReplicaSetOwners, labels};

/// The label istiod's deployment controller puts on the pods of the gateways and waypoints it
/// renders for Gateway API `Gateway` objects (`gateway.istio.io/managed` in
/// manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml and waypoint.yaml).
const GATEWAY_MANAGED: &str = "gateway.istio.io/managed";
/// The Gateway's name, on the same pods.
const GATEWAY_NAME: &str = "gateway.networking.k8s.io/gateway-name";
/// The Gateway's class: `istio-waypoint` for waypoints.
const GATEWAY_CLASS: &str = "gateway.networking.k8s.io/gateway-class-name";

/// A live (running or pending) pod, with what objects it depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LivePod {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    /// The revision it belongs to ([`pod_revision`]).
    pub(crate) revision: Option<String>,
    /// Injected by a revision's webhook (it carries `sidecar.istio.io/status`): a restart
    /// asks the webhooks again. Otherwise its revision is written in its own template.
    pub(crate) injected: bool,
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
            injected: annotation(pod, labels::SIDECAR_STATUS).is_some(),
            service_account: spec.and_then(|s| s.service_account_name.clone()),
            configmaps,
            secrets,
        })
    }

    /// The revision's own istiod, which prune deletes with it.
    pub(crate) fn is_istiod(&self) -> bool {
        self.labels.get("app").map(String::as_str) == Some("istiod")
    }

    /// The Gateway API gateway or waypoint whose Deployment istiod rendered this pod from
    /// (kube-gateway.yaml, waypoint.yaml): its revision comes from the `Gateway` object, so
    /// a restart changes nothing.
    pub(crate) fn gateway_api(&self) -> Option<GatewayApi<'_>> {
        self.labels.get(GATEWAY_MANAGED)?;
        Some(GatewayApi {
            name: self.labels.get(GATEWAY_NAME)?,
            waypoint: self.labels.get(GATEWAY_CLASS).is_some_and(|c| c.contains("waypoint")),
        })
    }
}

/// A Gateway API `Gateway` that istiod deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GatewayApi<'a> {
    pub(crate) name: &'a str,
    pub(crate) waypoint: bool,
}

fn is_live(pod: &Pod) -> bool {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    !matches!(phase, "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The revision a pod belongs to: the revision in the injector's `sidecar.istio.io/status`
/// (pkg/kube/inject/webhook.go), else its `istio.io/rev` annotation (the only mark on the
/// pods of Gateway API gateways and waypoints, manifests/charts/istio-control/istio-discovery/
/// files/kube-gateway.yaml and waypoint.yaml, and on the gateways `istioctl install` writes),
/// else the revision in its proxy's `CA_ADDR` (`istiod-<rev>.<ns>.svc:15012`,
/// istio-discovery/files/injection-template.yaml); and for a control-plane pod, which runs
/// no proxy, its `istio.io/rev` label.
// The model reads the same: `Proxy::from_pod` in shared/src/model/proxy.rs.
pub(crate) fn pod_revision(pod: &Pod) -> Option<String> {
    match Proxy::from_pod(pod, &ReplicaSetOwners::new()) {
        Some(proxy) => proxy.revision,
        None => control_plane_label(pod),
    }
}

/// istiod's pods (`app: istiod`, istio-discovery/templates/deployment.yaml) and the pods
/// `istioctl install` labels with its component carry their revision as a label.
fn control_plane_label(pod: &Pod) -> Option<String> {
    let lbls = pod.metadata.labels.as_ref()?;
    let control_plane =
        lbls.get("app").map(String::as_str) == Some("istiod") || lbls.contains_key(labels::OPERATOR_COMPONENT);
    control_plane.then(|| lbls.get(labels::REV).cloned()).flatten()
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

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).unwrap()
    }

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
    fn a_pods_revision_is_read_in_the_models_order() {
        let injected = pod(r#"
metadata:
  annotations:
    istio.io/rev: "1-27"
    sidecar.istio.io/status: '{"containers":["istio-proxy"],"revision":"1-28"}'
spec:
  containers: [{name: istio-proxy, env: [{name: CA_ADDR, value: istiod-1-27.istio-system.svc:15012}]}]
"#);
        assert_eq!(
            pod_revision(&injected).as_deref(),
            Some("1-28"),
            "the injector's status first"
        );
        let gateway = pod(r#"
metadata:
  annotations: {istio.io/rev: "1-27"}
spec:
  containers: [{name: istio-proxy, env: [{name: CA_ADDR, value: istiod-1-28.istio-system.svc:15012}]}]
"#);
        assert_eq!(pod_revision(&gateway).as_deref(), Some("1-27"), "then the annotation");
        let native = pod(r#"
spec:
  containers: [{name: app}]
  initContainers: [{name: istio-proxy, env: [{name: CA_ADDR, value: istiod.istio-system.svc:15012}]}]
"#);
        assert_eq!(pod_revision(&native).as_deref(), Some("default"), "then CA_ADDR");
        let istiod = pod("metadata: {labels: {app: istiod, istio.io/rev: 1-27}}");
        assert_eq!(pod_revision(&istiod).as_deref(), Some("1-27"), "istiod: its label");
        let app = pod("metadata: {labels: {app: web, istio.io/rev: 1-27}}");
        assert_eq!(
            pod_revision(&app),
            None,
            "an app's label asks for a revision; it is not one"
        );
    }

    #[test]
    fn gateway_api_pods_name_their_gateway() {
        let live: Vec<LivePod> = fixture_pods("gateway-api-pods.yaml")
            .iter()
            .filter_map(LivePod::from_pod)
            .collect();
        let gateways: Vec<GatewayApi<'_>> = live.iter().filter_map(LivePod::gateway_api).collect();
        assert_eq!(
            gateways,
            [
                GatewayApi {
                    name: "shop-gateway",
                    waypoint: false
                },
                GatewayApi {
                    name: "waypoint",
                    waypoint: true
                }
            ]
        );
        assert!(
            live.iter()
                .all(|p| !p.injected && p.revision.as_deref() == Some("1-27"))
        );
    }
}
