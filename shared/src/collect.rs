//! Read the cluster: a fixed number of list calls whatever the number of namespaces, pods
//! in pages, each page turned into proxies and dropped.

use std::collections::HashSet;

use futures::TryFutureExt;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, ListParams};

use crate::connect::{Connection, Scope};
use crate::error::{Result, api_error};
use crate::model::proxy::replicaset_owner;
use crate::model::{ControlPlane, Mesh, NamespaceBinding, Proxy, ReplicaSetOwners};

/// Pods and ReplicaSets are read this many per request.
pub const PAGE_SIZE: u32 = 500;

/// The control-plane objects, which are always read cluster-wide (few and small).
pub async fn read_control_plane(conn: &Connection) -> Result<ControlPlane> {
    let c = &conn.client;
    let deployments = Api::<Deployment>::all(c.clone());
    let configmaps = Api::<ConfigMap>::all(c.clone());
    let webhooks = Api::<MutatingWebhookConfiguration>::all(c.clone());
    let (istiod, injectors, all) = (
        ListParams::default().labels("app=istiod"),
        ListParams::default().labels(crate::model::labels::REV),
        ListParams::default(),
    );
    let (d, cm, w) = tokio::try_join!(
        deployments.list(&istiod).map_err(|e| api_error(
            e,
            &conn.url,
            "list deployments (app=istiod) in all namespaces"
        )),
        configmaps.list(&injectors).map_err(|e| api_error(
            e,
            &conn.url,
            "list configmaps (istio.io/rev) in all namespaces"
        )),
        webhooks
            .list(&all)
            .map_err(|e| api_error(e, &conn.url, "list mutatingwebhookconfigurations")),
    )?;
    Ok(ControlPlane::from_objects(&d.items, &cm.items, &w.items))
}

/// Every namespace in scope, bound to the injector its labels select.
pub async fn read_namespaces(conn: &Connection, scope: &Scope, cp: &ControlPlane) -> Result<Vec<NamespaceBinding>> {
    let api = Api::<Namespace>::all(conn.client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error(e, &conn.url, "list namespaces"))?;
    if let Scope::Namespaces(names) = scope {
        let seen: HashSet<_> = list.items.iter().filter_map(|n| n.metadata.name.as_deref()).collect();
        if let Some(missing) = names.iter().find(|n| !seen.contains(n.as_str())) {
            return Err(crate::Error::Usage(format!(
                "namespace {missing:?} not found; list them with `kubectl get namespaces`"
            )));
        }
    }
    Ok(list
        .items
        .iter()
        .filter(|n| scope.includes(n.metadata.name.as_deref().unwrap_or("")))
        .map(|n| NamespaceBinding::from_namespace(n, cp))
        .collect())
}

/// ReplicaSet → owner, from metadata only.
async fn read_replicaset_owners(conn: &Connection, scope: &Scope) -> Result<ReplicaSetOwners> {
    let mut owners = ReplicaSetOwners::new();
    for api in apis::<ReplicaSet>(conn, scope) {
        let mut params = ListParams::default().limit(PAGE_SIZE);
        loop {
            let page = api
                .list_metadata(&params)
                .await
                .map_err(|e| api_error(e, &conn.url, "list replicasets"))?;
            for rs in page.items {
                let key = (
                    rs.metadata.namespace.clone().unwrap_or_default(),
                    rs.metadata.name.clone().unwrap_or_default(),
                );
                owners.insert(key, replicaset_owner(&rs.metadata.owner_references));
            }
            match page.metadata.continue_.filter(|t| !t.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    Ok(owners)
}

/// Every injected pod in scope, read in pages of [`PAGE_SIZE`].
pub async fn read_proxies(conn: &Connection, scope: &Scope) -> Result<Vec<Proxy>> {
    let owners = read_replicaset_owners(conn, scope).await?;
    let mut proxies = Vec::new();
    for api in apis::<Pod>(conn, scope) {
        let mut params = ListParams::default().limit(PAGE_SIZE);
        loop {
            let page = api
                .list(&params)
                .await
                .map_err(|e| api_error(e, &conn.url, "list pods"))?;
            proxies.extend(page.items.iter().filter_map(|p| Proxy::from_pod(p, &owners)));
            match page.metadata.continue_.filter(|t| !t.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    Ok(proxies)
}

/// The whole mesh in scope: control plane, namespaces, proxies.
pub async fn read_mesh(conn: &Connection, scope: &Scope) -> Result<Mesh> {
    let cp = read_control_plane(conn).await?;
    let (namespaces, proxies) = tokio::try_join!(read_namespaces(conn, scope, &cp), read_proxies(conn, scope))?;
    Ok(Mesh::new(cp, namespaces, proxies))
}

fn apis<K>(conn: &Connection, scope: &Scope) -> Vec<Api<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match scope {
        Scope::All => vec![Api::all(conn.client.clone())],
        Scope::Namespaces(names) => names.iter().map(|n| Api::namespaced(conn.client.clone(), n)).collect(),
    }
}
