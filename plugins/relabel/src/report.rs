//! What relabel prints: a line per namespace (or per object of a tag move) as kubectl
//! prints its changes, or one `MeshRelabel` document for `-o json|yaml`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use shared::model::ControlPlane;
use shared::output::{DryRun, Envelope, Format, Paint};

use crate::Args;
use crate::act::{Attempt, Failure, Written};
use crate::plan::namespaces::Decision;
use crate::plan::tags::{Following, ObjectAction, TagPlan, TagResult};
use crate::plan::{InjectionLabels, NamespaceState, PREVIOUS, followed_tag};

/// The kind of every relabel document, namespaces or tag.
const KIND: &str = "MeshRelabel";

/// What was done to one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum NamespaceAction {
    Relabeled,
    Unchanged,
    Skipped,
    Failed,
}

/// One namespace in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NamespaceOutcome {
    pub(crate) namespace: String,
    pub(crate) action: NamespaceAction,
    pub(crate) from: InjectionLabels,
    pub(crate) to: Option<InjectionLabels>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// The tag the namespace follows after the change, and the revision it points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tag: Option<TagRef>,
    /// How many times a concurrent change made us read and decide again.
    pub(crate) conflicts: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TagRef {
    pub(crate) tag: String,
    pub(crate) revision: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NamespacesBody<'a> {
    undo: bool,
    to: Option<&'a str>,
    namespaces: &'a [NamespaceOutcome],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TagBody<'a> {
    tag: &'a str,
    from: Option<&'a str>,
    to: Option<&'a str>,
    result: TagResult,
    objects: &'a [Written],
    namespaces: &'a [Following],
}

/// The namespaces to report, in order; those the request did not concern are left out.
pub(crate) fn outcomes(attempts: Vec<Attempt>, cp: &ControlPlane) -> Vec<NamespaceOutcome> {
    attempts.into_iter().filter_map(|a| outcome(a, cp)).collect()
}

fn outcome(attempt: Attempt, cp: &ControlPlane) -> Option<NamespaceOutcome> {
    let ns = attempt.namespace;
    let (action, to, reason) = match (attempt.decision, attempt.failure) {
        (Decision::Ignore, _) => return None,
        (Decision::Unchanged { reason }, _) => (NamespaceAction::Unchanged, None, Some(reason)),
        (Decision::Skip { reason }, _) => (NamespaceAction::Skipped, None, Some(reason)),
        (Decision::Change { to, .. }, None) => (NamespaceAction::Relabeled, Some(to), None),
        (Decision::Change { .. }, Some(Failure::Reread(reason))) => (NamespaceAction::Failed, None, Some(reason)),
        (Decision::Change { to, .. }, Some(Failure::Patch(reason))) => {
            (NamespaceAction::Failed, Some(to), Some(reason))
        }
    };
    let tag = to.as_ref().and_then(|labels| {
        let after = NamespaceState {
            labels: labels.clone(),
            ..ns.clone()
        };
        followed_tag(&after, cp).map(|(tag, revision)| TagRef { tag, revision })
    });
    Some(NamespaceOutcome {
        namespace: ns.name,
        action,
        from: ns.labels,
        to,
        reason,
        tag,
        conflicts: attempt.conflicts,
    })
}

/// Print the namespaces' outcomes. `all` are the namespaces read, for the tags they follow.
pub(crate) fn namespaces(
    outcomes: &[NamespaceOutcome],
    all: &[NamespaceState],
    cp: &ControlPlane,
    args: &Args,
) -> shared::Result<()> {
    let dry_run = args.dry_run.dry_run;
    if args.step.output.machine() {
        let body = NamespacesBody {
            undo: args.undo,
            to: args.to.as_deref(),
            namespaces: outcomes,
        };
        return Envelope::with_dry_run(KIND, dry_run, body).print(args.step.output.format);
    }
    if args.step.output.format == Format::Name {
        let (names, notes) = namespace_names(outcomes, args.step.output.paint(), dry_run);
        if outcomes.is_empty() {
            eprint!("{}", nothing_to_do(args));
        }
        eprint!("{notes}");
        return shared::output::write_stdout(&names);
    }
    if outcomes.is_empty() {
        print!("{}", nothing_to_do(args));
        return Ok(());
    }
    let paint = args.step.output.paint();
    let mut out = String::new();
    for o in outcomes {
        out.push_str(&namespace_line(o, paint, dry_run));
        out.push('\n');
    }
    out.push_str(&tags_kept(outcomes, all, cp));
    out.push_str(&roll_hint(outcomes, paint));
    print!("{out}");
    Ok(())
}

/// `-o name`: `namespace/NAME` of each namespace relabeled (with `--dry-run`, that would
/// be), as `kubectl label -o name` prints what it labelled; the lines of the namespaces
/// left as they were, skipped or failed, for stderr.
fn namespace_names(outcomes: &[NamespaceOutcome], paint: Paint, dry_run: DryRun) -> (String, String) {
    let (mut names, mut notes) = (String::new(), String::new());
    for o in outcomes {
        if o.action == NamespaceAction::Relabeled {
            names.push_str(&shared::output::object_name("", "Namespace", &o.namespace));
            names.push('\n');
        } else {
            notes.push_str(&namespace_line(o, paint, dry_run));
            notes.push('\n');
        }
    }
    (names, notes)
}

fn nothing_to_do(args: &Args) -> &'static str {
    match &args.from {
        Some(_) => "No namespace is bound to that revision or tag; nothing to do.\n",
        None if args.undo => "No namespace carries a relabel to undo; nothing to do.\n",
        None => "No namespace in the mesh matched; nothing to do.\n",
    }
}

fn namespace_line(o: &NamespaceOutcome, paint: Paint, dry_run: DryRun) -> String {
    let reason = o.reason.as_deref().unwrap_or_default();
    let to = match (o.action, &o.to) {
        (NamespaceAction::Relabeled, Some(to)) => to,
        (NamespaceAction::Unchanged, _) => return format!("namespace/{} unchanged: {reason}", o.namespace),
        (NamespaceAction::Skipped, _) => {
            return format!("namespace/{} {}: {reason}", o.namespace, paint.warn("skipped"));
        }
        _ => return format!("namespace/{} {}: {reason}", o.namespace, paint.bad("failed")),
    };
    let mut l = format!(
        "namespace/{} relabeled{}: {} → {}",
        o.namespace,
        dry_run.suffix(),
        o.from,
        paint.good(&to.to_string())
    );
    if let Some(inj) = o.from.injection.as_deref().filter(|_| to.injection.is_none()) {
        let _ = write!(l, "; removed istio-injection={inj} (it would override istio.io/rev)");
    }
    if let Some(t) = &o.tag {
        let _ = write!(l, "; follows tag {} → revision {}", t.tag, t.revision);
    }
    if o.conflicts > 0 {
        let _ = write!(l, " (changed concurrently; read again {} time(s))", o.conflicts);
    }
    l
}

/// Namespaces that keep following a tag move only with the tag: say where it points.
fn tags_kept(outcomes: &[NamespaceOutcome], all: &[NamespaceState], cp: &ControlPlane) -> String {
    let mut tags: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for ns in all {
        if let Some((tag, _)) = followed_tag(ns, cp)
            && outcomes
                .iter()
                .any(|o| o.namespace == ns.name && o.action != NamespaceAction::Relabeled)
        {
            tags.entry(tag).or_default().push(&ns.name);
        }
    }
    let mut out = String::new();
    for (tag, names) in tags {
        let rev = cp.tags.get(&tag).map_or("?", |t| t.revision.as_str());
        let _ = writeln!(
            out,
            "Tag {tag} points to revision {rev}; namespaces following it: {}",
            names.join(", ")
        );
    }
    out
}

fn roll_hint(outcomes: &[NamespaceOutcome], paint: Paint) -> String {
    let moved: Vec<String> = outcomes
        .iter()
        .filter(|o| o.action == NamespaceAction::Relabeled)
        .map(|o| format!("-n {}", o.namespace))
        .collect();
    if moved.is_empty() {
        return String::new();
    }
    paint.dim(&format!(
        "Running pods keep their proxy until restarted; next: kubectl mesh roll {}\n",
        moved.join(" ")
    ))
}

/// `--tag <tag> --undo` with nothing remembered (on stderr when stdout is for scripts).
pub(crate) fn nothing_to_undo(tag: &str, output: &shared::output::OutputArgs) {
    let line = format!("revision tag {tag} has no {PREVIOUS} annotation: nothing to undo");
    if output.scripted() {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// Print a tag move and the objects written.
pub(crate) fn tag(plan: &TagPlan<'_>, written: &[Written], args: &Args) -> shared::Result<()> {
    let dry_run = args.dry_run.dry_run;
    if args.step.output.machine() {
        let body = TagBody {
            tag: &plan.tag,
            from: plan.from.as_deref(),
            to: plan.to.as_deref(),
            result: plan.result,
            objects: written,
            namespaces: &plan.following,
        };
        return Envelope::with_dry_run(KIND, dry_run, body).print(args.step.output.format);
    }
    let paint = args.step.output.paint();
    if args.step.output.format == Format::Name {
        let (names, notes) = object_names(plan, written, paint, dry_run);
        eprint!("{notes}");
        return shared::output::write_stdout(&names);
    }
    print!("{}", tag_text(plan, written, paint, dry_run));
    Ok(())
}

/// `-o name` for a tag: each object written (created, replaced, deactivated, restored or
/// deleted; with `--dry-run`, that would be), as kubectl names it
/// (`mutatingwebhookconfiguration.admissionregistration.k8s.io/istio-revision-tag-prod`,
/// `service/istiod-revision-tag-prod`); an unchanged tag and the objects that failed, for
/// stderr.
fn object_names(plan: &TagPlan<'_>, written: &[Written], paint: Paint, dry_run: DryRun) -> (String, String) {
    let (mut names, mut notes) = (String::new(), String::new());
    if plan.result == TagResult::Unchanged {
        let to = plan.to.as_deref().unwrap_or("-");
        notes = format!("revision tag {} unchanged: already points to revision {to}\n", plan.tag);
    }
    for o in written {
        if o.error.is_some() {
            notes.push_str(object_line(o, paint, dry_run.suffix()).trim_start());
        } else {
            let group = if o.kind.ends_with("WebhookConfiguration") {
                "admissionregistration.k8s.io"
            } else {
                ""
            };
            names.push_str(&shared::output::object_name(group, o.kind, &o.name));
            names.push('\n');
        }
    }
    (names, notes)
}

fn tag_text(plan: &TagPlan<'_>, written: &[Written], paint: Paint, dry_run: DryRun) -> String {
    let (tag, suffix) = (&plan.tag, dry_run.suffix());
    let to = plan.to.as_deref().unwrap_or("-");
    let from = plan.from.as_deref().unwrap_or(if plan.result == TagResult::Removed {
        "-"
    } else {
        "(new)"
    });
    let mut out = String::new();
    let _ = match plan.result {
        TagResult::Unchanged => writeln!(out, "revision tag {tag} unchanged: already points to revision {to}"),
        TagResult::Moved => writeln!(out, "revision tag {tag} moved{suffix}: {from} → {}", paint.good(to)),
        TagResult::Created => writeln!(out, "revision tag {tag} created{suffix}: → {}", paint.good(to)),
        TagResult::Removed => writeln!(out, "revision tag {tag} removed{suffix} (pointed to revision {from})"),
    };
    for o in written {
        out.push_str(&object_line(o, paint, suffix));
    }
    out.push_str(&following_text(plan, paint));
    out
}

/// `  <kind>/<name> <what was done>`, as kubectl prints its changes.
fn object_line(o: &Written, paint: Paint, suffix: &str) -> String {
    let ns = o.namespace.as_deref().map(|n| format!(" -n {n}")).unwrap_or_default();
    let object = format!("{}/{}{ns}", o.kind.to_lowercase(), o.name);
    let done = match (&o.error, o.action) {
        (Some(e), _) => return format!("  {object} {}: {e}\n", paint.bad("failed")),
        (None, ObjectAction::Created) => "created",
        (None, ObjectAction::Deleted) => "deleted",
        (None, ObjectAction::Restored) => "restored",
        (None, ObjectAction::Deactivated) => {
            return format!(
                "  {object} deactivated{suffix}: its webhooks now match nothing (istio.io/deactivated=never-match); \
                 their selectors are kept in {PREVIOUS} for --undo\n"
            );
        }
        (None, _) => "replaced",
    };
    format!("  {object} {done}{suffix}\n")
}

fn following_text(plan: &TagPlan<'_>, paint: Paint) -> String {
    let tag = &plan.tag;
    if plan.following.is_empty() {
        return format!("No namespace follows tag {tag}.\n");
    }
    let names: Vec<String> = plan
        .following
        .iter()
        .map(|m| format!("{} ({})", m.namespace, m.via))
        .collect();
    let restored = plan
        .removal
        .as_ref()
        .and_then(|r| r.unrevisioned.as_ref())
        .and_then(|u| u.config.metadata.name.clone());
    let which = match (plan.result, &restored) {
        (TagResult::Unchanged, _) => "follow it".to_string(),
        (TagResult::Removed, Some(injector)) => format!("go back to {injector}"),
        (TagResult::Removed, None) => "followed it".to_string(),
        (TagResult::Moved | TagResult::Created, _) => "move with it".to_string(),
    };
    let mut out = format!("Namespaces that {which}: {}\n", names.join(", "));
    if matches!(plan.result, TagResult::Moved | TagResult::Created) || restored.is_some() {
        let _ = writeln!(
            out,
            "{}",
            paint.dim("Running pods keep their proxy until restarted; next: kubectl mesh roll")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{canary, ns};

    fn attempt(decision: Decision, failure: Option<Failure>) -> Attempt {
        Attempt {
            namespace: ns("shop", Some("1-27"), Some("enabled")),
            decision,
            conflicts: 0,
            failure,
        }
    }

    fn change(to: &str) -> Decision {
        Decision::Change {
            from: InjectionLabels::rev("1-27"),
            to: InjectionLabels::rev(to),
            remember: None,
        }
    }

    #[test]
    fn each_attempt_is_reported_once_with_what_it_became() {
        let cp = canary();
        let rows = outcomes(
            vec![
                attempt(Decision::Ignore, None),
                attempt(change("canary"), None),
                attempt(change("1-28"), Some(Failure::Patch("refused".into()))),
                attempt(change("1-28"), Some(Failure::Reread("deleted while relabeling".into()))),
            ],
            &cp,
        );
        let actions: Vec<_> = rows.iter().map(|o| (o.action, o.to.is_some())).collect();
        assert_eq!(
            actions,
            [
                (NamespaceAction::Relabeled, true),
                (NamespaceAction::Failed, true),
                (NamespaceAction::Failed, false)
            ]
        );
        let tag = rows[0].tag.as_ref().unwrap();
        assert_eq!((tag.tag.as_str(), tag.revision.as_str()), ("canary", "1-28"));
    }

    #[test]
    fn lines_read_like_kubectl() {
        let cp = canary();
        let mut rows = outcomes(vec![attempt(change("1-28"), None)], &cp);
        rows[0].conflicts = 1;
        let line = namespace_line(&rows[0], Paint { enabled: false }, DryRun::Server);
        assert_eq!(
            line,
            "namespace/shop relabeled (server dry run): istio.io/rev=1-27,istio-injection=enabled → istio.io/rev=1-28; \
             removed istio-injection=enabled (it would override istio.io/rev) (changed concurrently; read again 1 time(s))"
        );
        assert_eq!(
            roll_hint(&rows, Paint { enabled: false }),
            "Running pods keep their proxy until restarted; next: kubectl mesh roll -n shop\n"
        );
        let skipped = NamespaceOutcome {
            action: NamespaceAction::Skipped,
            to: None,
            reason: Some("follows tag default".into()),
            ..rows[0].clone()
        };
        let line = namespace_line(&skipped, Paint { enabled: false }, DryRun::None);
        assert_eq!(line, "namespace/shop skipped: follows tag default");
        let following = [ns("legacy", None, Some("enabled"))];
        let kept = NamespaceOutcome {
            namespace: "legacy".into(),
            ..skipped
        };
        assert_eq!(
            tags_kept(&[kept], &following, &cp),
            "Tag default points to revision 1-27; namespaces following it: legacy\n"
        );
    }

    #[test]
    fn name_output_lists_the_namespaces_relabeled_and_leaves_the_rest_to_stderr() {
        let cp = canary();
        let rows = outcomes(
            vec![
                attempt(change("1-28"), None),
                attempt(
                    Decision::Skip {
                        reason: "follows tag default".into(),
                    },
                    None,
                ),
                attempt(change("1-28"), Some(Failure::Patch("forbidden".into()))),
            ],
            &cp,
        );
        let (names, notes) = namespace_names(&rows, Paint { enabled: false }, DryRun::Client);
        assert_eq!(names, "namespace/shop\n");
        assert_eq!(
            notes,
            "namespace/shop skipped: follows tag default\nnamespace/shop failed: forbidden\n"
        );
    }

    #[test]
    fn the_document_carries_the_envelope_and_the_namespaces() {
        let rows = outcomes(vec![attempt(change("1-28"), None)], &canary());
        let body = NamespacesBody {
            undo: false,
            to: Some("1-28"),
            namespaces: &rows,
        };
        let doc = serde_json::to_value(Envelope::with_dry_run(KIND, DryRun::Client, body)).unwrap();
        assert_eq!(doc["kind"], "MeshRelabel");
        assert_eq!(doc["dryRun"], "client");
        assert_eq!(doc["to"], "1-28");
        assert_eq!(doc["namespaces"][0]["action"], "relabeled");
        assert_eq!(doc["namespaces"][0]["to"]["istio.io/rev"], "1-28");
        assert!(doc.get("schemaVersion").is_some());
    }

    #[test]
    fn a_tag_move_lists_its_objects() {
        let plan = TagPlan {
            tag: "default".into(),
            from: Some("1-27".into()),
            to: Some("1-28".into()),
            result: TagResult::Moved,
            following: vec![Following {
                namespace: "legacy".into(),
                via: "istio-injection=enabled".into(),
            }],
            change: None,
            removal: None,
        };
        let written = [
            Written {
                kind: "MutatingWebhookConfiguration",
                name: "istio-revision-tag-default".into(),
                namespace: None,
                action: ObjectAction::Replaced,
                error: None,
            },
            Written {
                kind: "Service",
                name: "istiod-revision-tag-default".into(),
                namespace: Some("istio-system".into()),
                action: ObjectAction::Failed,
                error: Some("forbidden".into()),
            },
        ];
        assert_eq!(
            tag_text(&plan, &written, Paint { enabled: false }, DryRun::Client),
            "revision tag default moved (dry run): 1-27 → 1-28\n\
             \x20 mutatingwebhookconfiguration/istio-revision-tag-default replaced (dry run)\n\
             \x20 service/istiod-revision-tag-default -n istio-system failed: forbidden\n\
             Namespaces that move with it: legacy (istio-injection=enabled)\n\
             Running pods keep their proxy until restarted; next: kubectl mesh roll\n"
        );
        let (names, notes) = object_names(&plan, &written, Paint { enabled: false }, DryRun::None);
        assert_eq!(
            names,
            "mutatingwebhookconfiguration.admissionregistration.k8s.io/istio-revision-tag-default\n"
        );
        assert_eq!(
            notes,
            "service/istiod-revision-tag-default -n istio-system failed: forbidden\n"
        );
        let unchanged = TagPlan {
            result: TagResult::Unchanged,
            ..plan
        };
        let (names, notes) = object_names(&unchanged, &[], Paint { enabled: false }, DryRun::None);
        assert_eq!(names, "");
        assert_eq!(
            notes,
            "revision tag default unchanged: already points to revision 1-28\n"
        );
        let doc = serde_json::to_value(&written[1]).unwrap();
        assert_eq!(doc["action"], "failed");
        assert_eq!(serde_json::to_value(TagResult::Unchanged).unwrap(), "unchanged");
    }

    #[test]
    fn a_tag_creation_and_its_undo_say_what_became_of_the_injector() {
        let line = |kind: &'static str, name: &str, action| Written {
            kind,
            name: name.into(),
            namespace: None,
            action,
            error: None,
        };
        let plan = TagPlan {
            tag: "default".into(),
            from: None,
            to: Some("1-28".into()),
            result: TagResult::Created,
            following: vec![Following {
                namespace: "default".into(),
                via: "istio-injection=enabled".into(),
            }],
            change: None,
            removal: None,
        };
        let written = [
            line(
                "MutatingWebhookConfiguration",
                "istio-revision-tag-default",
                ObjectAction::Created,
            ),
            line(
                "MutatingWebhookConfiguration",
                "istio-sidecar-injector",
                ObjectAction::Deactivated,
            ),
        ];
        assert_eq!(
            tag_text(&plan, &written, Paint { enabled: false }, DryRun::Server),
            "revision tag default created (server dry run): → 1-28\n\
             \x20 mutatingwebhookconfiguration/istio-revision-tag-default created (server dry run)\n\
             \x20 mutatingwebhookconfiguration/istio-sidecar-injector deactivated (server dry run): its webhooks now \
             match nothing (istio.io/deactivated=never-match); their selectors are kept in \
             kubectl-mesh.io/relabel-previous for --undo\n\
             Namespaces that move with it: default (istio-injection=enabled)\n\
             Running pods keep their proxy until restarted; next: kubectl mesh roll\n"
        );
        let removed = TagPlan {
            from: Some("1-28".into()),
            to: None,
            result: TagResult::Removed,
            ..plan
        };
        let written = [
            line(
                "MutatingWebhookConfiguration",
                "istio-revision-tag-default",
                ObjectAction::Deleted,
            ),
            line(
                "ValidatingWebhookConfiguration",
                "istiod-default-validator",
                ObjectAction::Restored,
            ),
        ];
        assert_eq!(
            tag_text(&removed, &written, Paint { enabled: false }, DryRun::None),
            "revision tag default removed (pointed to revision 1-28)\n\
             \x20 mutatingwebhookconfiguration/istio-revision-tag-default deleted\n\
             \x20 validatingwebhookconfiguration/istiod-default-validator restored\n\
             Namespaces that followed it: default (istio-injection=enabled)\n"
        );
        let doc = serde_json::to_value(TagBody {
            tag: "default",
            from: Some("1-28"),
            to: None,
            result: TagResult::Removed,
            objects: &written,
            namespaces: &removed.following,
        })
        .unwrap();
        assert_eq!(doc["result"], "removed");
        assert_eq!(doc["objects"][1]["action"], "restored");
        assert!(doc["to"].is_null());
    }
}
