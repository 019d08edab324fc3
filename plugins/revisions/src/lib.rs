//! `kubectl mesh revisions`: every control-plane revision and tag, which namespaces point
//! at it, how many proxies of which version each serves, the data-plane components
//! (ztunnel, istio-cni, waypoints, Gateway API gateways), and what is out of date.
//!
//! The step is read-only: it reads the mesh, plans the report (`plan.rs`) and prints it
//! (`report.rs`). It changes nothing, so unlike the other steps it has no `act.rs`.

pub mod fleet;
mod plan;
mod report;

use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};
use shared::{Error, Scope, collect, exit};

pub use fleet::Fleet;
pub use plan::Report;

const ABOUT: &str = "Show every Istio control-plane revision and tag, the namespaces and proxies each one serves, and what is out of date";

const AFTER: &str = "\
Views:
  (default)      one row per revision: tags, istiod version and readiness, namespaces,
                 proxies by version, proxies out of date; the tags as `istioctl tag list`
                 prints them; ztunnel, istio-cni, waypoints and Gateway API gateways with
                 their revision; then warnings
  --namespaces   one row per namespace: its labels, the revision new pods get, proxies;
                 for ambient namespaces, the ztunnel's revision and the waypoint
  --proxies      one row per proxy (sidecar, gateway, waypoint): revision, version,
                 whether out of date

A proxy is out of date when the revision that injected it is not the revision its
namespace now selects (canary upgrade), or when its version differs from its own
revision's istiod (in-place upgrade). Completed and failed pods are counted apart.
ztunnel and istio-cni are listed as components, not counted as proxies.

Fleet view: --context repeated (or --all-contexts) reads each cluster at once, up to 8
at a time, and prints one table with a CLUSTER column (-o json: one MeshFleet document
holding each cluster's MeshRevisions, or why it could not be read). A cluster that cannot
be read (unreachable, 401/403, slower than --request-timeout) gets a row with the reason;
the others are still shown.

Exit codes: 0 ok, 1 error, 2 usage, 3 out-of-date proxies found (with --check).
The fleet view exits 5 when some clusters could not be read (the others are shown), 1
when none could.

Examples:
  kubectl mesh revisions
  kubectl mesh revisions --namespaces
  kubectl mesh revisions --proxies -n default -o wide
  kubectl mesh revisions --check -o json   # gate a pipeline on \"nothing runs an old proxy\"
  kubectl mesh revisions --context prod-eu --context prod-us --request-timeout 10s
  kubectl mesh revisions --all-contexts --check";

#[derive(Debug, Parser)]
#[command(name = "kubectl-mesh-revisions", bin_name = "kubectl mesh revisions", version = shared::VERSION, about = ABOUT, after_help = AFTER)]
pub struct Args {
    /// One row per namespace instead of per revision
    #[arg(long, conflicts_with = "proxies")]
    pub namespaces: bool,
    /// One row per proxy (sidecar, gateway, waypoint) instead of per revision
    #[arg(long)]
    pub proxies: bool,
    /// Exit with code 3 when any proxy is out of date
    #[arg(long)]
    pub check: bool,
    /// Read every context of the kubeconfig (the fleet view)
    #[arg(long)]
    pub all_contexts: bool,
    #[command(flatten)]
    pub step: shared::cli::StepArgs,
}

/// Which table to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Revisions,
    Namespaces,
    Proxies,
}

impl Args {
    fn view(&self) -> View {
        if self.namespaces {
            View::Namespaces
        } else if self.proxies {
            View::Proxies
        } else {
            View::Revisions
        }
    }
}

/// [`Args`] with `--context` repeatable: given more than once, or with `--all-contexts`,
/// the step reads each cluster (the fleet view).
#[derive(Debug)]
pub struct Cli {
    pub args: Args,
    /// Every `--context`, in order.
    pub contexts: Vec<String>,
}

impl CommandFactory for Cli {
    fn command() -> clap::Command {
        Args::command().mut_arg("context", |a| {
            a.action(ArgAction::Append)
                .help("The kubeconfig context to use; repeat it to read several clusters (the fleet view)")
        })
    }

    fn command_for_update() -> clap::Command {
        Self::command()
    }
}

impl FromArgMatches for Cli {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let contexts: Vec<String> = matches
            .get_many::<String>("context")
            .map(|v| v.cloned().collect())
            .unwrap_or_default();
        let mut args = Args::from_arg_matches(matches)?;
        args.step.connect.context = contexts.first().cloned();
        Ok(Cli { args, contexts })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Cli::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Parser for Cli {}

/// One cluster as before, or the fleet view for several contexts or `--all-contexts`.
pub async fn run_cli(cli: Cli) -> shared::Result<u8> {
    if cli.contexts.len() < 2 && !cli.args.all_contexts {
        return run(cli.args).await;
    }
    let args = cli.args;
    if args.view() != View::Revisions {
        return Err(Error::Usage(
            "the fleet view (several --context or --all-contexts) shows revisions only; run --namespaces or --proxies with one --context".into(),
        ));
    }
    let contexts = if args.all_contexts {
        if !cli.contexts.is_empty() {
            return Err(Error::Usage(
                "--all-contexts reads every context: drop --context, or drop --all-contexts".into(),
            ));
        }
        fleet::all_contexts(&args.step.connect)?
    } else {
        cli.contexts
    };
    let scope = args.step.scope.scope(Scope::All);
    let timeout = args.step.connect.request_timeout.filter(|t| !t.is_zero());
    let fleet = Fleet::read(&args.step.connect, &contexts, &scope, timeout).await;
    fleet.print(&args.step.output)?;
    Ok(fleet.exit_code(args.check))
}

/// Read the mesh, plan the report, print it. With `--check`, exit 3 when any proxy is out
/// of date.
pub async fn run(args: Args) -> shared::Result<u8> {
    let conn = args.step.connect.connect().await?;
    // The mesh-wide picture by default; -n narrows the namespaces and proxies read.
    let scope = args.step.scope.scope(Scope::All);
    let mesh = collect::read_mesh(&conn, &scope).await?;
    let report = Report::new(mesh, scope != Scope::All);
    report.print(args.view(), &args.step.output)?;
    Ok(if args.check && report.out_of_date > 0 {
        exit::OUT_OF_DATE
    } else {
        exit::OK
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        super::Args::command().debug_assert();
        super::Cli::command().debug_assert();
    }

    #[test]
    fn context_repeats_for_the_fleet_view() {
        use clap::Parser;
        let cli = super::Cli::try_parse_from(["revisions", "--context", "a", "--context=b", "--check"]).unwrap();
        assert_eq!(cli.contexts, ["a", "b"]);
        assert!(cli.args.check);
        let one = super::Cli::try_parse_from(["revisions", "--context", "a"]).unwrap();
        assert_eq!(one.contexts, ["a"]);
        assert_eq!(one.args.step.connect.context.as_deref(), Some("a"));
        let none = super::Cli::try_parse_from(["revisions"]).unwrap();
        assert!(none.contexts.is_empty() && none.args.step.connect.context.is_none());
    }
}
