//! `kubectl mesh switchover --from OLD --to NEW`: can the new cluster take the old one's
//! load? The third way through an Istio upgrade, beside the canary and in-place upgrades:
//! a second cluster runs the new Istio and the same application, and the load balancer
//! moves traffic to it (the old cluster is drained, then retired).
//!
//! The step is read-only: it reads both clusters (`read.rs`), compares them (`plan.rs`)
//! and prints the verdict (`report.rs`). It changes nothing, so it has no `act.rs`.

mod plan;
mod read;
mod report;

use clap::Parser;
use shared::Error;

pub use plan::{
    Cluster, GatewayCheck, MeshCheck, ObjectRef, Options, Parity, Reason, Report, ServiceInfo, ServiceRow, StatefulRow,
    Workload, WorkloadRow, object_ref, plan,
};

/// Exit code when the new cluster cannot take the load yet: 3, as `revisions --check`
/// reports work left to do.
pub const NOT_READY: u8 = shared::exit::OUT_OF_DATE;

const ABOUT: &str = "Check whether a new cluster can take an old cluster's load (a live cluster switchover)";

const AFTER: &str = "\
Checks, with a reason for each failure:
  parity        every Deployment, StatefulSet and DaemonSet of the old cluster's meshed
                namespaces (or -n) exists in the new one with the same application
                images (sidecars aside) and at least as many ready pods; every Service
                with the same ports. Extra objects in the new cluster are listed only.
  mesh          on the new side: the namespaces select a revision whose istiod is ready,
                every pod carries that revision's proxy and none is out of date, the
                ingress gateway (--gateway) is ready and its Service has an external
                address (status.loadBalancer.ingress).
  stateless     a workload mounting a PersistentVolumeClaim or with volumeClaimTemplates,
                in either cluster, keeps data traffic cannot move: a blocker until moved
                to storage both clusters reach and acknowledged with --allow-stateful.

Nothing is changed in either cluster.

Exit codes: 0 ready, 1 error (a cluster cannot be read), 2 usage, 3 not ready.

Examples:
  kubectl mesh switchover --from prod-1-27 --to prod-1-28
  kubectl mesh switchover --from prod-1-27 --to prod-1-28 -n default -o json
  kubectl mesh switchover --from old --to new --allow-stateful default/postgres";

#[derive(Debug, Parser)]
#[command(name = "kubectl-mesh-switchover", bin_name = "kubectl mesh switchover", version = shared::VERSION, about = ABOUT, after_help = AFTER)]
pub struct Args {
    /// The kubeconfig context of the cluster serving the load now (the old Istio)
    #[arg(long, value_name = "CONTEXT")]
    pub from: String,
    /// The kubeconfig context of the cluster to take the load (the new Istio)
    #[arg(long, value_name = "CONTEXT")]
    pub to: String,
    /// A stateful workload whose data you have dealt with (repeatable)
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = object_ref)]
    pub allow_stateful: Vec<ObjectRef>,
    /// The new cluster's ingress gateway: its Deployment and LoadBalancer Service
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = object_ref, default_value = "istio-system/istio-ingressgateway")]
    pub gateway: ObjectRef,
    #[command(flatten)]
    pub step: shared::cli::StepArgs,
}

impl Args {
    /// Flags that cannot go together, caught before anything is read.
    fn check(&self) -> shared::Result<()> {
        if let Some(c) = &self.step.connect.context {
            return Err(Error::Usage(format!(
                "--context {c}: switchover reads two clusters; name them with --from and --to"
            )));
        }
        if self.from == self.to {
            return Err(Error::Usage(format!(
                "--from and --to are both {}: name the old cluster's context and the new one's",
                self.from
            )));
        }
        Ok(())
    }
}

/// Read both clusters at once, compare them, print the verdict. Exit 3 when not ready.
pub async fn run(args: Args) -> shared::Result<u8> {
    args.check()?;
    let connect = &args.step.connect;
    let (old, new) = tokio::try_join!(
        read::read_cluster(connect, &args.from, "old"),
        read::read_cluster(connect, &args.to, "new"),
    )?;
    let namespaces = match args.step.scope.scope(shared::Scope::All) {
        shared::Scope::All => None,
        shared::Scope::Namespaces(list) => Some(list),
    };
    let options = Options {
        namespaces,
        gateway: args.gateway.clone(),
        allow_stateful: args.allow_stateful.clone(),
    };
    let report = plan(&old, &new, &options);
    if !report.unmatched_allowances.is_empty() {
        let names: Vec<String> = report.unmatched_allowances.iter().map(ToString::to_string).collect();
        let stateful: Vec<String> = report
            .stateful
            .iter()
            .map(|s| format!("{}/{}", s.namespace, s.name))
            .collect();
        return Err(Error::Usage(format!(
            "--allow-stateful {}: no stateful workload of that name in the compared namespaces (stateful ones: {})",
            names.join(", "),
            shared::error::known(stateful.iter().map(String::as_str))
        )));
    }
    report.print(&args.step.output)?;
    Ok(if report.ready { shared::exit::OK } else { NOT_READY })
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    #[test]
    fn flags_are_consistent() {
        super::Args::command().debug_assert();
    }

    #[test]
    fn one_context_for_both_or_a_context_flag_is_a_usage_error() {
        let args =
            |a: &[&str]| super::Args::try_parse_from(std::iter::once("switchover").chain(a.iter().copied())).unwrap();
        let same = args(&["--from", "a", "--to", "a"]);
        assert_eq!(same.check().unwrap_err().exit_code(), shared::exit::USAGE);
        let context = args(&["--from", "a", "--to", "b", "--context", "c"]);
        assert!(context.check().unwrap_err().to_string().contains("--from and --to"));
        assert!(args(&["--from", "a", "--to", "b"]).check().is_ok());
        let bad =
            super::Args::try_parse_from(["switchover", "--from", "a", "--to", "b", "--allow-stateful", "postgres"]);
        assert!(bad.unwrap_err().to_string().contains("NAMESPACE/NAME"));
    }
}
