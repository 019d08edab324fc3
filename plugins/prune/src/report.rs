//! What prune prints: the plan table, a line per object deleted, the summary, the
//! `-o json|yaml` document (`MeshPrune`), and for `-o name` each object deleted as kubectl
//! names it.

use serde::Serialize;
use shared::cli::Signal;
use shared::output::{DryRun, Envelope, Format, OutputArgs, Paint, object_name, render, render_rows};

use crate::act::{Deletion, Outcome};
use crate::plan::{Item, Plan};

/// The `kind` of prune's JSON/YAML document.
const KIND: &str = "MeshPrune";

/// Where the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
enum Status {
    /// `--dry-run` (client): the plan only.
    Planned,
    /// The revision is in use; nothing was deleted.
    Refused,
    /// Every planned object is gone (or, with `--dry-run=server`, the server accepted every
    /// delete).
    Deleted,
    /// Some objects could not be deleted.
    Partial,
    /// Ctrl-C or SIGTERM stopped the deletes: `results` says which were sent and which not.
    Interrupted,
    /// Nothing of the revision is left.
    NothingToDo,
    /// Nothing of the revision's control plane is left and its selector selects nothing: a
    /// previous prune finished.
    AlreadyPruned,
}

/// The document's own fields, after the envelope's `schemaVersion`, `kind` and `dryRun`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    status: Status,
    plan: &'a Plan,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    results: &'a [Deletion],
    /// With `alreadyPruned`: what still carries the revision's name.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    traces: &'a [String],
    /// The signal that stopped the deletes (`SIGINT` or `SIGTERM`), if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_by: Option<Signal>,
}

/// How to print, chosen once from the flags.
pub(crate) struct Report {
    format: Format,
    machine: bool,
    /// `-o name`: stdout carries only the objects deleted; the rest goes to stderr.
    names: bool,
    headers: bool,
    paint: Paint,
    dry_run: DryRun,
}

impl Report {
    pub(crate) fn new(output: &OutputArgs, dry_run: DryRun) -> Self {
        Report {
            format: output.format,
            machine: output.machine(),
            names: output.format == Format::Name,
            headers: output.headers(),
            paint: output.paint(),
            dry_run,
        }
    }

    fn document(
        &self,
        status: Status,
        plan: &Plan,
        results: &[Deletion],
        signal: Option<Signal>,
    ) -> shared::Result<()> {
        let body = Body {
            status,
            plan,
            results,
            traces: &[],
            stopped_by: signal,
        };
        Envelope::with_dry_run(KIND, self.dry_run, body).print(self.format)
    }

    /// The plan table, for people (`-o name` prints none).
    fn plan_text(&self, plan: &Plan) -> String {
        if self.names {
            String::new()
        } else {
            render_plan(plan, self.paint, self.headers)
        }
    }

    /// A note for people: on stdout, or on stderr with `-o name`.
    fn note(&self, text: &str) {
        if self.names {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }

    /// The revision is in use: the plan, and the error that names every user and the
    /// command that frees it.
    pub(crate) fn refused(&self, plan: &Plan) -> shared::Error {
        if self.machine {
            if let Err(e) = self.document(Status::Refused, plan, &[], None) {
                return e;
            }
        } else {
            print!("{}", self.plan_text(plan));
        }
        let mut msg = format!(
            "refusing to prune revision {}: it is still in use; nothing was deleted",
            plan.revision
        );
        for u in &plan.users {
            msg.push_str(&format!("\n  - {}\n      → {}", u.what, u.fix));
        }
        shared::Error::Refused(msg)
    }

    pub(crate) fn nothing_to_do(&self, plan: &Plan) -> shared::Result<u8> {
        if self.machine {
            self.document(Status::NothingToDo, plan, &[], None)?;
        } else {
            print!("{}", self.plan_text(plan));
            self.note(&format!("Nothing of revision {} is left to delete.\n", plan.revision));
        }
        Ok(shared::exit::OK)
    }

    /// A previous prune finished: nothing to delete, and what still carries the name.
    pub(crate) fn already_pruned(&self, revision: &str, traces: &[String]) -> shared::Result<u8> {
        if self.machine {
            let plan = Plan {
                revision: revision.to_string(),
                selector: crate::plan::selector(revision),
                ..Plan::default()
            };
            let body = Body {
                status: Status::AlreadyPruned,
                plan: &plan,
                results: &[],
                traces,
                stopped_by: None,
            };
            Envelope::with_dry_run(KIND, self.dry_run, body).print(self.format)?;
        } else {
            self.note(&already_pruned(revision, traces));
        }
        Ok(shared::exit::OK)
    }

    /// `--dry-run` (client): the plan, nothing sent; with `-o name`, what would be deleted.
    pub(crate) fn planned(&self, plan: &Plan) -> shared::Result<u8> {
        if self.machine {
            self.document(Status::Planned, plan, &[], None)?;
        } else if self.names {
            shared::output::write_stdout(&shared::output::names(plan.delete.iter().map(name)))?;
        } else {
            print!("{}", self.plan_text(plan));
            println!("Dry run: nothing deleted.");
        }
        Ok(shared::exit::OK)
    }

    /// The plan table before the deletes (the document comes at the end).
    pub(crate) fn plan(&self, plan: &Plan) {
        if !self.machine {
            print!("{}", self.plan_text(plan));
        }
    }

    /// One line per object, as its delete finishes; with `-o name`, the name of each object
    /// gone (deleted, or already gone: a Deployment's pods go with it; with
    /// `--dry-run=server`, each delete accepted) on stdout and the other lines on stderr.
    pub(crate) fn deletion(&self, d: &Deletion) {
        if self.machine {
            return;
        }
        let it = &d.item;
        if self.names && matches!(d.outcome, Outcome::Deleted | Outcome::AlreadyGone) {
            println!("{}", name(it));
            return;
        }
        let line = match &d.outcome {
            Outcome::Deleted => format!("{it} deleted{}", self.dry_run.suffix()),
            Outcome::AlreadyGone => format!("{it} already gone"),
            Outcome::Failed { error } => format!("{it} {}: {error}", self.paint.bad("failed")),
            Outcome::Interrupted => format!(
                "{it} {}: its delete was sent and goes on in the cluster",
                self.paint.warn("interrupted")
            ),
            Outcome::NotStarted => return,
        };
        self.note(&format!("{line}\n"));
    }

    /// The summary (or the document) after the deletes, and the exit code: 5 when some
    /// failed, else 130 or 143 when Ctrl-C or SIGTERM stopped them, else 0. With `-o name`
    /// the summary goes to stderr, and only when the run fell short.
    pub(crate) fn results(&self, plan: &Plan, results: &[Deletion], signal: Option<Signal>) -> shared::Result<u8> {
        let failed = results
            .iter()
            .filter(|d| matches!(d.outcome, Outcome::Failed { .. }))
            .count();
        if self.machine {
            let status = match (failed, signal) {
                (0, None) => Status::Deleted,
                (0, Some(_)) => Status::Interrupted,
                _ => Status::Partial,
            };
            self.document(status, plan, results, signal)?;
        } else if !self.names || failed > 0 || signal.is_some() {
            let text = match signal {
                Some(s) => stopped(plan, results, s, self.dry_run),
                None => summary(plan, failed, self.dry_run),
            };
            self.note(&format!("{text}\n"));
        }
        Ok(match (failed, signal) {
            (0, None) => shared::exit::OK,
            (0, Some(s)) => s.exit_code(),
            _ => shared::exit::PARTIAL,
        })
    }
}

/// An object as kubectl's `-o name` prints it: `deployment.apps/istiod-1-27`,
/// `mutatingwebhookconfiguration.admissionregistration.k8s.io/istio-sidecar-injector-1-27`.
fn name(it: &Item) -> String {
    let group = crate::plan::resource_kind(&it.kind).map_or("", |k| k.group);
    object_name(group, &it.kind, &it.name)
}

/// What a signal left: how many objects were deleted, the one whose deletion goes on, and
/// every object not started, then how to finish.
fn stopped(plan: &Plan, results: &[Deletion], signal: Signal, dry_run: DryRun) -> String {
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|d| f(&d.outcome)).count();
    let gone = count(|o| matches!(o, Outcome::Deleted | Outcome::AlreadyGone));
    let going = count(|o| *o == Outcome::Interrupted);
    let failed = match count(|o| matches!(o, Outcome::Failed { .. })) {
        0 => String::new(),
        n => format!(", {n} failed"),
    };
    let left: Vec<&Item> = results
        .iter()
        .filter(|d| d.outcome == Outcome::NotStarted)
        .map(|d| &d.item)
        .collect();
    let how = if signal == Signal::Interrupt {
        "Interrupted".to_string()
    } else {
        format!("Stopped by {}", signal.name())
    };
    let total = plan.delete.len();
    let mut out = if dry_run.server() {
        format!(
            "{how}: no new delete was sent. Server dry run: the API server accepted {gone} of {total} deletes of revision {}{failed}; nothing deleted.",
            plan.revision
        )
    } else {
        format!(
            "{how}: no new delete was sent. Revision {}: {gone} of {total} objects deleted{failed}, {going} still being deleted in the cluster, {} not started.",
            plan.revision,
            left.len()
        )
    };
    if !left.is_empty() {
        out.push_str(if dry_run.server() {
            "\nNot sent:"
        } else {
            "\nNot deleted yet:"
        });
        for it in &left {
            out.push_str(&format!("\n  {it}"));
        }
    }
    out.push_str("\nRun the same command again to finish.");
    out
}

fn summary(plan: &Plan, failed: usize, dry_run: DryRun) -> String {
    let (revision, deleted, kept) = (&plan.revision, plan.delete.len(), plan.keep.len());
    match (failed, dry_run.server()) {
        (0, false) => format!("Revision {revision} pruned: {deleted} objects deleted, {kept} kept."),
        (_, false) => format!("{failed} object(s) could not be deleted; run the same command again to finish."),
        (0, true) => format!(
            "Server dry run: the API server accepted deleting {deleted} objects of revision {revision} ({kept} kept); nothing deleted."
        ),
        (_, true) => format!("Server dry run: the API server refused to delete {failed} object(s); nothing deleted."),
    }
}

/// At most this many traces are listed on the terminal (all of them in the document).
const TRACES_SHOWN: usize = 10;

fn already_pruned(revision: &str, traces: &[String]) -> String {
    let mut out = format!(
        "Revision {revision} is already pruned: it has no control plane and nothing is labelled {}.\n",
        crate::plan::selector(revision)
    );
    out.push_str("Still carrying its name (prune deletes none of these):\n");
    for t in traces.iter().take(TRACES_SHOWN) {
        out.push_str(&format!("  {t}\n"));
    }
    if traces.len() > TRACES_SHOWN {
        out.push_str(&format!("  ... and {} more\n", traces.len() - TRACES_SHOWN));
    }
    out
}

/// The plan as a table: what is deleted, what is kept and why (`headers`: with its header
/// row).
fn render_plan(plan: &Plan, paint: Paint, headers: bool) -> String {
    let mut t = shared::output::table(&["action", "kind", "namespace", "name", "reason"]);
    for d in &plan.delete {
        t.add_row(vec![
            paint.bad("delete"),
            d.kind.clone(),
            d.namespace.clone().unwrap_or_default(),
            d.name.clone(),
            String::new(),
        ]);
    }
    for k in &plan.keep {
        t.add_row(vec![
            paint.good("keep"),
            k.item.kind.clone(),
            k.item.namespace.clone().unwrap_or_default(),
            k.item.name.clone(),
            k.reason.clone(),
        ]);
    }
    let mut out = format!(
        "Revision {}: {} objects selected by {} ({} to delete, {} kept)\n",
        plan.revision,
        plan.delete.len() + plan.keep.len(),
        plan.selector,
        plan.delete.len(),
        plan.keep.len()
    );
    if plan.delete.len() + plan.keep.len() > 0 {
        out.push_str(&if headers { render(&t) } else { render_rows(&t) });
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Item;

    fn plan() -> Plan {
        Plan {
            revision: "1-27".into(),
            selector: crate::plan::selector("1-27"),
            delete: vec![Item {
                kind: "Deployment".into(),
                namespace: Some("istio-system".into()),
                name: "istiod-1-27".into(),
                uid: "u".into(),
            }],
            ..Plan::default()
        }
    }

    #[test]
    fn the_document_carries_the_envelope_status_plan_and_results() {
        let plan = plan();
        let planned = Body {
            status: Status::NothingToDo,
            plan: &plan,
            results: &[],
            traces: &[],
            stopped_by: None,
        };
        let doc = serde_json::to_value(Envelope::with_dry_run(KIND, DryRun::Client, planned)).unwrap();
        assert_eq!(doc["kind"], "MeshPrune");
        assert_eq!(doc["dryRun"], "client");
        assert_eq!(doc["status"], "nothingToDo");
        assert_eq!(doc["plan"]["delete"][0]["name"], "istiod-1-27");
        assert!(doc.get("results").is_none(), "{doc}");

        let results = [Deletion {
            item: plan.delete[0].clone(),
            outcome: Outcome::Deleted,
        }];
        let done = Body {
            status: Status::Deleted,
            plan: &plan,
            results: &results,
            traces: &[],
            stopped_by: None,
        };
        let doc = serde_json::to_value(Envelope::with_dry_run(KIND, DryRun::Server, done)).unwrap();
        assert_eq!(doc["dryRun"], "server");
        assert_eq!(doc["status"], "deleted");
        assert_eq!(doc["results"][0]["result"], "deleted");
        assert_eq!(doc["results"][0]["kind"], "Deployment");
    }

    #[test]
    fn a_signal_says_what_was_deleted_what_goes_on_and_what_is_left() {
        let item = |kind: &str, name: &str| Item {
            kind: kind.into(),
            namespace: Some("istio-system".into()),
            name: name.into(),
            uid: "u".into(),
        };
        let plan = Plan {
            delete: vec![
                item("Deployment", "istiod-1-27"),
                item("Service", "istiod-1-27"),
                item("ConfigMap", "istio-1-27"),
            ],
            ..plan()
        };
        let results: Vec<Deletion> = plan
            .delete
            .iter()
            .cloned()
            .zip([Outcome::Deleted, Outcome::Interrupted, Outcome::NotStarted])
            .map(|(item, outcome)| Deletion { item, outcome })
            .collect();
        assert_eq!(
            stopped(&plan, &results, Signal::Terminate, DryRun::None),
            "Stopped by SIGTERM: no new delete was sent. Revision 1-27: 1 of 3 objects deleted, 1 still being deleted in the cluster, 1 not started.\n\
             Not deleted yet:\n  configmap/istio-1-27 -n istio-system\n\
             Run the same command again to finish."
        );
        let text = stopped(&plan, &results, Signal::Interrupt, DryRun::Server);
        assert!(
            text.starts_with("Interrupted: no new delete was sent. Server dry run: the API server accepted 1 of 3"),
            "{text}"
        );
        assert!(text.contains("\nNot sent:\n  configmap/istio-1-27"), "{text}");

        let body = Body {
            status: Status::Interrupted,
            plan: &plan,
            results: &results,
            traces: &[],
            stopped_by: Some(Signal::Terminate),
        };
        let doc = serde_json::to_value(Envelope::with_dry_run(KIND, DryRun::None, body)).unwrap();
        assert_eq!(doc["status"], "interrupted");
        assert_eq!(doc["stoppedBy"], "SIGTERM");
        let results: Vec<&str> = doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["result"].as_str().unwrap())
            .collect();
        assert_eq!(results, ["deleted", "interrupted", "notStarted"]);
    }

    #[test]
    fn name_output_is_kind_dot_group_slash_name() {
        let it = |kind: &str, name: &str| Item {
            kind: kind.into(),
            namespace: None,
            name: name.into(),
            uid: "u".into(),
        };
        assert_eq!(name(&it("Deployment", "istiod-1-27")), "deployment.apps/istiod-1-27");
        assert_eq!(
            name(&it(
                "ValidatingWebhookConfiguration",
                "istio-validator-1-27-istio-system"
            )),
            "validatingwebhookconfiguration.admissionregistration.k8s.io/istio-validator-1-27-istio-system"
        );
        assert_eq!(name(&it("ServiceAccount", "istiod-1-27")), "serviceaccount/istiod-1-27");
        assert_eq!(
            name(&it("ClusterRole", "istiod-1-27")),
            "clusterrole.rbac.authorization.k8s.io/istiod-1-27"
        );
        assert_eq!(
            name(&it("EnvoyFilter", "stats")),
            "envoyfilter.networking.istio.io/stats"
        );
    }

    #[test]
    fn no_headers_drops_the_plan_tables_header_row() {
        let text = render_plan(&plan(), Paint { enabled: false }, false);
        assert!(!text.contains("ACTION"), "{text}");
        assert!(
            text.contains("\ndelete   Deployment   istio-system   istiod-1-27"),
            "{text}"
        );
    }

    #[test]
    fn a_server_dry_run_says_nothing_was_deleted() {
        assert!(summary(&plan(), 0, DryRun::Server).contains("nothing deleted"));
        assert!(summary(&plan(), 1, DryRun::Server).contains("refused to delete 1 object(s)"));
        assert_eq!(
            summary(&plan(), 0, DryRun::None),
            "Revision 1-27 pruned: 1 objects deleted, 0 kept."
        );
    }

    #[test]
    fn the_plan_table_lists_deletes_then_keeps() {
        let text = render_plan(&plan(), Paint { enabled: false }, true);
        assert!(
            text.starts_with("Revision 1-27: 1 objects selected by istio.io/rev=1-27"),
            "{text}"
        );
        assert!(
            text.contains("delete   Deployment   istio-system   istiod-1-27"),
            "{text}"
        );
    }

    #[test]
    fn an_already_pruned_revision_lists_what_still_carries_its_name() {
        let traces: Vec<String> = (0..12).map(|i| format!("pod/report-{i} -n default")).collect();
        let text = already_pruned("1-27", &traces);
        assert!(
            text.starts_with("Revision 1-27 is already pruned: it has no control plane"),
            "{text}"
        );
        assert!(text.contains("  pod/report-9 -n default\n"), "{text}");
        assert!(!text.contains("report-10"), "{text}");
        assert!(text.ends_with("  ... and 2 more\n"), "{text}");
    }
}
