//! Both clusters, read side by side: each one's mesh (`shared::collect::read_mesh`) and
//! its Deployments, StatefulSets, DaemonSets and Services in every namespace.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::ListParams;
use shared::collect::{list_all, read_mesh};
use shared::{ConnectArgs, Error, Scope};

use crate::plan::{Cluster, ServiceInfo, Workload};

/// Read the cluster of `context` with the connection flags given.
pub(crate) async fn read_cluster(connect: &ConnectArgs, context: &str, side: &str) -> shared::Result<Cluster> {
    let mut args = connect.clone();
    args.context = Some(context.to_string());
    let read = async {
        let conn = args.connect().await?;
        let everywhere = ListParams::default();
        let (deploy_api, sts_api, ds_api, svc_api) = (
            Api::all(conn.client.clone()),
            Api::all(conn.client.clone()),
            Api::all(conn.client.clone()),
            Api::all(conn.client.clone()),
        );
        let (mesh, deployments, statefulsets, daemonsets, services) = tokio::try_join!(
            read_mesh(&conn, &Scope::All),
            list_all::<Deployment>(&conn, &deploy_api, everywhere.clone(), "deployments in all namespaces"),
            list_all::<StatefulSet>(&conn, &sts_api, everywhere.clone(), "statefulsets in all namespaces"),
            list_all::<DaemonSet>(&conn, &ds_api, everywhere.clone(), "daemonsets in all namespaces"),
            list_all::<Service>(&conn, &svc_api, everywhere.clone(), "services in all namespaces"),
        )?;
        let workloads = deployments
            .iter()
            .filter_map(Workload::from_deployment)
            .chain(statefulsets.iter().filter_map(Workload::from_statefulset))
            .chain(daemonsets.iter().filter_map(Workload::from_daemonset))
            .collect();
        Ok::<_, Error>(Cluster {
            context: context.to_string(),
            mesh,
            workloads,
            services: services.iter().map(ServiceInfo::from_service).collect(),
        })
    };
    read.await.map_err(|e| match e {
        // Bad flags stay usage errors; everything else says which cluster it came from.
        Error::Usage(_) => e,
        other => Error::Other(anyhow::anyhow!(
            "cannot read the {side} cluster (context {context}): {other}"
        )),
    })
}
