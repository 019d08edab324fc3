//! The list calls prune makes, all through `shared::collect`: the objects the revision's
//! selector selects, of every kind istioctl deletes, the namespaces, every pod (once: the
//! proxies are made from the same list), the ReplicaSets owning them,
//! and every webhook configuration.

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, TypeMeta};
use shared::model::{ControlPlane, Mesh, Proxy, labels};
use shared::{Connection, Scope, collect};

use crate::plan::{self, Cluster, Item, LivePod, ResourceKind, WebhookConfig};

/// The selected objects, the namespaces, the pods and the webhooks, read concurrently,
/// around the control plane read before; and when neither knows the revision, what still
/// carries its name.
pub(crate) async fn cluster(conn: &Connection, revision: &str, cp: ControlPlane) -> shared::Result<Cluster> {
    let selector = plan::selector(revision);
    let (mut selected, own, namespaces, pods, owners, webhooks) = tokio::try_join!(
        selected(conn, &selector),
        own_webhooks(conn, revision),
        collect::read_namespaces(conn, &Scope::All, &cp),
        pods(conn),
        collect::read_replicaset_owners(conn, &Scope::All),
        webhooks(conn),
    )?;
    selected.splice(0..0, own);
    let traces = if plan::needs_traces(revision, &cp, &selected) {
        let (mut t, namespaces) =
            tokio::try_join!(labelled(conn, revision), collect::list_namespaces(conn, &Scope::All))?;
        t.extend(plan::pods_of(revision, &pods));
        t.extend(plan::remembered(revision, &namespaces, &webhooks));
        t
    } else {
        vec![]
    };
    Ok(Cluster {
        // The proxies from the same pod list (read once), as collect::read_proxies makes them.
        mesh: Mesh::new(
            cp,
            namespaces,
            pods.iter().filter_map(|p| Proxy::from_pod(p, &owners)).collect(),
        ),
        selected,
        pods: pods.iter().filter_map(LivePod::from_pod).collect(),
        webhooks,
        traces,
    })
}

/// Everything a label selector selects, of every kind istioctl deletes, in deletion order.
async fn selected(conn: &Connection, selector: &str) -> shared::Result<Vec<DynamicObject>> {
    let mut out = vec![];
    for k in plan::kinds() {
        out.extend(selected_of(conn, selector, k).await?);
    }
    Ok(out)
}

async fn selected_of(conn: &Connection, selector: &str, k: ResourceKind) -> shared::Result<Vec<DynamicObject>> {
    let ar = k.api_resource();
    let api = Api::<DynamicObject>::all_with(conn.client.clone(), &ar);
    let params = ListParams::default().labels(selector);
    match collect::list_all(conn, &api, params, &ar.plural).await {
        // List items carry no apiVersion and kind; the plan needs the kind.
        Ok(items) => Ok(items
            .into_iter()
            .map(|mut o| {
                o.types = Some(TypeMeta {
                    api_version: ar.api_version.clone(),
                    kind: ar.kind.clone(),
                });
                o
            })
            .collect()),
        // EnvoyFilter is a CRD: without Istio's CRDs there is none to delete
        // (`controllers.IgnoreNotFound` in operator/pkg/uninstall/prune.go).
        Err(shared::Error::Api { code: 404, .. }) => Ok(vec![]),
        Err(e) => Err(e),
    }
}

/// The revision's own webhook configurations outside istioctl's selector (Helm's validator).
async fn own_webhooks(conn: &Connection, revision: &str) -> shared::Result<Vec<DynamicObject>> {
    let selector = plan::own_webhooks_selector(revision);
    let mut out = vec![];
    for k in plan::kinds()
        .into_iter()
        .filter(|k| k.kind.ends_with("WebhookConfiguration"))
    {
        out.extend(selected_of(conn, &selector, k).await?);
    }
    out.retain(|o| plan::is_own_webhook(revision, o));
    Ok(out)
}

/// Every object of those kinds, and every namespace, labelled `istio.io/rev=<revision>`
/// whatever its component.
async fn labelled(conn: &Connection, revision: &str) -> shared::Result<Vec<String>> {
    let selector = format!("{}={revision}", labels::REV);
    let mut found = selected(conn, &selector).await?;
    found.extend(selected_of(conn, &selector, plan::NAMESPACE).await?);
    Ok(found.iter().map(|o| Item::from(o).to_string()).collect())
}

/// Every pod in the cluster, through the shared paged read (the fields prune reads).
async fn pods(conn: &Connection) -> shared::Result<Vec<Pod>> {
    collect::read_pods(conn, &Scope::All).await
}

/// Every Mutating- and ValidatingWebhookConfiguration: any of them may call the
/// revision's istiod.
async fn webhooks(conn: &Connection) -> shared::Result<Vec<WebhookConfig>> {
    let mutating = Api::<MutatingWebhookConfiguration>::all(conn.client.clone());
    let validating = Api::<ValidatingWebhookConfiguration>::all(conn.client.clone());
    let (m, v) = tokio::try_join!(
        collect::list_all(conn, &mutating, ListParams::default(), "mutatingwebhookconfigurations"),
        collect::list_all(
            conn,
            &validating,
            ListParams::default(),
            "validatingwebhookconfigurations"
        ),
    )?;
    Ok(m.iter()
        .map(WebhookConfig::mutating)
        .chain(v.iter().map(WebhookConfig::validating))
        .collect())
}
