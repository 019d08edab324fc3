//! Read what a roll is planned from: the mesh (`shared::collect::read_mesh`), every
//! workload object of the kinds a roll restarts, with what would stop a restart from
//! replacing its pods and what a restart does to its ready pods, and the
//! PodDisruptionBudgets of the namespaces in scope.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use shared::model::Mesh;
use shared::model::selector::Labels;
use shared::rollout::Rollout;
use shared::{Connection, Scope, collect};

use crate::availability::{Budget, Shape, Strategy};
use crate::plan::{Found, Key, Objects};

/// The mesh in scope and the workload objects `-l` selects (all without it), read at once.
pub(crate) async fn read(conn: &Connection, scope: &Scope, selector: Option<&str>) -> shared::Result<(Mesh, Objects)> {
    tokio::try_join!(collect::read_mesh(conn, scope), workloads(conn, scope, selector))
}

/// The Deployments, StatefulSets and DaemonSets, and the budgets.
async fn workloads(conn: &Connection, scope: &Scope, selector: Option<&str>) -> shared::Result<Objects> {
    let params = match selector {
        Some(s) => ListParams::default().labels(s),
        None => ListParams::default(),
    };
    let (deployments, statefulsets, daemonsets) = tokio::try_join!(
        objects::<Deployment>(conn, scope, &params),
        objects::<StatefulSet>(conn, scope, &params),
        objects::<DaemonSet>(conn, scope, &params),
    )
    .map_err(|e| invalid_selector(e, selector))?;
    let found = deployments.into_iter().chain(statefulsets).chain(daemonsets).collect();
    Ok(Objects {
        found,
        budgets: budgets(conn, scope).await?,
    })
}

/// One list per namespace in scope (one for all namespaces with -A), each with the words
/// its errors name it by.
fn apis<K>(conn: &Connection, scope: &Scope) -> Vec<(Api<K>, String)>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()> + k8s_openapi::Resource,
{
    let plural = K::URL_PATH_SEGMENT;
    match scope {
        Scope::All => vec![(Api::all(conn.client.clone()), format!("{plural} in all namespaces"))],
        Scope::Namespaces(names) => names
            .iter()
            .map(|n| {
                (
                    Api::namespaced(conn.client.clone(), n),
                    format!("{plural} in namespace {n:?}"),
                )
            })
            .collect(),
    }
}

/// Every object of one kind in scope, keyed as the plan looks it up, with its restart
/// blocker and shape.
async fn objects<K: Rollout + Shaped>(
    conn: &Connection,
    scope: &Scope,
    params: &ListParams,
) -> shared::Result<Vec<(Key, Found)>> {
    let mut found = Vec::new();
    for (api, what) in apis::<K>(conn, scope) {
        for o in collect::list_all(conn, &api, params.clone(), &what).await? {
            let meta = o.meta();
            let key = (
                meta.namespace.clone().unwrap_or_default(),
                K::KIND.to_string(),
                meta.name.clone().unwrap_or_default(),
            );
            let blocker = o.restart_blocker();
            found.push((
                key,
                Found {
                    blocker,
                    shape: o.shape(),
                },
            ));
        }
    }
    Ok(found)
}

/// The PodDisruptionBudgets in scope (never narrowed by -l: they select pods, not
/// workloads).
async fn budgets(conn: &Connection, scope: &Scope) -> shared::Result<Vec<Budget>> {
    let mut out = Vec::new();
    for (api, what) in apis::<PodDisruptionBudget>(conn, scope) {
        for b in collect::list_all(conn, &api, ListParams::default(), &what).await? {
            out.push(budget(&b));
        }
    }
    Ok(out)
}

fn budget(b: &PodDisruptionBudget) -> Budget {
    let spec = b.spec.clone().unwrap_or_default();
    let observed = b.status.as_ref().and_then(|s| {
        let current = s.observed_generation.unwrap_or(0) >= b.metadata.generation.unwrap_or(0);
        (current && s.observed_generation.is_some()).then_some((s.current_healthy, s.desired_healthy))
    });
    Budget {
        namespace: b.metadata.namespace.clone().unwrap_or_default(),
        name: b.metadata.name.clone().unwrap_or_default(),
        selector: spec.selector,
        min_available: spec.min_available,
        max_unavailable: spec.max_unavailable,
        observed,
    }
}

/// The facts of a workload object that say what a restart does to its ready pods.
trait Shaped {
    fn shape(&self) -> Shape;
}

fn template_labels(t: &PodTemplateSpec) -> Labels {
    t.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default()
}

impl Shaped for Deployment {
    fn shape(&self) -> Shape {
        let spec = self.spec.clone().unwrap_or_default();
        let strategy = spec.strategy.unwrap_or_default();
        let rolling = strategy.rolling_update.unwrap_or_default();
        Shape {
            replicas: spec.replicas.unwrap_or(1),
            ready: self.ready_replicas(),
            strategy: match strategy.type_.as_deref() {
                Some("Recreate") => Strategy::Recreate,
                _ => Strategy::Rolling {
                    max_surge: rolling.max_surge,
                    max_unavailable: rolling.max_unavailable,
                },
            },
            labels: template_labels(&spec.template),
        }
    }
}

impl Shaped for StatefulSet {
    fn shape(&self) -> Shape {
        let spec = self.spec.clone().unwrap_or_default();
        let strategy = spec.update_strategy.unwrap_or_default();
        Shape {
            replicas: spec.replicas.unwrap_or(1),
            ready: self.ready_replicas(),
            strategy: match strategy.type_.as_deref() {
                Some("OnDelete") => Strategy::Unchanged,
                _ => Strategy::Ordered {
                    max_unavailable: strategy.rolling_update.and_then(|r| r.max_unavailable),
                },
            },
            labels: template_labels(&spec.template),
        }
    }
}

impl Shaped for DaemonSet {
    fn shape(&self) -> Shape {
        let spec = self.spec.clone().unwrap_or_default();
        let strategy = spec.update_strategy.unwrap_or_default();
        let rolling = strategy.rolling_update.unwrap_or_default();
        Shape {
            replicas: self.status.as_ref().map_or(0, |s| s.desired_number_scheduled),
            ready: self.ready_replicas(),
            strategy: match strategy.type_.as_deref() {
                Some("OnDelete") => Strategy::Unchanged,
                _ => Strategy::PerNode {
                    max_surge: rolling.max_surge,
                    max_unavailable: rolling.max_unavailable,
                },
            },
            labels: template_labels(&spec.template),
        }
    }
}

/// A list refused with 400 when `-l` was given: the selector is malformed, a usage error.
fn invalid_selector(err: shared::Error, selector: Option<&str>) -> shared::Error {
    match (err, selector) {
        (shared::Error::Api { code: 400, message, .. }, Some(s)) => {
            shared::Error::Usage(format!("-l {s:?} is not a valid label selector: {message}"))
        }
        (err, _) => err,
    }
}
