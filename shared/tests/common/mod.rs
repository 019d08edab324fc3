//! Fixtures: multi-document YAML of API objects as the API server returns them, turned
//! into the typed objects the model takes. Shared by the model and report tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use shared::model::proxy::replicaset_owners;
use shared::model::{ControlPlane, Mesh, NamespaceBinding, Proxy, ReplicaSetOwners};

/// The canary cluster: revisions 1-27 and 1-28, tags `default` and `prod`.
pub const CANARY: &[&str] = &[
    "canary-control-plane.yaml",
    "canary-namespaces.yaml",
    "canary-pods.yaml",
];
/// The in-place cluster: one unrevisioned istiod upgraded from 1.27.4 to 1.28.3.
pub const INPLACE: &[&str] = &["inplace.yaml"];
/// An unrevisioned 1.27.4 install whose `default` tag was moved to revision 1-28.
pub const DEFAULT_TAG_MOVED: &[&str] = &["default-tag-moved.yaml"];
/// The canary control plane with pods that opted out of injection.
pub const OPT_OUTS: &[&str] = &["canary-control-plane.yaml", "opt-outs.yaml"];
/// The canary control plane with ztunnel, istio-cni, a waypoint and Gateway API gateways.
pub const AMBIENT: &[&str] = &["canary-control-plane.yaml", "ambient-and-gateways.yaml"];
/// Revision 1-28 installed with Helm from a mirror, istiod on its own patch build.
pub const INJECTOR_IMAGE: &[&str] = &["injector-image.yaml"];
/// The canary cluster with its tag Services, one tag existing only as a Service.
pub const TAG_SERVICES: &[&str] = &[
    "canary-control-plane.yaml",
    "canary-namespaces.yaml",
    "canary-pods.yaml",
    "tag-services.yaml",
];

/// Every object of some fixture files, sorted by kind.
#[derive(Debug, Default, Clone)]
pub struct Objects {
    pub deployments: Vec<Deployment>,
    pub configmaps: Vec<ConfigMap>,
    pub webhooks: Vec<MutatingWebhookConfiguration>,
    pub namespaces: Vec<Namespace>,
    pub pods: Vec<Pod>,
    pub replicasets: Vec<ReplicaSet>,
    /// Tag Services (`istiod-revision-tag-<tag>`).
    pub services: Vec<Service>,
}

/// `shared/tests/fixtures`, found from whichever workspace crate runs the test.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|p| p.join("shared/tests/fixtures"))
        .find(|p| p.is_dir())
        .expect("shared/tests/fixtures above the crate")
}

/// Parse fixture files; an object of a kind the model does not read fails the test, so
/// a fixture never carries something silently ignored.
pub fn load(files: &[&str]) -> Objects {
    let mut out = Objects::default();
    for file in files {
        let path = fixtures_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        for doc in docs {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let what = format!("{kind} {name} in {file}");
            match kind.as_str() {
                "Deployment" => out.deployments.push(typed(doc, &what)),
                "ConfigMap" => out.configmaps.push(typed(doc, &what)),
                "MutatingWebhookConfiguration" => out.webhooks.push(typed(doc, &what)),
                "Namespace" => out.namespaces.push(typed(doc, &what)),
                "Pod" => out.pods.push(typed(doc, &what)),
                "ReplicaSet" => out.replicasets.push(typed(doc, &what)),
                "Service" => out.services.push(typed(doc, &what)),
                _ => panic!("{what}: no test reads this kind"),
            }
        }
    }
    out
}

fn typed<T: serde::de::DeserializeOwned>(doc: serde_json::Value, what: &str) -> T {
    serde_json::from_value(doc).unwrap_or_else(|e| panic!("{what}: {e}"))
}

impl Objects {
    pub fn control_plane(&self) -> ControlPlane {
        ControlPlane::from_objects_and_services(&self.deployments, &self.configmaps, &self.webhooks, &self.services)
    }

    /// ReplicaSet → owner, as `collect::read_replicaset_owners` builds it.
    pub fn replicaset_owners(&self) -> ReplicaSetOwners {
        replicaset_owners(&self.replicasets)
    }

    pub fn proxies(&self) -> Vec<Proxy> {
        let owners = self.replicaset_owners();
        self.pods.iter().filter_map(|p| Proxy::from_pod(p, &owners)).collect()
    }

    /// The whole picture, assembled the way `collect::read_mesh` does.
    pub fn mesh(&self) -> Mesh {
        let cp = self.control_plane();
        let namespaces = self
            .namespaces
            .iter()
            .map(|n| NamespaceBinding::from_namespace(n, &cp))
            .collect();
        Mesh::new(cp, namespaces, self.proxies())
    }

    pub fn pod(&self, namespace: &str, name: &str) -> &Pod {
        self.pods
            .iter()
            .find(|p| p.metadata.namespace.as_deref() == Some(namespace) && p.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no pod {namespace}/{name} in the fixture"))
    }

    /// Set (or with `None` remove) a namespace label, as `kubectl label ns` does.
    pub fn label_namespace(&mut self, namespace: &str, key: &str, value: Option<&str>) {
        let ns = self
            .namespaces
            .iter_mut()
            .find(|n| n.metadata.name.as_deref() == Some(namespace))
            .unwrap_or_else(|| panic!("no namespace {namespace} in the fixture"));
        let labels = ns.metadata.labels.get_or_insert_with(Default::default);
        match value {
            Some(v) => labels.insert(key.to_string(), v.to_string()),
            None => labels.remove(key),
        };
    }
}
