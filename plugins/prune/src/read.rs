//! The list calls prune makes, all through `shared::collect`: the objects the revision's
//! selector selects, of every kind istioctl deletes, the namespaces, and every pod.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, TypeMeta};
use shared::model::{ControlPlane, Mesh};
use shared::{Connection, Scope, collect};

use crate::plan::{self, LivePod, ResourceKind};

/// What the plan is made from.
pub(crate) struct Cluster {
    pub(crate) mesh: Mesh,
    pub(crate) selected: Vec<DynamicObject>,
    pub(crate) pods: Vec<LivePod>,
}

/// The selected objects, the namespaces and the live pods, read concurrently, around the
/// control plane read before.
pub(crate) async fn cluster(conn: &Connection, revision: &str, cp: ControlPlane) -> shared::Result<Cluster> {
    let (selected, namespaces, pods) = tokio::try_join!(
        selected(conn, revision),
        collect::read_namespaces(conn, &Scope::All, &cp),
        live_pods(conn),
    )?;
    Ok(Cluster {
        mesh: Mesh::new(cp, namespaces, vec![]),
        selected,
        pods,
    })
}

/// Everything the revision's label selector selects, of every kind istioctl deletes, in
/// deletion order.
async fn selected(conn: &Connection, revision: &str) -> shared::Result<Vec<DynamicObject>> {
    let mut out = vec![];
    for k in plan::kinds() {
        out.extend(selected_of(conn, revision, k).await?);
    }
    Ok(out)
}

async fn selected_of(conn: &Connection, revision: &str, k: ResourceKind) -> shared::Result<Vec<DynamicObject>> {
    let ar = k.api_resource();
    let api = Api::<DynamicObject>::all_with(conn.client.clone(), &ar);
    let params = ListParams::default().labels(&plan::selector(revision));
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

/// Every running or pending pod in the cluster.
async fn live_pods(conn: &Connection) -> shared::Result<Vec<LivePod>> {
    let api = Api::<Pod>::all(conn.client.clone());
    let pods = collect::list_all(conn, &api, ListParams::default(), "pods in all namespaces").await?;
    Ok(pods.iter().filter_map(LivePod::from_pod).collect())
}
