//! Read the cluster: a fixed number of list calls whatever the number of namespaces (the
//! control plane's four, namespaces, ReplicaSet metadata and pods), pods in pages, each
//! page turned into proxies and dropped.

use std::collections::HashSet;

use futures::TryFutureExt;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{Api, ListParams};

use crate::connect::{Connection, Scope};
use crate::error::{Result, api_error};
use crate::model::proxy::replicaset_owner;
use crate::model::{ControlPlane, Mesh, NamespaceBinding, Proxy, ReplicaSetOwners};

/// Pods and ReplicaSets are read this many per request.
pub const PAGE_SIZE: u32 = 500;

/// A paged list call's pages, by continue token, [`PAGE_SIZE`] items a page:
///
/// ```ignore
/// let mut pages = Pages::new(ListParams::default());
/// while let Some(params) = pages.next() {
///     let page = api.list(params).await?;
///     pages.advance(page.metadata.continue_.as_deref());
///     // use page.items
/// }
/// ```
pub struct Pages {
    params: ListParams,
    done: bool,
}

impl Pages {
    pub fn new(params: ListParams) -> Pages {
        Pages {
            params: params.limit(PAGE_SIZE),
            done: false,
        }
    }

    /// The parameters of the next request, `None` after the last page.
    pub fn next(&self) -> Option<&ListParams> {
        (!self.done).then_some(&self.params)
    }

    /// Record a page's continue token: an empty or absent one ends the list.
    pub fn advance(&mut self, continue_token: Option<&str>) {
        match continue_token.filter(|t| !t.is_empty()) {
            Some(token) => self.params = self.params.clone().continue_token(token),
            None => self.done = true,
        }
    }
}

/// Every object a list call returns, read page by page. `what` names the list for error
/// messages (`pods in all namespaces`); the label selector is added to it.
pub async fn list_all<K>(conn: &Connection, api: &Api<K>, params: ListParams, what: &str) -> Result<Vec<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let action = match &params.label_selector {
        Some(s) => format!("list {what} (selector {s})"),
        None => format!("list {what}"),
    };
    let mut pages = Pages::new(params);
    let mut out = Vec::new();
    while let Some(params) = pages.next() {
        let page = api.list(params).await.map_err(|e| api_error(e, &conn.url, &action))?;
        pages.advance(page.metadata.continue_.as_deref());
        out.extend(page.items);
    }
    Ok(out)
}

/// The control-plane objects, which are always read cluster-wide (few and small): istiod
/// Deployments, injector ConfigMaps, MutatingWebhookConfigurations, and the Services
/// labelled `istio.io/tag`. From 1.28 a tag may exist only as Service
/// `istiod-revision-tag-<tag>` (istio-discovery/templates/revision-tags-svc.yaml), and
/// `istioctl tag list` counts it as a tag (istioctl/pkg/tag/tag.go uniqTagsFromServices).
pub async fn read_control_plane(conn: &Connection) -> Result<ControlPlane> {
    let c = &conn.client;
    let deployments = Api::<Deployment>::all(c.clone());
    let configmaps = Api::<ConfigMap>::all(c.clone());
    let webhooks = Api::<MutatingWebhookConfiguration>::all(c.clone());
    let services = Api::<Service>::all(c.clone());
    let (istiod, injectors, all, tags) = (
        ListParams::default().labels("app=istiod"),
        ListParams::default().labels(crate::model::labels::REV),
        ListParams::default(),
        ListParams::default().labels(crate::model::labels::TAG),
    );
    let (d, cm, w, s) = tokio::try_join!(
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
        services
            .list(&tags)
            .map_err(|e| api_error(e, &conn.url, "list services (istio.io/tag) in all namespaces")),
    )?;
    Ok(ControlPlane::from_objects_and_services(
        &d.items, &cm.items, &w.items, &s.items,
    ))
}

/// Every namespace in scope, bound to the injector its labels select.
pub async fn read_namespaces(conn: &Connection, scope: &Scope, cp: &ControlPlane) -> Result<Vec<NamespaceBinding>> {
    Ok(list_namespaces(conn, scope)
        .await?
        .iter()
        .map(|n| NamespaceBinding::from_namespace(n, cp))
        .collect())
}

/// The namespaces in scope; a named namespace that does not exist is a usage error.
pub async fn list_namespaces(conn: &Connection, scope: &Scope) -> Result<Vec<Namespace>> {
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
        .into_iter()
        .filter(|n| scope.includes(n.metadata.name.as_deref().unwrap_or("")))
        .collect())
}

/// ReplicaSet → owner, from metadata only: how a pod's Deployment is found. For a step that
/// reads whole pods anyway and makes its proxies with [`Proxy::from_pod`] instead of
/// listing the pods a second time through [`read_proxies`].
pub async fn read_replicaset_owners(conn: &Connection, scope: &Scope) -> Result<ReplicaSetOwners> {
    let mut owners = ReplicaSetOwners::new();
    for api in apis::<ReplicaSet>(conn, scope) {
        let mut pages = Pages::new(ListParams::default());
        while let Some(params) = pages.next() {
            let page = api
                .list_metadata(params)
                .await
                .map_err(|e| api_error(e, &conn.url, "list replicasets"))?;
            pages.advance(page.metadata.continue_.as_deref());
            for rs in page.items {
                let key = (
                    rs.metadata.namespace.clone().unwrap_or_default(),
                    rs.metadata.name.clone().unwrap_or_default(),
                );
                owners.insert(key, replicaset_owner(&rs.metadata.owner_references));
            }
        }
    }
    Ok(owners)
}

/// Every data-plane pod in scope (injected sidecars, gateways, waypoints, ztunnel,
/// istio-cni), read in pages of [`PAGE_SIZE`].
///
/// The next page is requested as soon as the continue token of the current one is known
/// (it comes first in the response) while one blocking thread decodes the pages already
/// received, so the API server's encoding and our decoding overlap. Only the fields a
/// proxy needs are decoded (no managedFields, no volumes), and only data-plane pods are kept.
pub async fn read_proxies(conn: &Connection, scope: &Scope) -> Result<Vec<Proxy>> {
    let (pages_tx, mut pages_rx) = tokio::sync::mpsc::channel::<String>(1);
    let decoder = tokio::task::spawn_blocking(move || -> Result<Vec<Pod>> {
        let mut injected = Vec::new();
        while let Some(text) = pages_rx.blocking_recv() {
            let page: slim::PodList =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("unexpected pod list: {e}"))?;
            injected.extend(
                page.items
                    .into_iter()
                    .filter(slim::Pod::has_proxy)
                    .map(slim::Pod::into_pod),
            );
        }
        Ok(injected)
    });
    let fetch = fetch_pod_pages(conn, scope, pages_tx);
    let (owners, ()) = tokio::try_join!(read_replicaset_owners(conn, scope), fetch)?;
    let pods = decoder
        .await
        .map_err(|e| anyhow::anyhow!("decoding pods failed: {e}"))??;
    Ok(pods.iter().filter_map(|p| Proxy::from_pod(p, &owners)).collect())
}

/// Fetch the raw pages of the pod list one after another by continue token.
async fn fetch_pod_pages(conn: &Connection, scope: &Scope, decoded: tokio::sync::mpsc::Sender<String>) -> Result<()> {
    let paths: Vec<String> = match scope {
        Scope::All => vec!["/api/v1/pods".into()],
        Scope::Namespaces(names) => names.iter().map(|n| format!("/api/v1/namespaces/{n}/pods")).collect(),
    };
    for path in paths {
        let mut pages = Pages::new(ListParams::default());
        while let Some(params) = pages.next() {
            let request = kube::core::Request::new(&path)
                .list(params)
                .map_err(|e| anyhow::anyhow!("cannot build the pod list request: {e}"))?;
            let text = conn
                .client
                .request_text(request)
                .await
                .map_err(|e| api_error(e, &conn.url, "list pods"))?;
            // Only the list's metadata is decoded here; the items are skipped.
            let head: slim::ListHead =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("unexpected pod list: {e}"))?;
            pages.advance(head.metadata.continue_.as_deref());
            if decoded.send(text).await.is_err() {
                // The decoder stopped on an error, which it reports.
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The part of a pod list that a proxy is made of. Everything else is skipped unparsed.
mod slim {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1 as core;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta, OwnerReference};
    use serde::Deserialize;

    use crate::model::proxy::is_data_plane_container;

    #[derive(Deserialize)]
    pub(super) struct ListHead {
        pub(super) metadata: ListMeta,
    }

    #[derive(Deserialize)]
    pub(super) struct PodList {
        #[serde(default)]
        pub(super) items: Vec<Pod>,
    }

    #[derive(Deserialize)]
    pub(super) struct Pod {
        metadata: Meta,
        spec: Option<Spec>,
        status: Option<Status>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Meta {
        name: Option<String>,
        namespace: Option<String>,
        labels: Option<BTreeMap<String, String>>,
        annotations: Option<BTreeMap<String, String>>,
        owner_references: Option<Vec<OwnerReference>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        #[serde(default)]
        containers: Vec<Container>,
        init_containers: Option<Vec<Container>>,
        /// hostNetwork pods are never injected.
        host_network: Option<bool>,
    }

    #[derive(Deserialize)]
    struct Container {
        name: String,
        image: Option<String>,
        env: Option<Vec<core::EnvVar>>,
        /// `proxy sidecar|router|waypoint|ztunnel`: what the proxy is.
        args: Option<Vec<String>>,
    }

    #[derive(Deserialize)]
    struct Status {
        phase: Option<String>,
        /// `Ready` among them: whether the pod is ready.
        conditions: Option<Vec<core::PodCondition>>,
    }

    impl Pod {
        pub(super) fn has_proxy(&self) -> bool {
            self.spec.as_ref().is_some_and(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
                    .any(|c| is_data_plane_container(&c.name))
            })
        }

        /// A Pod with just these fields, for [`crate::model::Proxy::from_pod`].
        pub(super) fn into_pod(self) -> core::Pod {
            let container = |c: Container| core::Container {
                name: c.name,
                image: c.image,
                env: c.env,
                args: c.args,
                ..Default::default()
            };
            core::Pod {
                metadata: ObjectMeta {
                    name: self.metadata.name,
                    namespace: self.metadata.namespace,
                    labels: self.metadata.labels,
                    annotations: self.metadata.annotations,
                    owner_references: self.metadata.owner_references,
                    ..Default::default()
                },
                spec: self.spec.map(|s| core::PodSpec {
                    containers: s.containers.into_iter().map(container).collect(),
                    init_containers: s.init_containers.map(|list| list.into_iter().map(container).collect()),
                    host_network: s.host_network,
                    ..Default::default()
                }),
                status: self.status.map(|s| core::PodStatus {
                    phase: s.phase,
                    conditions: s.conditions,
                    ..Default::default()
                }),
            }
        }
    }
}

/// The whole mesh in scope: control plane, namespaces, proxies, read concurrently.
pub async fn read_mesh(conn: &Connection, scope: &Scope) -> Result<Mesh> {
    let (cp, namespaces, proxies) = tokio::try_join!(
        read_control_plane(conn),
        list_namespaces(conn, scope),
        read_proxies(conn, scope)
    )?;
    let namespaces = namespaces
        .iter()
        .map(|n| NamespaceBinding::from_namespace(n, &cp))
        .collect();
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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;

    use super::slim;
    use crate::model::{Proxy, ProxyKind, ReplicaSetOwners};

    /// Pods as one page of a pod list, through the slim decoding.
    fn decode(items: &[serde_json::Value]) -> Vec<Pod> {
        let page = serde_json::json!({"kind": "PodList", "metadata": {}, "items": items}).to_string();
        let list: slim::PodList = serde_json::from_str(&page).unwrap();
        list.items
            .into_iter()
            .filter(slim::Pod::has_proxy)
            .map(slim::Pod::into_pod)
            .collect()
    }

    fn fixture_pods(file: &str) -> Vec<serde_json::Value> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(file);
        let text = std::fs::read_to_string(path).unwrap();
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
        docs.into_iter().filter(|d| d["kind"] == "Pod").collect()
    }

    #[test]
    fn slim_pods_keep_what_tells_a_proxy_apart() {
        let pods = decode(&fixture_pods("ambient-and-gateways.yaml"));
        let pod = |name: &str| pods.iter().find(|p| p.metadata.name.as_deref() == Some(name));
        // `proxy waypoint|router|ztunnel`: the args say what the proxy is.
        let waypoint = pod("waypoint-6d9f8c7b5-z2x4c").unwrap();
        let args = waypoint.spec.as_ref().unwrap().containers[0].args.clone().unwrap();
        assert_eq!(args[..2], ["proxy", "waypoint"]);
        let kind = |name: &str| Proxy::from_pod(pod(name)?, &ReplicaSetOwners::new()).map(|p| p.kind);
        assert_eq!(kind("waypoint-6d9f8c7b5-z2x4c"), Some(ProxyKind::Waypoint));
        assert_eq!(kind("ztunnel-8kq2x"), Some(ProxyKind::Ztunnel));
        assert_eq!(kind("public-istio-5f6a7b8c9-n3m2l"), Some(ProxyKind::Gateway));
        // istio-cni has no istio-proxy container and is kept all the same.
        assert_eq!(kind("istio-cni-node-5xw9r"), Some(ProxyKind::Cni));
        assert!(pod("productpage-v1-54bb874995-g8h9j").is_none(), "no proxy: dropped");

        // hostNetwork is kept: such pods are never injected.
        let mut host = fixture_pods("opt-outs.yaml")
            .into_iter()
            .find(|p| p["metadata"]["name"] == "mailer-6e5d4c3b2-r5e4w")
            .unwrap();
        host["spec"]["hostNetwork"] = true.into();
        let decoded = decode(&[host]);
        assert_eq!(decoded[0].spec.as_ref().unwrap().host_network, Some(true));
        let p = Proxy::from_pod(&decoded[0], &ReplicaSetOwners::new()).unwrap();
        assert!(p.host_network);
    }

    #[test]
    fn slim_pods_keep_the_ready_condition() {
        let mut pods = fixture_pods("ambient-and-gateways.yaml");
        let ztunnel = pods
            .iter_mut()
            .find(|p| p["metadata"]["name"] == "ztunnel-8kq2x")
            .unwrap();
        let mut not_ready = ztunnel.clone();
        ztunnel["status"]["conditions"] = serde_json::json!([
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "True"},
        ]);
        not_ready["status"]["conditions"] = serde_json::json!([{"type": "Ready", "status": "False"}]);
        let decoded = decode(&[ztunnel.clone(), not_ready]);
        let ready: Vec<_> = decoded
            .iter()
            .map(|p| Proxy::from_pod(p, &ReplicaSetOwners::new()).unwrap().ready)
            .collect();
        assert_eq!(ready, [true, false]);
    }
}
