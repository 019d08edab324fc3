//! The label and annotation keys Istio and kubectl write (istio.io/api label and annotation
//! registries, as used by pkg/kube/inject and the istio-discovery chart).

pub const REV: &str = "istio.io/rev";
pub const TAG: &str = "istio.io/tag";
pub const INJECTION: &str = "istio-injection";
pub const SIDECAR_INJECT: &str = "sidecar.istio.io/inject";
pub const SIDECAR_STATUS: &str = "sidecar.istio.io/status";
pub const PROXY_IMAGE: &str = "sidecar.istio.io/proxyImage";
pub const NATIVE_SIDECAR: &str = "sidecar.istio.io/nativeSidecar";
pub const INJECT_TEMPLATES: &str = "inject.istio.io/templates";
pub const OPERATOR_COMPONENT: &str = "operator.istio.io/component";
pub const PROXY_CONTAINER: &str = "istio-proxy";
/// The container of the istio-cni DaemonSet (manifests/charts/istio-cni).
pub const CNI_CONTAINER: &str = "install-cni";
/// `istio.io/dataplane-mode`: `ambient` puts a namespace's pods in the ambient mesh.
pub const DATAPLANE_MODE: &str = "istio.io/dataplane-mode";
/// The label of istioctl's never-match selector (istioctl/pkg/util/common.go NeverMatch).
pub const DEACTIVATED: &str = "istio.io/deactivated";
/// The label the API server sets on every namespace, with its name.
pub const NAMESPACE_NAME: &str = "kubernetes.io/metadata.name";
/// Gateway API: the Gateway a pod was rendered for (kube-gateway.yaml, waypoint.yaml).
pub const GATEWAY_NAME: &str = "gateway.networking.k8s.io/gateway-name";
/// The same before Istio 1.24, still on Deployments created then.
pub const LEGACY_GATEWAY_NAME: &str = "istio.io/gateway-name";
/// Which istiod controller rendered a Gateway API Deployment.
pub const GATEWAY_MANAGED: &str = "gateway.istio.io/managed";
/// The revision name an unrevisioned install writes.
pub const DEFAULT_REVISION: &str = "default";
/// The tag whose webhook also serves `istio-injection=enabled`.
pub const DEFAULT_TAG: &str = "default";
/// Where kubectl records a restart (`kubectl rollout restart`).
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
