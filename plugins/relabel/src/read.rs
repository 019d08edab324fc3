//! What relabel reads: the namespaces in play, and for a tag change the control plane with
//! its webhook configurations (listed once) and the objects the change rewrites besides them.

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, ListParams};
use shared::model::{ControlPlane, labels};
use shared::{Connection, collect, error::api_error};

use crate::plan::NamespaceState;
use crate::plan::namespaces::Chosen;

/// The namespaces in play and how they were chosen: named with `-n` (each must exist),
/// matching `-l`, or all of them.
pub(crate) async fn namespaces(
    conn: &Connection,
    names: &[String],
    selector: Option<&str>,
) -> shared::Result<(Chosen, Vec<NamespaceState>)> {
    let api = Api::<Namespace>::all(conn.client.clone());
    if !names.is_empty() {
        let mut names = names.to_vec();
        names.sort();
        names.dedup();
        let mut out = vec![];
        for n in &names {
            match api.get_opt(n).await {
                Ok(Some(ns)) => out.push(NamespaceState::from_namespace(&ns)),
                Ok(None) => {
                    return Err(shared::Error::Usage(format!(
                        "namespace {n:?} not found; list them with `kubectl get namespaces`"
                    )));
                }
                Err(e) => return Err(api_error(e, &conn.url, format!("get namespace {n}"))),
            }
        }
        return Ok((Chosen::Named, out));
    }
    let (chosen, params) = match selector {
        Some(sel) => (Chosen::Selector, ListParams::default().labels(sel)),
        None => (Chosen::All, ListParams::default()),
    };
    let list = collect::list_all(conn, &api, params, "namespaces")
        .await
        .map_err(|e| match (selector, e) {
            (Some(sel), shared::Error::Api { code: 400, message, .. }) => {
                shared::Error::Usage(format!("invalid label selector {sel:?}: {message}"))
            }
            (_, e) => e,
        })?;
    Ok((chosen, list.iter().map(NamespaceState::from_namespace).collect()))
}

/// What a tag move is planned from.
#[derive(Debug)]
pub(crate) struct TagCluster {
    pub(crate) control_plane: ControlPlane,
    /// Every MutatingWebhookConfiguration: the tag's own, and the revisions' injectors.
    pub(crate) webhooks: Vec<MutatingWebhookConfiguration>,
    pub(crate) namespaces: Vec<NamespaceState>,
}

/// The control plane, built from one list of the webhook configurations that the plan uses
/// too, and every namespace.
pub(crate) async fn tag_cluster(conn: &Connection) -> shared::Result<TagCluster> {
    let c = &conn.client;
    let (deployments, configmaps, webhooks, namespaces) = (
        Api::<Deployment>::all(c.clone()),
        Api::<ConfigMap>::all(c.clone()),
        Api::<MutatingWebhookConfiguration>::all(c.clone()),
        Api::<Namespace>::all(c.clone()),
    );
    let istiod = ListParams::default().labels("app=istiod");
    let injectors = ListParams::default().labels(labels::REV);
    let (deployments, configmaps, webhooks, namespaces) = tokio::try_join!(
        collect::list_all(conn, &deployments, istiod, "deployments in all namespaces"),
        collect::list_all(conn, &configmaps, injectors, "configmaps in all namespaces"),
        collect::list_all(conn, &webhooks, ListParams::default(), "mutatingwebhookconfigurations"),
        collect::list_all(conn, &namespaces, ListParams::default(), "namespaces"),
    )?;
    Ok(TagCluster {
        control_plane: ControlPlane::from_objects(&deployments, &configmaps, &webhooks),
        namespaces: namespaces.iter().map(NamespaceState::from_namespace).collect(),
        webhooks,
    })
}

/// The objects a tag change rewrites besides its webhook configurations, as they are now. A
/// failed read is kept, to be reported against those objects alone.
#[derive(Debug)]
pub(crate) struct Companions {
    /// Every Service where istiod runs: the tag's, and the revisions' (for istioctl's checks).
    pub(crate) services: shared::Result<Vec<Service>>,
    /// The default validator, when the change concerns `default` (`None`: there is none).
    pub(crate) validator: shared::Result<Option<ValidatingWebhookConfiguration>>,
}

/// Read the Services of `namespace` and, for `default`, the validator named.
pub(crate) async fn companions(conn: &Connection, namespace: &str, validator: Option<&str>) -> Companions {
    let services = collect::list_all(
        conn,
        &Api::<Service>::namespaced(conn.client.clone(), namespace),
        ListParams::default(),
        &format!("services in namespace {namespace}"),
    )
    .await;
    let validator = match validator {
        Some(name) => Api::<ValidatingWebhookConfiguration>::all(conn.client.clone())
            .get_opt(name)
            .await
            .map_err(|e| api_error(e, &conn.url, format!("get validatingwebhookconfiguration {name}"))),
        None => Ok(None),
    };
    Companions { services, validator }
}
