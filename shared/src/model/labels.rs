//! The label and annotation keys Istio and kubectl write (istio-facts.md §1–§4).

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
/// The revision name an unrevisioned install writes.
pub const DEFAULT_REVISION: &str = "default";
/// The tag whose webhook also serves `istio-injection=enabled`.
pub const DEFAULT_TAG: &str = "default";
/// Where kubectl records a restart (`kubectl rollout restart`).
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
