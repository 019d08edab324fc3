//! The facts a switchover compares, taken from the API objects: a workload's application
//! images, replicas and claims; a Service's ports and external address.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

/// Containers Istio adds or installs beside the application: the sidecar and its init
/// container (pkg/kube/inject/inject.go), and istio-cni's validation init container
/// (cni/pkg/plugin). Their images differ between revisions by design.
const ISTIO_CONTAINERS: [&str; 3] = ["istio-proxy", "istio-init", "istio-validation"];

/// A Deployment, StatefulSet or DaemonSet, as much as a switchover needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Application container name → image (init containers too), Istio's left out.
    pub images: BTreeMap<String, String>,
    /// The replicas asked for (a DaemonSet: the pods it should schedule).
    pub replicas: i32,
    pub ready: i32,
    /// PersistentVolumeClaims its pod template mounts.
    pub claims: Vec<String>,
    /// A StatefulSet's volumeClaimTemplates: each pod gets its own claim.
    pub claim_templates: Vec<String>,
    /// The pod template opts out of injection (`sidecar.istio.io/inject: "false"`).
    pub opts_out: bool,
}

impl Workload {
    pub fn from_deployment(d: &Deployment) -> Option<Workload> {
        let spec = d.spec.as_ref()?;
        let status = d.status.as_ref();
        Some(Workload::new(
            "Deployment",
            &d.metadata,
            &spec.template,
            spec.replicas.unwrap_or(1),
            status.and_then(|s| s.ready_replicas).unwrap_or(0),
        ))
    }

    pub fn from_statefulset(s: &StatefulSet) -> Option<Workload> {
        let spec = s.spec.as_ref()?;
        let mut w = Workload::new(
            "StatefulSet",
            &s.metadata,
            &spec.template,
            spec.replicas.unwrap_or(1),
            s.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0),
        );
        w.claim_templates = spec
            .volume_claim_templates
            .iter()
            .flatten()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        Some(w)
    }

    pub fn from_daemonset(d: &DaemonSet) -> Option<Workload> {
        let spec = d.spec.as_ref()?;
        let status = d.status.as_ref();
        Some(Workload::new(
            "DaemonSet",
            &d.metadata,
            &spec.template,
            status.map_or(0, |s| s.desired_number_scheduled),
            status.map_or(0, |s| s.number_ready),
        ))
    }

    fn new(kind: &str, meta: &ObjectMeta, template: &PodTemplateSpec, replicas: i32, ready: i32) -> Workload {
        let spec = template.spec.as_ref();
        let containers = spec
            .into_iter()
            .flat_map(|s| s.init_containers.iter().flatten().chain(s.containers.iter()));
        let claims = spec
            .into_iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone()))
            .collect();
        let said = |m: Option<&BTreeMap<String, String>>| {
            m.and_then(|m| m.get("sidecar.istio.io/inject"))
                .is_some_and(|v| v == "false")
        };
        let tm = template.metadata.as_ref();
        Workload {
            kind: kind.to_string(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            images: containers.filter_map(app_image).collect(),
            replicas,
            ready,
            claims,
            claim_templates: vec![],
            opts_out: said(tm.and_then(|m| m.labels.as_ref())) || said(tm.and_then(|m| m.annotations.as_ref())),
        }
    }

    /// `deployment/webapp`, as kubectl names it.
    pub fn display(&self) -> String {
        format!("{}/{}", self.kind.to_lowercase(), self.name)
    }

    /// Holds data of its own: mounts claims or makes one per pod.
    pub fn stateful(&self) -> bool {
        !self.claims.is_empty() || !self.claim_templates.is_empty()
    }
}

fn app_image(c: &Container) -> Option<(String, String)> {
    if ISTIO_CONTAINERS.contains(&c.name.as_str()) {
        return None;
    }
    Some((c.name.clone(), c.image.clone().unwrap_or_default()))
}

/// A Service: its ports and, for a LoadBalancer, the addresses it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfo {
    pub namespace: String,
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    /// `name port/protocol->targetPort`, sorted.
    pub ports: Vec<String>,
    /// `status.loadBalancer.ingress`: IPs and hostnames.
    pub external: Vec<String>,
}

impl ServiceInfo {
    pub fn from_service(s: &Service) -> ServiceInfo {
        let spec = s.spec.as_ref();
        let mut ports: Vec<String> = spec
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .map(|p| {
                let target = p
                    .target_port
                    .as_ref()
                    .map(|t| match t {
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
                    })
                    .unwrap_or_else(|| p.port.to_string());
                format!(
                    "{} {}/{}->{target}",
                    p.name.as_deref().unwrap_or("-"),
                    p.port,
                    p.protocol.as_deref().unwrap_or("TCP")
                )
            })
            .collect();
        ports.sort();
        let external = s
            .status
            .as_ref()
            .and_then(|st| st.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
            .collect();
        ServiceInfo {
            namespace: s.metadata.namespace.clone().unwrap_or_default(),
            name: s.metadata.name.clone().unwrap_or_default(),
            type_: spec.and_then(|s| s.type_.clone()).unwrap_or_else(|| "ClusterIP".into()),
            ports,
            external,
        }
    }
}
