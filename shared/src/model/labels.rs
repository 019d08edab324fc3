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

/// A namespace name as the API server accepts it (an RFC 1123 label: lower-case letters,
/// digits and `-`, starting and ending with a letter or digit, at most 63 characters).
/// For `-n`: a name that cannot exist is a usage error before anything is read.
pub fn namespace_name(text: &str) -> Result<String, String> {
    if is_dns_label(text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "namespace {text:?} not found: it is not a valid namespace name (lower-case letters, digits and '-', at most 63); list them with `kubectl get namespaces`"
        ))
    }
}

/// A revision or tag name, as it can appear in an `istio.io/rev` label value and in the
/// `istiod-<revision>` Service name (both RFC 1123 labels). For flags naming one.
pub fn revision_name(text: &str) -> Result<String, String> {
    if is_dns_label(text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not a valid revision or tag name (lower-case letters, digits and '-', at most 63); see `kubectl mesh revisions`"
        ))
    }
}

fn is_dns_label(text: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    !text.is_empty() && text.len() <= 63 && text.chars().all(ok_char) && !text.starts_with('-') && !text.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_rfc_1123_labels() {
        for good in ["default", "1-27", "istio-system", "a"] {
            assert_eq!(namespace_name(good).as_deref(), Ok(good));
            assert_eq!(revision_name(good).as_deref(), Ok(good));
        }
        for bad in ["", "Bad/Name", "-x", "x-", "UPPER", "a.b", &"a".repeat(64)] {
            assert!(namespace_name(bad).is_err(), "{bad}");
            assert!(revision_name(bad).is_err(), "{bad}");
        }
        let e = namespace_name("Bad/Name").unwrap_err();
        assert!(
            e.contains("namespace \"Bad/Name\" not found") && e.contains("kubectl get namespaces"),
            "{e}"
        );
    }
}
