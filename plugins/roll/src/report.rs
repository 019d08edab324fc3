//! The plan printed before anything changes, each workload's outcome (recorded from act's
//! events), the summary printed after, and the JSON/YAML document for scripts.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use shared::model::OutOfDateWorkload;
use shared::output::{DryRun, Envelope, Format, OutputArgs, Paint, Table, render, render_rows, table};

use crate::act::{Event, RollResult, Signal};
use crate::plan::{NotRestarted, Plan, Planned, SkipCause, Skipped};

/// The `kind` of the JSON/YAML document.
const KIND: &str = "MeshRoll";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Settings {
    /// In the document's envelope, not here.
    #[serde(skip)]
    pub(crate) dry_run: DryRun,
    pub(crate) max_parallel: usize,
    pub(crate) timeout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) exec: Option<String>,
    pub(crate) scope: String,
}

/// How one workload's roll went, as the report tells it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Outcome {
    pub(crate) result: RollResult,
    /// The `kubectl.kubernetes.io/restartedAt` this run wrote; `None` when it wrote no
    /// restart (a rollout already under way finished with the right proxies, or a dry run).
    pub(crate) restarted_at: Option<String>,
    /// RFC 3339 in UTC with milliseconds, so that the strings sort in time order.
    pub(crate) started: Option<String>,
    pub(crate) finished: Option<String>,
    pub(crate) seconds: Option<f64>,
    pub(crate) message: Option<String>,
    /// The fewest ready pods any status of the workload showed during its roll (from just
    /// before its restart to the end of its rollout).
    pub(crate) lowest_ready: Option<i32>,
}

impl Outcome {
    /// Record an event as it happens. Nothing changes after the workload's end (its `Done`
    /// is told again after `--pause`).
    pub(crate) fn record(&mut self, event: &Event) {
        if self.finished.is_some() {
            return;
        }
        match event {
            Event::Started => self.started = Some(millis(Timestamp::now())),
            Event::Restarted { restarted_at } => self.restarted_at = Some(restarted_at.clone()),
            Event::Ready { ready } => {
                self.lowest_ready = Some(self.lowest_ready.map_or(*ready, |l| l.min(*ready)));
            }
            _ => {}
        }
        let Some(result) = event.result() else { return };
        self.result = result;
        let elapsed = match event {
            Event::Done { elapsed, .. } | Event::Accepted { elapsed } | Event::Interrupted { elapsed } => elapsed,
            Event::Failed { elapsed, message } | Event::Refused { elapsed, message } => {
                self.message = Some(message.clone());
                elapsed
            }
            _ => return,
        };
        if result == RollResult::Interrupted {
            self.message = Some(if self.restarted_at.is_some() {
                "interrupted: its rollout goes on in the cluster".to_string()
            } else {
                "interrupted before its restart".to_string()
            });
        }
        self.finished = Some(millis(Timestamp::now()));
        self.seconds = Some(tenths(*elapsed));
    }
}

/// How the text is drawn, from the output flags: colours, and tables with or without
/// their header row (`--no-headers`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Look {
    pub(crate) paint: Paint,
    pub(crate) headers: bool,
}

impl Look {
    pub(crate) fn new(output: &OutputArgs) -> Look {
        Look {
            paint: output.paint(),
            headers: output.headers(),
        }
    }

    fn table(self, t: &Table) -> String {
        if self.headers { render(t) } else { render_rows(t) }
    }
}

fn millis(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn tenths(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

fn revisions(w: &OutOfDateWorkload) -> String {
    w.from_revisions.iter().cloned().collect::<Vec<_>>().join(",")
}

fn target(w: &OutOfDateWorkload) -> String {
    match (&w.to_revision, &w.to_version) {
        (Some(r), Some(v)) => format!("{r} ({v})"),
        (Some(r), None) => r.clone(),
        _ => "?".into(),
    }
}

fn plan_text(plan: &Plan, s: &Settings, look: Look) -> String {
    let paint = look.paint;
    let mut out = String::new();
    if plan.roll.is_empty() {
        out.push_str(&nothing_to_do(plan, s));
    } else {
        out.push_str(&roll_table(plan, s, look));
    }
    listed(&mut out, "Not restarted:", &plan.skipped, look);
    listed(
        &mut out,
        "Needing manual action (never deleted by roll):",
        &plan.manual,
        look,
    );
    not_restarted(&mut out, &plan.not_restarted, look);
    for t in &plan.target_problems {
        out.push_str(&paint.warn(&format!(
            "warning: revision {} cannot inject new pods now: {}; roll restarts nothing into it until it can\n",
            t.revision, t.problem
        )));
    }
    for e in &plan.unused_excludes {
        out.push_str(&paint.warn(&format!("note: --exclude {e} matched no out-of-date workload\n")));
    }
    if !plan.roll.is_empty() {
        out.push_str(match s.dry_run {
            DryRun::None => "",
            DryRun::Client => "Dry run: nothing was changed.\n",
            DryRun::Server => "Server dry run: each restart is sent with dryRun=All, and nothing is changed.\n",
        });
    }
    out.push('\n');
    out
}

fn nothing_to_do(plan: &Plan, s: &Settings) -> String {
    let held_back = plan.skipped.iter().any(|k| k.cause == SkipCause::Availability);
    format!(
        "Nothing to restart in {}: no Deployment, StatefulSet or DaemonSet runs an out-of-date proxy{}.\n",
        s.scope,
        if held_back {
            " that may be restarted without downtime"
        } else if plan.skipped.is_empty() {
            ""
        } else {
            " that may be restarted"
        }
    )
}

/// The heading and the table of the workloads to restart, in order, each with what its
/// restart does to its ready pods.
fn roll_table(plan: &Plan, s: &Settings, look: Look) -> String {
    let how = if s.max_parallel == 1 {
        "one at a time".to_string()
    } else {
        format!("up to {} at a time", s.max_parallel)
    };
    let mut out = format!(
        "{} {} workload{} with out-of-date proxies in {}, {how}, in this order (timeout {} each{}):\n",
        if s.dry_run.is_dry() {
            "Would restart"
        } else {
            "Restarting"
        },
        plan.roll.len(),
        if plan.roll.len() == 1 { "" } else { "s" },
        s.scope,
        s.timeout,
        s.pause.as_ref().map(|p| format!(", pause {p}")).unwrap_or_default()
    );
    let mut t = table(&[
        "#",
        "namespace",
        "workload",
        "out of date",
        "from",
        "to",
        "availability",
    ]);
    for (i, p) in plan.roll.iter().enumerate() {
        let w = &p.workload;
        t.add_row(vec![
            (i + 1).to_string(),
            w.namespace.clone(),
            w.workload.to_string(),
            format!("{}/{}", w.out_of_date_pods, w.pods),
            revisions(w),
            target(w),
            p.availability.cell(),
        ]);
    }
    out.push_str(&indent(&look.table(&t)));
    out
}

fn listed(out: &mut String, title: &str, items: &[Skipped], look: Look) {
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("{}\n", look.paint.bold(title)));
    let mut t = table(&["namespace", "workload", "out of date", "why"]);
    for s in items {
        t.add_row(vec![
            s.workload.namespace.clone(),
            s.workload.workload.to_string(),
            format!("{}/{}", s.workload.out_of_date_pods, s.workload.pods),
            s.reason.clone(),
        ]);
    }
    out.push_str(&indent(&look.table(&t)));
}

fn not_restarted(out: &mut String, items: &[NotRestarted], look: Look) {
    if items.is_empty() {
        return;
    }
    out.push_str(&format!(
        "{}\n",
        look.paint
            .bold("Out of date, not restarted by roll (a restart would not update them):")
    ));
    let mut t = table(&["namespace", "workload", "kind", "out of date", "why"]);
    for n in items {
        t.add_row(vec![
            n.namespace.clone(),
            n.workload.to_string(),
            n.kind.to_string(),
            n.out_of_date_pods.to_string(),
            n.reason.clone(),
        ]);
    }
    out.push_str(&indent(&look.table(&t)));
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// A result in words; with `--dry-run=server` a restart is accepted or rejected.
fn word(r: RollResult, dry_run: DryRun) -> &'static str {
    match (r, dry_run) {
        (RollResult::Done, DryRun::Server) => "accepted",
        (RollResult::Failed, DryRun::Server) => "rejected",
        (RollResult::Done, _) => "done",
        (RollResult::Failed, _) => "failed",
        (RollResult::Refused, _) => "refused",
        (RollResult::Interrupted, _) => "interrupted",
        (RollResult::NotStarted, _) => "not started",
    }
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    done: usize,
    failed: usize,
    refused: usize,
    interrupted: usize,
    not_started: usize,
}

fn counts(outcomes: &[Outcome]) -> Counts {
    let mut c = Counts::default();
    for o in outcomes {
        match o.result {
            RollResult::Done => c.done += 1,
            RollResult::Failed => c.failed += 1,
            RollResult::Refused => c.refused += 1,
            RollResult::Interrupted => c.interrupted += 1,
            RollResult::NotStarted => c.not_started += 1,
        }
    }
    c
}

fn summary_text(plan: &Plan, outcomes: &[Outcome], signal: Option<Signal>, dry_run: DryRun, look: Look) -> String {
    let mut out = results_text(plan, outcomes, dry_run, look);
    out.push_str(&held_back_text(plan, look.paint));
    out.push_str(&ending(plan, outcomes, signal, dry_run));
    out
}

/// The results table, the counts, and each workload's message.
fn results_text(plan: &Plan, outcomes: &[Outcome], dry_run: DryRun, look: Look) -> String {
    let paint = look.paint;
    let c = counts(outcomes);
    let word = |r| word(r, dry_run);
    let mut out = String::from("\n");
    let mut t = table(&["namespace", "workload", "result", "time", "lowest ready", "restartedAt"]);
    for (p, o) in plan.roll.iter().zip(outcomes) {
        let w = &p.workload;
        // No colour inside the table: escape codes would count as width.
        t.add_row(vec![
            w.namespace.clone(),
            w.workload.to_string(),
            word(o.result).to_string(),
            o.seconds.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "-".into()),
            lowest_ready(p, o),
            o.restarted_at.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&look.table(&t));
    out.push('\n');
    let refused = if c.refused > 0 {
        format!(", {} refused", c.refused)
    } else {
        String::new()
    };
    out.push_str(&format!(
        "\n{} {}, {} {}{refused}, {} interrupted, {} not started.\n",
        c.done,
        word(RollResult::Done),
        c.failed,
        word(RollResult::Failed),
        c.interrupted,
        c.not_started
    ));
    for (p, o) in plan.roll.iter().zip(outcomes) {
        if let Some(m) = &o.message {
            let line = format!("{}: {m}", p.label());
            out.push_str(&if matches!(o.result, RollResult::Failed | RollResult::Refused) {
                paint.bad(&line)
            } else {
                paint.warn(&line)
            });
            out.push('\n');
        }
    }
    out
}

/// The workloads left alone because their restart would take them down, if any.
fn held_back_text(plan: &Plan, paint: Paint) -> String {
    let held: Vec<String> = plan
        .skipped
        .iter()
        .filter(|k| k.cause == SkipCause::Availability)
        .map(|k| format!("{}/{}", k.workload.namespace, k.workload.workload))
        .collect();
    if held.is_empty() {
        return String::new();
    }
    paint.warn(&format!(
        "Left alone for availability (see the plan above; --allow-downtime restarts them): {}\n",
        held.join(", ")
    ))
}

/// `1 of 2 (plan ≥1)`: the fewest ready pods seen against the plan's promise.
fn lowest_ready(p: &Planned, o: &Outcome) -> String {
    match o.lowest_ready {
        Some(l) => format!("{l} of {} (plan ≥{})", p.availability.replicas, p.availability.lowest),
        None => "-".into(),
    }
}

/// What the summary ends with: the way back after a failure, or how to carry on.
fn ending(plan: &Plan, outcomes: &[Outcome], signal: Option<Signal>, dry_run: DryRun) -> String {
    let back = rollback(plan, outcomes, dry_run);
    let refused = outcomes.iter().any(|o| o.result == RollResult::Refused);
    if dry_run.server() {
        return "\nServer dry run: nothing was changed.\n".into();
    }
    if !back.is_empty() {
        let mut out = String::from(
            "\nThe roll stopped; workloads after the failed or refused one were not touched. To go back:\n",
        );
        for cmd in &back {
            out.push_str(&format!("  {cmd}\n"));
        }
        out.push_str("To carry on instead, fix the cause and run the same command again: finished workloads are no longer out of date.\n");
        return out;
    }
    if refused {
        return "\nNothing was restarted. Fix the revision, then run the same command again.\n".into();
    }
    match signal {
        Some(s) => format!(
            "\n{}: no new restart was sent. Run the same command again to carry on; finished workloads are no longer out of date.\n",
            if s == Signal::Interrupt {
                "Interrupted".to_string()
            } else {
                format!("Stopped by {}", s.name())
            }
        ),
        None => String::new(),
    }
}

/// The way back after a failure, or a refusal once something was restarted: point each
/// touched namespace back at its old revision and roll again; an in-place upgrade is undone
/// by reinstalling the old version. A dry run changed nothing and needs none, nor does a
/// refusal before any restart.
fn rollback(plan: &Plan, outcomes: &[Outcome], dry_run: DryRun) -> Vec<String> {
    let stopped = plan
        .roll
        .iter()
        .map(|p| &p.workload)
        .zip(outcomes)
        .find(|(_, o)| matches!(o.result, RollResult::Failed | RollResult::Refused));
    let Some((stopped, how)) = stopped.filter(|_| !dry_run.is_dry()) else {
        return vec![];
    };
    let mut by_ns: BTreeMap<&str, Vec<&OutOfDateWorkload>> = BTreeMap::new();
    for (w, o) in plan.roll.iter().map(|p| &p.workload).zip(outcomes) {
        if matches!(o.result, RollResult::Done | RollResult::Failed) {
            by_ns.entry(&w.namespace).or_default().push(w);
        }
    }
    if by_ns.is_empty() {
        return vec![];
    }
    let mut cmds = vec![if how.result == RollResult::Failed {
        format!(
            "kubectl rollout status {} -n {}   # see why it failed",
            stopped.workload, stopped.namespace
        )
    } else {
        format!(
            "# {}/{} was not restarted: revision {} cannot inject new pods",
            stopped.namespace,
            stopped.workload,
            stopped.to_revision.as_deref().unwrap_or("?")
        )
    }];
    for (ns, ws) in by_ns {
        let canary = ws.iter().find_map(|w| {
            let to = w.to_revision.as_ref()?;
            w.from_revisions.iter().find(|f| *f != to)
        });
        match canary {
            Some(old) => {
                cmds.push(format!(
                    "kubectl mesh relabel -n {ns} --to {old}   # or: kubectl label namespace {ns} istio.io/rev={old} --overwrite"
                ));
                cmds.push(format!("kubectl mesh roll -n {ns} --one-at-a-time"));
            }
            None => {
                let rev = ws
                    .iter()
                    .find_map(|w| w.to_revision.clone())
                    .unwrap_or_else(|| "?".into());
                cmds.push(format!(
                    "# namespace {ns}: revision {rev} was upgraded in place; reinstall its previous istiod version, then:"
                ));
                cmds.push(format!("kubectl mesh roll -n {ns} --one-at-a-time"));
            }
        }
    }
    cmds
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    #[serde(flatten)]
    workload: &'a Planned,
    #[serde(flatten)]
    outcome: &'a Outcome,
}

/// The document's body; `schemaVersion`, `kind` and `dryRun` come from the envelope.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    settings: &'a Settings,
    summary: Counts,
    /// In roll order, each with its result and start/finish times.
    workloads: Vec<Entry<'a>>,
    skipped: &'a [Skipped],
    manual: &'a [Skipped],
    not_restarted: &'a [crate::plan::NotRestarted],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    target_problems: &'a [crate::plan::TargetProblem],
    rollback: Vec<String>,
    /// The signal that stopped the roll, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_by: Option<Signal>,
}

/// The plan, before anything changes (a JSON or YAML document comes at the end only).
pub(crate) fn print_plan(plan: &Plan, s: &Settings, output: &OutputArgs) {
    if !output.scripted() {
        print!("{}", plan_text(plan, s, Look::new(output)));
    }
}

/// When nothing is sent (`--dry-run`, or nothing to restart) the plan is the whole answer:
/// for `-o json|yaml` the document with every workload not started, for `-o name` the
/// workloads that would be restarted (and, on stderr, those held back).
pub(crate) fn print_planned(plan: &Plan, s: &Settings, output: &OutputArgs) -> shared::Result<()> {
    match output.format {
        Format::Json | Format::Yaml => {
            let not_started = vec![Outcome::default(); plan.roll.len()];
            print_document(plan, &not_started, None, s, output.format)
        }
        Format::Name => {
            eprint!("{}", held_back_notes(plan, output.paint()));
            shared::output::write_stdout(&names(plan.roll.iter()))
        }
        Format::Table | Format::Wide => Ok(()),
    }
}

/// How each workload went: the summary, the JSON or YAML document, or for `-o name` the
/// workloads restarted (the summary then goes to stderr when the roll ended short of its
/// plan).
pub(crate) fn print_results(
    plan: &Plan,
    outcomes: &[Outcome],
    signal: Option<Signal>,
    s: &Settings,
    output: &OutputArgs,
) -> shared::Result<()> {
    let look = Look::new(output);
    match output.format {
        Format::Json | Format::Yaml => print_document(plan, outcomes, signal, s, output.format),
        Format::Name => {
            eprint!("{}", held_back_notes(plan, look.paint));
            if outcomes.iter().any(|o| o.result != RollResult::Done) {
                eprint!(
                    "{}{}",
                    results_text(plan, outcomes, s.dry_run, look),
                    ending(plan, outcomes, signal, s.dry_run)
                );
            }
            let done = plan
                .roll
                .iter()
                .zip(outcomes)
                .filter(|(_, o)| o.result == RollResult::Done);
            shared::output::write_stdout(&names(done.map(|(p, _)| p)))
        }
        Format::Table | Format::Wide => {
            print!("{}", summary_text(plan, outcomes, signal, s.dry_run, look));
            Ok(())
        }
    }
}

/// For `-o name`, on stderr: each workload left alone for availability, with why (the
/// plan that says so is not printed).
fn held_back_notes(plan: &Plan, paint: Paint) -> String {
    plan.skipped
        .iter()
        .filter(|k| k.cause == SkipCause::Availability)
        .map(|k| {
            paint.warn(&format!(
                "{}/{} left alone for availability: {}\n",
                k.workload.namespace, k.workload.workload, k.reason
            ))
        })
        .collect()
}

/// `-o name`: one `deployment.apps/NAME` (or `statefulset.apps/…`, `daemonset.apps/…`) a
/// line, in roll order, as `kubectl rollout restart -o name` prints each workload it
/// restarted: without the namespace, as kubectl's name printer prints none.
fn names<'a>(workloads: impl Iterator<Item = &'a Planned>) -> String {
    shared::output::names(
        workloads.map(|p| shared::output::object_name("apps", &p.workload.workload.kind, &p.workload.workload.name)),
    )
}

/// Print the JSON or YAML document of the plan and how each workload went.
fn print_document(
    plan: &Plan,
    outcomes: &[Outcome],
    signal: Option<Signal>,
    s: &Settings,
    format: Format,
) -> shared::Result<()> {
    Envelope::with_dry_run(KIND, s.dry_run, document(plan, outcomes, signal, s)).print(format)
}

fn document<'a>(plan: &'a Plan, outcomes: &'a [Outcome], signal: Option<Signal>, s: &'a Settings) -> Document<'a> {
    Document {
        settings: s,
        summary: counts(outcomes),
        workloads: plan
            .roll
            .iter()
            .zip(outcomes)
            .map(|(workload, outcome)| Entry { workload, outcome })
            .collect(),
        skipped: &plan.skipped,
        manual: &plan.manual,
        not_restarted: &plan.not_restarted,
        target_problems: &plan.target_problems,
        rollback: rollback(plan, outcomes, s.dry_run),
        stopped_by: signal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::model::Workload;

    const PLAIN: Look = Look {
        paint: Paint { enabled: false },
        headers: true,
    };

    /// A one-replica Deployment to restart (RollingUpdate with the defaults: it surges).
    fn w(ns: &str, name: &str, from: &str, to: &str) -> Planned {
        let workload = OutOfDateWorkload {
            namespace: ns.into(),
            workload: Workload {
                kind: "Deployment".into(),
                name: name.into(),
            },
            gateway: false,
            pods: 1,
            out_of_date_pods: 1,
            from_revisions: [from.to_string()].into(),
            to_revision: Some(to.into()),
            to_version: Some("1.28.3".into()),
            reasons: Default::default(),
        };
        let shape = crate::availability::Shape {
            replicas: 1,
            ready: 1,
            strategy: crate::availability::Strategy::Rolling {
                max_surge: None,
                max_unavailable: None,
            },
            labels: Default::default(),
        };
        Planned {
            workload,
            availability: crate::availability::availability(&shape, &[], false),
        }
    }

    fn o(result: RollResult) -> Outcome {
        Outcome {
            result,
            ..Outcome::default()
        }
    }

    #[test]
    fn rollback_relabels_canary_namespaces_and_explains_in_place() {
        let plan = Plan {
            roll: vec![
                w("default", "a", "1-27", "1-28"),
                w("default", "b", "1-27", "1-28"),
                w("shop", "c", "1-28", "1-28"),
                w("later", "d", "1-27", "1-28"),
            ],
            ..Default::default()
        };
        let outcomes = [
            o(RollResult::Done),
            o(RollResult::Done),
            o(RollResult::Failed),
            o(RollResult::NotStarted),
        ];
        let cmds = rollback(&plan, &outcomes, DryRun::None);
        assert!(cmds[0].starts_with("kubectl rollout status deployment/c -n shop"));
        assert!(cmds[1].starts_with("kubectl mesh relabel -n default --to 1-27"));
        assert_eq!(cmds[2], "kubectl mesh roll -n default --one-at-a-time");
        assert!(cmds[3].contains("upgraded in place"));
        assert!(
            !cmds.iter().any(|c| c.contains("later")),
            "untouched namespaces need nothing"
        );
        assert!(
            rollback(
                &plan,
                &[
                    o(RollResult::Done),
                    o(RollResult::Done),
                    o(RollResult::Done),
                    o(RollResult::Done)
                ],
                DryRun::None
            )
            .is_empty()
        );
    }

    #[test]
    fn summary_counts_every_result() {
        let plan = Plan {
            roll: vec![w("default", "a", "1-27", "1-28"), w("default", "b", "1-27", "1-28")],
            ..Default::default()
        };
        let text = summary_text(
            &plan,
            &[o(RollResult::Interrupted), o(RollResult::NotStarted)],
            Some(Signal::Interrupt),
            DryRun::None,
            PLAIN,
        );
        assert!(
            text.contains("0 done, 0 failed, 1 interrupted, 1 not started."),
            "{text}"
        );
        assert!(text.contains("Run the same command again"));
    }

    #[test]
    fn times_have_fixed_width() {
        let t: Timestamp = "2026-11-27T04:36:28Z".parse().unwrap();
        assert_eq!(millis(t), "2026-11-27T04:36:28.000Z");
    }

    #[test]
    fn outcomes_are_recorded_from_events_and_end_at_the_first_end() {
        let mut restarted = Outcome::default();
        let events = [
            Event::Started,
            Event::Restarting,
            Event::Restarted {
                restarted_at: "2026-11-27T04:36:28Z".into(),
            },
            Event::Interrupted {
                elapsed: Duration::from_millis(1234),
            },
            Event::Done {
                elapsed: Duration::from_secs(9),
                restarted: true,
            },
        ];
        for e in &events {
            restarted.record(e);
        }
        assert_eq!(restarted.result, RollResult::Interrupted);
        assert_eq!(restarted.restarted_at.as_deref(), Some("2026-11-27T04:36:28Z"));
        assert_eq!(restarted.seconds, Some(1.2));
        assert!(restarted.started.is_some() && restarted.finished.is_some());
        assert_eq!(
            restarted.message.as_deref(),
            Some("interrupted: its rollout goes on in the cluster")
        );

        let mut accepted = Outcome::default();
        accepted.record(&Event::Started);
        accepted.record(&Event::Accepted {
            elapsed: Duration::from_millis(40),
        });
        assert_eq!((accepted.result, accepted.restarted_at), (RollResult::Done, None));

        let mut untouched = Outcome::default();
        untouched.record(&Event::NotStarted);
        assert_eq!(untouched.result, RollResult::NotStarted);
        assert!(untouched.started.is_none() && untouched.finished.is_none());
    }

    #[test]
    fn a_server_dry_run_says_accepted_and_needs_no_way_back() {
        let plan = Plan {
            roll: vec![w("default", "a", "1-27", "1-28"), w("default", "b", "1-27", "1-28")],
            ..Default::default()
        };
        let outcomes = [o(RollResult::Done), o(RollResult::Failed)];
        let text = summary_text(&plan, &outcomes, None, DryRun::Server, PLAIN);
        assert!(
            text.contains("1 accepted, 1 rejected, 0 interrupted, 0 not started."),
            "{text}"
        );
        assert!(!text.contains("The roll stopped"), "{text}");
        assert!(rollback(&plan, &outcomes, DryRun::Server).is_empty());
    }

    #[test]
    fn sigterm_and_refusals_say_what_happened_and_the_way_back() {
        let plan = Plan {
            roll: vec![w("default", "a", "1-27", "1-28"), w("default", "b", "1-27", "1-28")],
            ..Default::default()
        };
        let paint = PLAIN;
        let text = summary_text(
            &plan,
            &[o(RollResult::Done), o(RollResult::NotStarted)],
            Some(Signal::Terminate),
            DryRun::None,
            paint,
        );
        assert!(
            text.contains("1 done, 0 failed, 0 interrupted, 1 not started."),
            "{text}"
        );
        assert!(text.contains("Stopped by SIGTERM: no new restart was sent."), "{text}");

        // Refused first: nothing changed, nothing to undo.
        let refused = Outcome {
            result: RollResult::Refused,
            message: Some("not restarted: revision 1-28 cannot inject new pods: x".into()),
            ..Outcome::default()
        };
        let outcomes = [refused.clone(), o(RollResult::NotStarted)];
        assert!(rollback(&plan, &outcomes, DryRun::None).is_empty());
        let text = summary_text(&plan, &outcomes, None, DryRun::None, paint);
        assert!(
            text.contains("0 done, 0 failed, 1 refused, 0 interrupted, 1 not started."),
            "{text}"
        );
        assert!(text.contains("Nothing was restarted."), "{text}");

        // Refused midway: the namespace already moved goes back.
        let outcomes = [o(RollResult::Done), refused];
        let cmds = rollback(&plan, &outcomes, DryRun::None);
        assert!(
            cmds[0].contains("default/deployment/b was not restarted: revision 1-28 cannot inject"),
            "{cmds:?}"
        );
        assert!(
            cmds[1].starts_with("kubectl mesh relabel -n default --to 1-27"),
            "{cmds:?}"
        );
        let text = summary_text(&plan, &outcomes, None, DryRun::None, paint);
        assert!(text.contains("The roll stopped"), "{text}");
    }

    #[test]
    fn the_plan_shows_availability_and_the_summary_the_lowest_ready() {
        let held = Skipped {
            workload: w("default", "single", "1-27", "1-28").workload,
            cause: SkipCause::Availability,
            reason: "its restart takes it to 0 ready pods (1→0, Recreate): switch its strategy to RollingUpdate (and run 2 replicas or more); or accept it with --allow-downtime deployment/single".into(),
            availability: None,
        };
        let plan = Plan {
            roll: vec![w("default", "a", "1-27", "1-28")],
            skipped: vec![held],
            ..Default::default()
        };
        let settings = Settings {
            dry_run: DryRun::Client,
            max_parallel: 1,
            timeout: "5m".into(),
            pause: None,
            exec: None,
            scope: "default".into(),
        };
        let text = plan_text(&plan, &settings, PLAIN);
        let header = text.lines().nth(1).unwrap();
        assert!(header.trim_end().ends_with("AVAILABILITY"), "{text}");
        assert!(text.lines().nth(2).unwrap().trim_end().ends_with("1→1 of 1"), "{text}");
        assert!(text.contains("--allow-downtime deployment/single"), "{text}");

        let mut o = Outcome::default();
        for ready in [1, 2, 1, 2] {
            o.record(&Event::Ready { ready });
        }
        o.record(&Event::Done {
            elapsed: Duration::from_secs(2),
            restarted: true,
        });
        assert_eq!(o.lowest_ready, Some(1));
        let text = summary_text(&plan, &[o], None, DryRun::None, PLAIN);
        assert!(text.contains("1 of 1 (plan ≥1)"), "{text}");
        assert!(
            text.contains("Left alone for availability (see the plan above; --allow-downtime restarts them): default/deployment/single"),
            "{text}"
        );
    }

    #[test]
    fn name_output_is_kind_dot_group_slash_name_as_kubectl_prints_it() {
        let mut sts = w("shop", "db", "1-27", "1-28");
        sts.workload.workload.kind = "StatefulSet".into();
        let plan = Plan {
            roll: vec![w("default", "web", "1-27", "1-28"), sts],
            ..Default::default()
        };
        assert_eq!(names(plan.roll.iter()), "deployment.apps/web\nstatefulset.apps/db\n");
        let held = Skipped {
            workload: w("default", "single", "1-27", "1-28").workload,
            cause: SkipCause::Availability,
            reason: "its restart takes it to 0 ready pods".into(),
            availability: None,
        };
        let plan = Plan {
            skipped: vec![held],
            ..plan
        };
        assert_eq!(
            held_back_notes(&plan, Paint { enabled: false }),
            "default/deployment/single left alone for availability: its restart takes it to 0 ready pods\n"
        );
    }

    #[test]
    fn no_headers_drops_every_header_row_and_keeps_the_rest() {
        let plan = Plan {
            roll: vec![w("default", "web", "1-27", "1-28")],
            ..Default::default()
        };
        let settings = Settings {
            dry_run: DryRun::None,
            max_parallel: 1,
            timeout: "5m".into(),
            pause: None,
            exec: None,
            scope: "default".into(),
        };
        let rows = Look {
            headers: false,
            ..PLAIN
        };
        let text = plan_text(&plan, &settings, rows);
        assert!(
            text.starts_with("Restarting 1 workload with out-of-date proxies in default"),
            "{text}"
        );
        assert!(!text.contains("NAMESPACE") && !text.contains("AVAILABILITY"), "{text}");
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("  1   default   deployment/web"),
            "{text}"
        );
        let done = Outcome {
            result: RollResult::Done,
            seconds: Some(0.2),
            ..Outcome::default()
        };
        let text = summary_text(&plan, std::slice::from_ref(&done), None, DryRun::None, rows);
        assert!(!text.contains("RESULT"), "{text}");
        assert!(text.contains("default   deployment/web   done   0.2s"), "{text}");
        assert!(
            text.contains("1 done, 0 failed, 0 interrupted, 0 not started."),
            "{text}"
        );
        let with = summary_text(&plan, &[done], None, DryRun::None, PLAIN);
        assert!(with.contains("NAMESPACE   WORKLOAD         RESULT"), "{with}");
    }
}
