//! When a restarted workload's rollout is done, by kubectl's own rules
//! (`pkg/polymorphichelpers/rollout_status.go`), and the restart `kubectl rollout restart`
//! sends (`objectrestarter.go`). Plain functions of the object: no API calls.
//!
//! The one rule kube-runtime's `is_deployment_completed` misses: nothing is decided before
//! the controller has observed the object's current generation, so the status read right
//! after a restart patch (still describing the previous template) never counts as done.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use serde::Serialize;

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

/// The merge patch `kubectl rollout restart` sends: a new pod-template annotation, so the
/// controller rolls every pod. `now` is RFC 3339, as kubectl writes it.
pub fn restart_patch(now: &str) -> serde_json::Value {
    serde_json::json!({
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}
    })
}

/// What a roll needs from each kind it restarts.
pub trait Rollout {
    /// `kubectl rollout status`, one decision.
    fn rollout_status(&self) -> Status;
    /// New replicas ready out of those wanted; `None` until the controller has observed the
    /// current generation (before that the counts describe the previous template).
    fn progress(&self) -> Option<Progress>;
    /// Why `kubectl rollout restart` would not replace the pods, if it would not: a paused
    /// Deployment (kubectl refuses it), an OnDelete update strategy (the patch is accepted
    /// but no pod is replaced until someone deletes it).
    fn restart_blocker(&self) -> Option<String>;
    /// The pod template's `kubectl.kubernetes.io/restartedAt`.
    fn restarted_at(&self) -> Option<&str>;
}

fn observed(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, observed: Option<i64>) -> bool {
    observed.is_some_and(|o| o > 0 && o >= meta.generation.unwrap_or(0))
}

fn template_restarted_at(t: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>) -> Option<&str> {
    t?.metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(RESTARTED_AT)
        .map(String::as_str)
}

fn on_delete(kind: Option<&str>) -> Option<String> {
    kind.filter(|k| *k == "OnDelete")
        .map(|_| "its update strategy is OnDelete: a restart replaces no pod until each is deleted by hand".to_string())
}

impl Rollout for Deployment {
    fn rollout_status(&self) -> Status {
        deployment_status(self)
    }
    fn progress(&self) -> Option<Progress> {
        let s = self
            .status
            .as_ref()
            .filter(|s| observed(&self.metadata, s.observed_generation))?;
        let updated = s.updated_replicas.unwrap_or(0);
        let available = s.available_replicas.unwrap_or(0);
        Some(Progress {
            ready: updated.min(available),
            desired: self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        })
    }
    fn restart_blocker(&self) -> Option<String> {
        self.spec
            .as_ref()
            .and_then(|s| s.paused)
            .unwrap_or(false)
            .then(|| "it is paused: resume it first (`kubectl rollout resume`)".to_string())
    }
    fn restarted_at(&self) -> Option<&str> {
        template_restarted_at(self.spec.as_ref().map(|s| &s.template))
    }
}

impl Rollout for StatefulSet {
    fn rollout_status(&self) -> Status {
        statefulset_status(self)
    }
    fn progress(&self) -> Option<Progress> {
        let s = self
            .status
            .as_ref()
            .filter(|s| observed(&self.metadata, s.observed_generation))?;
        let updated = s.updated_replicas.unwrap_or(0);
        let ready = s.ready_replicas.unwrap_or(0);
        Some(Progress {
            ready: updated.min(ready),
            desired: self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        })
    }
    fn restart_blocker(&self) -> Option<String> {
        on_delete(
            self.spec
                .as_ref()
                .and_then(|s| s.update_strategy.as_ref())
                .and_then(|u| u.type_.as_deref()),
        )
    }
    fn restarted_at(&self) -> Option<&str> {
        template_restarted_at(self.spec.as_ref().map(|s| &s.template))
    }
}

impl Rollout for DaemonSet {
    fn rollout_status(&self) -> Status {
        daemonset_status(self)
    }
    fn progress(&self) -> Option<Progress> {
        let s = self
            .status
            .as_ref()
            .filter(|s| observed(&self.metadata, s.observed_generation))?;
        let updated = s.updated_number_scheduled.unwrap_or(0);
        let available = s.number_available.unwrap_or(0);
        Some(Progress {
            ready: updated.min(available),
            desired: s.desired_number_scheduled,
        })
    }
    fn restart_blocker(&self) -> Option<String> {
        on_delete(
            self.spec
                .as_ref()
                .and_then(|s| s.update_strategy.as_ref())
                .and_then(|u| u.type_.as_deref()),
        )
    }
    fn restarted_at(&self) -> Option<&str> {
        template_restarted_at(self.spec.as_ref().map(|s| &s.template))
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
}
