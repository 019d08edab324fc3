//! `kubectl mesh roll`: restart the workloads that run out-of-date Istio proxies, one at a
//! time by default, each gated on a healthy rollout and on its new pods' proxies.
//!
//! read (`read.rs`) -> plan (`plan.rs`, pure) -> report the plan -> act (`act.rs`, telling
//! its events to the display and the report) -> report the results (`report.rs`).

mod act;
mod availability;
mod display;
mod plan;
mod read;
mod report;

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::Duration;

use clap::Parser;
use shared::connect::parse_duration;
use shared::output::DryRunArgs;
use shared::{Connection, Scope, exit};

use crate::act::{Event, RollResult, Signal};
use crate::plan::{Plan, SkipCause};
use crate::report::{Outcome, Settings};

pub use act::{ENV_KIND, ENV_NAME, ENV_NAMESPACE, ENV_REVISION};
pub use plan::{AllowDowntime, Exclude};

/// Exit code: the roll did what it could, but left at least one workload alone because its
/// restart would have taken it down or breached its PodDisruptionBudget (see
/// `--allow-downtime`). Documented in the help text.
pub const SKIPPED_FOR_AVAILABILITY: u8 = 7;

const ABOUT: &str =
    "Restart the workloads running out-of-date Istio proxies, one at a time, each gated on a healthy rollout";

const AFTER: &str = "\
What is restarted:
  Deployments, StatefulSets and DaemonSets with at least one out-of-date proxy: injected
  by another revision than the one their namespace now selects (canary upgrade), or
  older than their revision's istiod (in-place upgrade). Nothing else.
  Gateways are listed, and restarted only with --include-gateways (after the
  applications). Bare pods, Job pods and ReplicaSets without a Deployment are listed as
  needing manual action and never deleted. A paused Deployment, a StatefulSet or
  DaemonSet with the OnDelete strategy, or a StatefulSet with a rollingUpdate partition
  above 0 (its pods below the partition would keep their proxy) is skipped and reported.
  Out-of-date proxies a restart would not update are listed as not restarted by roll,
  with the reason: Gateway API gateways and waypoints (istiod re-renders them), ztunnel
  and istio-cni (upgraded by their charts), gateways whose image is written in their
  Deployment (istioctl's), pods that opted out of injection.
  -l selects workloads by their own labels, as `kubectl rollout restart -l` does.

How:
  Each restart is the one `kubectl rollout restart` sends (the pod-template annotation
  kubectl.kubernetes.io/restartedAt), sent once per workload. The next workload starts
  only when the previous one's rollout is done by kubectl's rollout-status rules
  (followed with a watch) and its new pods carry the expected revision and proxy
  version. The default of one workload at a time keeps a bad proxy to one workload and
  the load of reconnecting sidecars small; raise it with --max-parallel.
  The order (applications by namespace, kind and name, then gateways) is printed first.
  Before each restart the revision it restarts into must be able to inject: its istiod
  Deployment has a ready replica and its injector ConfigMap exists. Istio's injector
  webhooks fail closed, so otherwise every new pod would be rejected; the restart is
  refused and the roll stops. A Deployment whose new pods are rejected anyway (condition
  ReplicaFailure, reason FailedCreate) stops the roll at once, quoting the API server.

--dry-run (= --dry-run=client) prints the plan and changes nothing. --dry-run=server
sends each restart patch with dryRun=All, so the API server (and its admission webhooks)
validates it without persisting it, reports per workload whether it was accepted, and
waits for nothing: no rollout, no --exec, no --pause.

--exec runs with `sh -c` after each workload, with MESH_WORKLOAD_KIND (Deployment,
StatefulSet, DaemonSet), MESH_WORKLOAD_NAMESPACE, MESH_WORKLOAD_NAME and MESH_REVISION
(the revision its new pods got) in the environment; a non-zero exit stops the roll.

When a rollout fails (--timeout, ProgressDeadlineExceeded, ReplicaFailure, wrong proxy,
--exec) the roll stops: later workloads are not touched, and the way back is printed.
Ctrl-C and SIGTERM stop it too (no new restart, a summary); running the same command
again carries on, as finished workloads are no longer out of date.

Availability (the AVAILABILITY column, `availability` in JSON): before anything changes,
each restart's lowest number of ready pods is worked out by its controller's rules:
RollingUpdate keeps replicas - maxUnavailable (maxSurge rounds up, maxUnavailable down,
both 0 means maxUnavailable 1), Recreate goes to 0, a StatefulSet replaces one pod at a
time (or maxUnavailable), a DaemonSet node by node. PodDisruptionBudgets selecting the
pods are checked too (a rollout does not consult them). A workload whose restart would
take it to 0 ready pods, or breach its budget, is not restarted: it is listed with the
reason and the fix (more replicas, RollingUpdate, maxSurge), and the roll goes on with
the others; --allow-downtime (all) or --allow-downtime KIND/NAME restarts it anyway.
During each restart its ready pods are followed; the fewest seen is reported, and falling
below what the plan promised stops the roll like a failed rollout.

Exit codes: 0 done (or nothing to do, or --dry-run), 1 error, 2 usage,
4 refused: the target revision cannot inject, and nothing was restarted,
6 a rollout failed, or a restart was refused after others were done, and the roll
  stopped (--dry-run=server: a restart was rejected),
7 done, but some workloads were left alone for availability (see --allow-downtime),
130 interrupted by Ctrl-C, 143 stopped by SIGTERM.

Examples:
  kubectl mesh roll --dry-run
  kubectl mesh roll -A --dry-run=server
  kubectl mesh roll --one-at-a-time
  kubectl mesh roll -A --revision 1-27 --exclude deploy/legacy --pause 30s
  kubectl mesh roll -n shop --allow-downtime statefulset/cache
  kubectl mesh roll -n shop --exec './smoke-test.sh \"$MESH_WORKLOAD_NAME\"' -o json";

#[derive(Debug, Parser)]
#[command(name = "kubectl-mesh-roll", bin_name = "kubectl mesh roll", version = shared::VERSION, about = ABOUT, after_help = AFTER)]
pub struct Args {
    #[command(flatten)]
    pub dry_run: DryRunArgs,
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
    /// Restart even workloads whose restart takes them to 0 ready pods or breaches a
    /// PodDisruptionBudget: all of them (bare flag), or this one, KIND/NAME or
    /// NAMESPACE/KIND/NAME (repeatable)
    #[arg(long, value_name = "KIND/NAME", num_args = 0..=1, default_missing_value = "all")]
    pub allow_downtime: Vec<AllowDowntime>,
    /// Command to run after each workload (`sh -c`); a non-zero exit stops the roll
    #[arg(long, value_name = "COMMAND")]
    pub exec: Option<String>,
    /// Wait this long between workloads (e.g. 30s, 2m)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub pause: Option<Duration>,
    /// Give each workload this long to finish its rollout (and each of its API calls this
    /// long to get past throttling, server errors and lost connections)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,
    #[command(flatten)]
    pub step: shared::cli::StepArgs,
}

pub async fn run(args: Args) -> shared::Result<u8> {
    if args.timeout.is_zero() {
        return Err(shared::Error::Usage("--timeout must be more than 0 (e.g. 5m)".into()));
    }
    let conn = args.step.connect.connect().await?;
    // kubectl's default for a namespaced verb: the context's namespace.
    let scope = args
        .step
        .scope
        .scope(Scope::Namespaces(vec![conn.default_namespace.clone()]));
    let (mesh, objects) = read::read(&conn, &scope, args.selector.as_deref()).await?;
    let revision = args.revision.as_deref().map(|r| plan::revision(&mesh, r)).transpose()?;
    let plan = plan::plan(&mesh, &args.filters(revision), &objects);
    let settings = args.settings(&scope);
    let needs = act::needs(plan.roll.iter().map(|p| &p.workload), settings.dry_run);
    shared::access::check(&conn, "roll", needs).await?;
    report::print_plan(&plan, &settings, &args.step.output);
    if !settings.dry_run.sends() || plan.roll.is_empty() {
        // --dry-run, or nothing to do: the plan is the whole answer.
        report::print_planned(&plan, &settings, &args.step.output)?;
        let held_back = !settings.dry_run.is_dry() && held_back(&plan);
        return Ok(if held_back { SKIPPED_FOR_AVAILABILITY } else { exit::OK });
    }
    let (outcomes, signal) = roll(&conn, &args, &plan, &settings).await;
    report::print_results(&plan, &outcomes, signal, &settings, &args.step.output)?;
    Ok(exit_code(&outcomes, signal, held_back(&plan)))
}

/// A workload was left alone because its restart would take it down.
fn held_back(plan: &Plan) -> bool {
    plan.skipped.iter().any(|s| s.cause == SkipCause::Availability)
}

impl Args {
    fn filters(&self, revision: Option<String>) -> plan::Filters {
        plan::Filters {
            revision,
            exclude: self.exclude.clone(),
            include_gateways: self.include_gateways,
            selected_only: self.selector.is_some(),
            allow_downtime: self.allow_downtime.clone(),
        }
    }

    fn settings(&self, scope: &Scope) -> Settings {
        Settings {
            dry_run: self.dry_run.dry_run,
            max_parallel: if self.one_at_a_time {
                1
            } else {
                usize::from(self.max_parallel)
            },
            timeout: human(self.timeout),
            pause: self.pause.map(human),
            exec: self.exec.clone(),
            scope: match scope {
                Scope::All => "all namespaces".into(),
                Scope::Namespaces(n) => n.join(", "),
            },
        }
    }
}

/// Act on the plan while the display and the report follow its events.
async fn roll(conn: &Connection, args: &Args, plan: &Plan, settings: &Settings) -> (Vec<Outcome>, Option<Signal>) {
    let labels = plan.roll.iter().map(plan::Planned::label).collect();
    // With -o json|yaml|name stdout is for scripts: progress goes to stderr.
    let machine = args.step.output.scripted();
    let live = !machine && std::io::stdout().is_terminal();
    let ui = display::Ui::new(labels, live, machine, args.step.output.paint());
    let outcomes = RefCell::new(vec![Outcome::default(); plan.roll.len()]);
    let events = |i: usize, event: Event| {
        ui.show(i, &event);
        outcomes.borrow_mut()[i].record(&event);
    };
    let ctx = act::Ctx {
        conn,
        dry_run: settings.dry_run,
        max_parallel: settings.max_parallel,
        timeout: args.timeout,
        pause: args.pause,
        exec: args.exec.as_deref(),
        events: &events,
    };
    let (_, signal) = act::roll_all(&ctx, &plan.roll).await;
    ui.finish();
    (outcomes.into_inner(), signal)
}

/// 6 when a rollout failed; when a restart was refused (its revision cannot inject), 4 if
/// this run had restarted nothing yet, else 6 (the roll stopped midway); 130 or 143 when
/// Ctrl-C or SIGTERM left workloads unfinished; 7 when every planned workload was done but
/// some were `held_back` for availability; else 0.
fn exit_code(outcomes: &[Outcome], signal: Option<Signal>, held_back: bool) -> u8 {
    let any = |r: RollResult| outcomes.iter().any(|o| o.result == r);
    if any(RollResult::Failed) {
        exit::ROLLOUT_FAILED
    } else if any(RollResult::Refused) {
        if outcomes.iter().any(|o| o.restarted_at.is_some()) {
            exit::ROLLOUT_FAILED
        } else {
            exit::REFUSED
        }
    } else if let Some(s) = signal {
        s.exit_code()
    } else if outcomes.iter().any(|o| o.result != RollResult::Done) {
        exit::INTERRUPTED
    } else if held_back {
        SKIPPED_FOR_AVAILABILITY
    } else {
        exit::OK
    }
}

/// `1m30s`, `45s`, `2h`, `300ms`: how kubectl prints durations.
pub(crate) fn human(d: Duration) -> String {
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
    fn dry_run_is_client_when_bare_and_server_when_asked() {
        use shared::output::DryRun;
        let dry = |args: &[&str]| Args::try_parse_from(args).unwrap().dry_run.dry_run;
        assert_eq!(dry(&["roll"]), DryRun::None);
        assert_eq!(dry(&["roll", "--dry-run", "-n", "default"]), DryRun::Client);
        assert_eq!(dry(&["roll", "--dry-run=server"]), DryRun::Server);
    }

    #[test]
    fn exit_codes_say_how_the_roll_ended() {
        let o = |result: RollResult, restarted: bool| Outcome {
            result,
            restarted_at: restarted.then(|| "2026-11-27T04:36:28Z".to_string()),
            ..Outcome::default()
        };
        let done = o(RollResult::Done, true);
        let refused = o(RollResult::Refused, false);
        let not_started = o(RollResult::NotStarted, false);
        assert_eq!(exit_code(&[done.clone(), done.clone()], None, false), exit::OK);
        // Refused before anything was restarted: nothing changed.
        assert_eq!(
            exit_code(&[refused.clone(), not_started.clone()], None, false),
            exit::REFUSED
        );
        // Refused after a restart: the roll stopped midway.
        assert_eq!(
            exit_code(&[done.clone(), refused.clone(), not_started.clone()], None, false),
            exit::ROLLOUT_FAILED
        );
        assert_eq!(
            exit_code(&[o(RollResult::Failed, true), not_started.clone()], None, true),
            exit::ROLLOUT_FAILED
        );
        assert_eq!(
            exit_code(&[done.clone(), not_started.clone()], Some(Signal::Terminate), true),
            exit::TERMINATED
        );
        assert_eq!(
            exit_code(
                &[o(RollResult::Interrupted, true), not_started],
                Some(Signal::Interrupt),
                false
            ),
            exit::INTERRUPTED
        );
        assert_eq!(exit::TERMINATED, 143);
        // Everything planned done, something held back for availability.
        assert_eq!(
            exit_code(std::slice::from_ref(&done), None, true),
            SKIPPED_FOR_AVAILABILITY
        );
        assert_eq!(exit_code(&[], None, true), SKIPPED_FOR_AVAILABILITY);
    }

    #[test]
    fn allow_downtime_is_all_when_bare_or_named_workloads() {
        let allow = |args: &[&str]| Args::try_parse_from(args).unwrap().allow_downtime;
        assert!(allow(&["roll"]).is_empty());
        assert_eq!(allow(&["roll", "--allow-downtime"]), [AllowDowntime::All]);
        assert_eq!(allow(&["roll", "--allow-downtime", "-n", "shop"]), [AllowDowntime::All]);
        let named = allow(&[
            "roll",
            "--allow-downtime",
            "deploy/web",
            "--allow-downtime",
            "shop/sts/db",
        ]);
        assert_eq!(
            named,
            [
                AllowDowntime::Workload("deploy/web".parse().unwrap()),
                AllowDowntime::Workload("shop/sts/db".parse().unwrap())
            ]
        );
        assert!(Args::try_parse_from(["roll", "--allow-downtime", "pod/x"]).is_err());
    }

    #[test]
    fn durations_print_like_kubectl() {
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
        assert_eq!(human(Duration::from_secs(300)), "5m");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(3601)), "1h1s");
    }
}
