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
use shared::output::DryRunArgs;
use shared::{Connection, collect, exit};

use crate::plan::namespaces::Request;
use crate::plan::tags::{ObjectAction, TagRequest};
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

Revision tags (--tag TAG) are written exactly as `istioctl tag set TAG --revision REV
--overwrite` writes them: the tag's MutatingWebhookConfiguration istio-revision-tag-TAG
(created if the tag is new; labels and annotations copied from the revision's injector,
operator.istio.io labels left out, so `istioctl uninstall --revision REV` keeps the tag),
its Service istiod-revision-tag-TAG, and for `default` the validator
istiod-default-validator. Moving `default` also deactivates the unrevisioned injector
istio-sidecar-injector (its webhooks get the selector istio.io/deactivated=never-match),
which would otherwise still inject istio-injection=enabled namespaces. Before writing,
istioctl's webhook analysis (IST0139) must find no namespace and pod that two webhooks
would inject, and no webhook calling a missing Service.
Each object replaced remembers what it was in kubectl-mesh.io/relabel-previous:
--tag TAG --undo points the tag back, removes it if the last relabel created it, and puts
back the deactivated injector's selectors and the Service and validator as they were.
--tag TAG --remove deletes the tag's configuration and Service, as `istioctl tag remove`
(the validator and a deactivated injector are left as they are).
--force also writes despite IST0139 conflicts, and removes a tag namespaces still use.

Exit codes: 0 ok, 1 error, 2 usage, 4 refused (target missing or not ready, webhook
conflict, tag still in use; nothing written), 5 some namespaces or objects failed.

Examples:
  kubectl mesh relabel --to 1-28 -n default
  kubectl mesh relabel --from 1-27 --to 1-28 -A --dry-run=server
  kubectl mesh relabel --undo -n default
  kubectl mesh relabel --tag default --to 1-28  # istioctl tag set default -r 1-28 --overwrite
  kubectl mesh relabel --tag default --undo
  kubectl mesh relabel --tag prod --remove       # istioctl tag remove prod";

#[derive(Debug, Parser)]
#[command(name = "kubectl-mesh-relabel", bin_name = "kubectl mesh relabel", version = shared::VERSION, about = ABOUT, after_help = AFTER)]
pub struct Args {
    /// Revision or tag the namespaces (or, with --tag, the revision the tag) should point to
    #[arg(long, value_name = "REVISION|TAG", required_unless_present_any = ["undo", "remove"], value_parser = shared::model::labels::revision_name)]
    pub to: Option<String>,
    /// Only namespaces now bound to this revision or tag
    #[arg(long, value_name = "REVISION|TAG", conflicts_with_all = ["undo", "tag"], value_parser = shared::model::labels::revision_name)]
    pub from: Option<String>,
    /// Put back the labels the last relabel replaced (with --tag: point the tag back, or
    /// remove it if that relabel created it, and restore what it deactivated or replaced)
    #[arg(long, conflicts_with = "to")]
    pub undo: bool,
    /// Move this revision tag instead of relabeling namespaces
    #[arg(long, value_name = "TAG", conflicts_with_all = ["selector", "namespace", "all_namespaces"], value_parser = shared::model::labels::revision_name)]
    pub tag: Option<String>,
    /// With --tag: delete the tag, as istioctl tag remove
    #[arg(long, requires = "tag", conflicts_with_all = ["to", "undo", "selector", "namespace", "all_namespaces"])]
    pub remove: bool,
    /// Namespaces matching this label selector (like kubectl's -l)
    #[arg(short = 'l', long, value_name = "SELECTOR", conflicts_with_all = ["namespace", "all_namespaces"])]
    pub selector: Option<String>,
    /// Go ahead even if the target's istiod is not ready (it must still exist); with --tag,
    /// also despite webhook conflicts (IST0139) or namespaces that still use a removed tag
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub dry_run: DryRunArgs,
    #[command(flatten)]
    pub step: shared::cli::StepArgs,
}

pub async fn run(args: Args) -> shared::Result<u8> {
    if args.tag.is_none()
        && args.step.scope.namespaces.is_empty()
        && args.selector.is_none()
        && !args.step.scope.all_namespaces
    {
        return Err(shared::Error::Usage(
            "choose the namespaces to relabel: -n NAMESPACE (repeatable), -l SELECTOR or -A; or move a tag with --tag"
                .into(),
        ));
    }
    let conn = args.step.connect.connect().await?;
    match &args.tag {
        Some(tag) => move_tag(&args, &conn, tag).await,
        None => relabel_namespaces(&args, &conn).await,
    }
}

/// Set the injection labels of the chosen namespaces, or put back what a relabel replaced.
async fn relabel_namespaces(args: &Args, conn: &Connection) -> shared::Result<u8> {
    let cp = collect::read_control_plane(conn).await?;
    let request = Request::new(args.to.as_deref(), args.from.as_deref(), args.force, &cp)?;
    let (chosen, namespaces) = read::namespaces(conn, &args.step.scope.namespaces, args.selector.as_deref()).await?;
    plan::namespaces::check_from(args.from.as_deref(), &namespaces, &cp)?;
    let planned = plan::namespaces::plan(&namespaces, chosen, &request, &cp);
    let decide = |ns: &plan::NamespaceState| plan::namespaces::decide(ns, chosen, &request, &cp);
    shared::access::check(conn, "relabel", act::namespace_needs(&planned, args.dry_run.dry_run)).await?;
    let attempts = act::relabel(conn, planned, decide, args.dry_run.dry_run).await;
    let outcomes = report::outcomes(attempts, &cp);
    report::namespaces(&outcomes, &namespaces, &cp, args)?;
    Ok(exit_code(outcomes.iter().any(|o| o.action == NamespaceAction::Failed)))
}

/// Point a revision tag at another revision, as `istioctl tag set --overwrite`, remove it,
/// as `istioctl tag remove`, or undo the last of these.
async fn move_tag(args: &Args, conn: &Connection, tag: &str) -> shared::Result<u8> {
    let cluster = read::tag_cluster(conn).await?;
    let request = match (&args.to, args.remove) {
        (Some(to), _) => TagRequest::To(to),
        (None, true) => TagRequest::Remove,
        (None, false) => TagRequest::Undo,
    };
    let Some(plan) = plan::tags::plan(tag, request, &cluster, args.force)? else {
        report::nothing_to_undo(tag, &args.step.output);
        return Ok(exit::OK);
    };
    let written = match plan.companions() {
        None => vec![],
        Some((namespace, validator)) => {
            let companions = read::companions(conn, namespace, validator).await;
            let writes = plan::tags::writes(&plan, &cluster.webhooks, companions, args.force)?;
            let needs = act::tag_needs((namespace, validator), &writes, args.dry_run.dry_run);
            shared::access::check(conn, "relabel", needs).await?;
            act::tag(conn, writes, args.dry_run.dry_run).await?
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
    fn remove_is_for_a_tag_alone() {
        let a = super::Args::try_parse_from(["x", "--tag", "prod", "--remove"]).unwrap();
        assert!(a.remove && a.to.is_none());
        assert!(
            super::Args::try_parse_from(["x", "--remove", "-A"]).is_err(),
            "--remove needs --tag"
        );
        assert!(super::Args::try_parse_from(["x", "--tag", "prod", "--remove", "--to", "1-28"]).is_err());
        assert!(super::Args::try_parse_from(["x", "--tag", "prod", "--remove", "--undo"]).is_err());
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
