//! `kubectl mesh relabel`: point namespaces (or a revision tag) at another control-plane
//! revision, safely and reversibly.

mod namespaces;
pub mod plan;
mod tags;

use clap::Parser;
use shared::output::OutputArgs;
use shared::{ConnectArgs, ScopeArgs};

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

/// kubectl's `--dry-run` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRun {
    /// Change the cluster
    None,
    /// Print what would change; send nothing
    Client,
    /// Send the changes with the API server's dryRun: validated, not persisted
    Server,
}

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
    /// Only print (client) or only validate on the server (server) what would change
    #[arg(long, value_enum, value_name = "none|client|server", num_args = 0..=1, require_equals = true, default_missing_value = "client", default_value = "none")]
    pub dry_run: DryRun,
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
        Some(tag) => tags::run(&args, &conn, tag).await,
        None => namespaces::run(&args, &conn).await,
    }
}

/// " (dry run)" / " (server dry run)" after what would have been done.
pub(crate) fn dry_run_suffix(d: DryRun) -> &'static str {
    match d {
        DryRun::None => "",
        DryRun::Client => " (dry run)",
        DryRun::Server => " (server dry run)",
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    #[test]
    fn flags_are_consistent() {
        super::Args::command().debug_assert();
    }

    #[test]
    fn dry_run_reads_like_kubectl() {
        let a = super::Args::try_parse_from(["x", "--to", "1-28", "-A", "--dry-run"]).unwrap();
        assert_eq!(a.dry_run, super::DryRun::Client);
        let a = super::Args::try_parse_from(["x", "--to", "1-28", "-A", "--dry-run=server"]).unwrap();
        assert_eq!(a.dry_run, super::DryRun::Server);
        assert!(super::Args::try_parse_from(["x", "--to", "1-28", "--undo"]).is_err());
        assert!(
            super::Args::try_parse_from(["x", "-A"]).is_err(),
            "--to or --undo is required"
        );
    }
}
