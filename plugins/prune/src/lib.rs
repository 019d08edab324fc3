//! `kubectl mesh prune <revision>`: remove an old control-plane revision, only once nothing
//! uses it, and never what another revision still needs.

pub mod plan;

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Preconditions, TypeMeta};
use kube::runtime::wait::{await_condition, conditions};
use serde::Serialize;
use shared::model::Mesh;
use shared::output::{Format, OutputArgs};
use shared::{ConnectArgs, Connection, Scope, collect, error::api_error, exit};

use plan::{Item, Kind, LivePod, Plan};

const ABOUT: &str = "Remove an old Istio control-plane revision once nothing uses it";

const AFTER: &str = "\
Selects what `istioctl uninstall --revision <revision>` selects: objects labelled
istio.io/rev=<revision> with operator.istio.io/component in (Pilot, IngressGateways,
EgressGateways, Cni, Ztunnel), of the kinds it deletes. Then keeps, and lists with the
reason, anything still serving another revision: a gateway Service, PodDisruptionBudget
or Deployment selecting pods of another revision, what those pods use, a revision tag's
webhook, istiod-default-validator while the default tag exists.

Refuses, deleting nothing, while the revision is in use: a namespace or pod label naming
it, a revision tag (including default) pointing to it, a running or pending pod it
injected (completed pods do not count), or when it is the only revision. The message
names every user and the command that frees it.

Deletes with foreground propagation and waits (watching) until each object is gone.
Running it again after an interruption finishes the job.

Exit codes: 0 ok, 1 error, 2 usage, 4 refused (in use, or not confirmed), 5 some
objects could not be deleted.

Examples:
  kubectl mesh prune 1-27 --dry-run
  kubectl mesh prune 1-27
  kubectl mesh prune 1-27 --yes -o json";

#[derive(Debug, Parser)]
#[command(name = "kubectl-mesh-prune", bin_name = "kubectl mesh prune", version = shared::VERSION, about = ABOUT, after_help = AFTER)]
pub struct Args {
    /// The revision to remove (required: there is no default and no "all")
    #[arg(value_name = "REVISION")]
    pub revision: String,
    /// Delete without asking (for scripts)
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Print the plan only; delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for each object to be gone
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = shared::connect::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// What happened to one object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    #[serde(flatten)]
    pub item: Item,
    /// deleted | alreadyGone | failed
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    schema_version: u32,
    dry_run: bool,
    /// planned | refused | deleted | partial | nothingToDo
    status: &'static str,
    plan: &'a Plan,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    results: Vec<Deleted>,
}

fn resource(k: &Kind) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(k.group, k.version, k.kind), k.plural)
}

/// Everything the revision's label selector selects, of every kind istioctl deletes.
async fn read_selected(conn: &Connection, revision: &str) -> shared::Result<Vec<DynamicObject>> {
    let params = ListParams::default().labels(&plan::selector(revision));
    let mut out = vec![];
    for k in plan::kinds() {
        let ar = resource(&k);
        let api = Api::<DynamicObject>::all_with(conn.client.clone(), &ar);
        match api.list(&params).await {
            Ok(list) => out.extend(list.items.into_iter().map(|mut o| {
                o.types = Some(TypeMeta {
                    api_version: ar.api_version.clone(),
                    kind: ar.kind.clone(),
                });
                o
            })),
            // EnvoyFilter is a CRD: without Istio's CRDs there is none to delete.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(api_error(
                    e,
                    &conn.url,
                    format!("list {} ({})", k.plural, plan::selector(revision)),
                ));
            }
        }
    }
    Ok(out)
}

async fn read_pods(conn: &Connection) -> shared::Result<Vec<LivePod>> {
    let api = Api::<Pod>::all(conn.client.clone());
    let mut params = ListParams::default().limit(collect::PAGE_SIZE);
    let mut out = vec![];
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| api_error(e, &conn.url, "list pods in all namespaces"))?;
        out.extend(page.items.iter().filter_map(LivePod::from_pod));
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    Ok(out)
}

pub async fn run(args: Args) -> shared::Result<u8> {
    let revision = args.revision.trim().to_string();
    if revision.is_empty() {
        return Err(shared::Error::Usage(
            "the revision to prune is required, e.g. `kubectl mesh prune 1-27`".into(),
        ));
    }
    let conn = args.connect.connect().await?;
    let cp = collect::read_control_plane(&conn).await?;
    if let Some(t) = cp.tags.get(&revision) {
        return Err(shared::Error::Usage(format!(
            "{revision} is a revision tag (pointing to {}), not a revision; prune takes a revision, see `kubectl mesh revisions`",
            t.revision
        )));
    }
    let (selected, namespaces, pods) = tokio::try_join!(
        read_selected(&conn, &revision),
        collect::read_namespaces(&conn, &Scope::All, &cp),
        read_pods(&conn),
    )?;
    // A revision half-removed by an interrupted prune is no longer in the control plane,
    // but what is left of it is still selected: finish the job.
    if !cp.revisions.contains_key(&revision) && selected.is_empty() {
        let known: Vec<_> = cp.revisions.keys().map(String::as_str).collect();
        return Err(shared::Error::Usage(format!(
            "revision {revision} not found: no object is labelled istio.io/rev={revision} (revisions: {}); see `kubectl mesh revisions`",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    let mesh = Mesh::new(cp, namespaces, vec![]);
    let plan = plan::plan(&revision, &selected, &pods, &mesh);
    let paint = args.output.paint();
    let machine = args.output.machine();

    if !plan.users.is_empty() {
        if machine {
            print_doc(args.output.format, args.dry_run, "refused", &plan, vec![])?;
        } else {
            print!("{}", render_plan(&plan, paint));
        }
        let mut msg = format!("refusing to prune revision {revision}: it is still in use; nothing was deleted");
        for u in &plan.users {
            msg.push_str(&format!("\n  - {}\n      → {}", u.what, u.fix));
        }
        return Err(shared::Error::Refused(msg));
    }
    if plan.delete.is_empty() {
        if machine {
            print_doc(args.output.format, args.dry_run, "nothingToDo", &plan, vec![])?;
        } else {
            print!("{}", render_plan(&plan, paint));
            println!("Nothing of revision {revision} is left to delete.");
        }
        return Ok(exit::OK);
    }
    if args.dry_run {
        if machine {
            print_doc(args.output.format, true, "planned", &plan, vec![])?;
        } else {
            print!("{}", render_plan(&plan, paint));
            println!("Dry run: nothing deleted.");
        }
        return Ok(exit::OK);
    }
    if !machine {
        print!("{}", render_plan(&plan, paint));
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(shared::Error::Refused(format!(
                "no terminal to confirm on: pass --yes to delete these {} objects (or --dry-run to see the plan)",
                plan.delete.len()
            )));
        }
        eprint!(
            "Delete these {} objects of revision {revision}? [y/N] ",
            plan.delete.len()
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err(shared::Error::Refused("not confirmed; nothing was deleted".into()));
        }
    }

    let mut results = vec![];
    for it in &plan.delete {
        let r = delete_one(&conn, it, args.timeout).await;
        if !machine {
            match r.result {
                "deleted" => println!("{} deleted", it),
                "alreadyGone" => println!("{} already gone", it),
                _ => println!("{} {}: {}", it, paint.bad("failed"), r.error.as_deref().unwrap_or("")),
            }
        }
        results.push(r);
    }
    let failed = results.iter().filter(|r| r.result == "failed").count();
    if machine {
        print_doc(
            args.output.format,
            false,
            if failed > 0 { "partial" } else { "deleted" },
            &plan,
            results,
        )?;
    } else if failed > 0 {
        println!("{failed} object(s) could not be deleted; run the same command again to finish.");
    } else {
        println!(
            "Revision {revision} pruned: {} objects deleted, {} kept.",
            plan.delete.len(),
            plan.keep.len()
        );
    }
    Ok(if failed > 0 { exit::PARTIAL } else { exit::OK })
}

/// Delete with foreground propagation, only the object we planned for (uid precondition),
/// and wait on a watch until it is gone.
async fn delete_one(conn: &Connection, it: &Item, timeout: Duration) -> Deleted {
    let k = plan::kinds()
        .into_iter()
        .find(|k| k.kind == it.kind)
        .expect("planned kinds are known");
    let ar = resource(&k);
    let api = match &it.namespace {
        Some(ns) => Api::<DynamicObject>::namespaced_with(conn.client.clone(), ns, &ar),
        None => Api::<DynamicObject>::all_with(conn.client.clone(), &ar),
    };
    let done = |result, error| Deleted {
        item: it.clone(),
        result,
        error,
    };
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(it.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::foreground()
    };
    match api.delete(&it.name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return done("alreadyGone", None),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return done(
                "failed",
                Some(format!(
                    "replaced by a new object since it was read ({}); not deleted",
                    s.message
                )),
            );
        }
        Err(e) => {
            return done(
                "failed",
                Some(api_error(e, &conn.url, format!("delete {it}")).to_string()),
            );
        }
    }
    let wait = await_condition(api, &it.name, conditions::is_deleted(&it.uid));
    match tokio::time::timeout(timeout, wait).await {
        Ok(Ok(_)) => done("deleted", None),
        Ok(Err(e)) => done("failed", Some(format!("watching {it} until it is gone: {e}"))),
        Err(_) => done(
            "failed",
            Some(format!(
                "still there after {}s (foreground deletion waits for its dependents); run the same command again to finish",
                timeout.as_secs()
            )),
        ),
    }
}

fn print_doc(
    format: Format,
    dry_run: bool,
    status: &'static str,
    plan: &Plan,
    results: Vec<Deleted>,
) -> shared::Result<()> {
    shared::output::print_document(
        format,
        &Document {
            schema_version: shared::output::SCHEMA_VERSION,
            dry_run,
            status,
            plan,
            results,
        },
    )
}

/// The plan as a table: what is deleted, what is kept and why.
pub fn render_plan(plan: &Plan, paint: shared::output::Paint) -> String {
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
        out.push_str(&shared::output::render(&t));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    #[test]
    fn flags_are_consistent() {
        super::Args::command().debug_assert();
    }

    #[test]
    fn the_revision_is_required() {
        assert!(super::Args::try_parse_from(["prune"]).is_err());
        assert!(super::Args::try_parse_from(["prune", "1-27", "--yes"]).is_ok());
    }
}
