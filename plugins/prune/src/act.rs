//! The deletes, one object at a time in the plan's order, as istioctl's `DeleteResource`
//! (operator/pkg/uninstall/prune.go) sends them: foreground propagation, a missing object is
//! no error. Unlike istioctl, each delete carries the uid read (so an object recreated since
//! is left alone) and waits on a watch until the object is gone. Ctrl-C or SIGTERM stops it
//! as it stops a roll: no delete is sent after the signal, the wait for the object being
//! deleted ends, and what is left is reported.

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Preconditions};
use kube::runtime::wait::{await_condition, conditions};
use serde::Serialize;
use shared::Connection;
use shared::cli::{Signal, stop_signal};
use shared::error::api_error;
use shared::output::DryRun;
use tokio::sync::watch;

use crate::plan::{self, Item};

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub(crate) enum Outcome {
    /// Gone (or, with `--dry-run=server`, accepted by the API server).
    Deleted,
    /// Already deleted by someone else.
    AlreadyGone,
    /// Not deleted, or not gone in time.
    Failed { error: String },
    /// Its delete was sent, then Ctrl-C or SIGTERM stopped prune before it was gone: its
    /// deletion goes on in the cluster.
    Interrupted,
    /// Not sent: Ctrl-C or SIGTERM stopped prune before its turn.
    NotStarted,
}

impl Outcome {
    /// Whether a signal cut this object's delete short.
    pub(crate) fn stopped(&self) -> bool {
        matches!(self, Outcome::Interrupted | Outcome::NotStarted)
    }
}

/// One planned object and its outcome.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Deletion {
    #[serde(flatten)]
    pub(crate) item: Item,
    #[serde(flatten)]
    pub(crate) outcome: Outcome,
}

/// Delete every item in order; `done` sees each outcome as it comes. After Ctrl-C or
/// SIGTERM no delete is sent: the object being waited for is left to its deletion, the rest
/// are not started. Returns every item's outcome and the signal, when one cut the run short.
pub(crate) async fn delete_all(
    conn: &Connection,
    items: &[Item],
    dry_run: DryRun,
    timeout: Duration,
    mut done: impl FnMut(&Deletion),
) -> (Vec<Deletion>, Option<Signal>) {
    let (signal_tx, mut signal) = watch::channel(None);
    let listener = tokio::spawn(async move {
        if let Some(s) = stop_signal().await {
            let _ = signal_tx.send(Some(s));
        }
    });
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let outcome = if signal.borrow().is_some() {
            Outcome::NotStarted
        } else {
            delete(conn, it, dry_run, timeout, &mut signal).await
        };
        let deletion = Deletion {
            item: it.clone(),
            outcome,
        };
        done(&deletion);
        out.push(deletion);
    }
    listener.abort();
    let stopped = out.iter().any(|d| d.outcome.stopped());
    let signal = *signal.borrow();
    (out, signal.filter(|_| stopped))
}

/// Resolves once Ctrl-C or SIGTERM came; never, if neither can be listened to.
async fn signalled(signal: &mut watch::Receiver<Option<Signal>>) {
    if signal.wait_for(Option::is_some).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Delete with foreground propagation, only the object planned for (uid precondition), and
/// wait on a watch until it is gone, or until a `signal`: the delete itself, one request, is
/// always answered, so that what was sent is known. With `--dry-run=server` the API server
/// runs admission and RBAC and persists nothing, so there is nothing to wait for.
async fn delete(
    conn: &Connection,
    it: &Item,
    dry_run: DryRun,
    timeout: Duration,
    signal: &mut watch::Receiver<Option<Signal>>,
) -> Outcome {
    let Some(k) = plan::resource_kind(&it.kind) else {
        return Outcome::Failed {
            error: format!("{} is not a kind prune deletes", it.kind),
        };
    };
    let ar = k.api_resource();
    let api = match &it.namespace {
        Some(ns) => Api::<DynamicObject>::namespaced_with(conn.client.clone(), ns, &ar),
        None => Api::<DynamicObject>::all_with(conn.client.clone(), &ar),
    };
    let params = DeleteParams {
        dry_run: dry_run.server(),
        preconditions: Some(Preconditions {
            uid: Some(it.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::foreground()
    };
    match api.delete(&it.name, &params).await {
        Ok(_) if dry_run.server() => Outcome::Deleted,
        Ok(_) => tokio::select! {
            gone = wait_until_gone(api, it, timeout) => gone,
            () = signalled(signal) => Outcome::Interrupted,
        },
        Err(kube::Error::Api(s)) if s.code == 404 => Outcome::AlreadyGone,
        Err(kube::Error::Api(s)) if s.code == 409 => Outcome::Failed {
            error: format!(
                "replaced by a new object since it was read ({}); not deleted",
                s.message
            ),
        },
        Err(e) => Outcome::Failed {
            error: api_error(e, &conn.url, format!("delete {it}")).to_string(),
        },
    }
}

async fn wait_until_gone(api: Api<DynamicObject>, it: &Item, timeout: Duration) -> Outcome {
    let wait = await_condition(api, &it.name, conditions::is_deleted(&it.uid));
    match tokio::time::timeout(timeout, wait).await {
        Ok(Ok(_)) => Outcome::Deleted,
        Ok(Err(e)) => Outcome::Failed {
            error: format!("watching {it} until it is gone: {e}"),
        },
        Err(_) => Outcome::Failed {
            error: format!(
                "still there after {}s (foreground deletion waits for its dependents); run the same command again to finish",
                timeout.as_secs()
            ),
        },
    }
}

/// Every request deleting `items` will make, for [`shared::access::check`]: the delete of
/// each, and unless the API server only dry-runs it, the watch until it is gone (a list
/// then a watch by name, as `await_condition` starts it). A client dry run sends nothing.
pub(crate) fn needs(items: &[Item], dry_run: DryRun) -> Vec<shared::access::Need> {
    use shared::access::Need;
    if !dry_run.sends() {
        return vec![];
    }
    let verbs: &[&'static str] = if dry_run.server() {
        &["delete"]
    } else {
        &["delete", "list", "watch"]
    };
    let mut out = vec![];
    for it in items {
        let Some(k) = plan::resource_kind(&it.kind) else {
            continue;
        };
        let ar = k.api_resource();
        for verb in verbs {
            out.push(
                Need::new(verb, &ar.group, &ar.plural)
                    .namespace(it.namespace.as_deref())
                    .name(&it.name),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_are_a_delete_and_a_watch_of_each_object() {
        let item = |kind: &str, namespace: Option<&str>, name: &str| Item {
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
            uid: "u".into(),
        };
        let items = [
            item("MutatingWebhookConfiguration", None, "istio-sidecar-injector-1-27"),
            item("Deployment", Some("istio-system"), "istiod-1-27"),
            item("EnvoyFilter", Some("istio-system"), "stats-filter-1-27"),
        ];
        let lines = |dry_run| -> Vec<String> { needs(&items, dry_run).iter().map(ToString::to_string).collect() };
        assert_eq!(
            lines(DryRun::None),
            [
                "delete mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector-1-27",
                "list mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector-1-27",
                "watch mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector-1-27",
                "delete deployments.apps istiod-1-27 in namespace istio-system",
                "list deployments.apps istiod-1-27 in namespace istio-system",
                "watch deployments.apps istiod-1-27 in namespace istio-system",
                "delete envoyfilters.networking.istio.io stats-filter-1-27 in namespace istio-system",
                "list envoyfilters.networking.istio.io stats-filter-1-27 in namespace istio-system",
                "watch envoyfilters.networking.istio.io stats-filter-1-27 in namespace istio-system",
            ]
        );
        assert_eq!(
            lines(DryRun::Server),
            [
                "delete mutatingwebhookconfigurations.admissionregistration.k8s.io istio-sidecar-injector-1-27",
                "delete deployments.apps istiod-1-27 in namespace istio-system",
                "delete envoyfilters.networking.istio.io stats-filter-1-27 in namespace istio-system",
            ]
        );
        assert!(lines(DryRun::Client).is_empty());
    }

    #[test]
    fn results_read_like_before() {
        let item = Item {
            kind: "Service".into(),
            namespace: Some("istio-system".into()),
            name: "istiod-1-27".into(),
            uid: "u".into(),
        };
        let row = |outcome| {
            serde_json::to_value(Deletion {
                item: item.clone(),
                outcome,
            })
            .unwrap()
        };
        assert_eq!(
            row(Outcome::AlreadyGone),
            serde_json::json!({"kind": "Service", "namespace": "istio-system", "name": "istiod-1-27", "result": "alreadyGone"})
        );
        let failed = row(Outcome::Failed { error: "no".into() });
        assert_eq!(failed["result"], "failed");
        assert_eq!(failed["error"], "no");
    }
}
