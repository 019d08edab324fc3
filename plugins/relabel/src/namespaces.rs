//! Relabel namespaces: read, decide per namespace, patch conditionally, report.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde::Serialize;
use shared::model::ControlPlane;
use shared::{Connection, collect, error::api_error, exit};

use crate::plan::{self, Chosen, Decision, InjectionLabels, NamespaceState, Request};
use crate::{Args, DryRun, dry_run_suffix};

/// A conflict re-reads the namespace and decides again, at most this many times.
const ATTEMPTS: usize = 5;

/// One namespace in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub namespace: String,
    /// relabeled | unchanged | skipped | failed
    pub action: &'static str,
    pub from: InjectionLabels,
    pub to: Option<InjectionLabels>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The tag the namespace follows after the change, and the revision it points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<TagRef>,
    /// How many times a concurrent change made us read and decide again.
    pub conflicts: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagRef {
    pub tag: String,
    pub revision: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    schema_version: u32,
    dry_run: &'static str,
    undo: bool,
    to: Option<&'a str>,
    namespaces: &'a [Outcome],
}

pub async fn run(args: &Args, conn: &Connection) -> shared::Result<u8> {
    let cp = collect::read_control_plane(conn).await?;
    let request = match &args.to {
        Some(target) => {
            if let Err(problem) = plan::check_target(target, &cp, args.force) {
                return Err(shared::Error::Refused(format!(
                    "refusing to relabel to {target}: {problem}"
                )));
            }
            Request::To {
                target: target.clone(),
                from: args.from.clone(),
            }
        }
        None => Request::Undo { force: args.force },
    };
    let api = Api::<Namespace>::all(conn.client.clone());
    let (chosen, list) = read(args, conn, &api).await?;

    let mut outcomes = vec![];
    for ns in &list {
        if let Some(o) = relabel_one(conn, &api, ns, chosen, &request, &cp, args.dry_run).await {
            outcomes.push(o);
        }
    }

    let failed = outcomes.iter().filter(|o| o.action == "failed").count();
    if args.output.machine() {
        let dry = match args.dry_run {
            DryRun::None => "none",
            DryRun::Client => "client",
            DryRun::Server => "server",
        };
        shared::output::print_document(
            args.output.format,
            &Document {
                schema_version: shared::output::SCHEMA_VERSION,
                dry_run: dry,
                undo: args.undo,
                to: args.to.as_deref(),
                namespaces: &outcomes,
            },
        )?;
    } else {
        print!("{}", render(&outcomes, args, &list, &cp));
    }
    Ok(if failed > 0 { exit::PARTIAL } else { exit::OK })
}

/// The namespaces in play and how they were chosen.
async fn read(args: &Args, conn: &Connection, api: &Api<Namespace>) -> shared::Result<(Chosen, Vec<NamespaceState>)> {
    if !args.scope.namespaces.is_empty() {
        let mut names = args.scope.namespaces.clone();
        names.sort();
        names.dedup();
        let mut out = vec![];
        for n in &names {
            match api.get_opt(n).await {
                Ok(Some(ns)) => out.push(NamespaceState::from_namespace(&ns)),
                Ok(None) => {
                    return Err(shared::Error::Usage(format!(
                        "namespace {n:?} not found; list them with `kubectl get namespaces`"
                    )));
                }
                Err(e) => return Err(api_error(e, &conn.url, format!("get namespace {n}"))),
            }
        }
        return Ok((Chosen::Named, out));
    }
    let (chosen, params) = match &args.selector {
        Some(sel) => (Chosen::Selector, ListParams::default().labels(sel)),
        None => (Chosen::All, ListParams::default()),
    };
    let list = api.list(&params).await.map_err(|e| match (&args.selector, e) {
        (Some(sel), kube::Error::Api(s)) if s.code == 400 => {
            shared::Error::Usage(format!("invalid label selector {sel:?}: {}", s.message))
        }
        (_, e) => api_error(e, &conn.url, "list namespaces"),
    })?;
    Ok((chosen, list.items.iter().map(NamespaceState::from_namespace).collect()))
}

/// Decide and write one namespace; on a conflict, read it again and decide again.
async fn relabel_one(
    conn: &Connection,
    api: &Api<Namespace>,
    first: &NamespaceState,
    chosen: Chosen,
    request: &Request,
    cp: &ControlPlane,
    dry_run: DryRun,
) -> Option<Outcome> {
    let mut ns = first.clone();
    let mut conflicts = 0;
    loop {
        let outcome = |action, to, reason| outcome(&ns, conflicts, cp, action, to, reason);
        let (to, remember) = match plan::decide(&ns, chosen, request, cp) {
            Decision::Ignore => return None,
            Decision::Unchanged { reason } => return Some(outcome("unchanged", None, Some(reason))),
            Decision::Skip { reason } => return Some(outcome("skipped", None, Some(reason))),
            Decision::Change { to, remember, .. } => (to, remember),
        };
        if dry_run == DryRun::Client {
            return Some(outcome("relabeled", Some(to), None));
        }
        let params = PatchParams {
            dry_run: dry_run == DryRun::Server,
            ..PatchParams::default()
        };
        pause_for_tests();
        let body = plan::patch(&ns, &to, remember.as_ref());
        match api.patch(&ns.name, &params, &Patch::Merge(&body)).await {
            Ok(_) => return Some(outcome("relabeled", Some(to), None)),
            Err(kube::Error::Api(s)) if s.code == 409 && conflicts + 1 < ATTEMPTS => {
                match api.get_opt(&ns.name).await {
                    Ok(Some(fresh)) => {
                        conflicts += 1;
                        ns = NamespaceState::from_namespace(&fresh);
                    }
                    Ok(None) => return Some(outcome("failed", None, Some("deleted while relabeling".into()))),
                    Err(e) => {
                        let err = api_error(e, &conn.url, format!("get namespace {}", ns.name));
                        return Some(outcome("failed", None, Some(err.to_string())));
                    }
                }
            }
            Err(e) => {
                let err = api_error(e, &conn.url, format!("patch namespace {}", ns.name));
                return Some(outcome("failed", Some(to), Some(err.to_string())));
            }
        }
    }
}

fn outcome(
    ns: &NamespaceState,
    conflicts: usize,
    cp: &ControlPlane,
    action: &'static str,
    to: Option<InjectionLabels>,
    reason: Option<String>,
) -> Outcome {
    let tag = to.as_ref().and_then(|t| {
        let after = NamespaceState {
            labels: t.clone(),
            ..ns.clone()
        };
        plan::followed_tag(&after, cp).map(|(tag, revision)| TagRef { tag, revision })
    });
    Outcome {
        namespace: ns.name.clone(),
        action,
        from: ns.labels.clone(),
        to,
        reason,
        tag,
        conflicts,
    }
}

/// Tests widen the window between read and write to provoke a concurrent edit.
fn pause_for_tests() {
    if let Some(ms) = std::env::var("KUBECTL_MESH_TEST_PAUSE_BEFORE_WRITE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

fn render(outcomes: &[Outcome], args: &Args, all: &[NamespaceState], cp: &ControlPlane) -> String {
    let paint = args.output.paint();
    let suffix = dry_run_suffix(args.dry_run);
    let mut out = String::new();
    if outcomes.is_empty() {
        out.push_str(match &args.from {
            Some(_) => "No namespace is bound to that revision or tag; nothing to do.\n",
            None if args.undo => "No namespace carries a relabel to undo; nothing to do.\n",
            None => "No namespace in the mesh matched; nothing to do.\n",
        });
        return out;
    }
    for o in outcomes {
        let line = match o.action {
            "relabeled" => {
                let to = o.to.as_ref().expect("relabeled has labels");
                let mut l = format!(
                    "namespace/{} relabeled{suffix}: {} → {}",
                    o.namespace,
                    o.from,
                    paint.good(&to.to_string())
                );
                if let Some(inj) = o.from.injection.as_deref().filter(|_| to.injection.is_none()) {
                    l.push_str(&format!(
                        "; removed istio-injection={inj} (it would override istio.io/rev)"
                    ));
                }
                if let Some(t) = &o.tag {
                    l.push_str(&format!("; follows tag {} → revision {}", t.tag, t.revision));
                }
                if o.conflicts > 0 {
                    l.push_str(&format!(" (changed concurrently; read again {} time(s))", o.conflicts));
                }
                l
            }
            "unchanged" => format!(
                "namespace/{} unchanged: {}",
                o.namespace,
                o.reason.as_deref().unwrap_or_default()
            ),
            "skipped" => format!(
                "namespace/{} {}: {}",
                o.namespace,
                paint.warn("skipped"),
                o.reason.as_deref().unwrap_or_default()
            ),
            _ => format!(
                "namespace/{} {}: {}",
                o.namespace,
                paint.bad("failed"),
                o.reason.as_deref().unwrap_or_default()
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    // Namespaces that keep following a tag move only with the tag: say where it points.
    let mut tags: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for ns in all {
        if let Some((tag, _)) = plan::followed_tag(ns, cp)
            && outcomes
                .iter()
                .any(|o| o.namespace == ns.name && o.action != "relabeled")
        {
            tags.entry(tag).or_default().push(&ns.name);
        }
    }
    for (tag, names) in tags {
        let rev = cp.tags.get(&tag).map(|t| t.revision.as_str()).unwrap_or("?");
        out.push_str(&format!(
            "Tag {tag} points to revision {rev}; namespaces following it: {}\n",
            names.join(", ")
        ));
    }
    let moved: Vec<_> = outcomes
        .iter()
        .filter(|o| o.action == "relabeled")
        .map(|o| o.namespace.as_str())
        .collect();
    if !moved.is_empty() {
        out.push_str(&paint.dim(&format!(
            "Running pods keep their proxy until restarted; next: kubectl mesh roll {}\n",
            moved.iter().map(|n| format!("-n {n}")).collect::<Vec<_>>().join(" ")
        )));
    }
    out
}
