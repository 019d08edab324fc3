//! `kubectl mesh relabel`: point namespaces (or a revision tag) at another control-plane
//! revision, safely and reversibly.
//!
//! Each run is read ([`read`]) -> plan ([`plan`], pure) -> act ([`act`], the API calls) ->
//! report ([`report`]), for namespaces or for a tag.

mod act;
mod plan;
mod read;
mod report;

use clap::Parser;
use shared::output::{DryRunArgs, OutputArgs};
use shared::{ConnectArgs, Connection, ScopeArgs, collect, exit};

use crate::act::ObjectAction;
use crate::plan::namespaces::Request;
use crate::plan::tags::TagRequest;
use crate::report::NamespaceAction;

const ABOUT: &str = "Point namespaces, or a revision tag, at another Istio control-plane revision";

const AFTER: &str = "\
Sets istio.io/rev=<--to> on the chosen namespaces and removes istio-injection where present
(it would override istio.io/rev). The labels replaced are kept in the namespace annotation
kubectl-mesh.io/relabel-previous, so --undo puts back exactly what was there.
Namespaces labelled istio-injection=disabled are changed only when named with -n.
With -A and no --from, only namespaces that carry an injection label are considered.
Namespaces that follow a revision tag are left alone unless named, --from names the tag,
or the tag itself is moved with --tag.

Running pods keep their proxy until restarted: next step `kubectl mesh roll`.

Exit codes: 0 ok, 1 error, 2 usage, 4 refused (target missing or not ready), 5 some
namespaces failed.

Examples:
  kubectl mesh relabel --to 1-28 -n default
  kubectl mesh relabel --from 1-27 --to 1-28 -A --dry-run=server
  kubectl mesh relabel --undo -n default
  kubectl mesh relabel --tag default --to 1-28      # like istioctl tag set default --revision 1-28 --overwrite
  kubectl mesh relabel --tag default --undo";

#[derive(Debug, Parser)]
#[command(name = "kubectl-mesh-relabel", bin_name = "kubectl mesh relabel", version = shared::VERSION, about = ABOUT, after_help = AFTER)]
pub struct Args {
    /// Revision or tag the namespaces (or, with --tag, the revision the tag) should point to
    #[arg(long, value_name = "REVISION|TAG", required_unless_present = "undo")]
    pub to: Option<String>,
    /// Only namespaces now bound to this revision or tag
    #[arg(long, value_name = "REVISION|TAG", conflicts_with_all = ["undo", "tag"])]
    pub from: Option<String>,
    /// Put back the labels (or the tag's revision) the last relabel replaced
    #[arg(long, conflicts_with = "to")]
    pub undo: bool,
    /// Move this revision tag instead of relabeling namespaces
    #[arg(long, value_name = "TAG", conflicts_with_all = ["selector", "namespace", "all_namespaces"])]
    pub tag: Option<String>,
    /// Namespaces matching this label selector (like kubectl's -l)
    #[arg(short = 'l', long, value_name = "SELECTOR", conflicts_with_all = ["namespace", "all_namespaces"])]
    pub selector: Option<String>,
    /// Go ahead even if the target's istiod is not ready (it must still exist)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub dry_run: DryRunArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: Args) -> shared::Result<u8> {
    if args.tag.is_none() && args.scope.namespaces.is_empty() && args.selector.is_none() && !args.scope.all_namespaces {
        return Err(shared::Error::Usage(
            "choose the namespaces to relabel: -n NAMESPACE (repeatable), -l SELECTOR or -A; or move a tag with --tag"
                .into(),
        ));
    }
    let conn = args.connect.connect().await?;
    match &args.tag {
        Some(tag) => move_tag(&args, &conn, tag).await,
        None => relabel_namespaces(&args, &conn).await,
    }
}

/// Set the injection labels of the chosen namespaces, or put back what a relabel replaced.
async fn relabel_namespaces(args: &Args, conn: &Connection) -> shared::Result<u8> {
    let cp = collect::read_control_plane(conn).await?;
    let request = Request::new(args.to.as_deref(), args.from.as_deref(), args.force, &cp)?;
    let (chosen, namespaces) = read::namespaces(conn, &args.scope.namespaces, args.selector.as_deref()).await?;
    let planned = plan::namespaces::plan(&namespaces, chosen, &request, &cp);
    let decide = |ns: &plan::NamespaceState| plan::namespaces::decide(ns, chosen, &request, &cp);
    let attempts = act::relabel(conn, planned, decide, args.dry_run.dry_run).await;
    let outcomes = report::outcomes(attempts, &cp);
    report::namespaces(&outcomes, &namespaces, &cp, args)?;
    Ok(exit_code(outcomes.iter().any(|o| o.action == NamespaceAction::Failed)))
}

/// Point a revision tag at another revision, as `istioctl tag set --overwrite`, or back.
async fn move_tag(args: &Args, conn: &Connection, tag: &str) -> shared::Result<u8> {
    let cluster = read::tag_cluster(conn).await?;
    let request = args.to.as_deref().map_or(TagRequest::Undo, TagRequest::To);
    let Some(plan) = plan::tags::plan(tag, request, &cluster, args.force)? else {
        report::nothing_to_undo(tag);
        return Ok(exit::OK);
    };
    let written = match &plan.change {
        None => vec![],
        Some(change) => {
            let companions = read::companions(conn, change).await;
            let writes = plan::tags::writes(&plan.to, change, companions)?;
            act::move_tag(conn, writes, args.dry_run.dry_run).await?
        }
    };
    report::tag(&plan, &written, args)?;
    Ok(exit_code(written.iter().any(|w| w.action == ObjectAction::Failed)))
}

/// Some namespaces or objects failed while the rest were done: [`exit::PARTIAL`].
fn exit_code(some_failed: bool) -> u8 {
    if some_failed { exit::PARTIAL } else { exit::OK }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};
    use shared::output::DryRun;

    #[test]
    fn flags_are_consistent() {
        super::Args::command().debug_assert();
    }

    #[test]
    fn dry_run_reads_like_kubectl() {
        let a = super::Args::try_parse_from(["x", "--to", "1-28", "-A", "--dry-run"]).unwrap();
        assert_eq!(a.dry_run.dry_run, DryRun::Client);
        let a = super::Args::try_parse_from(["x", "--to", "1-28", "-A", "--dry-run=server"]).unwrap();
        assert_eq!(a.dry_run.dry_run, DryRun::Server);
        assert!(super::Args::try_parse_from(["x", "--to", "1-28", "--undo"]).is_err());
        assert!(
            super::Args::try_parse_from(["x", "-A"]).is_err(),
            "--to or --undo is required"
        );
    }
}
