//! What still carries a revision's name once nothing of its control plane is left: proof
//! that it existed, so that pruning it again reports it pruned rather than unknown.

use k8s_openapi::api::core::v1::Namespace;
use serde_json::Value;
use shared::model::labels;

use super::WebhookConfig;

/// Where `kubectl mesh relabel` records what it replaced, so that `--undo` can put it back:
/// a namespace's previous injection labels (`{"previous": {"istio.io/rev": …}, …}`), a
/// tag's previous revision (`{"revision": …}`).
const RELABEL_PREVIOUS: &str = "kubectl-mesh.io/relabel-previous";

/// The namespaces and tags whose relabel record names the revision: they were moved off it.
pub(crate) fn remembered(revision: &str, namespaces: &[Namespace], webhooks: &[WebhookConfig]) -> Vec<String> {
    let record = |annotations: Option<&String>| annotations.and_then(|a| serde_json::from_str::<Value>(a).ok());
    let from_namespaces = namespaces.iter().filter_map(|n| {
        let previous = record(n.metadata.annotations.as_ref()?.get(RELABEL_PREVIOUS))?;
        (previous["previous"][labels::REV] == revision).then(|| {
            format!(
                "namespace/{} (was istio.io/rev={revision}, {RELABEL_PREVIOUS})",
                n.metadata.name.as_deref().unwrap_or_default()
            )
        })
    });
    let from_tags = webhooks.iter().filter_map(|w| {
        let previous = record(w.annotations.get(RELABEL_PREVIOUS))?;
        (previous["revision"] == revision).then(|| {
            format!(
                "{}/{} (pointed to {revision}, {RELABEL_PREVIOUS})",
                w.kind.to_lowercase(),
                w.name
            )
        })
    });
    from_namespaces.chain(from_tags).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relabel_records_name_the_revision_they_moved_off() {
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {
            "name": "default",
            "annotations": {RELABEL_PREVIOUS: r#"{"previous":{"istio.io/rev":"1-27","istio-injection":null},"set":{"istio.io/rev":"1-28","istio-injection":null}}"#}
        }}))
        .unwrap();
        let tag = WebhookConfig {
            kind: "MutatingWebhookConfiguration",
            name: "istio-revision-tag-default".into(),
            labels: [(labels::TAG.to_string(), "default".to_string())].into(),
            annotations: [(RELABEL_PREVIOUS.to_string(), r#"{"revision":"1-27"}"#.to_string())].into(),
            services: Default::default(),
            fails_closed: true,
        };
        assert_eq!(
            remembered("1-27", std::slice::from_ref(&ns), std::slice::from_ref(&tag)),
            [
                "namespace/default (was istio.io/rev=1-27, kubectl-mesh.io/relabel-previous)",
                "mutatingwebhookconfiguration/istio-revision-tag-default (pointed to 1-27, kubectl-mesh.io/relabel-previous)"
            ]
        );
        assert!(remembered("1-28", &[ns], &[tag]).is_empty());
    }
}
