//! Read what a roll is planned from: the mesh (`shared::collect::read_mesh`) and every
//! workload object of the kinds a roll restarts, with what would stop a restart from
//! replacing its pods.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, ListParams};
use shared::model::Mesh;
use shared::rollout::Rollout;
use shared::{Connection, Scope, collect};

use crate::plan::{Key, Objects};

/// The mesh in scope and the workload objects `-l` selects (all without it), read at once.
pub(crate) async fn read(conn: &Connection, scope: &Scope, selector: Option<&str>) -> shared::Result<(Mesh, Objects)> {
    tokio::try_join!(collect::read_mesh(conn, scope), workloads(conn, scope, selector))
}

/// The Deployments, StatefulSets and DaemonSets.
async fn workloads(conn: &Connection, scope: &Scope, selector: Option<&str>) -> shared::Result<Objects> {
    let params = match selector {
        Some(s) => ListParams::default().labels(s),
        None => ListParams::default(),
    };
    let (deployments, statefulsets, daemonsets) = tokio::try_join!(
        objects::<Deployment>(conn, scope, &params),
        objects::<StatefulSet>(conn, scope, &params),
        objects::<DaemonSet>(conn, scope, &params),
    )
    .map_err(|e| invalid_selector(e, selector))?;
    let found = deployments.into_iter().chain(statefulsets).chain(daemonsets).collect();
    Ok(Objects { found })
}

/// Every object of one kind in scope, keyed as the plan looks it up, with its restart
/// blocker.
async fn objects<K: Rollout>(
    conn: &Connection,
    scope: &Scope,
    params: &ListParams,
) -> shared::Result<Vec<(Key, Option<String>)>> {
    let plural = K::URL_PATH_SEGMENT;
    let lists: Vec<(Api<K>, String)> = match scope {
        Scope::All => vec![(Api::all(conn.client.clone()), format!("{plural} in all namespaces"))],
        Scope::Namespaces(names) => names
            .iter()
            .map(|n| {
                (
                    Api::namespaced(conn.client.clone(), n),
                    format!("{plural} in namespace {n:?}"),
                )
            })
            .collect(),
    };
    let mut found = Vec::new();
    for (api, what) in lists {
        for o in collect::list_all(conn, &api, params.clone(), &what).await? {
            let meta = o.meta();
            let key = (
                meta.namespace.clone().unwrap_or_default(),
                K::KIND.to_string(),
                meta.name.clone().unwrap_or_default(),
            );
            found.push((key, o.restart_blocker()));
        }
    }
    Ok(found)
}

/// A list refused with 400 when `-l` was given: the selector is malformed, a usage error.
fn invalid_selector(err: shared::Error, selector: Option<&str>) -> shared::Error {
    match (err, selector) {
        (shared::Error::Api { code: 400, message, .. }, Some(s)) => {
            shared::Error::Usage(format!("-l {s:?} is not a valid label selector: {message}"))
        }
        (err, _) => err,
    }
}
