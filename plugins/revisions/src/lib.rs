//! `kubectl mesh revisions`: every control-plane revision and tag, which namespaces point
//! at it, how many proxies of which version each serves, the data-plane components
//! (ztunnel, istio-cni, waypoints, Gateway API gateways), and what is out of date.
//!
//! The step is read-only: it reads the mesh, plans the report (`plan.rs`) and prints it
//! (`report.rs`). It changes nothing, so unlike the other steps it has no `act.rs`.

mod plan;
mod report;

use clap::Parser;
use shared::{Scope, collect, exit};

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

Exit codes: 0 ok, 1 error, 2 usage, 3 out-of-date proxies found (with --check).

Examples:
  kubectl mesh revisions
  kubectl mesh revisions --namespaces
  kubectl mesh revisions --proxies -n default -o wide
  kubectl mesh revisions --check -o json   # gate a pipeline on \"nothing runs an old proxy\"";

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

/// Read the mesh, plan the report, print it. With `--check`, exit 3 when any proxy is out
/// of date.
pub async fn run(args: Args) -> shared::Result<u8> {
    let conn = args.step.connect.connect().await?;
    // The mesh-wide picture by default; -n narrows the namespaces and proxies read.
    let scope = args.step.scope.scope(Scope::All);
    let mesh = collect::read_mesh(&conn, &scope).await?;
    let report = Report::new(&mesh, scope != Scope::All);
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
    }
}
