//! The API calls that change the cluster: conditional namespace patches, each read again and
//! decided again on a 409 Conflict, and the writes of a tag change.

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::access::Need;
use shared::output::DryRun;
use shared::{Connection, error::api_error};

use crate::plan::NamespaceState;
use crate::plan::namespaces::{self, Decision, Planned};
use crate::plan::tags::{Object, ObjectAction, Write};

/// A conflict re-reads the namespace and decides again, at most this many times.
const ATTEMPTS: usize = 5;

/// What became of one namespace: its last decision, taken on the namespace as last read.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) namespace: NamespaceState,
    pub(crate) decision: Decision,
    /// How many times a concurrent change made us read and decide again.
    pub(crate) conflicts: usize,
    /// Why the change was not written, if it was not.
    pub(crate) failure: Option<Failure>,
}

#[derive(Debug)]
pub(crate) enum Failure {
    /// The namespace could not be read again after a conflict.
    Reread(String),
    /// The patch was refused.
    Patch(String),
}

/// Write every change, one namespace after another. `decide` is asked again about a
/// namespace read again after a conflict.
pub(crate) async fn relabel(
    conn: &Connection,
    planned: Vec<Planned>,
    decide: impl Fn(&NamespaceState) -> Decision,
    dry_run: DryRun,
) -> Vec<Attempt> {
    let api = Api::<Namespace>::all(conn.client.clone());
    let mut out = Vec::with_capacity(planned.len());
    for p in planned {
        out.push(relabel_one(conn, &api, p, &decide, dry_run).await);
    }
    out
}

async fn relabel_one(
    conn: &Connection,
    api: &Api<Namespace>,
    planned: Planned,
    decide: &impl Fn(&NamespaceState) -> Decision,
    dry_run: DryRun,
) -> Attempt {
    let mut attempt = Attempt {
        namespace: planned.namespace,
        decision: planned.decision,
        conflicts: 0,
        failure: None,
    };
    let params = PatchParams {
        dry_run: dry_run.server(),
        ..PatchParams::default()
    };
    loop {
        let Decision::Change { to, remember, .. } = &attempt.decision else {
            return attempt;
        };
        if !dry_run.sends() {
            return attempt;
        }
        pause_for_tests();
        let name = attempt.namespace.name.clone();
        let body = namespaces::patch(&attempt.namespace, to, remember.as_ref());
        match api.patch(&name, &params, &Patch::Merge(&body)).await {
            Ok(_) => return attempt,
            Err(kube::Error::Api(s)) if s.code == 409 && attempt.conflicts + 1 < ATTEMPTS => {
                match api.get_opt(&name).await {
                    Ok(Some(fresh)) => {
                        attempt.conflicts += 1;
                        attempt.namespace = NamespaceState::from_namespace(&fresh);
                        attempt.decision = decide(&attempt.namespace);
                    }
                    Ok(None) => {
                        attempt.failure = Some(Failure::Reread("deleted while relabeling".into()));
                        return attempt;
                    }
                    Err(e) => {
                        let err = api_error(e, &conn.url, format!("get namespace {name}"));
                        attempt.failure = Some(Failure::Reread(err.to_string()));
                        return attempt;
                    }
                }
            }
            Err(e) => {
                let err = api_error(e, &conn.url, format!("patch namespace {name}"));
                attempt.failure = Some(Failure::Patch(err.to_string()));
                return attempt;
            }
        }
    }
}

/// Tests widen the window between read and write to provoke a concurrent edit.
fn pause_for_tests() {
    if let Some(ms) = std::env::var("KUBECTL_MESH_TEST_PAUSE_BEFORE_WRITE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// One object of a tag change, as reported.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Written {
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<String>,
    pub(crate) action: ObjectAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// Send the writes of a tag change in order (none with a client dry run): creates, and
/// replaces and deletes conditional on the resourceVersion read.
///
/// # Errors
///
/// When the first write fails: nothing else is sent then, so a failure changes nothing. A
/// later object that fails is reported as failed.
pub(crate) async fn tag(conn: &Connection, writes: Vec<Write>, dry_run: DryRun) -> shared::Result<Vec<Written>> {
    let mut out = Vec::with_capacity(writes.len());
    for (i, w) in writes.into_iter().enumerate() {
        let error = match &w.object {
            Ok(object) if dry_run.sends() => send(conn, &w, object, dry_run).await.err().map(|e| {
                let verb = if w.action == ObjectAction::Deleted {
                    "delete"
                } else {
                    "write"
                };
                api_error(e, &conn.url, format!("{verb} {} {}", w.kind.to_lowercase(), w.name))
            }),
            Ok(_) => None,
            Err(_) => None,
        };
        let error = match (error, w.object) {
            (Some(e), _) | (None, Err(e)) if i == 0 => return Err(e),
            (Some(e), _) | (None, Err(e)) => Some(e.to_string()),
            (None, Ok(_)) => None,
        };
        out.push(Written {
            kind: w.kind,
            name: w.name,
            namespace: w.namespace,
            action: if error.is_some() {
                ObjectAction::Failed
            } else {
                w.action
            },
            error,
        });
    }
    Ok(out)
}

async fn send(conn: &Connection, w: &Write, object: &Object, dry_run: DryRun) -> Result<(), kube::Error> {
    let client = conn.client.clone();
    let ns = w.namespace.as_deref().unwrap_or_default();
    match object {
        Object::Webhook(o) => write(Api::<MutatingWebhookConfiguration>::all(client), w, o, dry_run).await,
        Object::Service(o) => write(Api::<Service>::namespaced(client, ns), w, o, dry_run).await,
        Object::Validator(o) => write(Api::<ValidatingWebhookConfiguration>::all(client), w, o, dry_run).await,
    }
}

/// Create, delete (conditional on the resourceVersion and uid read) or replace (conditional
/// on the resourceVersion the object carries).
async fn write<K>(api: Api<K>, w: &Write, object: &K, dry_run: DryRun) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let post = PostParams {
        dry_run: dry_run.server(),
        ..PostParams::default()
    };
    match w.action {
        ObjectAction::Created => api.create(&post, object).await.map(drop),
        ObjectAction::Deleted => {
            let params = DeleteParams {
                dry_run: dry_run.server(),
                preconditions: Some(Preconditions {
                    resource_version: object.meta().resource_version.clone(),
                    uid: object.meta().uid.clone(),
                }),
                ..DeleteParams::default()
            };
            api.delete(&w.name, &params).await.map(drop)
        }
        _ => api.replace(&w.name, &post, object).await.map(drop),
    }
}

/// Every request relabeling the planned namespaces will make, for
/// [`shared::access::check`]: a patch of each namespace to change (and, after a conflict, a
/// read of it). A client dry run sends nothing.
pub(crate) fn namespace_needs(planned: &[Planned], dry_run: DryRun) -> Vec<Need> {
    if !dry_run.sends() {
        return vec![];
    }
    planned
        .iter()
        .filter(|p| matches!(p.decision, Decision::Change { .. }))
        .flat_map(|p| ["patch", "get"].map(|verb| Need::new(verb, "", "namespaces").name(&p.namespace.name)))
        .collect()
}

/// Every request a tag change will make, for [`shared::access::check`]: the reads of its
/// companions (the Services of `namespace`, the `validator`), then each write as [`tag`]
/// sends it (a create, a delete, or a replace, which is an update). A client dry run sends
/// nothing.
pub(crate) fn tag_needs((namespace, validator): (&str, Option<&str>), writes: &[Write], dry_run: DryRun) -> Vec<Need> {
    if !dry_run.sends() {
        return vec![];
    }
    let webhooks = |verb, resource| Need::new(verb, "admissionregistration.k8s.io", resource);
    let mut out = vec![Need::new("list", "", "services").namespace(Some(namespace))];
    out.extend(validator.map(|v| webhooks("get", "validatingwebhookconfigurations").name(v)));
    for w in writes {
        let verb = match w.action {
            ObjectAction::Created => "create",
            ObjectAction::Deleted => "delete",
            _ => "update",
        };
        let need = match w.kind {
            "Service" => Need::new(verb, "", "services").namespace(w.namespace.as_deref()),
            "ValidatingWebhookConfiguration" => webhooks(verb, "validatingwebhookconfigurations"),
            _ => webhooks(verb, "mutatingwebhookconfigurations"),
        };
        out.push(need.name(&w.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{canary, ns};
    use crate::plan::namespaces::{Chosen, Request};

    fn lines(needs: &[Need]) -> Vec<String> {
        needs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn namespace_needs_are_a_patch_of_each_namespace_changed() {
        let cp = canary();
        let namespaces = [ns("default", Some("1-27"), None), ns("other", Some("1-28"), None)];
        let request = Request::new(Some("1-28"), None, false, &cp).unwrap();
        let planned = crate::plan::namespaces::plan(&namespaces, Chosen::Named, &request, &cp);
        assert_eq!(
            lines(&namespace_needs(&planned, DryRun::None)),
            ["patch namespaces default", "get namespaces default"],
            "other is on 1-28 already"
        );
        assert_eq!(
            namespace_needs(&planned, DryRun::Server),
            namespace_needs(&planned, DryRun::None)
        );
        assert!(namespace_needs(&planned, DryRun::Client).is_empty());
    }

    #[test]
    fn tag_needs_are_the_companion_reads_and_each_write() {
        let write = |kind, name: &str, namespace: Option<&str>, action| Write {
            kind,
            name: name.into(),
            namespace: namespace.map(Into::into),
            action,
            object: Err(shared::Error::Usage("not built in this test".into())),
        };
        // Moving `default` where neither its Service nor the validator exists, the
        // unrevisioned injector deactivated.
        let writes = [
            write(
                "MutatingWebhookConfiguration",
                "istio-revision-tag-default",
                None,
                ObjectAction::Replaced,
            ),
            write(
                "MutatingWebhookConfiguration",
                "istio-sidecar-injector",
                None,
                ObjectAction::Deactivated,
            ),
            write(
                "Service",
                "istiod-revision-tag-default",
                Some("istio-system"),
                ObjectAction::Created,
            ),
            write(
                "ValidatingWebhookConfiguration",
                "istiod-default-validator",
                None,
                ObjectAction::Created,
            ),
        ];
        let companions = ("istio-system", Some("istiod-default-validator"));
        assert_eq!(
            lines(&tag_needs(companions, &writes, DryRun::Server)),
            [
                "list services in namespace istio-system",
                "get validatingwebhookconfigurations.admissionregistration.k8s.io istiod-default-validator",
                "update mutatingwebhookconfigurations.admissionregistration.k8s.io istio-revision-tag-default",
                "update mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector",
                "create services in namespace istio-system",
                "create validatingwebhookconfigurations.admissionregistration.k8s.io",
            ]
        );
        // Removing a tag: its configuration and Service deleted, no validator read.
        let writes = [
            write(
                "MutatingWebhookConfiguration",
                "istio-revision-tag-prod",
                None,
                ObjectAction::Deleted,
            ),
            write(
                "Service",
                "istiod-revision-tag-prod",
                Some("istio-system"),
                ObjectAction::Deleted,
            ),
        ];
        assert_eq!(
            lines(&tag_needs(("istio-system", None), &writes, DryRun::None)),
            [
                "list services in namespace istio-system",
                "delete mutatingwebhookconfigurations.admissionregistration.k8s.io istio-revision-tag-prod",
                "delete services istiod-revision-tag-prod in namespace istio-system",
            ]
        );
        assert!(tag_needs(companions, &writes, DryRun::Client).is_empty());
    }
}
