//! Read the cluster: a fixed number of list calls whatever the number of namespaces (the
//! control plane's four, namespaces, ReplicaSet metadata and pods), pods in pages, each
//! page turned into proxies and dropped. Pods and ReplicaSets are read as Kubernetes
//! protobuf, with JSON as the fallback (`wire`), decoded into the slim structs of `slim`.

use std::collections::HashSet;

use futures::TryFutureExt;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{Api, ListParams};

use crate::connect::{Connection, Scope};
use crate::error::{Result, api_error};
use crate::model::proxy::replicaset_owner;
use crate::model::{ControlPlane, Mesh, NamespaceBinding, Proxy, ReplicaSetOwners};

mod slim;
mod wire;

pub use wire::ENCODING_ENV;

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

/// ReplicaSet → owner, from metadata only (`PartialObjectMetadataList`): how a pod's
/// Deployment is found. For a step that reads whole pods anyway and makes its proxies with
/// [`Proxy::from_pod`] instead of listing the pods a second time through [`read_proxies`].
pub async fn read_replicaset_owners(conn: &Connection, scope: &Scope) -> Result<ReplicaSetOwners> {
    let mut owners = ReplicaSetOwners::new();
    for path in paths(scope, "/apis/apps/v1", "replicasets") {
        let mut pages = Pages::new(ListParams::default());
        while let Some(params) = pages.next() {
            let body = wire::fetch(conn, &path, params, wire::As::Metadata, "list replicasets", 0).await?;
            pages.advance(body.continue_token()?.as_deref());
            let page: slim::MetadataList = body.decode("replicaset list")?;
            for meta in page.items.into_iter().filter_map(|o| o.metadata) {
                let key = (
                    meta.namespace.clone().unwrap_or_default(),
                    meta.name.clone().unwrap_or_default(),
                );
                owners.insert(key, replicaset_owner(&meta.owners()));
            }
        }
    }
    Ok(owners)
}

/// Every data-plane pod in scope (injected sidecars, gateways, waypoints, ztunnel,
/// istio-cni), read in pages of [`PAGE_SIZE`], each page made into proxies as it arrives.
/// The ReplicaSets are read at the same time; a proxy whose pod a ReplicaSet controls is
/// then given the ReplicaSet's own controller, as [`Proxy::from_pod`] would have.
pub async fn read_proxies(conn: &Connection, scope: &Scope) -> Result<Vec<Proxy>> {
    let none = ReplicaSetOwners::new();
    let proxies = each_pod(conn, scope, true, move |p| Proxy::from_pod(&p, &none));
    let (mut proxies, owners) = tokio::try_join!(proxies, read_replicaset_owners(conn, scope))?;
    for p in proxies.iter_mut().filter(|p| p.workload.kind == "ReplicaSet") {
        if let Some(Some(w)) = owners.get(&(p.namespace.clone(), p.workload.name.clone())) {
            p.workload = w.clone();
        }
    }
    Ok(proxies)
}

/// Every pod in scope, with the fields the steps read (metadata's names, labels,
/// annotations, owners and deletion; the containers' names, images, args and env; the
/// volumes' ConfigMaps and Secrets; the service account; phase and conditions), through the
/// same paged protobuf read as [`read_proxies`].
pub async fn read_pods(conn: &Connection, scope: &Scope) -> Result<Vec<Pod>> {
    each_pod(conn, scope, false, Some).await
}

/// Pods in pages: the next page is requested as soon as the continue token of the current
/// one is known while one blocking thread decodes the pages already received (one waits
/// between them at most), so the API server's encoding and our decoding overlap; `keep`
/// turns each decoded pod into what is held, and the page is dropped.
async fn each_pod<T: Send + 'static>(
    conn: &Connection,
    scope: &Scope,
    data_plane_only: bool,
    mut keep: impl FnMut(Pod) -> Option<T> + Send + 'static,
) -> Result<Vec<T>> {
    let (pages_tx, mut pages_rx) = tokio::sync::mpsc::channel::<wire::Body>(1);
    let decoder = tokio::task::spawn_blocking(move || -> Result<Vec<T>> {
        let mut kept = Vec::new();
        while let Some(body) = pages_rx.blocking_recv() {
            let page: slim::PodList = body.decode("pod list")?;
            drop(body);
            let pods = page.items.into_iter().filter(|p| !data_plane_only || p.has_proxy());
            kept.extend(pods.map(slim::Pod::into_pod).filter_map(&mut keep));
        }
        Ok(kept)
    });
    fetch_pod_pages(conn, scope, pages_tx).await?;
    decoder
        .await
        .map_err(|e| anyhow::anyhow!("decoding pods failed: {e}"))?
}

/// `KUBECTL_MESH_LIST_CONCURRENCY=N` (N > 1): list the pods of each namespace in scope, N
/// namespaces at a time, instead of one paged list of every pod (the default, which
/// bench/REPORT.md measured as the faster).
pub const CONCURRENCY_ENV: &str = "KUBECTL_MESH_LIST_CONCURRENCY";

fn list_concurrency() -> usize {
    std::env::var(CONCURRENCY_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1)
}

/// Fetch the pages of the pod list by continue token: one list (or one per namespace
/// named), or one per namespace [`CONCURRENCY_ENV`] at a time.
async fn fetch_pod_pages(
    conn: &Connection,
    scope: &Scope,
    decoder: tokio::sync::mpsc::Sender<wire::Body>,
) -> Result<()> {
    use futures::{StreamExt, TryStreamExt};
    let concurrency = list_concurrency();
    let paths = match scope {
        Scope::All if concurrency > 1 => {
            let names = list_namespaces(conn, scope).await?;
            let names = names.into_iter().filter_map(|n| n.metadata.name).collect();
            paths(&Scope::Namespaces(names), "/api/v1", "pods")
        }
        _ => paths(scope, "/api/v1", "pods"),
    };
    futures::stream::iter(paths)
        .map(|path| fetch_list_pages(conn, path, decoder.clone()))
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

/// The pages of one pod list, one after another. The next page is requested only once the
/// decoder has taken the previous one: at most two pages are held, the one being decoded
/// and the one arriving.
async fn fetch_list_pages(
    conn: &Connection,
    path: String,
    decoder: tokio::sync::mpsc::Sender<wire::Body>,
) -> Result<()> {
    let mut pages = Pages::new(ListParams::default());
    let mut size = 0;
    while let Some(params) = pages.next() {
        let Ok(slot) = decoder.reserve().await else {
            // The decoder stopped on an error, which it reports.
            return Ok(());
        };
        // The previous page's size, and a little more: the buffer is seldom grown.
        let body = wire::fetch(conn, &path, params, wire::As::Objects, "list pods", size + size / 8).await?;
        size = body.len();
        // Only the list's metadata is decoded here; the items are skipped.
        pages.advance(body.continue_token()?.as_deref());
        slot.send(body);
    }
    Ok(())
}

/// The list paths of a namespaced resource in scope: one for all namespaces, else one per
/// namespace.
fn paths(scope: &Scope, group: &str, plural: &str) -> Vec<String> {
    match scope {
        Scope::All => vec![format!("{group}/{plural}")],
        Scope::Namespaces(names) => names
            .iter()
            .map(|n| format!("{group}/namespaces/{n}/{plural}"))
            .collect(),
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

/// The protobuf and JSON decoders against the same page of the API server's answer, asked
/// for in each encoding (the sandbox's canary scenario, `istio-system`, limit 3).
#[cfg(test)]
mod wire_tests {
    use bytes::Bytes;
    use k8s_openapi::api::core::v1::Pod;

    use super::{slim, wire};
    use crate::model::proxy::replicaset_owner;
    use crate::model::{Proxy, ProxyKind, ReplicaSetOwners};

    fn body(file: &str) -> wire::Body {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(file);
        let bytes = Bytes::from(std::fs::read(path).unwrap());
        let content_type = if file.ends_with(".pb") {
            "application/vnd.kubernetes.protobuf"
        } else {
            "application/json"
        };
        wire::Body::new(bytes, Some(content_type)).unwrap()
    }

    fn pods(file: &str) -> Vec<Pod> {
        let page: slim::PodList = body(file).decode("pod list").unwrap();
        page.items.into_iter().map(slim::Pod::into_pod).collect()
    }

    #[test]
    fn protobuf_and_json_pages_decode_to_the_same_pods() {
        let (pb, json) = (pods("pod-list-page.pb"), pods("pod-list-page.json"));
        assert_eq!(pb.len(), 3);
        assert_eq!(pb, json);
        let names: Vec<_> = pb.iter().map(|p| p.metadata.name.as_deref().unwrap()).collect();
        assert_eq!(
            names,
            [
                "istio-egressgateway-7d8f765b88-sshxs",
                "istio-ingressgateway-7c55f9879b-x6fpl",
                "istiod-1-27-54b7bdf9df-6sfl2"
            ]
        );
        let gateway = &pb[1];
        let spec = gateway.spec.as_ref().unwrap();
        assert_eq!(spec.containers[0].name, "istio-proxy");
        assert!(
            spec.containers[0]
                .env
                .as_ref()
                .unwrap()
                .iter()
                .any(|e| e.name == "ISTIO_META_CLUSTER_ID")
        );
        assert_eq!(
            spec.service_account_name.as_deref(),
            Some("istio-ingressgateway-service-account")
        );
        let volumes = spec.volumes.as_ref().unwrap();
        assert!(
            volumes
                .iter()
                .any(|v| v.config_map.as_ref().is_some_and(|c| c.name == "istio-ca-root-cert"))
        );
        assert!(volumes.iter().any(|v| v.projected.is_some()));
        assert_eq!(gateway.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
        let owner = &gateway.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("ReplicaSet", Some(true)));
    }

    /// What the slim structs keep makes the same proxies as the whole pods do.
    #[test]
    fn slim_pods_make_the_same_proxies_as_whole_pods() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pod-list-page.json"),
        )
        .unwrap();
        let whole: k8s_openapi::List<Pod> = serde_json::from_str(&text).unwrap();
        let owners = ReplicaSetOwners::new();
        let from = |pods: &[Pod]| {
            pods.iter()
                .filter_map(|p| Proxy::from_pod(p, &owners))
                .collect::<Vec<_>>()
        };
        let proxies = from(&pods("pod-list-page.pb"));
        assert_eq!(proxies, from(&whole.items));
        let kinds: Vec<_> = proxies.iter().map(|p| (p.kind, p.revision.as_deref())).collect();
        assert_eq!(
            kinds,
            [(ProxyKind::Gateway, Some("1-28")), (ProxyKind::Gateway, Some("1-28"))]
        );
    }

    #[test]
    fn protobuf_and_json_replicaset_metadata_give_the_same_owners() {
        let owners = |file: &str| {
            let page: slim::MetadataList = body(file).decode("replicaset list").unwrap();
            page.items
                .into_iter()
                .filter_map(|o| o.metadata)
                .map(|m| (m.name.clone().unwrap(), replicaset_owner(&m.owners())))
                .collect::<Vec<_>>()
        };
        let pb = owners("replicaset-metadata-page.pb");
        assert_eq!(pb, owners("replicaset-metadata-page.json"));
        assert_eq!(pb.len(), 3);
        let (name, owner) = &pb[0];
        assert_eq!(name, "api-gateway-76d47d87ff");
        assert_eq!(
            owner.as_ref().map(ToString::to_string).as_deref(),
            Some("deployment/api-gateway")
        );
    }
}
