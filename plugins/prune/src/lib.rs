//! `kubectl mesh prune <revision>`: remove an old control-plane revision, only once nothing
//! uses it, and never what another revision still needs.
//!
//! The pipeline: read ([`read`]: the list calls, through `shared::collect`) → plan
//! ([`plan`], pure) → confirm (here) → act ([`act`]: the deletes only) → report
//! ([`report`]).

mod act;
mod plan;
mod read;
mod report;

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use clap::Parser;
use shared::output::DryRunArgs;
use shared::{Scope, collect};

use plan::Found;
use report::Report;

const ABOUT: &str = "Remove an old Istio control-plane revision once nothing uses it";

const AFTER: &str = "\
Selects what `istioctl uninstall --revision <revision>` selects: objects labelled
istio.io/rev=<revision> with operator.istio.io/component in (Pilot, IngressGateways,
EgressGateways, Cni, Ztunnel), of the kinds it deletes. Then keeps, and lists with the
reason, anything still serving another revision: a gateway Service, PodDisruptionBudget
or Deployment selecting pods of another revision, what those pods use, a revision tag's
webhook, istiod-default-validator while the default tag exists.

Refuses, deleting nothing, while the revision is in use, and names every user with a
command that frees it:
  - it is the only revision;
  - a revision tag (including default) points to it;
  - a namespace label names it, or pods' own istio.io/rev label asks for it;
  - a running or pending pod runs its proxy (completed pods do not count): injected by
    it (the revision in sidecar.istio.io/status), or, for Gateway API gateways and
    waypoints, rendered by its istiod (the istio.io/rev annotation). The fix says what a
    restart would do: move the proxy (kubectl mesh roll), get this revision again, or,
    where the namespace selects no revision, remove the sidecar;
  - one of its own gateways (operator.istio.io/component IngressGateways or
    EgressGateways) has live pods: pruning would delete it and its Service.
    --include-gateways deletes them anyway;
  - a webhook configuration that prune does not delete still calls its istiod Service
    (istiod-<revision>, istiod for revision default), e.g. Helm's
    istiod-default-validator, which rejects every Istio resource write once its istiod
    is gone.

Deletes with foreground propagation and waits (watching) until each object is gone.
Ctrl-C or SIGTERM stops it cleanly: no delete is sent after the signal, the object being
deleted is left to its deletion in the cluster, and a summary says what was deleted and
what is left (exit 130 for Ctrl-C, 143 for SIGTERM). Running it again after an
interruption finishes the job; once nothing of the revision is left it says so and exits
0. A name that no object and no pod ever carried is a usage error.

-n NAMESPACE names the namespace of the revision's control plane (where its istiod runs,
as istioctl's --istioNamespace): prune refuses, as a usage error, a revision that has
nothing there. It narrows nothing: a revision is cluster-wide (its webhooks, its proxies
in every namespace), so prune always checks every namespace for users and deletes the
whole revision. -A, the default, takes the revision wherever it is; the context's
namespace is not used.

-o name prints each object deleted (with --dry-run, that would be deleted; with
--dry-run=server, whose delete the server accepted) as kubectl names it, e.g.
deployment.apps/istiod-1-27, and everything else on stderr. --no-headers drops the plan
table's header row.

--dry-run (the same as --dry-run=client) prints the plan and deletes nothing.
--dry-run=server sends each delete with the API server's dryRun, so admission webhooks
and RBAC check it and nothing is persisted, and reports what the server answered for each
object. Neither asks for confirmation. The -o json|yaml document says which in dryRun
(none, client or server).

Exit codes: 0 ok (or already pruned), 1 error, 2 usage, 4 refused (in use, or not
confirmed), 5 some objects could not be deleted (with --dry-run=server: the server
refused some), 130 interrupted by Ctrl-C, 143 stopped by SIGTERM.

Examples:
  kubectl mesh prune 1-27 --dry-run
  kubectl mesh prune 1-27 --dry-run=server
  kubectl mesh prune 1-27
  kubectl mesh prune 1-27 -n istio-system
  kubectl mesh prune 1-27 --include-gateways
  kubectl mesh prune 1-27 --yes -o json
  kubectl mesh prune 1-27 --dry-run -o name";

#[derive(Debug, Parser)]
#[command(name = "kubectl-mesh-prune", bin_name = "kubectl mesh prune", version = shared::VERSION, about = ABOUT, after_help = AFTER)]
#[command(
    mut_arg("namespace", |a| a.help("The namespace of the revision's control plane, a guard: prune always checks and deletes cluster-wide (see below)")),
    mut_arg("all_namespaces", |a| a.help("Take the revision wherever its control plane is (the default)"))
)]
pub struct Args {
    /// The revision to remove (required: there is no default and no "all")
    #[arg(value_name = "REVISION", value_parser = revision_arg)]
    pub revision: String,
    /// Delete without asking (for scripts)
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Delete the revision's own gateways (and their Services) even while they serve traffic
    #[arg(long)]
    pub include_gateways: bool,
    #[command(flatten)]
    pub dry_run: DryRunArgs,
    /// How long to wait for each object to be gone
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = shared::connect::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub step: shared::cli::StepArgs,
}

/// Read, plan, stop here if the revision is in use (or for `--dry-run`), confirm, delete,
/// report.
pub async fn run(args: Args) -> shared::Result<u8> {
    let revision = plan::revision_arg(&args.revision)?;
    let dry_run = args.dry_run.dry_run;
    let report = Report::new(&args.step.output, dry_run);
    // A revision is cluster-wide: -n only names where its control plane is.
    let scope = args.step.scope.scope(Scope::All);

    let conn = args.step.connect.connect().await?;
    let cp = collect::read_control_plane(&conn).await?;
    plan::not_a_tag(&revision, &cp)?;
    let cluster = read::cluster(&conn, &revision, cp).await?;
    let (cp, selected) = (&cluster.mesh.control_plane, &cluster.selected);
    if let Found::Pruned(traces) = plan::found(&revision, cp, selected, &cluster.traces)? {
        return report.already_pruned(&revision, &traces);
    }

    let plan = plan::plan(&revision, &cluster, args.include_gateways);
    plan::check_scope(&plan, &scope)?;
    if !plan.users.is_empty() {
        return Err(report.refused(&plan));
    }
    if plan.delete.is_empty() {
        return report.nothing_to_do(&plan);
    }
    if !dry_run.sends() {
        return report.planned(&plan);
    }
    shared::access::check(&conn, "prune", act::needs(&plan.delete, dry_run)).await?;
    report.plan(&plan);
    if !args.yes && !dry_run.is_dry() {
        confirm(&revision, plan.delete.len())?;
    }

    let (results, signal) = act::delete_all(&conn, &plan.delete, dry_run, args.timeout, |d| report.deletion(d)).await;
    report.results(&plan, &results, signal)
}

/// Ask on the terminal before deleting, as `istioctl uninstall` does (`preCheckWarnings` in
/// operator/cmd/mesh/uninstall.go); with no terminal to ask on, refuse.
fn confirm(revision: &str, count: usize) -> shared::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(shared::Error::Refused(format!(
            "no terminal to confirm on: pass --yes to delete these {count} objects (or --dry-run to see the plan)"
        )));
    }
    eprint!("Delete these {count} objects of revision {revision}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(shared::Error::Refused("not confirmed; nothing was deleted".into()))
    }
}

/// The revision argument: required, and a name a revision can have.
fn revision_arg(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the revision to prune is required, e.g. `kubectl mesh prune 1-27`".into());
    }
    shared::model::labels::revision_name(text)
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
    fn the_revision_is_required() {
        assert!(super::Args::try_parse_from(["prune"]).is_err());
        assert!(super::Args::try_parse_from(["prune", "1-27", "--yes"]).is_ok());
    }

    #[test]
    fn n_and_a_are_taken_as_every_step_takes_them() {
        let parse = |argv: &[&str]| super::Args::try_parse_from(argv);
        let a = parse(&["prune", "1-27", "-n", "istio-system"]).unwrap();
        assert_eq!(a.step.scope.namespaces, ["istio-system"]);
        assert!(parse(&["prune", "1-27", "-A"]).unwrap().step.scope.all_namespaces);
        assert!(parse(&["prune", "1-27", "-n", "istio-system", "-A"]).is_err());
        assert!(parse(&["prune", "1-27", "-n", "Not_A_Namespace"]).is_err());
        let a = parse(&["prune", "1-27", "-o", "name", "--no-headers"]).unwrap();
        assert_eq!(a.step.output.format, shared::output::Format::Name);
        assert!(!a.step.output.headers());
    }

    #[test]
    fn a_bare_dry_run_is_client_side() {
        let dry = |argv: &[&str]| super::Args::try_parse_from(argv).unwrap().dry_run.dry_run;
        assert_eq!(dry(&["prune", "1-27", "--dry-run"]), DryRun::Client);
        assert_eq!(dry(&["prune", "--dry-run", "1-27"]), DryRun::Client);
        assert_eq!(dry(&["prune", "1-27", "--dry-run=server"]), DryRun::Server);
        assert_eq!(dry(&["prune", "1-27"]), DryRun::None);
    }
}
