//! The kinds of workload a roll restarts, each through one trait ([`Rollout`]): when its
//! rollout is done, by kubectl's own rules (`pkg/polymorphichelpers/rollout_status.go`),
//! the restart `kubectl rollout restart` sends (`pkg/polymorphichelpers/objectrestarter.go`),
//! and which pods its current template made. Everything but [`Rollout::new_pods`] is a
//! plain function of the object, with no API call.
//!
//! The one rule kube-runtime's `is_deployment_completed` misses: nothing is decided before
//! the controller has observed the object's current generation, so the status read right
//! after a restart patch (still describing the previous template) never counts as done.

use std::fmt::Debug;
use std::future::Future;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ListParams};
use kube::core::Selector;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::labels::RESTARTED_AT;

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "message", rename_all = "camelCase")]
pub enum Status {
    /// Every replica runs the current template and is available.
    Done,
    /// Still going; kubectl's words for what it waits on.
    Waiting(String),
    /// It will not finish by itself (progress deadline exceeded, a strategy without
    /// rollouts).
    Failed(String),
}

/// New replicas ready out of those wanted, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Progress {
    pub ready: i32,
    pub desired: i32,
}

impl Progress {
    /// Updated replicas that are ready (or available) out of those wanted.
    fn new(updated: Option<i32>, ready: Option<i32>, desired: i32) -> Progress {
        Progress {
            ready: updated.unwrap_or(0).min(ready.unwrap_or(0)),
            desired,
        }
    }
}

/// Deployment reason kubectl treats as a failed rollout (`deploymentutil.TimedOutReason`).
pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
const ROLLING_UPDATE: &str = "RollingUpdate";

/// `kubectl rollout status deployment/NAME`, one decision.
pub fn deployment_status(d: &Deployment) -> Status {
    let name = d.metadata.name.as_deref().unwrap_or("");
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = &d.status else {
        return Status::Waiting("Waiting for deployment spec update to be observed...".into());
    };
    if generation > status.observed_generation.unwrap_or(0) {
        return Status::Waiting("Waiting for deployment spec update to be observed...".into());
    }
    let timed_out = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED));
    if timed_out {
        return Status::Failed(format!("deployment {name:?} exceeded its progress deadline"));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(wanted) = d.spec.as_ref().and_then(|s| s.replicas)
        && updated < wanted
    {
        return Status::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {wanted} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return Status::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return Status::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    Status::Done
}

/// New replicas available out of those wanted, once the controller observed the Deployment.
fn deployment_progress(d: &Deployment) -> Option<Progress> {
    let s = d.status.as_ref()?;
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let progress = Progress::new(s.updated_replicas, s.available_replicas, desired);
    observed(&d.metadata, s.observed_generation).then_some(progress)
}

/// `kubectl rollout status statefulset/NAME`, one decision.
pub fn statefulset_status(s: &StatefulSet) -> Status {
    let spec = s.spec.as_ref();
    let strategy = spec.and_then(|s| s.update_strategy.as_ref());
    if let Some(kind) = strategy.and_then(|u| u.type_.as_deref())
        && kind != ROLLING_UPDATE
    {
        return Status::Failed(format!(
            "rollout status is only available for {ROLLING_UPDATE} strategy type (statefulset {:?} uses {kind})",
            s.metadata.name.as_deref().unwrap_or("")
        ));
    }
    let Some(status) = &s.status else {
        return Status::Waiting("Waiting for statefulset spec update to be observed...".into());
    };
    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || s.metadata.generation.unwrap_or(0) > observed {
        return Status::Waiting("Waiting for statefulset spec update to be observed...".into());
    }
    let wanted = spec.and_then(|s| s.replicas);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    if let Some(wanted) = wanted
        && ready < wanted
    {
        return Status::Waiting(format!("Waiting for {} pods to be ready...", wanted - ready));
    }
    // The API server defaults rollingUpdate (partition 0), so this is the usual path.
    if let Some(rolling) = strategy.and_then(|u| u.rolling_update.as_ref()) {
        if let (Some(wanted), Some(partition)) = (wanted, rolling.partition)
            && updated < wanted - partition
        {
            return Status::Waiting(format!(
                "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                wanted - partition
            ));
        }
        return Status::Done;
    }
    if status.update_revision != status.current_revision {
        return Status::Waiting(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {}...",
            status.update_revision.as_deref().unwrap_or("")
        ));
    }
    Status::Done
}

/// New replicas ready out of those wanted, once the controller observed the StatefulSet.
fn statefulset_progress(sts: &StatefulSet) -> Option<Progress> {
    let s = sts.status.as_ref()?;
    let desired = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let progress = Progress::new(s.updated_replicas, s.ready_replicas, desired);
    observed(&sts.metadata, s.observed_generation).then_some(progress)
}

/// `kubectl rollout status daemonset/NAME`, one decision.
pub fn daemonset_status(d: &DaemonSet) -> Status {
    let name = d.metadata.name.as_deref().unwrap_or("");
    if let Some(kind) = d
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        && kind != ROLLING_UPDATE
    {
        return Status::Failed(format!(
            "rollout status is only available for {ROLLING_UPDATE} strategy type (daemon set {name:?} uses {kind})"
        ));
    }
    let Some(status) = &d.status else {
        return Status::Waiting("Waiting for daemon set spec update to be observed...".into());
    };
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Status::Waiting("Waiting for daemon set spec update to be observed...".into());
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < desired {
        return Status::Waiting(format!(
            "Waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new pods have been updated..."
        ));
    }
    if available < desired {
        return Status::Waiting(format!(
            "Waiting for daemon set {name:?} rollout to finish: {available} of {desired} updated pods are available..."
        ));
    }
    Status::Done
}

/// New pods available out of those wanted, once the controller observed the DaemonSet.
fn daemonset_progress(d: &DaemonSet) -> Option<Progress> {
    let s = d.status.as_ref()?;
    let progress = Progress::new(
        s.updated_number_scheduled,
        s.number_available,
        s.desired_number_scheduled,
    );
    observed(&d.metadata, s.observed_generation).then_some(progress)
}

/// The merge patch `kubectl rollout restart` sends: a new pod-template annotation, so the
/// controller rolls every pod. `now` is RFC 3339, as kubectl writes it.
pub fn restart_patch(now: &str) -> serde_json::Value {
    serde_json::json!({
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}
    })
}

/// Whether the controller has observed the object's current generation (a status of 0 never
/// counts).
fn observed(meta: &ObjectMeta, observed_generation: Option<i64>) -> bool {
    observed_generation.is_some_and(|o| o > 0 && o >= meta.generation.unwrap_or(0))
}

fn on_delete(kind: Option<&str>) -> Option<String> {
    kind.filter(|k| *k == "OnDelete")
        .map(|_| "its update strategy is OnDelete: a restart replaces no pod until each is deleted by hand".to_string())
}

/// A StatefulSet's `rollingUpdate.partition` above 0: the controller updates only the pods
/// at or above that ordinal (pkg/controller/statefulset/stateful_set_control.go
/// updateStatefulSet), and kubectl calls the rollout done once they are
/// (rollout_status.go), so the pods below it would keep their old proxy.
fn partitioned(s: &StatefulSet) -> Option<String> {
    let partition = s
        .spec
        .as_ref()?
        .update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()?
        .partition
        .filter(|p| *p > 0)?;
    Some(format!(
        "partitioned (updateStrategy.rollingUpdate.partition {partition}): pods below ordinal {partition} keep their proxy; lower the partition or delete them"
    ))
}

/// The condition a Deployment carries when its ReplicaSet cannot create pods: the
/// ReplicaSet controller sets `ReplicaFailure` (reason `FailedCreate`, the API server's
/// answer as message) on the ReplicaSet (pkg/controller/replicaset/replica_set_utils.go
/// calculateStatus), and the Deployment controller copies it onto the Deployment
/// (pkg/controller/deployment/progress.go syncRolloutStatus). An admission webhook that
/// rejects every new pod shows here within a second.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// `ReplicaFailure` with status True, as `REASON: message`.
pub fn replica_failure(d: &Deployment) -> Option<String> {
    let c = d
        .status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == REPLICA_FAILURE && c.status == "True")?;
    Some(format!(
        "{}: {}",
        c.reason.as_deref().unwrap_or(REPLICA_FAILURE),
        c.message.as_deref().unwrap_or("pods cannot be created")
    ))
}

/// The Deployment annotation its ReplicaSets carry too (`deploymentutil.RevisionAnnotation`).
const DEPLOYMENT_REVISION: &str = "deployment.kubernetes.io/revision";
/// The pod label StatefulSets and DaemonSets mark each pod's revision with.
const REVISION_HASH: &str = "controller-revision-hash";

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

fn controlled_by(meta: &ObjectMeta, uid: Option<&str>) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && Some(r.uid.as_str()) == uid)
}

/// kubectl's text form of a label selector (`app=web,tier in (a,b)`). One the API server
/// would not have accepted reads as empty: it lists everything, and ownership decides.
fn selector_text(s: &LabelSelector) -> String {
    Selector::try_from(s.clone()).map(|s| s.to_string()).unwrap_or_default()
}

/// A list of the workload's own namespace, narrowed by its pod selector.
fn list_in<K: Rollout, T>(workload: &K, client: &kube::Client) -> (Api<T>, ListParams)
where
    T: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    let ns = workload.meta().namespace.as_deref().unwrap_or("default");
    let params = ListParams::default().labels(&workload.selector().map(selector_text).unwrap_or_default());
    (Api::namespaced(client.clone(), ns), params)
}

/// The workload's pods that are not being deleted.
async fn live_pods<K: Rollout>(workload: &K, client: &kube::Client) -> kube::Result<Vec<Pod>> {
    let (api, params) = list_in::<K, Pod>(workload, client);
    let mut pods = api.list(&params).await?.items;
    pods.retain(|p| p.metadata.deletion_timestamp.is_none());
    Ok(pods)
}

/// kubectl's "new ReplicaSet": the Deployment's own, with the Deployment's revision.
fn new_replicaset<'a>(d: &Deployment, sets: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let revision = annotation(&d.metadata, DEPLOYMENT_REVISION);
    let uid = d.metadata.uid.as_deref();
    sets.iter()
        .find(|rs| controlled_by(&rs.metadata, uid) && annotation(&rs.metadata, DEPLOYMENT_REVISION) == revision)
}

/// The revision hash of a DaemonSet's newest ControllerRevision (the highest `revision`, as
/// `pkg/polymorphichelpers/history.go` orders them), and that revision's name: pods carry
/// either in `controller-revision-hash`.
fn newest_revision(d: &DaemonSet, revisions: &[ControllerRevision]) -> Option<(String, String)> {
    let uid = d.metadata.uid.as_deref();
    let newest = revisions
        .iter()
        .filter(|r| controlled_by(&r.metadata, uid))
        .max_by_key(|r| r.revision)?;
    let name = newest.metadata.name.clone().unwrap_or_default();
    let hash = label(&newest.metadata, REVISION_HASH)
        .map(String::from)
        .or_else(|| {
            let prefix = format!("{}-", d.metadata.name.as_deref().unwrap_or(""));
            name.strip_prefix(&prefix).map(String::from)
        })
        .unwrap_or_default();
    Some((hash, name))
}

/// A kind of workload a roll restarts: Deployment, StatefulSet, DaemonSet.
///
/// Its kind and plural for listing and dispatch are `k8s_openapi::Resource`'s `KIND`
/// (`Deployment`) and `URL_PATH_SEGMENT` (`deployments`).
pub trait Rollout:
    k8s_openapi::Resource<Scope = NamespaceResourceScope>
    + kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Why `kubectl rollout restart` would not replace the pods, if it would not: a paused
    /// Deployment (kubectl refuses it), an OnDelete update strategy (the patch is accepted
    /// but no pod is replaced until someone deletes it).
    fn restart_blocker(&self) -> Option<String>;
    /// `kubectl rollout status`, one decision.
    fn rollout_status(&self) -> Status;
    /// `spec.template` and `spec.selector`: its pods' template and labels.
    fn pod_template(&self) -> Option<(&PodTemplateSpec, &LabelSelector)>;
    /// New replicas ready out of those wanted; `None` until the controller has observed the
    /// current generation (before that the counts describe the previous template).
    fn progress(&self) -> Option<Progress>;
    /// The live pods of the current template, read after the rollout is done (the pods
    /// `kubectl rollout history` would show for the newest revision).
    fn new_pods(&self, client: &kube::Client) -> impl Future<Output = kube::Result<Vec<Pod>>>;

    /// Why the controller cannot create its pods, once it has observed the current
    /// generation: for a Deployment its `ReplicaFailure` condition ([`replica_failure`]).
    /// StatefulSets and DaemonSets report no such condition (only events).
    fn replica_failure(&self) -> Option<String> {
        None
    }

    /// Its ready pods now, old and new together (`status.readyReplicas`, a DaemonSet's
    /// `status.numberReady`): what a restart must keep above the floor it promised.
    fn ready_replicas(&self) -> i32;

    /// The pod template's `kubectl.kubernetes.io/restartedAt`.
    fn restarted_at(&self) -> Option<&str> {
        let (template, _) = self.pod_template()?;
        template
            .metadata
            .as_ref()?
            .annotations
            .as_ref()?
            .get(RESTARTED_AT)
            .map(String::as_str)
    }

    /// The pod selector.
    fn selector(&self) -> Option<&LabelSelector> {
        self.pod_template().map(|(_, selector)| selector)
    }
}

impl Rollout for Deployment {
    fn restart_blocker(&self) -> Option<String> {
        let paused = self.spec.as_ref()?.paused?;
        paused.then(|| "it is paused: resume it first (`kubectl rollout resume`)".to_string())
    }
    fn rollout_status(&self) -> Status {
        deployment_status(self)
    }
    fn pod_template(&self) -> Option<(&PodTemplateSpec, &LabelSelector)> {
        self.spec.as_ref().map(|s| (&s.template, &s.selector))
    }
    fn progress(&self) -> Option<Progress> {
        deployment_progress(self)
    }
    fn replica_failure(&self) -> Option<String> {
        deployment_progress(self).and_then(|_| replica_failure(self))
    }
    fn ready_replicas(&self) -> i32 {
        self.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)
    }
    /// The pods of the new ReplicaSet.
    async fn new_pods(&self, client: &kube::Client) -> kube::Result<Vec<Pod>> {
        let (api, params) = list_in::<_, ReplicaSet>(self, client);
        // Both lists at once: one round trip per verified workload, not two.
        let (sets, mut pods) = tokio::try_join!(api.list(&params), live_pods(self, client))?;
        let Some(new) = new_replicaset(self, &sets.items) else {
            return Ok(vec![]);
        };
        let new_uid = new.metadata.uid.as_deref();
        pods.retain(|p| controlled_by(&p.metadata, new_uid));
        Ok(pods)
    }
}

impl Rollout for StatefulSet {
    fn restart_blocker(&self) -> Option<String> {
        on_delete(self.spec.as_ref()?.update_strategy.as_ref()?.type_.as_deref()).or_else(|| partitioned(self))
    }
    fn rollout_status(&self) -> Status {
        statefulset_status(self)
    }
    fn pod_template(&self) -> Option<(&PodTemplateSpec, &LabelSelector)> {
        self.spec.as_ref().map(|s| (&s.template, &s.selector))
    }
    fn progress(&self) -> Option<Progress> {
        statefulset_progress(self)
    }
    fn ready_replicas(&self) -> i32 {
        self.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)
    }
    /// Its pods labelled with its update revision.
    async fn new_pods(&self, client: &kube::Client) -> kube::Result<Vec<Pod>> {
        let revision = self.status.as_ref().and_then(|s| s.update_revision.as_deref());
        let uid = self.metadata.uid.as_deref();
        let mut pods = live_pods(self, client).await?;
        pods.retain(|p| controlled_by(&p.metadata, uid) && label(&p.metadata, REVISION_HASH) == revision);
        Ok(pods)
    }
}

impl Rollout for DaemonSet {
    fn restart_blocker(&self) -> Option<String> {
        on_delete(self.spec.as_ref()?.update_strategy.as_ref()?.type_.as_deref())
    }
    fn rollout_status(&self) -> Status {
        daemonset_status(self)
    }
    fn pod_template(&self) -> Option<(&PodTemplateSpec, &LabelSelector)> {
        self.spec.as_ref().map(|s| (&s.template, &s.selector))
    }
    fn progress(&self) -> Option<Progress> {
        daemonset_progress(self)
    }
    fn ready_replicas(&self) -> i32 {
        self.status.as_ref().map_or(0, |s| s.number_ready)
    }
    /// Its pods of its newest ControllerRevision.
    async fn new_pods(&self, client: &kube::Client) -> kube::Result<Vec<Pod>> {
        let (api, params) = list_in::<_, ControllerRevision>(self, client);
        let (revisions, mut pods) = tokio::try_join!(api.list(&params), live_pods(self, client))?;
        let Some((hash, name)) = newest_revision(self, &revisions.items) else {
            return Ok(vec![]);
        };
        let uid = self.metadata.uid.as_deref();
        pods.retain(|p| {
            controlled_by(&p.metadata, uid) && label(&p.metadata, REVISION_HASH).is_some_and(|h| h == hash || h == name)
        });
        Ok(pods)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_saphyr::from_str(text).expect("fixture parses")
    }

    fn deployment(status: &str) -> Deployment {
        yaml(&format!(
            "metadata: {{name: webapp, generation: 3}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: webapp}}}}\n  template: {{}}\n{status}"
        ))
    }

    fn waiting(s: Status) -> String {
        match s {
            Status::Waiting(m) => m,
            other => panic!("expected Waiting, got {other:?}"),
        }
    }

    #[test]
    fn deployment_waits_for_the_controller_to_observe_the_restart() {
        // Right after the restart patch: the old status says all is well, but for generation 2.
        let d = deployment(
            "status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2, readyReplicas: 2}",
        );
        assert_eq!(
            waiting(deployment_status(&d)),
            "Waiting for deployment spec update to be observed..."
        );
        let no_status = deployment("");
        assert!(matches!(deployment_status(&no_status), Status::Waiting(_)));
    }

    #[test]
    fn deployment_fails_on_progress_deadline() {
        let d = deployment(
            "status:\n  observedGeneration: 3\n  replicas: 3\n  updatedReplicas: 1\n  conditions:\n  - {type: Progressing, status: 'False', reason: ProgressDeadlineExceeded}",
        );
        assert_eq!(
            deployment_status(&d),
            Status::Failed("deployment \"webapp\" exceeded its progress deadline".into())
        );
        // Progressing for another reason is not a failure.
        let d = deployment(
            "status:\n  observedGeneration: 3\n  replicas: 2\n  updatedReplicas: 2\n  availableReplicas: 2\n  conditions:\n  - {type: Progressing, status: 'True', reason: NewReplicaSetAvailable}",
        );
        assert_eq!(deployment_status(&d), Status::Done);
    }

    #[test]
    fn deployment_waits_for_new_then_old_then_available_replicas() {
        let d = deployment("status: {observedGeneration: 3, replicas: 3, updatedReplicas: 1, availableReplicas: 2}");
        assert_eq!(
            waiting(deployment_status(&d)),
            "Waiting for deployment \"webapp\" rollout to finish: 1 out of 2 new replicas have been updated..."
        );
        let d = deployment("status: {observedGeneration: 3, replicas: 3, updatedReplicas: 2, availableReplicas: 2}");
        assert_eq!(
            waiting(deployment_status(&d)),
            "Waiting for deployment \"webapp\" rollout to finish: 1 old replicas are pending termination..."
        );
        let d = deployment("status: {observedGeneration: 3, replicas: 2, updatedReplicas: 2, availableReplicas: 1}");
        assert_eq!(
            waiting(deployment_status(&d)),
            "Waiting for deployment \"webapp\" rollout to finish: 1 of 2 updated replicas are available..."
        );
        let d = deployment("status: {observedGeneration: 4, replicas: 2, updatedReplicas: 2, availableReplicas: 2}");
        assert_eq!(deployment_status(&d), Status::Done);
        assert_eq!(d.progress(), Some(Progress { ready: 2, desired: 2 }));
        assert_eq!(d.ready_replicas(), 0, "readyReplicas unset");
        let d = deployment("status: {observedGeneration: 3, replicas: 3, readyReplicas: 3, updatedReplicas: 1}");
        assert_eq!(d.ready_replicas(), 3);
    }

    #[test]
    fn paused_deployment_is_not_restarted() {
        let mut d = deployment("");
        assert_eq!(d.restart_blocker(), None);
        d.spec.as_mut().unwrap().paused = Some(true);
        assert!(d.restart_blocker().unwrap().contains("paused"));
    }

    fn statefulset(strategy: &str, status: &str) -> StatefulSet {
        yaml(&format!(
            "metadata: {{name: db, generation: 5}}\nspec:\n  replicas: 3\n  serviceName: db\n  selector: {{matchLabels: {{app: db}}}}\n  template: {{}}\n{strategy}\n{status}"
        ))
    }

    #[test]
    fn statefulset_rules() {
        let rolling = "  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0}}";
        // Not observed yet (and an observedGeneration of 0 never counts).
        let s = statefulset(
            rolling,
            "status: {replicas: 3, observedGeneration: 4, readyReplicas: 3, updatedReplicas: 3}",
        );
        assert_eq!(
            waiting(statefulset_status(&s)),
            "Waiting for statefulset spec update to be observed..."
        );
        let s = statefulset(rolling, "status: {replicas: 3, readyReplicas: 3}");
        assert!(matches!(statefulset_status(&s), Status::Waiting(_)));
        assert!(matches!(
            statefulset_status(&statefulset(rolling, "")),
            Status::Waiting(_)
        ));
        let s = statefulset(
            rolling,
            "status: {replicas: 3, observedGeneration: 5, readyReplicas: 1, updatedReplicas: 1}",
        );
        assert_eq!(waiting(statefulset_status(&s)), "Waiting for 2 pods to be ready...");
        let s = statefulset(
            rolling,
            "status: {replicas: 3, observedGeneration: 5, readyReplicas: 3, updatedReplicas: 2}",
        );
        assert_eq!(
            waiting(statefulset_status(&s)),
            "Waiting for partitioned roll out to finish: 2 out of 3 new pods have been updated..."
        );
        let s = statefulset(
            rolling,
            "status: {replicas: 3, observedGeneration: 5, readyReplicas: 3, updatedReplicas: 3}",
        );
        assert_eq!(statefulset_status(&s), Status::Done);
        assert_eq!(s.progress(), Some(Progress { ready: 3, desired: 3 }));
        // A partition of 2 asks for one new pod only.
        let s = statefulset(
            "  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}",
            "status: {replicas: 3, observedGeneration: 5, readyReplicas: 3, updatedReplicas: 1}",
        );
        assert_eq!(statefulset_status(&s), Status::Done);
        // Without rollingUpdate (never defaulted), the revisions decide.
        let bare = "  updateStrategy: {type: RollingUpdate}";
        let s = statefulset(
            bare,
            "status: {replicas: 3, observedGeneration: 5, readyReplicas: 3, updatedReplicas: 1, currentRevision: db-1, updateRevision: db-2}",
        );
        assert_eq!(
            waiting(statefulset_status(&s)),
            "waiting for statefulset rolling update to complete 1 pods at revision db-2..."
        );
        let s = statefulset(
            bare,
            "status: {replicas: 3, observedGeneration: 5, readyReplicas: 3, updatedReplicas: 3, currentRevision: db-2, updateRevision: db-2}",
        );
        assert_eq!(statefulset_status(&s), Status::Done);
    }

    #[test]
    fn a_partitioned_statefulset_is_not_restarted() {
        let status = "status: {replicas: 3, observedGeneration: 5}";
        let s = statefulset(
            "  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}",
            status,
        );
        let why = s.restart_blocker().unwrap();
        assert!(why.starts_with("partitioned"), "{why}");
        assert!(why.contains("pods below ordinal 2 keep their proxy"), "{why}");
        assert!(why.contains("lower the partition or delete them"), "{why}");
        for strategy in [
            "  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0}}",
            "  updateStrategy: {type: RollingUpdate}",
            "",
        ] {
            assert_eq!(statefulset(strategy, status).restart_blocker(), None, "{strategy}");
        }
    }

    #[test]
    fn a_deployment_whose_pods_are_refused_reports_replica_failure() {
        let failing = "status:\n  observedGeneration: 3\n  replicas: 2\n  updatedReplicas: 0\n  conditions:\n  - {type: Progressing, status: 'True', reason: ReplicaSetUpdated}\n  - {type: ReplicaFailure, status: 'True', reason: FailedCreate, message: 'admission webhook \"namespace.sidecar-injector.istio.io\" denied the request: no istiod'}";
        let d = deployment(failing);
        let why = d.replica_failure().unwrap();
        assert_eq!(
            why,
            "FailedCreate: admission webhook \"namespace.sidecar-injector.istio.io\" denied the request: no istiod"
        );
        // Still waiting by kubectl's rules: only roll stops on it.
        assert!(matches!(deployment_status(&d), Status::Waiting(_)));
        // Not before the controller observed the restart, nor once it is False.
        assert_eq!(
            deployment(&failing.replace("observedGeneration: 3", "observedGeneration: 2")).replica_failure(),
            None
        );
        assert_eq!(
            deployment(&failing.replace(
                "status: 'True', reason: FailedCreate",
                "status: 'False', reason: FailedCreate"
            ))
            .replica_failure(),
            None
        );
        assert_eq!(statefulset("", "").replica_failure(), None);
    }

    #[test]
    fn on_delete_has_no_rollout() {
        let s = statefulset(
            "  updateStrategy: {type: OnDelete}",
            "status: {replicas: 3, observedGeneration: 5}",
        );
        assert!(matches!(statefulset_status(&s), Status::Failed(m) if m.contains("OnDelete")));
        assert!(s.restart_blocker().unwrap().contains("OnDelete"));
        let d = daemonset("  updateStrategy: {type: OnDelete}", "");
        assert!(matches!(daemonset_status(&d), Status::Failed(m) if m.contains("OnDelete")));
        assert!(d.restart_blocker().is_some());
        assert_eq!(daemonset("", "").restart_blocker(), None);
    }

    fn daemonset(strategy: &str, status: &str) -> DaemonSet {
        yaml(&format!(
            "metadata: {{name: agent, generation: 2}}\nspec:\n  selector: {{matchLabels: {{app: agent}}}}\n  template: {{}}\n{strategy}\n{status}"
        ))
    }

    #[test]
    fn daemonset_rules() {
        let base =
            "status: {currentNumberScheduled: 4, desiredNumberScheduled: 4, numberMisscheduled: 0, numberReady: 4";
        let d = daemonset(
            "",
            &format!("{base}, observedGeneration: 1, updatedNumberScheduled: 4, numberAvailable: 4}}"),
        );
        assert_eq!(
            waiting(daemonset_status(&d)),
            "Waiting for daemon set spec update to be observed..."
        );
        assert!(matches!(daemonset_status(&daemonset("", "")), Status::Waiting(_)));
        let d = daemonset(
            "",
            &format!("{base}, observedGeneration: 2, updatedNumberScheduled: 1, numberAvailable: 4}}"),
        );
        assert_eq!(
            waiting(daemonset_status(&d)),
            "Waiting for daemon set \"agent\" rollout to finish: 1 out of 4 new pods have been updated..."
        );
        let d = daemonset(
            "",
            &format!("{base}, observedGeneration: 2, updatedNumberScheduled: 4, numberAvailable: 3}}"),
        );
        assert_eq!(
            waiting(daemonset_status(&d)),
            "Waiting for daemon set \"agent\" rollout to finish: 3 of 4 updated pods are available..."
        );
        assert_eq!(d.progress(), Some(Progress { ready: 3, desired: 4 }));
        assert_eq!(d.ready_replicas(), 4, "numberReady, old pods and new");
        let d = daemonset(
            "  updateStrategy: {type: RollingUpdate}",
            &format!("{base}, observedGeneration: 2, updatedNumberScheduled: 4, numberAvailable: 4}}"),
        );
        assert_eq!(daemonset_status(&d), Status::Done);
    }

    #[test]
    fn restart_is_kubectls_annotation() {
        let patch = restart_patch("2026-11-27T04:36:28Z");
        assert_eq!(
            patch["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
            "2026-11-27T04:36:28Z"
        );
        let mut d = deployment("");
        assert_eq!(d.restarted_at(), None);
        d.spec.as_mut().unwrap().template.metadata = Some(yaml(
            "annotations: {kubectl.kubernetes.io/restartedAt: '2026-11-27T04:36:28Z'}",
        ));
        assert_eq!(d.restarted_at(), Some("2026-11-27T04:36:28Z"));
    }

    #[test]
    fn selectors_read_like_kubectl() {
        let s: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "webapp"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "old", "operator": "DoesNotExist"},
                {"key": "track", "operator": "Exists"},
                {"key": "zone", "operator": "NotIn", "values": ["x"]}
            ]
        }))
        .unwrap();
        assert_eq!(selector_text(&s), "app=webapp,tier in (a,b),!old,track,zone notin (x)");
    }

    #[test]
    fn new_replicaset_is_the_deployments_own_at_its_revision() {
        let mut d = deployment("");
        d.metadata.uid = Some("d-1".into());
        d.metadata.annotations = Some([(DEPLOYMENT_REVISION.to_string(), "4".to_string())].into());
        let rs = |name: &str, owner: &str, revision: &str| -> ReplicaSet {
            yaml(&format!(
                "metadata:\n  name: {name}\n  uid: {name}\n  annotations: {{deployment.kubernetes.io/revision: '{revision}'}}\n  ownerReferences: [{{apiVersion: apps/v1, kind: Deployment, name: webapp, uid: {owner}, controller: true}}]"
            ))
        };
        let sets = [rs("old", "d-1", "3"), rs("other", "d-2", "4"), rs("new", "d-1", "4")];
        let found = new_replicaset(&d, &sets).and_then(|rs| rs.metadata.name.as_deref());
        assert_eq!(found, Some("new"));
        assert!(new_replicaset(&d, &sets[..2]).is_none());
    }

    #[test]
    fn newest_daemonset_revision_is_the_highest_owned_one() {
        let mut d = daemonset("", "");
        d.metadata.uid = Some("ds-1".into());
        let cr = |name: &str, owner: &str, revision: i64, hash: Option<&str>| -> ControllerRevision {
            let labels = hash
                .map(|h| format!("\n  labels: {{controller-revision-hash: {h}}}"))
                .unwrap_or_default();
            yaml(&format!(
                "metadata:\n  name: {name}{labels}\n  ownerReferences: [{{apiVersion: apps/v1, kind: DaemonSet, name: agent, uid: {owner}, controller: true}}]\nrevision: {revision}"
            ))
        };
        let revisions = [
            cr("agent-aaa", "ds-1", 1, Some("aaa")),
            cr("agent-ccc", "ds-1", 3, None),
            cr("other-zzz", "ds-2", 9, Some("zzz")),
        ];
        // Without the label, the hash is the name after `NAME-`.
        assert_eq!(
            newest_revision(&d, &revisions),
            Some(("ccc".to_string(), "agent-ccc".to_string()))
        );
        assert_eq!(
            newest_revision(&d, &revisions[..1]),
            Some(("aaa".to_string(), "agent-aaa".to_string()))
        );
        assert_eq!(newest_revision(&d, &revisions[2..]), None);
    }
}
