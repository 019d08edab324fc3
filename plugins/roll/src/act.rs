//! Restart the planned workloads the way `kubectl rollout restart` does
//! (`pkg/polymorphichelpers/objectrestarter.go`), follow each rollout with a watch until
//! kubectl's rollout-status rules (`pkg/polymorphichelpers/rollout_status.go`) say it is
//! done, check the new pods' proxies, run the hook. API calls and the hook only: what
//! happens is told as [`Event`]s to whoever listens (the display, the report).

use std::cell::Cell;
use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;
use shared::error::chain;
use shared::model::{ControlPlane, OutOfDateWorkload, Proxy, labels};
use shared::output::DryRun;
use shared::rollout::{self, Progress, Rollout, Status};
use shared::{Connection, retry};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::plan::Planned;

/// Environment of the `--exec` command.
pub const ENV_KIND: &str = "MESH_WORKLOAD_KIND";
pub const ENV_NAMESPACE: &str = "MESH_WORKLOAD_NAMESPACE";
pub const ENV_NAME: &str = "MESH_WORKLOAD_NAME";
pub const ENV_REVISION: &str = "MESH_REVISION";

/// What happens to one workload, in the order it happens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// Its turn came.
    Started,
    /// A rollout was already under way: it is followed rather than restarted on top of.
    AlreadyRolling,
    /// The restart patch is being sent.
    Restarting,
    /// The restart was written with this `kubectl.kubernetes.io/restartedAt`.
    Restarted {
        restarted_at: String,
    },
    /// Its rollout is under way; `None` until the controller has observed it.
    Waiting {
        progress: Option<Progress>,
    },
    /// Its ready pods, old and new, as a status of the object said during its roll.
    Ready {
        ready: i32,
    },
    /// The watch lost the API server and is re-established with backoff.
    Retrying {
        error: String,
    },
    Verifying,
    Hook,
    /// A line the `--exec` command printed.
    HookOutput {
        line: String,
    },
    /// Done, waiting `--pause` before the next workload; `Done` is told again after it.
    Pausing {
        pause: Duration,
    },
    /// Its rollout is done and its new pods carry the right proxy. `restarted` is false
    /// when a rollout already under way did it.
    Done {
        elapsed: Duration,
        restarted: bool,
    },
    /// `--dry-run=server`: the API server accepted the restart and persisted nothing.
    Accepted {
        elapsed: Duration,
    },
    Failed {
        elapsed: Duration,
        message: String,
    },
    /// Not restarted: the revision it would restart into cannot inject new pods now.
    Refused {
        elapsed: Duration,
        message: String,
    },
    /// Ctrl-C or SIGTERM while it was rolling.
    Interrupted {
        elapsed: Duration,
    },
    /// The roll stopped before its turn.
    NotStarted,
}

impl Event {
    /// How the workload ended, for the events that end it.
    pub(crate) fn result(&self) -> Option<RollResult> {
        match self {
            Event::Done { .. } | Event::Accepted { .. } => Some(RollResult::Done),
            Event::Failed { .. } => Some(RollResult::Failed),
            Event::Refused { .. } => Some(RollResult::Refused),
            Event::Interrupted { .. } => Some(RollResult::Interrupted),
            Event::NotStarted => Some(RollResult::NotStarted),
            _ => None,
        }
    }
}

/// How one workload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum RollResult {
    /// Rolled (with `--dry-run=server`: its restart was accepted).
    Done,
    Failed,
    /// Not restarted: its target revision could not inject new pods (see
    /// [`crate::plan::cannot_inject`]); the roll stopped there.
    Refused,
    /// Ctrl-C or SIGTERM while it was rolling: its rollout goes on in the cluster.
    Interrupted,
    #[default]
    NotStarted,
}

/// The signal that stopped the roll (no new restart, a summary), shared with prune.
pub(crate) use shared::cli::Signal;
use shared::cli::stop_signal;

/// What every workload's roll shares.
pub(crate) struct Ctx<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) dry_run: DryRun,
    pub(crate) max_parallel: usize,
    /// Each workload's time for its rollout, and for retrying each API call.
    pub(crate) timeout: Duration,
    pub(crate) pause: Option<Duration>,
    pub(crate) exec: Option<&'a str>,
    /// Told every event, with the workload's index in the plan.
    pub(crate) events: &'a dyn Fn(usize, Event),
}

/// Roll the workloads in order, up to `max_parallel` at once. After a failure, a refusal,
/// Ctrl-C or SIGTERM no new one starts (with `--dry-run=server` a rejected restart stops
/// nothing, as nothing changes). Returns how each ended and the signal that stopped it.
pub(crate) async fn roll_all(ctx: &Ctx<'_>, workloads: &[Planned]) -> (Vec<RollResult>, Option<Signal>) {
    let (cancel_tx, cancel) = watch::channel(None);
    let listener = tokio::spawn(async move {
        if let Some(signal) = stop_signal().await {
            let _ = cancel_tx.send(Some(signal));
        }
    });
    let stop = Cell::new(false);
    let last = workloads.len().saturating_sub(1);
    let results = futures::stream::iter(workloads.iter().enumerate())
        .map(|(i, p)| {
            let trip = Trip {
                ctx,
                i,
                w: &p.workload,
                promised: p.availability.lowest,
                floor: Cell::new(0),
                cancel: cancel.clone(),
                restarted: Cell::new(false),
            };
            let stop = &stop;
            async move {
                if stop.get() || trip.cancelled() {
                    trip.emit(Event::NotStarted);
                    return RollResult::NotStarted;
                }
                let end = trip.roll().await;
                let result = end.result().unwrap_or_default();
                if result == RollResult::Done {
                    if i < last {
                        trip.pause(end).await;
                    }
                } else if !(ctx.dry_run.server() && matches!(result, RollResult::Failed | RollResult::Refused)) {
                    stop.set(true);
                }
                result
            }
        })
        .buffered(ctx.max_parallel)
        .collect()
        .await;
    listener.abort();
    let signal = *cancel.borrow();
    (results, signal)
}

/// Why a workload's roll stopped early.
enum Stop {
    Failed(String),
    /// Nothing was sent: the target revision cannot inject.
    Refused(String),
    Interrupted,
}

type Step<T> = Result<T, Stop>;

/// One workload's roll.
struct Trip<'a> {
    ctx: &'a Ctx<'a>,
    i: usize,
    w: &'a OutOfDateWorkload,
    /// The fewest ready pods the plan promised during its restart.
    promised: i32,
    /// The ready pods it may not go below: the promise, or fewer if fewer were ready
    /// before the restart (those were not the restart's doing).
    floor: Cell<i32>,
    cancel: watch::Receiver<Option<Signal>>,
    /// This run wrote its restart.
    restarted: Cell<bool>,
}

impl Trip<'_> {
    fn emit(&self, event: Event) {
        (self.ctx.events)(self.i, event);
    }

    fn what(&self) -> String {
        format!("{} in namespace {:?}", self.w.workload, self.w.namespace)
    }

    fn cancelled(&self) -> bool {
        self.cancel.borrow().is_some()
    }

    fn go_on(&self) -> Step<()> {
        if self.cancelled() {
            Err(Stop::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Until when an API call is retried.
    fn deadline(&self) -> Instant {
        Instant::now() + self.ctx.timeout
    }

    /// Restart (once), wait, verify, hook; tell how it ended and return that event.
    async fn roll(&self) -> Event {
        self.emit(Event::Started);
        let clock = Instant::now();
        let step = match self.w.workload.kind.as_str() {
            Deployment::KIND => self.roll_kind::<Deployment>().await,
            StatefulSet::KIND => self.roll_kind::<StatefulSet>().await,
            DaemonSet::KIND => self.roll_kind::<DaemonSet>().await,
            other => Err(Stop::Failed(format!("cannot restart a {other}"))),
        };
        let server = self.ctx.dry_run.server();
        let step = match step {
            Ok(()) if !server => self.run_hook().await,
            other => other,
        };
        let elapsed = clock.elapsed();
        let end = match step {
            Ok(()) if server => Event::Accepted { elapsed },
            Ok(()) => Event::Done {
                elapsed,
                restarted: self.restarted.get(),
            },
            Err(Stop::Failed(message)) => Event::Failed { elapsed, message },
            Err(Stop::Refused(message)) => Event::Refused { elapsed, message },
            Err(Stop::Interrupted) => Event::Interrupted { elapsed },
        };
        self.emit(end.clone());
        end
    }

    /// `--pause` after a finished workload (Ctrl-C cuts it short), then its end again.
    async fn pause(&self, end: Event) {
        let Some(pause) = self.ctx.pause else { return };
        self.emit(Event::Pausing { pause });
        let mut cancel = self.cancel.clone();
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = cancel.wait_for(Option::is_some) => {}
        }
        self.emit(end);
    }

    async fn roll_kind<K: Rollout>(&self) -> Step<()> {
        let api = Api::<K>::namespaced(self.ctx.conn.client.clone(), &self.w.namespace);
        let name = self.w.workload.name.as_str();
        self.go_on()?;
        // The workload and its target revision's control plane are read at once.
        let (current, target) = tokio::join!(retry::until(self.deadline(), || api.get(name)), self.check_target());
        let current = current.map_err(|e| Stop::Failed(format!("cannot read {}: {}", self.what(), chain(&e))))?;
        if let Some(b) = current.restart_blocker() {
            return Err(Stop::Failed(format!("{} cannot be restarted now: {b}", self.what())));
        }
        let ready = current.ready_replicas();
        self.emit(Event::Ready { ready });
        self.floor.set(self.promised.min(ready));
        let server = self.ctx.dry_run.server();
        // A rollout already under way (a run stopped by Ctrl-C, or someone else's restart)
        // may already be replacing the pods with the right proxy: let it finish and look,
        // rather than restarting on top of it. A server dry run waits for nothing.
        if !server && matches!(current.rollout_status(), Status::Waiting(_)) {
            self.emit(Event::AlreadyRolling);
            let done = self.wait(&api).await?;
            if self.verify(&done).await.is_ok() {
                return Ok(());
            }
            // That wait may have been long: the target is read afresh before restarting.
            self.go_on()?;
            self.check_target().await?;
        } else {
            target?;
        }
        self.go_on()?;
        self.restart(&api, &current).await?;
        if server {
            return Ok(());
        }
        let done = self.wait(&api).await?;
        self.verify(&done).await.map_err(Stop::Failed)
    }

    /// The revision the restart would inject must be able to: its istiod up and its injector
    /// ConfigMap there, read afresh just before each restart. Istio's injector webhooks fail
    /// closed (`failurePolicy: Fail`, istio-discovery/templates/mutatingwebhook.yaml), so
    /// otherwise the API server rejects every new pod and the rollout hangs.
    async fn check_target(&self) -> Step<()> {
        let Some(revision) = self.w.to_revision.as_deref() else {
            return Ok(());
        };
        let client = &self.ctx.conn.client;
        let (deployments, configmaps) = (
            Api::<Deployment>::all(client.clone()),
            Api::<ConfigMap>::all(client.clone()),
        );
        let (istiod, injectors) = (
            ListParams::default().labels("app=istiod"),
            ListParams::default().labels(labels::REV),
        );
        let (d, cm) = retry::until(self.deadline(), || async {
            tokio::try_join!(deployments.list(&istiod), configmaps.list(&injectors))
        })
        .await
        .map_err(|e| {
            Stop::Failed(format!(
                "cannot read revision {revision}'s istiod and injector: {}",
                chain(&e)
            ))
        })?;
        let cp = ControlPlane::from_objects(&d.items, &cm.items, &[]);
        match crate::plan::cannot_inject(&cp, revision) {
            Some(problem) => Err(Stop::Refused(crate::plan::refusal(revision, &problem))),
            None => Ok(()),
        }
    }

    /// Send the restart patch once (with `--dry-run=server`: with dryRun=All). When a
    /// request fails in a way that leaves it unknown whether the server applied it
    /// (connection lost, 5xx), the object is read back before the next try: if it already
    /// carries this stamp the restart happened and is not sent again.
    async fn restart<K: Rollout>(&self, api: &Api<K>, current: &K) -> Step<()> {
        self.emit(Event::Restarting);
        let mut stamp = restart_stamp();
        // The same stamp twice is no change and rolls nothing: wait for the next second.
        if current.restarted_at() == Some(stamp.as_str()) {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            stamp = restart_stamp();
        }
        let server = self.ctx.dry_run.server();
        let params = if server {
            PatchParams::default().dry_run()
        } else {
            PatchParams::default()
        };
        let patch = Patch::Merge(rollout::restart_patch(&stamp));
        let name = self.w.workload.name.as_str();
        let sent = Cell::new(false);
        let (sent, wanted, params, patch) = (&sent, stamp.as_str(), &params, &patch);
        retry::until(self.deadline(), || async move {
            if sent.replace(true)
                && !server
                && let Ok(obj) = api.get(name).await
                && obj.restarted_at() == Some(wanted)
            {
                return Ok(obj);
            }
            api.patch(name, params, patch).await
        })
        .await
        .map_err(|e| Stop::Failed(format!("cannot restart {}: {}", self.what(), chain(&e))))?;
        if !server {
            self.restarted.set(true);
            self.emit(Event::Restarted { restarted_at: stamp });
        }
        Ok(())
    }

    /// Follow the one object with a watch (re-established with backoff after an expired
    /// resourceVersion or a lost connection) until kubectl would call its rollout done.
    async fn wait<K: Rollout>(&self, api: &Api<K>) -> Step<K> {
        let deadline = Instant::now() + self.ctx.timeout;
        let mut cancel = self.cancel.clone();
        let stream = watcher::watch_object(api.clone(), &self.w.workload.name).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut last = String::from("no status read yet");
        let mut last_error: Option<String> = None;
        loop {
            tokio::select! {
                _ = cancel.wait_for(Option::is_some) => return Err(Stop::Interrupted),
                () = tokio::time::sleep_until(deadline) => {
                    let mut m = format!(
                        "{} did not finish its rollout within {} (--timeout): {last}",
                        self.what(),
                        crate::human(self.ctx.timeout)
                    );
                    if let Some(e) = last_error {
                        m.push_str(&format!("; last API error: {e}"));
                    }
                    return Err(Stop::Failed(m));
                }
                item = stream.next() => match item {
                    Some(Ok(Some(obj))) => {
                        last_error = None;
                        if let Some(end) = self.judge(obj, &mut last) {
                            return end;
                        }
                    }
                    Some(Ok(None)) => return Err(Stop::Failed(format!("{} was deleted during its rollout", self.what()))),
                    Some(Err(e)) => {
                        let error = chain(&e);
                        self.emit(Event::Retrying { error: error.clone() });
                        last_error = Some(error);
                    }
                    None => return Err(Stop::Failed(format!("the watch on {} ended", self.what()))),
                }
            }
        }
    }

    /// One status of the object during its roll: `None` while its rollout goes on.
    fn judge<K: Rollout>(&self, obj: K, last: &mut String) -> Option<Step<K>> {
        self.emit(Event::Ready {
            ready: obj.ready_replicas(),
        });
        match verdict(&obj, self.floor.get(), &self.what()) {
            Verdict::Done => Some(Ok(obj)),
            Verdict::Failed(m) => Some(Err(Stop::Failed(m))),
            Verdict::Waiting(m) => {
                self.emit(Event::Waiting {
                    progress: obj.progress(),
                });
                *last = m;
                None
            }
        }
    }

    /// The new pods must carry the revision and version the plan promised; otherwise the
    /// restart did not do what the roll is for, and going on would restart everything else
    /// for nothing.
    async fn verify<K: Rollout>(&self, obj: &K) -> Result<(), String> {
        self.emit(Event::Verifying);
        let what = self.what();
        let client = &self.ctx.conn.client;
        let pods = retry::until(self.deadline(), || obj.new_pods(client))
            .await
            .map_err(|e| format!("cannot list the new pods of {what}: {}", chain(&e)))?;
        let wanted = obj.progress().map(|p| p.desired).unwrap_or(0);
        if (pods.len() as i32) < wanted {
            return Err(format!(
                "{what}: its rollout is done but only {} of {wanted} new pods were found",
                pods.len()
            ));
        }
        let owners = HashMap::new();
        for pod in &pods {
            let pod_name = pod.metadata.name.as_deref().unwrap_or("");
            let Some(p) = Proxy::from_pod(pod, &owners) else {
                return Err(format!(
                    "new pod {pod_name} of {what} has no istio-proxy: the namespace's labels no longer select an injector (see `kubectl mesh revisions --namespaces`)"
                ));
            };
            wrong_proxy(self.w, &p).map_or(Ok(()), |why| Err(format!("new pod {pod_name} of {what} {why}")))?;
        }
        Ok(())
    }

    async fn run_hook(&self) -> Step<()> {
        let Some(cmd) = self.ctx.exec else { return Ok(()) };
        let w = self.w;
        self.emit(Event::Hook);
        let mut command = tokio::process::Command::new("sh");
        command
            .arg("-c")
            .arg(cmd)
            .env(ENV_KIND, &w.workload.kind)
            .env(ENV_NAMESPACE, &w.namespace)
            .env(ENV_NAME, &w.workload.name)
            .env(ENV_REVISION, w.to_revision.as_deref().unwrap_or(""))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let mut cancel = self.cancel.clone();
        let out = tokio::select! {
            _ = cancel.wait_for(Option::is_some) => return Err(Stop::Interrupted),
            out = command.output() => out.map_err(|e| Stop::Failed(format!("--exec: cannot run sh: {e}")))?,
        };
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        for line in text.lines() {
            self.emit(Event::HookOutput { line: line.to_string() });
        }
        if out.status.success() {
            return Ok(());
        }
        let code = out
            .status
            .code()
            .map(|c| format!("exited with code {c}"))
            .unwrap_or_else(|| "was killed by a signal".into());
        Err(Stop::Failed(format!("--exec {cmd:?} {code} after {}", w.workload)))
    }
}

/// What one status of a rolling workload means for its roll.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Done,
    Waiting(String),
    Failed(String),
}

/// One status of a workload during its roll. It fails when its ready pods fall below
/// `floor` (what the plan promised), or when its controller cannot create pods (a
/// Deployment's `ReplicaFailure`), before kubectl's rollout-status rules decide.
fn verdict<K: Rollout>(obj: &K, floor: i32, what: &str) -> Verdict {
    let ready = obj.ready_replicas();
    if ready < floor {
        return Verdict::Failed(format!(
            "{what} fell to {ready} ready pods during its restart, below the {floor} the plan promised (AVAILABILITY)"
        ));
    }
    if let Some(why) = obj.replica_failure() {
        return Verdict::Failed(format!(
            "{what} cannot create its new pods ({}): {why}",
            rollout::REPLICA_FAILURE
        ));
    }
    match obj.rollout_status() {
        Status::Done => Verdict::Done,
        Status::Waiting(m) => Verdict::Waiting(m),
        Status::Failed(m) => Verdict::Failed(m),
    }
}

/// What is wrong with a new pod's proxy, if anything: the revision or the version the plan
/// promised is not the one it got.
fn wrong_proxy(w: &OutOfDateWorkload, p: &Proxy) -> Option<String> {
    if let Some(want) = &w.to_revision
        && p.revision.as_ref() != Some(want)
    {
        let got = p.revision.as_deref().unwrap_or("an unknown revision");
        let hint = if w.from_revisions.contains(got) {
            format!(
                "namespace {} still selects {got}: relabel it first (`kubectl mesh relabel -n {} --to {want}`)",
                w.namespace, w.namespace
            )
        } else {
            format!(
                "check which injector serves namespace {} (`kubectl mesh revisions --namespaces`)",
                w.namespace
            )
        };
        return Some(format!("was injected by {got}, expected {want}: {hint}"));
    }
    if let Some(want) = &w.to_version
        && !p.image_override
        && p.version.as_ref() != Some(want)
    {
        return Some(format!(
            "runs proxy {} ({}), expected {want}: the injector of revision {} no longer injects what it did when the roll was planned (its values changed: an upgrade under way?); see `kubectl mesh revisions`",
            p.version.as_deref().unwrap_or("of unknown version"),
            p.image,
            p.revision.as_deref().unwrap_or("?")
        ));
    }
    None
}

/// kubectl writes `time.Now().Format(time.RFC3339)`: seconds, no fraction.
fn restart_stamp() -> String {
    Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| Timestamp::now())
        .to_string()
}

/// Every request the restarts of `roll` will make, for [`shared::access::check`]: for each
/// workload, read it (`roll_kind`), patch it (`restart`), and unless the API server only
/// dry-runs the patch, follow it (`wait`: a list then a watch by name) and list its new pods
/// and what tells them apart (ReplicaSets of a Deployment, ControllerRevisions of a
/// DaemonSet; a StatefulSet's pods carry its revision). A client dry run sends nothing.
pub(crate) fn needs<'a>(
    roll: impl IntoIterator<Item = &'a OutOfDateWorkload>,
    dry_run: DryRun,
) -> Vec<shared::access::Need> {
    use shared::access::Need;
    if !dry_run.sends() {
        return vec![];
    }
    let mut out = vec![];
    for o in roll {
        let (ns, w) = (Some(o.namespace.as_str()), &o.workload);
        let (resource, tells_new) = match w.kind.as_str() {
            "Deployment" => ("deployments", Some("replicasets")),
            "StatefulSet" => ("statefulsets", None),
            "DaemonSet" => ("daemonsets", Some("controllerrevisions")),
            _ => continue,
        };
        let on = |verb| Need::new(verb, "apps", resource).namespace(ns).name(&w.name);
        out.extend([on("get"), on("patch")]);
        if dry_run.server() {
            continue;
        }
        out.extend([on("list"), on("watch"), Need::new("list", "", "pods").namespace(ns)]);
        out.extend(tells_new.map(|r| Need::new("list", "apps", r).namespace(ns)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(ns: &str, kind: &str, name: &str) -> OutOfDateWorkload {
        OutOfDateWorkload {
            namespace: ns.into(),
            workload: shared::model::Workload {
                kind: kind.into(),
                name: name.into(),
            },
            gateway: false,
            pods: 2,
            out_of_date_pods: 2,
            from_revisions: ["1-27".to_string()].into(),
            to_revision: Some("1-28".into()),
            to_version: Some("1.28.3".into()),
            reasons: std::collections::BTreeSet::new(),
        }
    }

    #[test]
    fn needs_are_what_each_restart_reads_writes_and_watches() {
        let roll = [
            workload("default", "Deployment", "webapp"),
            workload("db", "StatefulSet", "db"),
            workload("kube-node", "DaemonSet", "agent"),
        ];
        let lines = |dry_run| -> Vec<String> { needs(&roll, dry_run).iter().map(ToString::to_string).collect() };
        assert_eq!(
            lines(DryRun::None),
            [
                "get deployments.apps webapp in namespace default",
                "patch deployments.apps webapp in namespace default",
                "list deployments.apps webapp in namespace default",
                "watch deployments.apps webapp in namespace default",
                "list pods in namespace default",
                "list replicasets.apps in namespace default",
                "get statefulsets.apps db in namespace db",
                "patch statefulsets.apps db in namespace db",
                "list statefulsets.apps db in namespace db",
                "watch statefulsets.apps db in namespace db",
                "list pods in namespace db",
                "get daemonsets.apps agent in namespace kube-node",
                "patch daemonsets.apps agent in namespace kube-node",
                "list daemonsets.apps agent in namespace kube-node",
                "watch daemonsets.apps agent in namespace kube-node",
                "list pods in namespace kube-node",
                "list controllerrevisions.apps in namespace kube-node",
            ]
        );
        // The server runs the patch and RBAC but nothing is watched.
        assert_eq!(
            lines(DryRun::Server),
            [
                "get deployments.apps webapp in namespace default",
                "patch deployments.apps webapp in namespace default",
                "get statefulsets.apps db in namespace db",
                "patch statefulsets.apps db in namespace db",
                "get daemonsets.apps agent in namespace kube-node",
                "patch daemonsets.apps agent in namespace kube-node",
            ]
        );
        assert!(lines(DryRun::Client).is_empty());
    }

    #[test]
    fn restart_stamp_is_rfc3339_seconds() {
        let s = restart_stamp();
        assert!(s.ends_with('Z') && !s.contains('.'), "{s}");
        assert!(s.parse::<Timestamp>().is_ok());
    }

    #[test]
    fn only_ending_events_have_a_result() {
        let elapsed = Duration::from_secs(1);
        assert_eq!(Event::Accepted { elapsed }.result(), Some(RollResult::Done));
        assert_eq!(Event::Interrupted { elapsed }.result(), Some(RollResult::Interrupted));
        assert_eq!(Event::NotStarted.result(), Some(RollResult::NotStarted));
        assert_eq!(Event::Pausing { pause: elapsed }.result(), None);
        assert_eq!(Event::Waiting { progress: None }.result(), None);
    }

    fn deployment(status: &serde_json::Value) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": status.clone()
        }))
        .unwrap()
    }

    #[test]
    fn a_roll_fails_below_its_promised_floor_or_on_replica_failure() {
        let what = "deployment/web in namespace \"shop\"";
        let rolling = deployment(&serde_json::json!({
            "observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2
        }));
        assert!(matches!(verdict(&rolling, 2, what), Verdict::Waiting(_)));
        assert!(matches!(verdict(&rolling, 1, what), Verdict::Waiting(_)));
        let dipped = deployment(&serde_json::json!({
            "observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1
        }));
        assert_eq!(
            verdict(&dipped, 2, what),
            Verdict::Failed(format!(
                "{what} fell to 1 ready pods during its restart, below the 2 the plan promised (AVAILABILITY)"
            ))
        );
        let refused = deployment(&serde_json::json!({
            "observedGeneration": 2, "replicas": 2, "updatedReplicas": 0, "readyReplicas": 2,
            "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                            "message": "Internal error occurred: failed calling webhook"}]
        }));
        assert_eq!(
            verdict(&refused, 2, what),
            Verdict::Failed(format!(
                "{what} cannot create its new pods (ReplicaFailure): FailedCreate: Internal error occurred: failed calling webhook"
            ))
        );
        let done = deployment(&serde_json::json!({
            "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2
        }));
        assert_eq!(verdict(&done, 2, what), Verdict::Done);
    }
}
