//! `kubectl mesh roll`: restart the workloads that run out-of-date Istio proxies, one at a
//! time by default, each gated on a healthy rollout and on its new pods' proxies.

mod act;
mod display;
mod plan;
mod report;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, ListParams};
use shared::connect::parse_duration;
use shared::model::Target;
use shared::output::OutputArgs;
use shared::rollout::Rollout;
use shared::{ConnectArgs, Connection, Scope, ScopeArgs, collect, exit};

pub use act::{ENV_KIND, ENV_NAME, ENV_NAMESPACE, ENV_REVISION};
pub use plan::{Exclude, Plan};

const ABOUT: &str =
    "Restart the workloads running out-of-date Istio proxies, one at a time, each gated on a healthy rollout";

const AFTER: &str = "\
What is restarted:
  Deployments, StatefulSets and DaemonSets with at least one out-of-date proxy: injected
  by another revision than the one their namespace now selects (canary upgrade), or
  older than their revision's istiod (in-place upgrade). Nothing else.
  Gateways are listed, and restarted only with --include-gateways (after the
  applications). Bare pods, Job pods and ReplicaSets without a Deployment are listed as
  needing manual action and never deleted. A paused Deployment, or a StatefulSet or
  DaemonSet with the OnDelete strategy, is skipped and reported.
  -l selects workloads by their own labels, as `kubectl rollout restart -l` does.

How:
  Each restart is the one `kubectl rollout restart` sends (the pod-template annotation
  kubectl.kubernetes.io/restartedAt), sent once per workload. The next workload starts
  only when the previous one's rollout is done by kubectl's rollout-status rules
  (followed with a watch) and its new pods carry the expected revision and proxy
  version. The default of one workload at a time keeps a bad proxy to one workload and
  the load of reconnecting sidecars small; raise it with --max-parallel.
  The order (applications by namespace, kind and name, then gateways) is printed first.

--exec runs with `sh -c` after each workload, with MESH_WORKLOAD_KIND (Deployment,
StatefulSet, DaemonSet), MESH_WORKLOAD_NAMESPACE, MESH_WORKLOAD_NAME and MESH_REVISION
(the revision its new pods got) in the environment; a non-zero exit stops the roll.

When a rollout fails (--timeout, ProgressDeadlineExceeded, wrong proxy, --exec) the roll
stops: later workloads are not touched, and the way back is printed. Ctrl-C stops it too
(no new restart); running the same command again carries on, as finished workloads are no
longer out of date.

Exit codes: 0 done (or nothing to do, or --dry-run), 1 error, 2 usage,
6 a rollout failed and the roll stopped, 130 interrupted.

Examples:
  kubectl mesh roll --dry-run
  kubectl mesh roll --one-at-a-time
  kubectl mesh roll -A --revision 1-27 --exclude deploy/legacy --pause 30s
  kubectl mesh roll -n shop --exec './smoke-test.sh \"$MESH_WORKLOAD_NAME\"' -o json";

#[derive(Debug, Parser)]
#[command(name = "kubectl-mesh-roll", bin_name = "kubectl mesh roll", version = shared::VERSION, about = ABOUT, after_help = AFTER)]
pub struct Args {
    /// Print the workloads that would be restarted, in order, and stop
    #[arg(long)]
    pub dry_run: bool,
    /// Restart one workload at a time (the default; same as --max-parallel 1)
    #[arg(long, conflicts_with = "max_parallel")]
    pub one_at_a_time: bool,
    /// How many workloads may roll at once
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_parallel: u16,
    /// Only workloads with a proxy injected by this revision (or the revision this tag
    /// points to)
    #[arg(long, value_name = "REVISION")]
    pub revision: Option<String>,
    /// Leave this workload alone: KIND/NAME or NAMESPACE/KIND/NAME (repeatable; kinds as
    /// kubectl spells them: deployment, deploy, statefulset, sts, daemonset, ds)
    #[arg(long, value_name = "KIND/NAME")]
    pub exclude: Vec<Exclude>,
    /// Only workloads whose own labels match this selector (as `kubectl rollout restart -l`)
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Restart gateways too (after every application)
    #[arg(long)]
    pub include_gateways: bool,
    /// Command to run after each workload (`sh -c`); a non-zero exit stops the roll
    #[arg(long, value_name = "COMMAND")]
    pub exec: Option<String>,
    /// Wait this long between workloads (e.g. 30s, 2m)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub pause: Option<Duration>,
    /// Give each workload this long to finish its rollout
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: Args) -> shared::Result<u8> {
    if args.timeout.is_zero() {
        return Err(shared::Error::Usage("--timeout must be more than 0 (e.g. 5m)".into()));
    }
    let max_parallel = if args.one_at_a_time {
        1
    } else {
        usize::from(args.max_parallel)
    };
    let conn = args.connect.connect().await?;
    // kubectl's default for a namespaced verb: the context's namespace.
    let scope = args
        .scope
        .scope(Scope::Namespaces(vec![conn.default_namespace.clone()]));
    let mesh = collect::read_mesh(&conn, &scope).await?;
    let revision = match &args.revision {
        None => None,
        Some(name) => Some(match mesh.control_plane.resolve(name) {
            Target::Revision(r) | Target::Tag { revision: r, .. } => r.to_string(),
            Target::Unknown if mesh.proxies.iter().any(|p| p.proxy.revision.as_deref() == Some(name)) => name.clone(),
            Target::Unknown => {
                let known: Vec<_> = mesh.control_plane.revisions.keys().cloned().collect();
                return Err(shared::Error::Usage(format!(
                    "--revision {name}: no such revision or tag, and no proxy was injected by it (revisions: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }),
    };
    let objects = read_objects(&conn, &scope, args.selector.as_deref()).await?;
    let filters = plan::Filters {
        revision,
        exclude: args.exclude.clone(),
        include_gateways: args.include_gateways,
        selected_only: args.selector.is_some(),
    };
    let plan = plan::plan(mesh.out_of_date_workloads(), &filters, &objects);
    let machine = args.output.machine();
    let paint = args.output.paint();
    let settings = report::Settings {
        dry_run: args.dry_run,
        max_parallel,
        timeout: human(args.timeout),
        pause: args.pause.map(human),
        exec: args.exec.clone(),
        scope: match &scope {
            Scope::All => "all namespaces".into(),
            Scope::Namespaces(n) => n.join(", "),
        },
    };
    if !machine {
        print!("{}", report::plan_text(&plan, &settings, paint));
    }
    if args.dry_run || plan.roll.is_empty() {
        let outcomes = vec![act::Outcome::not_started(); plan.roll.len()];
        if machine {
            shared::output::print_document(args.output.format, &report::document(&plan, &outcomes, &settings))?;
        }
        return Ok(exit::OK);
    }

    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = cancel_tx.send(true);
        }
    });
    let labels = plan
        .roll
        .iter()
        .map(|w| format!("{}/{}", w.namespace, w.workload))
        .collect();
    let live = !machine && std::io::stdout().is_terminal();
    let ui = display::Ui::new(labels, live, machine, paint);
    let ctx = act::Ctx {
        conn: &conn,
        timeout: args.timeout,
        exec: args.exec.as_deref(),
        cancel: cancel_rx.clone(),
        ui: &ui,
    };
    let stop = Cell::new(false);
    let last = plan.roll.len() - 1;
    let outcomes: Vec<act::Outcome> = futures::stream::iter(plan.roll.iter().enumerate())
        .map(|(i, w)| {
            let (ctx, stop, ui) = (&ctx, &stop, &ui);
            let mut cancel = cancel_rx.clone();
            async move {
                if stop.get() || *cancel.borrow() {
                    ui.phase(i, display::Phase::NotStarted);
                    return act::Outcome::not_started();
                }
                let outcome = act::roll(ctx, i, w).await;
                if outcome.result != act::Result::Done {
                    stop.set(true);
                } else if let Some(pause) = args.pause.filter(|_| i < last) {
                    ui.phase(i, display::Phase::Pausing(pause));
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = cancel.wait_for(|c| *c) => {}
                    }
                    ui.phase(
                        i,
                        display::Phase::Done(
                            Duration::from_secs_f64(outcome.seconds.unwrap_or(0.0)),
                            outcome.restarted_at.is_some(),
                        ),
                    );
                }
                outcome
            }
        })
        .buffered(max_parallel)
        .collect()
        .await;
    interrupt.abort();
    ui.finish();
    drop(ui);

    let interrupted = *cancel_rx.borrow();
    if machine {
        shared::output::print_document(args.output.format, &report::document(&plan, &outcomes, &settings))?;
    } else {
        print!("{}", report::summary_text(&plan, &outcomes, interrupted, paint));
    }
    Ok(if outcomes.iter().any(|o| o.result == act::Result::Failed) {
        exit::ROLLOUT_FAILED
    } else if interrupted || outcomes.iter().any(|o| o.result != act::Result::Done) {
        exit::INTERRUPTED
    } else {
        exit::OK
    })
}

/// Every Deployment, StatefulSet and DaemonSet in scope (those `-l` selects), and what
/// would stop a restart from replacing its pods.
async fn read_objects(conn: &Connection, scope: &Scope, selector: Option<&str>) -> shared::Result<plan::Objects> {
    let mut found = BTreeMap::new();
    let params = ListParams::default().labels(selector.unwrap_or(""));
    let namespaces: Vec<Option<&str>> = match scope {
        Scope::All => vec![None],
        Scope::Namespaces(n) => n.iter().map(|n| Some(n.as_str())).collect(),
    };
    for ns in namespaces {
        add(
            &mut found,
            conn,
            ns,
            &params,
            selector,
            "Deployment",
            api::<Deployment>(conn, ns),
        )
        .await?;
        add(
            &mut found,
            conn,
            ns,
            &params,
            selector,
            "StatefulSet",
            api::<StatefulSet>(conn, ns),
        )
        .await?;
        add(
            &mut found,
            conn,
            ns,
            &params,
            selector,
            "DaemonSet",
            api::<DaemonSet>(conn, ns),
        )
        .await?;
    }
    Ok(plan::Objects { found })
}

fn api<K>(conn: &Connection, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(n) => Api::namespaced(conn.client.clone(), n),
        None => Api::all(conn.client.clone()),
    }
}

async fn add<K>(
    found: &mut BTreeMap<plan::Key, Option<String>>,
    conn: &Connection,
    ns: Option<&str>,
    params: &ListParams,
    selector: Option<&str>,
    kind: &str,
    api: Api<K>,
) -> shared::Result<()>
where
    K: kube::Resource<DynamicType = ()> + Rollout + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let where_ = ns
        .map(|n| format!("in namespace {n:?}"))
        .unwrap_or_else(|| "in all namespaces".into());
    let list = api.list(params).await.map_err(|e| match (&e, selector) {
        (kube::Error::Api(s), Some(sel)) if s.code == 400 => {
            shared::Error::Usage(format!("-l {sel:?} is not a valid label selector: {}", s.message))
        }
        _ => shared::error::api_error(e, &conn.url, format!("list {}s {where_}", kind.to_lowercase())),
    })?;
    for o in list.items {
        let meta = o.meta();
        let key = (
            meta.namespace.clone().unwrap_or_default(),
            kind.to_string(),
            meta.name.clone().unwrap_or_default(),
        );
        found.insert(key, o.restart_blocker());
    }
    Ok(())
}

/// `1m30s`, `45s`, `2h`, `300ms`: how kubectl prints durations.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        super::Args::command().debug_assert();
    }

    #[test]
    fn flags_parse_and_default_to_one_at_a_time() {
        let a = Args::try_parse_from(["roll"]).unwrap();
        assert_eq!((a.max_parallel, a.timeout), (1, Duration::from_secs(300)));
        let a = Args::try_parse_from([
            "roll",
            "--exclude",
            "sts/db",
            "--exclude",
            "ns/ds/agent",
            "--pause",
            "30s",
        ])
        .unwrap();
        assert_eq!(a.exclude.len(), 2);
        assert_eq!(a.pause, Some(Duration::from_secs(30)));
        assert!(Args::try_parse_from(["roll", "--max-parallel", "0"]).is_err());
        assert!(Args::try_parse_from(["roll", "--one-at-a-time", "--max-parallel", "3"]).is_err());
        let err = Args::try_parse_from(["roll", "--exclude", "pod/x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown kind"), "{err}");
    }

    #[test]
    fn durations_print_like_kubectl() {
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
        assert_eq!(human(Duration::from_secs(300)), "5m");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(3601)), "1h1s");
    }
}
