//! The writes of a tag change against what the real `istioctl tag set` of Istio 1.28.3 left
//! on the sandbox's scenarios (`tests/sandbox/istio/istioctl-tags/`, saved by
//! `tests/sandbox/istio/generate-tags`): the same labels, annotations, webhooks and Service,
//! the unrevisioned injector deactivated the same way; and an undo that puts back exactly
//! what was there.

use std::path::PathBuf;

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use serde_json::{Value, json};
use shared::model::ControlPlane;

use super::super::fixtures::ns;
use super::super::{NamespaceState, PREVIOUS};
use super::{Following, Object, ObjectAction, TagRequest, TagResult, Write, plan, writes};
use crate::read::{Companions, TagCluster};

const MWC: &str = "MutatingWebhookConfiguration";
const VWC: &str = "ValidatingWebhookConfiguration";

/// `tests/sandbox/istio`.
fn istio_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|p| p.join("tests/sandbox/istio"))
        .find(|p| p.is_dir())
        .expect("tests/sandbox/istio above the crate")
}

fn docs(file: &str) -> Vec<Value> {
    let path = istio_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{}: {e}", v["metadata"]["name"]))
}

/// A cluster as the scenario's install left it: its istiods ready.
#[derive(Clone)]
struct World {
    deployments: Vec<Deployment>,
    configmaps: Vec<ConfigMap>,
    webhooks: Vec<MutatingWebhookConfiguration>,
    validators: Vec<ValidatingWebhookConfiguration>,
    services: Vec<Service>,
    namespaces: Vec<NamespaceState>,
}

impl World {
    fn load(files: &[&str], namespaces: Vec<NamespaceState>) -> World {
        let mut w = World {
            deployments: vec![],
            configmaps: vec![],
            webhooks: vec![],
            validators: vec![],
            services: vec![],
            namespaces,
        };
        for doc in files.iter().flat_map(|f| docs(f)) {
            match doc["kind"].as_str().unwrap_or_default() {
                "Deployment" => {
                    let mut d = doc.clone();
                    d["metadata"]["generation"] = json!(1);
                    d["status"] =
                        json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1});
                    w.deployments.push(typed(&d));
                }
                "ConfigMap" => w.configmaps.push(typed(&doc)),
                "MutatingWebhookConfiguration" => w.webhooks.push(typed(&doc)),
                "ValidatingWebhookConfiguration" => w.validators.push(typed(&doc)),
                "Service" => w.services.push(typed(&doc)),
                _ => {}
            }
        }
        w
    }

    fn cluster(&self) -> TagCluster {
        TagCluster {
            control_plane: ControlPlane::from_objects(&self.deployments, &self.configmaps, &self.webhooks),
            webhooks: self.webhooks.clone(),
            namespaces: self.namespaces.clone(),
        }
    }

    fn companions(&self) -> Companions {
        Companions {
            services: Ok(self.services.clone()),
            validator: Ok(self
                .validators
                .iter()
                .find(|v| v.metadata.name.as_deref() == Some(shared::tag::DEFAULT_VALIDATOR))
                .cloned()),
        }
    }

    /// `relabel --tag <tag> ...` on this cluster: what becomes of the tag, the namespaces
    /// that follow it, and the writes.
    fn relabel(&self, tag: &str, request: TagRequest<'_>) -> (TagResult, Vec<Following>, Vec<Write>) {
        let cluster = self.cluster();
        let p = plan(tag, request, &cluster, false).unwrap().expect("a plan");
        let w = writes(&p, &cluster.webhooks, self.companions(), false).unwrap();
        (p.result, p.following.clone(), w)
    }

    /// The cluster once the writes are done.
    fn apply(&mut self, writes: &[Write]) {
        fn put<T: Clone>(list: &mut Vec<T>, name: &str, o: &T, action: ObjectAction, name_of: fn(&T) -> Option<&str>) {
            list.retain(|x| name_of(x) != Some(name));
            if action != ObjectAction::Deleted {
                list.push(o.clone());
            }
        }
        for w in writes {
            match w.object.as_ref().unwrap() {
                Object::Webhook(o) => put(&mut self.webhooks, &w.name, o, w.action, |x| x.metadata.name.as_deref()),
                Object::Service(o) => put(&mut self.services, &w.name, o, w.action, |x| x.metadata.name.as_deref()),
                Object::Validator(o) => put(&mut self.validators, &w.name, o, w.action, |x| {
                    x.metadata.name.as_deref()
                }),
            }
        }
    }

    /// The webhook configurations, validators and Services, in name order.
    fn objects(&self) -> Value {
        let sorted = |mut v: Vec<Value>| {
            v.sort_by_key(|o| o["metadata"]["name"].as_str().unwrap_or_default().to_string());
            Value::Array(v)
        };
        let values = |v: Vec<Value>| sorted(v);
        json!({
            "webhooks": values(self.webhooks.iter().map(|o| serde_json::to_value(o).unwrap()).collect()),
            "validators": values(self.validators.iter().map(|o| serde_json::to_value(o).unwrap()).collect()),
            "services": values(self.services.iter().map(|o| serde_json::to_value(o).unwrap()).collect()),
        })
    }

    fn webhook(&self, name: &str) -> Option<&MutatingWebhookConfiguration> {
        self.webhooks.iter().find(|w| w.metadata.name.as_deref() == Some(name))
    }
}

/// A saved object of `file`.
fn saved(file: &str, kind: &str, name: &str) -> Value {
    docs(file)
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {file}"))
}

/// A webhook without what the API server fills in (`matchPolicy`, `timeoutSeconds`, rule
/// `scope`, service port 443, empty selectors) and without the CA bundle, which the saved
/// state drops (the sandbox injector writes its own).
fn webhook(mut w: Value) -> Value {
    let o = w.as_object_mut().unwrap();
    o.remove("matchPolicy");
    o.remove("timeoutSeconds");
    for s in ["namespaceSelector", "objectSelector"] {
        if o.get(s) == Some(&json!({})) {
            o.remove(s);
        }
    }
    let cc = o.get_mut("clientConfig").unwrap().as_object_mut().unwrap();
    cc.remove("caBundle");
    if let Some(svc) = cc.get_mut("service").and_then(Value::as_object_mut)
        && svc.get("port") == Some(&json!(443))
    {
        svc.remove("port");
    }
    for r in o.get_mut("rules").and_then(Value::as_array_mut).into_iter().flatten() {
        r.as_object_mut().unwrap().remove("scope");
    }
    w
}

/// What istioctl decides of an object: labels, annotations (ours left out), and its
/// webhooks or, for a Service, its selector and ports. The Service's chart version labels
/// are left out: the saved istioctl was built from source, whose charts say 1.0.0.
fn decided(v: &Value) -> Value {
    let mut labels = v["metadata"]["labels"].clone();
    let mut annotations = v["metadata"]["annotations"].clone();
    if let Some(a) = annotations.as_object_mut() {
        a.remove(PREVIOUS);
    }
    if annotations == json!({}) {
        annotations = Value::Null;
    }
    if v["kind"] == "Service" || v.get("spec").is_some() {
        let l = labels.as_object_mut().unwrap();
        l.remove("app.kubernetes.io/version");
        l.remove("helm.sh/chart");
        let ports: Vec<Value> = v["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                json!({"name": p["name"], "port": p["port"], "protocol": p["protocol"],
                "targetPort": if p["targetPort"].is_null() { p["port"].clone() } else { p["targetPort"].clone() }})
            })
            .collect();
        return json!({"labels": labels, "annotations": annotations, "selector": v["spec"]["selector"], "ports": ports});
    }
    let hooks: Vec<Value> = v["webhooks"].as_array().unwrap().iter().cloned().map(webhook).collect();
    json!({"labels": labels, "annotations": annotations, "webhooks": hooks})
}

fn written(w: &Write) -> Value {
    let (kind, mut v) = match w.object.as_ref().unwrap() {
        Object::Webhook(o) => ("MutatingWebhookConfiguration", serde_json::to_value(o).unwrap()),
        Object::Service(o) => ("Service", serde_json::to_value(o).unwrap()),
        Object::Validator(o) => ("ValidatingWebhookConfiguration", serde_json::to_value(o).unwrap()),
    };
    v["kind"] = json!(kind);
    v
}

/// Each write equals what istioctl left in `file`.
fn assert_as_istioctl(file: &str, writes: &[Write]) {
    for w in writes {
        let expected = saved(file, w.kind, &w.name);
        assert_eq!(
            decided(&written(w)),
            decided(&expected),
            "{} {} differs from what istioctl wrote ({file})",
            w.kind,
            w.name
        );
    }
}

fn done(writes: &[Write]) -> Vec<(&str, &str, ObjectAction)> {
    writes.iter().map(|w| (w.kind, w.name.as_str(), w.action)).collect()
}

const FROM_DEFAULT: &[&str] = &[
    "helm/default-base-1.27.4.yaml",
    "helm/default-istiod-1.27.4.yaml",
    "helm/istiod-1-28.yaml",
];

#[test]
fn moving_default_off_an_unrevisioned_helm_install_deactivates_its_injector_as_istioctl_does() {
    let before = World::load(FROM_DEFAULT, vec![ns("default", None, Some("enabled"))]);
    let (result, following, w) = before.relabel("default", TagRequest::To("1-28"));
    assert_eq!(result, TagResult::Created);
    assert_eq!(
        following,
        [Following {
            namespace: "default".into(),
            via: "istio-injection=enabled".into()
        }]
    );
    assert_eq!(
        done(&w),
        [
            (MWC, "istio-revision-tag-default", ObjectAction::Created),
            (MWC, "istio-sidecar-injector", ObjectAction::Deactivated),
            ("Service", "istiod-revision-tag-default", ObjectAction::Created),
            (VWC, "istiod-default-validator", ObjectAction::Replaced),
        ]
    );
    assert_as_istioctl("istioctl-tags/from-default-default-1-28.yaml", &w);
    let Ok(Object::Service(svc)) = &w[2].object else {
        panic!()
    };
    assert_eq!(
        svc.metadata.labels.as_ref().unwrap()["helm.sh/chart"],
        "istiod-1.28.3",
        "the chart of the istioctl released with the revision"
    );
    let tag = written(&w[0]);
    assert_eq!(
        tag["metadata"]["annotations"][PREVIOUS],
        r#"{"created":true,"deactivated":"istio-sidecar-injector"}"#
    );

    // Undo: the injector's selectors, the validator as Helm wrote it, no tag left.
    let mut after = before.clone();
    after.apply(&w);
    let (result, _, undo) = after.relabel("default", TagRequest::Undo);
    assert_eq!(result, TagResult::Removed);
    assert_eq!(
        done(&undo),
        [
            (MWC, "istio-sidecar-injector", ObjectAction::Restored),
            (MWC, "istio-revision-tag-default", ObjectAction::Deleted),
            ("Service", "istiod-revision-tag-default", ObjectAction::Deleted),
            (VWC, "istiod-default-validator", ObjectAction::Restored),
        ]
    );
    after.apply(&undo);
    assert_eq!(after.objects(), before.objects(), "exactly as they were");
}

const CANARY: &[&str] = &["revision-1-27.yaml", "tag-default-1-27.yaml", "revision-1-28.yaml"];

/// The canary cluster, and `relabel --tag prod --to 1-27` there.
fn canary_prod() -> (World, Vec<Write>) {
    let world = World::load(CANARY, vec![ns("default", Some("1-27"), None)]);
    let (result, _, w) = world.relabel("prod", TagRequest::To("1-27"));
    assert_eq!(result, TagResult::Created);
    (world, w)
}

#[test]
fn a_new_tag_on_an_istioctl_install_is_written_and_removed_as_istioctl_does() {
    let (mut world, w) = canary_prod();
    assert_eq!(
        done(&w),
        [
            (MWC, "istio-revision-tag-prod", ObjectAction::Created),
            ("Service", "istiod-revision-tag-prod", ObjectAction::Created),
        ]
    );
    assert_as_istioctl("istioctl-tags/canary-1-prod.yaml", &w);
    let labels = &written(&w[0])["metadata"]["labels"];
    let keys = labels.as_object().unwrap().keys();
    assert!(
        keys.into_iter().all(|k| !k.contains("operator.istio.io")),
        "a tag is user-managed: istioctl uninstall --revision 1-27 leaves it ({labels})"
    );
    world.apply(&w);

    // istioctl tag remove prod.
    let (result, _, w) = world.relabel("prod", TagRequest::Remove);
    assert_eq!(result, TagResult::Removed);
    assert_eq!(
        done(&w),
        [
            (MWC, "istio-revision-tag-prod", ObjectAction::Deleted),
            ("Service", "istiod-revision-tag-prod", ObjectAction::Deleted),
        ]
    );
}

#[test]
fn the_install_made_default_tag_is_moved_as_istioctl_moves_it_and_back() {
    let (mut world, w) = canary_prod();
    world.apply(&w);
    // It keeps its operator labels, as istioctl's apply does.
    let before = world.clone();
    let (result, _, w) = world.relabel("default", TagRequest::To("1-28"));
    assert_eq!(result, TagResult::Moved);
    assert_eq!(
        done(&w),
        [
            (MWC, "istio-revision-tag-default", ObjectAction::Replaced),
            ("Service", "istiod-revision-tag-default", ObjectAction::Created),
            (VWC, "istiod-default-validator", ObjectAction::Replaced),
        ]
    );
    assert_as_istioctl("istioctl-tags/canary-2-default-1-28.yaml", &w);
    world.apply(&w);

    // Undo points it back, removes the Service it made, and puts the validator back.
    let (result, _, undo) = world.relabel("default", TagRequest::Undo);
    assert_eq!(result, TagResult::Moved);
    assert_eq!(
        done(&undo),
        [
            (MWC, "istio-revision-tag-default", ObjectAction::Replaced),
            ("Service", "istiod-revision-tag-default", ObjectAction::Deleted),
            (VWC, "istiod-default-validator", ObjectAction::Restored),
        ]
    );
    world.apply(&undo);
    let tag = |w: &World| decided(&json!(w.webhook("istio-revision-tag-default").unwrap()));
    assert_eq!(tag(&world), tag(&before), "the default tag as the install made it");
    assert_eq!(world.objects()["validators"], before.objects()["validators"]);
    assert_eq!(world.objects()["services"], before.objects()["services"]);
}
