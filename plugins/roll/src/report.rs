//! The plan printed before anything changes, the summary printed after, and the JSON/YAML
//! document for scripts.

use std::collections::BTreeMap;

use serde::Serialize;
use shared::model::OutOfDateWorkload;
use shared::output::{Paint, SCHEMA_VERSION, render, table};

use crate::act::{Outcome, Result};
use crate::plan::{Plan, Skipped};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub dry_run: bool,
    pub max_parallel: usize,
    pub timeout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<String>,
    pub scope: String,
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

pub fn plan_text(plan: &Plan, s: &Settings, paint: Paint) -> String {
    let mut out = String::new();
    if plan.roll.is_empty() {
        out.push_str(&format!(
            "Nothing to restart in {}: no Deployment, StatefulSet or DaemonSet runs an out-of-date proxy{}.\n",
            s.scope,
            if plan.skipped.is_empty() {
                ""
            } else {
                " that may be restarted"
            }
        ));
    } else {
        let how = if s.max_parallel == 1 {
            "one at a time".to_string()
        } else {
            format!("up to {} at a time", s.max_parallel)
        };
        out.push_str(&format!(
            "{} {} workload{} with out-of-date proxies in {}, {how}, in this order (timeout {} each{}):\n",
            if s.dry_run { "Would restart" } else { "Restarting" },
            plan.roll.len(),
            if plan.roll.len() == 1 { "" } else { "s" },
            s.scope,
            s.timeout,
            s.pause.as_ref().map(|p| format!(", pause {p}")).unwrap_or_default()
        ));
        let mut t = table(&["#", "namespace", "workload", "out of date", "from", "to"]);
        for (i, w) in plan.roll.iter().enumerate() {
            t.add_row(vec![
                (i + 1).to_string(),
                w.namespace.clone(),
                w.workload.to_string(),
                format!("{}/{}", w.out_of_date_pods, w.pods),
                revisions(w),
                target(w),
            ]);
        }
        out.push_str(&indent(&render(&t)));
    }
    listed(&mut out, "Not restarted:", &plan.skipped, paint);
    listed(
        &mut out,
        "Needing manual action (never deleted by roll):",
        &plan.manual,
        paint,
    );
    for e in &plan.unused_excludes {
        out.push_str(&paint.warn(&format!("note: --exclude {e} matched no out-of-date workload\n")));
    }
    if s.dry_run && !plan.roll.is_empty() {
        out.push_str("Dry run: nothing was changed.\n");
    }
    out.push('\n');
    out
}

fn listed(out: &mut String, title: &str, items: &[Skipped], paint: Paint) {
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("{}\n", paint.bold(title)));
    let mut t = table(&["namespace", "workload", "out of date", "why"]);
    for s in items {
        t.add_row(vec![
            s.workload.namespace.clone(),
            s.workload.workload.to_string(),
            format!("{}/{}", s.workload.out_of_date_pods, s.workload.pods),
            s.reason.clone(),
        ]);
    }
    out.push_str(&indent(&render(&t)));
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

fn word(r: Result) -> &'static str {
    match r {
        Result::Done => "done",
        Result::Failed => "failed",
        Result::Interrupted => "interrupted",
        Result::NotStarted => "not started",
    }
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub done: usize,
    pub failed: usize,
    pub interrupted: usize,
    pub not_started: usize,
}

fn counts(outcomes: &[Outcome]) -> Counts {
    let mut c = Counts::default();
    for o in outcomes {
        match o.result {
            Result::Done => c.done += 1,
            Result::Failed => c.failed += 1,
            Result::Interrupted => c.interrupted += 1,
            Result::NotStarted => c.not_started += 1,
        }
    }
    c
}

pub fn summary_text(plan: &Plan, outcomes: &[Outcome], interrupted: bool, paint: Paint) -> String {
    let c = counts(outcomes);
    let mut out = String::from("\n");
    let mut t = table(&["namespace", "workload", "result", "time", "restartedAt"]);
    for (w, o) in plan.roll.iter().zip(outcomes) {
        // No colour inside the table: escape codes would count as width.
        t.add_row(vec![
            w.namespace.clone(),
            w.workload.to_string(),
            word(o.result).to_string(),
            o.seconds.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "-".into()),
            o.restarted_at.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&render(&t));
    out.push('\n');
    out.push_str(&format!(
        "\n{} done, {} failed, {} interrupted, {} not started.\n",
        c.done, c.failed, c.interrupted, c.not_started
    ));
    for (w, o) in plan.roll.iter().zip(outcomes) {
        if let Some(m) = &o.message {
            let line = format!("{}/{}: {m}", w.namespace, w.workload);
            out.push_str(&if o.result == Result::Failed {
                paint.bad(&line)
            } else {
                paint.warn(&line)
            });
            out.push('\n');
        }
    }
    let back = rollback(plan, outcomes);
    if !back.is_empty() {
        out.push_str("\nThe roll stopped; workloads after the failed one were not touched. To go back:\n");
        for cmd in &back {
            out.push_str(&format!("  {cmd}\n"));
        }
        out.push_str("To carry on instead, fix the cause and run the same command again: finished workloads are no longer out of date.\n");
    } else if interrupted {
        out.push_str("\nInterrupted: no new restart was sent. Run the same command again to carry on; finished workloads are no longer out of date.\n");
    }
    out
}

/// The way back after a failure: point each touched namespace back at its old revision and
/// roll again; an in-place upgrade is undone by reinstalling the old version.
pub fn rollback(plan: &Plan, outcomes: &[Outcome]) -> Vec<String> {
    let Some(failed) = plan
        .roll
        .iter()
        .zip(outcomes)
        .find(|(_, o)| o.result == Result::Failed)
        .map(|(w, _)| w)
    else {
        return vec![];
    };
    let mut by_ns: BTreeMap<&str, Vec<&OutOfDateWorkload>> = BTreeMap::new();
    for (w, o) in plan.roll.iter().zip(outcomes) {
        if matches!(o.result, Result::Done | Result::Failed) {
            by_ns.entry(&w.namespace).or_default().push(w);
        }
    }
    let mut cmds = vec![format!(
        "kubectl rollout status {} -n {}   # see why it failed",
        failed.workload, failed.namespace
    )];
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
    workload: &'a OutOfDateWorkload,
    #[serde(flatten)]
    outcome: &'a Outcome,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document<'a> {
    schema_version: u32,
    settings: &'a Settings,
    summary: Counts,
    /// In roll order, each with its result and start/finish times.
    workloads: Vec<Entry<'a>>,
    skipped: &'a [Skipped],
    manual: &'a [Skipped],
    rollback: Vec<String>,
}

pub fn document<'a>(plan: &'a Plan, outcomes: &'a [Outcome], s: &'a Settings) -> Document<'a> {
    Document {
        schema_version: SCHEMA_VERSION,
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
        rollback: rollback(plan, outcomes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::model::Workload;

    fn w(ns: &str, name: &str, from: &str, to: &str) -> OutOfDateWorkload {
        OutOfDateWorkload {
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
        }
    }

    fn o(result: Result) -> Outcome {
        Outcome {
            result,
            ..Outcome::not_started()
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
            o(Result::Done),
            o(Result::Done),
            o(Result::Failed),
            o(Result::NotStarted),
        ];
        let cmds = rollback(&plan, &outcomes);
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
                &[o(Result::Done), o(Result::Done), o(Result::Done), o(Result::Done)]
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
            &[o(Result::Interrupted), o(Result::NotStarted)],
            true,
            Paint { enabled: false },
        );
        assert!(
            text.contains("0 done, 0 failed, 1 interrupted, 1 not started."),
            "{text}"
        );
        assert!(text.contains("Run the same command again"));
    }
}
