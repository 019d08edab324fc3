//! The switchover check on two clusters saved from the sandbox: the canary cluster (Istio
//! 1.27 serving the app) as the old one and a 1.28-only cluster running the same app as
//! the new one, each then changed the way a real switchover goes wrong.

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kubectl_mesh_switchover::{Cluster, ObjectRef, Options, Parity, Report, ServiceInfo, Workload, plan};
use serde_json::{Value, json};
use shared::model::proxy::replicaset_owners;
use shared::model::{ControlPlane, Mesh, NamespaceBinding, Proxy, ReplicaSetOwners};

/// A cluster's objects as the fixture holds them, as JSON so a test can change them.
struct Objects {
    context: &'static str,
    docs: Vec<Value>,
}

impl Objects {
    fn load(file: &str, context: &'static str) -> Objects {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let docs = serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        Objects { context, docs }
    }

    fn of<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Vec<T> {
        self.docs
            .iter()
            .filter(|d| d["kind"] == kind)
            .map(|d| serde_json::from_value(d.clone()).unwrap_or_else(|e| panic!("{kind}: {e}")))
            .collect()
    }

    fn get(&mut self, kind: &str, namespace: &str, name: &str) -> &mut Value {
        self.docs
            .iter_mut()
            .find(|d| {
                d["kind"] == kind
                    && d["metadata"]["namespace"].as_str().unwrap_or_default() == namespace
                    && d["metadata"]["name"] == name
            })
            .unwrap_or_else(|| panic!("no {kind} {namespace}/{name} in the fixture"))
    }

    fn remove(&mut self, kind: &str, namespace: &str, name: &str) {
        let before = self.docs.len();
        self.docs.retain(|d| {
            !(d["kind"] == kind && d["metadata"]["namespace"] == namespace && d["metadata"]["name"] == name)
        });
        assert_eq!(self.docs.len(), before - 1, "no {kind} {namespace}/{name} to remove");
    }

    /// The first pod of a Deployment (`<name>-<hash>-<id>`).
    fn pod_of(&mut self, deployment: &str) -> &mut Value {
        let prefix = format!("{deployment}-");
        self.docs
            .iter_mut()
            .find(|d| {
                d["kind"] == "Pod"
                    && d["metadata"]["name"].as_str().is_some_and(|n| {
                        n.strip_prefix(&prefix)
                            .is_some_and(|rest| rest.matches('-').count() == 1)
                    })
            })
            .unwrap_or_else(|| panic!("no pod of {deployment}"))
    }

    /// Assembled as `read.rs` assembles a cluster (the mesh as `collect::read_mesh` does).
    fn cluster(&self) -> Cluster {
        let services: Vec<Service> = self.of("Service");
        let cp = ControlPlane::from_objects_and_services(
            &self.of::<Deployment>("Deployment"),
            &self.of::<ConfigMap>("ConfigMap"),
            &self.of::<MutatingWebhookConfiguration>("MutatingWebhookConfiguration"),
            &services,
        );
        let owners: ReplicaSetOwners = replicaset_owners(&self.of::<ReplicaSet>("ReplicaSet"));
        let proxies = self
            .of::<Pod>("Pod")
            .iter()
            .filter_map(|p| Proxy::from_pod(p, &owners))
            .collect();
        let namespaces = self
            .of::<Namespace>("Namespace")
            .iter()
            .map(|n| NamespaceBinding::from_namespace(n, &cp))
            .collect();
        let workloads = self
            .of::<Deployment>("Deployment")
            .iter()
            .filter_map(Workload::from_deployment)
            .chain(
                self.of::<StatefulSet>("StatefulSet")
                    .iter()
                    .filter_map(Workload::from_statefulset),
            )
            .chain(
                self.of::<DaemonSet>("DaemonSet")
                    .iter()
                    .filter_map(Workload::from_daemonset),
            )
            .collect();
        Cluster {
            context: self.context.to_string(),
            mesh: Mesh::new(cp, namespaces, proxies),
            workloads,
            services: services.iter().map(ServiceInfo::from_service).collect(),
        }
    }
}

fn old() -> Objects {
    Objects::load("old-canary.yaml", "prod-1-27")
}

/// The new cluster with the address a cloud load balancer would have given its gateway.
fn new() -> Objects {
    let mut new = Objects::load("new-1-28.yaml", "prod-1-28");
    new.get("Service", "istio-system", "istio-ingressgateway")["status"] =
        json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}});
    new
}

fn options() -> Options {
    Options {
        namespaces: None,
        gateway: ObjectRef {
            namespace: "istio-system".into(),
            name: "istio-ingressgateway".into(),
        },
        allow_stateful: vec![],
    }
}

fn check(old: &Objects, new: &Objects) -> Report {
    plan(&old.cluster(), &new.cluster(), &options())
}

fn codes(r: &Report) -> Vec<&str> {
    r.reasons.iter().map(|r| r.code.as_str()).collect()
}

#[test]
fn the_1_28_cluster_running_the_same_app_is_ready() {
    let r = check(&old(), &new());
    assert!(r.ready, "{:#?}", r.reasons);
    assert_eq!(r.namespaces, ["default"], "the old cluster's one meshed namespace");
    assert_eq!(r.workloads.len(), 7);
    assert!(r.workloads.iter().all(|w| w.parity == Parity::Same));
    let api = r.workloads.iter().find(|w| w.name == "api-gateway").unwrap();
    assert_eq!(
        api.old.as_ref().unwrap().images["api-gateway"],
        "richardchesterwood/k8s-fleetman-api-gateway:release2",
        "sidecars aside: only the application's container"
    );
    assert_eq!(api.old.as_ref().unwrap().images.len(), 1);
    assert_eq!(r.services.len(), 5);
    assert!(r.services.iter().all(|s| s.parity == Parity::Same));
    assert_eq!(r.mesh.revisions.len(), 1);
    assert_eq!(r.mesh.revisions[0].name, "1-28");
    assert_eq!(r.mesh.revisions[0].version.as_deref(), Some("1.28.3"));
    assert!(r.mesh.revisions[0].ready);
    assert_eq!(r.mesh.proxies, 9, "7 sidecars and the two gateways");
    assert_eq!(r.mesh.out_of_date, 0);
    assert_eq!(r.mesh.gateway.external, Some(vec!["203.0.113.10".to_string()]));
    assert!(r.stateful.is_empty());

    let doc = serde_json::to_value(r.document()).unwrap();
    assert_eq!(doc["kind"], "MeshSwitchover");
    assert_eq!(doc["schemaVersion"], 1);
    assert_eq!(doc["from"], "prod-1-27");
    assert_eq!(doc["to"], "prod-1-28");
    assert_eq!(doc["ready"], true);
    assert_eq!(doc["reasons"], json!([]));
    assert_eq!(doc["workloads"][0]["parity"], "same");
    assert_eq!(doc["mesh"]["gateway"]["readyReplicas"], 1);
}

#[test]
fn a_gateway_without_an_external_address_has_nowhere_to_take_traffic() {
    let r = check(&old(), &Objects::load("new-1-28.yaml", "prod-1-28"));
    assert_eq!(codes(&r), ["NoExternalAddress"]);
    assert!(
        r.reasons[0].message.contains("status.loadBalancer.ingress"),
        "{}",
        r.reasons[0].message
    );
    assert_eq!(r.mesh.gateway.external, Some(vec![]));
}

#[test]
fn a_missing_deployment_blocks_and_an_extra_one_does_not() {
    let mut new = new();
    new.remove("Deployment", "default", "webapp");
    let r = check(&old(), &new);
    assert_eq!(codes(&r), ["Missing"]);
    assert_eq!(
        r.reasons[0].message,
        "deployment/webapp in default is in prod-1-27 but not in prod-1-28"
    );
    let row = r.workloads.iter().find(|w| w.name == "webapp").unwrap();
    assert_eq!(row.parity, Parity::Missing);
    assert!(row.new.is_none());
    assert_eq!(r.names(), "deployment.apps/webapp\n");

    let mut old = old();
    old.remove("Deployment", "default", "staff-service-risky-version");
    let r = check(&old, &self::new());
    assert!(r.ready, "{:#?}", r.reasons);
    let extra = r
        .workloads
        .iter()
        .find(|w| w.name == "staff-service-risky-version")
        .unwrap();
    assert_eq!(extra.parity, Parity::Extra);
}

#[test]
fn a_different_application_image_blocks() {
    let mut new = new();
    new.get("Deployment", "default", "staff-service")["spec"]["template"]["spec"]["containers"][0]["image"] =
        "richardchesterwood/k8s-fleetman-staff-service:release3".into();
    let r = check(&old(), &new);
    assert_eq!(codes(&r), ["ImageDiffers"]);
    assert_eq!(
        r.reasons[0].message,
        "deployment/staff-service in default: container staff-service: richardchesterwood/k8s-fleetman-staff-service:release2 in prod-1-27, richardchesterwood/k8s-fleetman-staff-service:release3 in prod-1-28"
    );
    let row = r.workloads.iter().find(|w| w.name == "staff-service").unwrap();
    assert_eq!(row.parity, Parity::Different);
}

#[test]
fn fewer_ready_replicas_block() {
    let mut old = old();
    let webapp = old.get("Deployment", "default", "webapp");
    webapp["spec"]["replicas"] = 3.into();
    webapp["status"]["readyReplicas"] = 3.into();
    let r = check(&old, &new());
    assert_eq!(codes(&r), ["FewerReady"]);
    assert_eq!(
        r.reasons[0].message,
        "deployment/webapp in default: 1 ready in prod-1-28, 3 in prod-1-27"
    );
}

#[test]
fn a_proxy_still_out_of_date_on_the_new_side_blocks() {
    // A pod that kept a 1.27 sidecar: injected by 1-27, while default selects 1-28.
    let mut new = new();
    let pod = new.pod_of("position-tracker");
    pod["metadata"]["annotations"]["sidecar.istio.io/status"] =
        r#"{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"1-27"}"#.into();
    for c in pod["spec"]["containers"].as_array_mut().unwrap() {
        if c["name"] == "istio-proxy" {
            c["image"] = "docker.io/istio/proxyv2:1.27.4".into();
        }
    }
    let r = check(&old(), &new);
    assert_eq!(codes(&r), ["OutOfDate"]);
    assert_eq!(r.mesh.out_of_date, 1);
    let message = &r.reasons[0].message;
    assert!(
        message.starts_with(
            "deployment/position-tracker in default (prod-1-28): 1 of 1 proxies out of date (injected by 1-27"
        ),
        "{message}"
    );
    assert!(
        message.contains("kubectl mesh roll --context prod-1-28 -n default"),
        "{message}"
    );
}

#[test]
fn a_pod_without_a_sidecar_a_namespace_without_a_revision_and_istiod_down_block() {
    let mut new = new();
    new.docs.retain(|d| {
        !(d["kind"] == "Pod"
            && d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("vehicle-telemetry-")))
    });
    new.get("Deployment", "istio-system", "istiod-1-28")["status"]["readyReplicas"] = 0.into();
    let r = check(&old(), &new);
    assert_eq!(codes(&r), ["IstiodNotReady", "NotInjected"]);
    assert_eq!(r.mesh.not_injected, ["default/deployment/vehicle-telemetry"]);
    assert!(
        r.reasons[0].message.contains("istiod istiod-1-28 has 0/1 ready"),
        "{}",
        r.reasons[0].message
    );

    let mut new = self::new();
    let labels = &mut new.get("Namespace", "", "default")["metadata"]["labels"];
    labels.as_object_mut().unwrap().remove("istio.io/rev");
    let r = check(&old(), &new);
    assert!(codes(&r).contains(&"NotMeshed"), "{:#?}", r.reasons);
}

#[test]
fn services_are_compared_by_ports() {
    let mut new = new();
    new.get("Service", "default", "fleetman-webapp")["spec"]["ports"][0]["port"] = 8080.into();
    new.remove("Service", "default", "fleetman-staff-service");
    let r = check(&old(), &new);
    assert_eq!(codes(&r), ["PortsDiffer", "ServiceMissing"]);
    assert_eq!(
        r.reasons[0].message,
        "service/fleetman-webapp in default: ports http 80/TCP->80 in prod-1-27, http 8080/TCP->80 in prod-1-28"
    );
    assert_eq!(r.names(), "service/fleetman-staff-service\nservice/fleetman-webapp\n");
}

/// A StatefulSet with a volumeClaimTemplate, as a database in the app's namespace, kept
/// out of the mesh.
fn database() -> Value {
    serde_saphyr::from_str(
        "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: postgres, namespace: default}
spec:
  replicas: 1
  serviceName: postgres
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres, sidecar.istio.io/inject: 'false'}}
    spec:
      containers: [{name: postgres, image: 'postgres:16'}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
status: {replicas: 1, readyReplicas: 1}
",
    )
    .unwrap()
}

#[test]
fn stateful_workloads_block_until_acknowledged() {
    let mut old = old();
    old.docs.push(database());
    let mut new = new();
    new.docs.push(database());
    let r = check(&old, &new);
    assert_eq!(codes(&r), ["Stateful"]);
    assert_eq!(r.stateful.len(), 1);
    assert_eq!(r.stateful[0].cluster, "both");
    assert!(!r.stateful[0].allowed);
    assert!(
        r.reasons[0].message.contains("volumeClaimTemplates data")
            && r.reasons[0].message.contains("--allow-stateful default/postgres"),
        "{}",
        r.reasons[0].message
    );

    let allowed = Options {
        allow_stateful: vec![ObjectRef {
            namespace: "default".into(),
            name: "postgres".into(),
        }],
        ..options()
    };
    let r = plan(&old.cluster(), &new.cluster(), &allowed);
    assert!(r.ready, "{:#?}", r.reasons);
    assert!(r.stateful[0].allowed);
    assert!(r.unmatched_allowances.is_empty());

    // A Deployment mounting a claim, in the old cluster only.
    let mut old = self::old();
    let spec = &mut old.get("Deployment", "default", "position-tracker")["spec"]["template"]["spec"];
    spec["volumes"] = json!([{"name": "data", "persistentVolumeClaim": {"claimName": "tracker-data"}}]);
    let wrong = Options {
        allow_stateful: vec![ObjectRef {
            namespace: "default".into(),
            name: "webapp".into(),
        }],
        ..options()
    };
    let r = plan(&old.cluster(), &self::new().cluster(), &wrong);
    assert_eq!(codes(&r), ["Stateful"]);
    assert_eq!(r.stateful[0].cluster, "old");
    assert_eq!(r.stateful[0].why, "mounts PersistentVolumeClaim tracker-data");
    assert_eq!(r.unmatched_allowances, wrong.allow_stateful);
}

#[test]
fn the_table_says_why_not() {
    let mut new = new();
    new.remove("Deployment", "default", "webapp");
    let r = check(&old(), &new);
    let text = r.render(&Default::default(), false, shared::output::Paint { enabled: false });
    assert!(
        text.starts_with("Switchover from prod-1-27 to prod-1-28 (namespaces: default): NOT READY (1 reason)"),
        "{text}"
    );
    let row = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let lines: Vec<String> = text.lines().map(row).collect();
    assert!(
        lines.contains(&"deployment/webapp default 1/1 - missing -".to_string()),
        "{text}"
    );
    assert!(lines.contains(&"1-28 1.28.3 ready".to_string()), "{text}");
    assert!(
        lines.contains(
            &"Ingress gateway istio-system/istio-ingressgateway: 1/1 ready, external address 203.0.113.10".to_string()
        ),
        "{text}"
    );
    assert!(
        lines.contains(&"[Missing] deployment/webapp in default is in prod-1-27 but not in prod-1-28".to_string()),
        "{text}"
    );
}
