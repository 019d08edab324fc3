//! Restart one workload the way `kubectl rollout restart` does, follow its rollout with a
//! watch until kubectl's rollout-status rules say it is done, check its new pods' proxies,
//! run the hook.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::Connection;
use shared::model::{OutOfDateWorkload, Proxy};
use shared::rollout::{self, Rollout, Status};
use tokio::sync::watch;

use crate::display::{Phase, Ui};

/// Environment of the `--exec` command.
pub const ENV_KIND: &str = "MESH_WORKLOAD_KIND";
pub const ENV_NAMESPACE: &str = "MESH_WORKLOAD_NAMESPACE";
pub const ENV_NAME: &str = "MESH_WORKLOAD_NAME";
pub const ENV_REVISION: &str = "MESH_REVISION";

/// How one workload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Result {
    Done,
    Failed,
    /// Ctrl-C while it was rolling: its rollout goes on in the cluster.
    Interrupted,
    NotStarted,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub result: Result,
    /// The `kubectl.kubernetes.io/restartedAt` this run wrote; `None` when it sent no
    /// restart (a rollout already under way finished with the right proxies).
    pub restarted_at: Option<String>,
    /// RFC 3339 in UTC with milliseconds, so that the strings sort in time order.
    pub started: Option<String>,
    pub finished: Option<String>,
    pub seconds: Option<f64>,
    pub message: Option<String>,
}

impl Outcome {
    pub fn not_started() -> Outcome {
        Outcome {
            result: Result::NotStarted,
            restarted_at: None,
            started: None,
            finished: None,
            seconds: None,
            message: None,
        }
    }
}

/// What every workload's roll shares.
pub struct Ctx<'a> {
    pub conn: &'a Connection,
    pub timeout: Duration,
    pub exec: Option<&'a str>,
    pub cancel: watch::Receiver<bool>,
    pub ui: &'a Ui,
}

/// Why a workload's roll stopped early.
enum Stop {
    Failed(String),
    Interrupted,
}

type Step<T> = std::result::Result<T, Stop>;

/// Roll one workload: restart (once), wait, verify, hook.
pub async fn roll(ctx: &Ctx<'_>, i: usize, w: &OutOfDateWorkload) -> Outcome {
    let started = Timestamp::now();
    let clock = Instant::now();
    let mut restarted_at = None;
    let client = ctx.conn.client.clone();
    let ns = w.namespace.as_str();
    let step = match w.workload.kind.as_str() {
        "Deployment" => roll_kind(ctx, i, w, Api::<Deployment>::namespaced(client, ns), &mut restarted_at).await,
        "StatefulSet" => roll_kind(ctx, i, w, Api::<StatefulSet>::namespaced(client, ns), &mut restarted_at).await,
        "DaemonSet" => roll_kind(ctx, i, w, Api::<DaemonSet>::namespaced(client, ns), &mut restarted_at).await,
        other => Err(Stop::Failed(format!("cannot restart a {other}"))),
    };
    let step = match step {
        Ok(()) => run_hook(ctx, i, w).await,
        Err(e) => Err(e),
    };
    let elapsed = clock.elapsed();
    let (result, message) = match step {
        Ok(()) => {
            ctx.ui.phase(i, Phase::Done(elapsed, restarted_at.is_some()));
            (Result::Done, None)
        }
        Err(Stop::Failed(m)) => {
            ctx.ui.phase(i, Phase::Failed(elapsed, m.clone()));
            (Result::Failed, Some(m))
        }
        Err(Stop::Interrupted) => {
            ctx.ui.phase(i, Phase::Interrupted(elapsed));
            let m = if restarted_at.is_some() {
                "interrupted: its rollout goes on in the cluster".to_string()
            } else {
                "interrupted before its restart".to_string()
            };
            (Result::Interrupted, Some(m))
        }
    };
    Outcome {
        result,
        restarted_at,
        started: Some(millis(started)),
        finished: Some(millis(Timestamp::now())),
        seconds: Some((elapsed.as_secs_f64() * 10.0).round() / 10.0),
        message,
    }
}

/// The kinds a roll restarts: kubectl's rollout rules plus where their newest pods are.
pub trait Kind: Rollout + kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
where
    Self: Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    fn selector(&self) -> Option<&LabelSelector>;
    /// The pods of the current template, read after the rollout is done.
    fn new_pods(&self, client: &kube::Client) -> impl Future<Output = kube::Result<Vec<Pod>>>;
}

async fn roll_kind<K: Kind>(
    ctx: &Ctx<'_>,
    i: usize,
    w: &OutOfDateWorkload,
    api: Api<K>,
    restarted_at: &mut Option<String>,
) -> Step<()> {
    let name = w.workload.name.as_str();
    let what = format!("{} in namespace {:?}", w.workload, w.namespace);
    if *ctx.cancel.borrow() {
        return Err(Stop::Interrupted);
    }
    ctx.ui.phase(i, Phase::Starting);
    let current = retry(|| api.get(name))
        .await
        .map_err(|e| Stop::Failed(format!("cannot read {what}: {}", shared::error::chain(&e))))?;
    if let Some(b) = current.restart_blocker() {
        return Err(Stop::Failed(format!("{what} cannot be restarted now: {b}")));
    }
    // A rollout already under way (a run stopped by Ctrl-C, or someone else's restart)
    // may already be replacing the pods with the right proxy: let it finish and look,
    // rather than restarting on top of it.
    if let Status::Waiting(_) = current.rollout_status() {
        ctx.ui.phase(i, Phase::AlreadyRolling);
        let done = wait(ctx, i, &api, name, &what).await?;
        ctx.ui.phase(i, Phase::Verifying);
        if verify(ctx, w, &done).await.is_ok() {
            return Ok(());
        }
    }
    if *ctx.cancel.borrow() {
        return Err(Stop::Interrupted);
    }
    ctx.ui.phase(i, Phase::Restarting);
    let mut stamp = restart_stamp();
    // The same stamp twice is no change and rolls nothing: wait for the next second.
    if current.restarted_at() == Some(stamp.as_str()) {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        stamp = restart_stamp();
    }
    restart_once(&api, name, &stamp)
        .await
        .map_err(|e| Stop::Failed(format!("cannot restart {what}: {}", shared::error::chain(&e))))?;
    *restarted_at = Some(stamp);
    let done = wait(ctx, i, &api, name, &what).await?;
    ctx.ui.phase(i, Phase::Verifying);
    verify(ctx, w, &done).await.map_err(Stop::Failed)
}

fn millis(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// kubectl writes `time.Now().Format(time.RFC3339)`: seconds, no fraction.
fn restart_stamp() -> String {
    Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| Timestamp::now())
        .to_string()
}

/// Send the restart patch once. When a request fails in a way that leaves it unknown
/// whether the server applied it (connection lost, 5xx), read the object back: if it
/// already carries this stamp the restart happened and is not sent again.
async fn restart_once<K: Kind>(api: &Api<K>, name: &str, stamp: &str) -> kube::Result<K> {
    let patch = Patch::Merge(rollout::restart_patch(stamp));
    let mut delay = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        match api.patch(name, &PatchParams::default(), &patch).await {
            Ok(obj) => return Ok(obj),
            Err(e) if transient(&e) && attempt < RETRIES => {
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
                if let Ok(obj) = retry(|| api.get(name)).await
                    && obj.restarted_at() == Some(stamp)
                {
                    return Ok(obj);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Follow the one object with a watch (re-established with backoff after an expired
/// resourceVersion or a lost connection) until kubectl would call its rollout done.
async fn wait<K: Kind>(ctx: &Ctx<'_>, i: usize, api: &Api<K>, name: &str, what: &str) -> Step<K> {
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    let mut cancel = ctx.cancel.clone();
    let stream = watcher::watch_object(api.clone(), name).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut last = String::from("no status read yet");
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            _ = cancel.wait_for(|c| *c) => return Err(Stop::Interrupted),
            _ = tokio::time::sleep_until(deadline) => {
                let mut m = format!(
                    "{what} did not finish its rollout within {} (--timeout): {last}",
                    crate::human(ctx.timeout)
                );
                if let Some(e) = last_error {
                    m.push_str(&format!("; last API error: {e}"));
                }
                return Err(Stop::Failed(m));
            }
            item = stream.next() => match item {
                Some(Ok(Some(obj))) => {
                    last_error = None;
                    match obj.rollout_status() {
                        Status::Done => return Ok(obj),
                        Status::Failed(m) => return Err(Stop::Failed(m)),
                        Status::Waiting(m) => {
                            ctx.ui.phase(i, match obj.progress() {
                                Some(p) => Phase::Rolling(p),
                                None => Phase::Observing,
                            });
                            last = m;
                        }
                    }
                }
                Some(Ok(None)) => return Err(Stop::Failed(format!("{what} was deleted during its rollout"))),
                Some(Err(e)) => {
                    let text = shared::error::chain(&e);
                    ctx.ui.phase(i, Phase::Retrying(text.clone()));
                    last_error = Some(text);
                }
                None => return Err(Stop::Failed(format!("the watch on {what} ended"))),
            }
        }
    }
}

/// The new pods must carry the revision and version the plan promised; otherwise the
/// restart did not do what the roll is for, and going on would restart everything else
/// for nothing.
async fn verify<K: Kind>(ctx: &Ctx<'_>, w: &OutOfDateWorkload, obj: &K) -> std::result::Result<(), String> {
    let what = format!("{} in namespace {:?}", w.workload, w.namespace);
    let pods = retry(|| obj.new_pods(&ctx.conn.client))
        .await
        .map_err(|e| format!("cannot list the new pods of {what}: {}", shared::error::chain(&e)))?;
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
            return Err(format!(
                "new pod {pod_name} of {what} was injected by {got}, expected {want}: {hint}"
            ));
        }
        if let Some(want) = &w.to_version
            && !p.image_override
            && p.version.as_ref() != Some(want)
        {
            return Err(format!(
                "new pod {pod_name} of {what} runs proxy {} ({}), expected {want}: the injector of revision {} does not inject the version its istiod runs",
                p.version.as_deref().unwrap_or("of unknown version"),
                p.image,
                p.revision.as_deref().unwrap_or("?")
            ));
        }
    }
    Ok(())
}

async fn run_hook(ctx: &Ctx<'_>, i: usize, w: &OutOfDateWorkload) -> Step<()> {
    let Some(cmd) = ctx.exec else { return Ok(()) };
    ctx.ui.phase(i, Phase::Hook);
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
    let mut cancel = ctx.cancel.clone();
    let out = tokio::select! {
        _ = cancel.wait_for(|c| *c) => return Err(Stop::Interrupted),
        out = command.output() => out.map_err(|e| Stop::Failed(format!("--exec: cannot run sh: {e}")))?,
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for line in text.lines() {
        ctx.ui.println(&format!("    {}/{} | {line}", w.namespace, w.workload));
    }
    if out.status.success() {
        Ok(())
    } else {
        let code = out
            .status
            .code()
            .map(|c| format!("exited with code {c}"))
            .unwrap_or_else(|| "was killed by a signal".into());
        Err(Stop::Failed(format!("--exec {cmd:?} {code} after {}", w.workload)))
    }
}

const RETRIES: u32 = 6;
const MAX_DELAY: Duration = Duration::from_secs(10);

/// Worth retrying: throttled, a server error, or the connection itself.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// A read, retried with backoff on transient errors (about half a minute in all).
async fn retry<T, F, Fut>(mut call: F) -> kube::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = kube::Result<T>>,
{
    let mut delay = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if transient(&e) && attempt < RETRIES => {
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
            }
            other => return other,
        }
    }
}

/// kubectl's text form of a label selector.
pub fn selector_string(s: &LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

fn controlled_by(meta: &ObjectMeta, uid: Option<&str>) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && Some(r.uid.as_str()) == uid)
}

async fn live_pods(
    client: &kube::Client,
    meta: &ObjectMeta,
    selector: Option<&LabelSelector>,
) -> kube::Result<Vec<Pod>> {
    let api = Api::<Pod>::namespaced(client.clone(), meta.namespace.as_deref().unwrap_or("default"));
    let params = ListParams::default().labels(&selector.map(selector_string).unwrap_or_default());
    Ok(api
        .list(&params)
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

const DEPLOYMENT_REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HASH: &str = "controller-revision-hash";

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

impl Kind for Deployment {
    fn selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }
    /// The pods of the ReplicaSet whose revision is the Deployment's (kubectl's "new
    /// ReplicaSet").
    async fn new_pods(&self, client: &kube::Client) -> kube::Result<Vec<Pod>> {
        let ns = self.metadata.namespace.as_deref().unwrap_or("default");
        let revision = annotation(&self.metadata, DEPLOYMENT_REVISION);
        let selector = self.selector().map(selector_string).unwrap_or_default();
        let sets = Api::<ReplicaSet>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&selector))
            .await?;
        let uid = self.metadata.uid.as_deref();
        let Some(new) = sets
            .items
            .iter()
            .find(|rs| controlled_by(&rs.metadata, uid) && annotation(&rs.metadata, DEPLOYMENT_REVISION) == revision)
        else {
            return Ok(vec![]);
        };
        let new_uid = new.metadata.uid.as_deref();
        Ok(live_pods(client, &self.metadata, self.selector())
            .await?
            .into_iter()
            .filter(|p| controlled_by(&p.metadata, new_uid))
            .collect())
    }
}

impl Kind for StatefulSet {
    fn selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }
    /// Pods labelled with the StatefulSet's update revision.
    async fn new_pods(&self, client: &kube::Client) -> kube::Result<Vec<Pod>> {
        let revision = self.status.as_ref().and_then(|s| s.update_revision.as_deref());
        let uid = self.metadata.uid.as_deref();
        Ok(live_pods(client, &self.metadata, self.selector())
            .await?
            .into_iter()
            .filter(|p| controlled_by(&p.metadata, uid) && label(&p.metadata, REVISION_HASH) == revision)
            .collect())
    }
}

impl Kind for DaemonSet {
    fn selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }
    /// Pods of the DaemonSet's newest ControllerRevision (as `kubectl rollout history`
    /// finds it).
    async fn new_pods(&self, client: &kube::Client) -> kube::Result<Vec<Pod>> {
        let ns = self.metadata.namespace.as_deref().unwrap_or("default");
        let selector = self.selector().map(selector_string).unwrap_or_default();
        let uid = self.metadata.uid.as_deref();
        let revisions = Api::<ControllerRevision>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&selector))
            .await?;
        let Some(newest) = revisions
            .items
            .iter()
            .filter(|r| controlled_by(&r.metadata, uid))
            .max_by_key(|r| r.revision)
        else {
            return Ok(vec![]);
        };
        let cr_name = newest.metadata.name.clone().unwrap_or_default();
        let hash = label(&newest.metadata, REVISION_HASH)
            .map(String::from)
            .or_else(|| {
                let prefix = format!("{}-", self.metadata.name.as_deref().unwrap_or(""));
                cr_name.strip_prefix(&prefix).map(String::from)
            })
            .unwrap_or_default();
        Ok(live_pods(client, &self.metadata, self.selector())
            .await?
            .into_iter()
            .filter(|p| {
                controlled_by(&p.metadata, uid)
                    && label(&p.metadata, REVISION_HASH).is_some_and(|h| h == hash || h == cr_name)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            selector_string(&s),
            "app=webapp,tier in (a,b),!old,track,zone notin (x)"
        );
    }

    #[test]
    fn transient_errors_are_throttling_server_errors_and_connections() {
        let api = |code| kube::Error::Api(kube::core::Status::failure("x", "y").with_code(code).boxed());
        assert!(transient(&api(429)));
        assert!(transient(&api(503)));
        assert!(!transient(&api(404)));
        assert!(!transient(&api(409)));
    }

    #[test]
    fn times_have_fixed_width() {
        let t: Timestamp = "2026-11-27T04:36:28Z".parse().unwrap();
        assert_eq!(millis(t), "2026-11-27T04:36:28.000Z");
    }

    #[test]
    fn restart_stamp_is_rfc3339_seconds() {
        let s = restart_stamp();
        assert!(s.ends_with('Z') && !s.contains('.'), "{s}");
        assert!(s.parse::<Timestamp>().is_ok());
    }
}
