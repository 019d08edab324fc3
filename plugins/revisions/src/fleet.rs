//! The fleet view: `revisions --context a --context b …` or `--all-contexts`. Each cluster
//! is read as the single-cluster view reads it, several at once (at most
//! [`CONCURRENT_CLUSTERS`]), so the wall time is close to the slowest cluster's rather
//! than their sum. A cluster that cannot be read (unreachable, 401, 403, too slow) gets
//! its row with the reason; the others are still shown, and the exit code says the view
//! is partial.

mod report;

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use shared::{ConnectArgs, Error, Scope, collect, exit};

use crate::plan::Report;

/// How many clusters are read at once: enough for a fleet to take about as long as its
/// slowest cluster, few enough that a long context list does not open hundreds of
/// connections at once.
pub const CONCURRENT_CLUSTERS: usize = 8;

/// One cluster of the fleet: its report, or why it could not be read.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterResult {
    pub context: String,
    /// The `MeshRevisions` document of this cluster, as `revisions -o json` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revisions: Option<shared::output::Envelope<Report>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ClusterError>,
}

/// Why a cluster could not be read.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterError {
    /// `Unreachable`, `Unauthorized`, `Forbidden`, `Timeout`, `Kubeconfig`, `UntrustedServer`
    /// or `Error`: stable for scripts.
    pub reason: String,
    pub message: String,
}

/// The body of the `MeshFleet` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fleet {
    /// In the order the contexts were given (for `--all-contexts`, the kubeconfig's).
    pub clusters: Vec<ClusterResult>,
    /// Out-of-date proxies over every cluster read.
    pub out_of_date: usize,
    /// Clusters that could not be read.
    pub failed: usize,
}

impl Fleet {
    /// Read every context, [`CONCURRENT_CLUSTERS`] at a time, each bounded by `timeout`.
    pub async fn read(connect: &ConnectArgs, contexts: &[String], scope: &Scope, timeout: Option<Duration>) -> Fleet {
        let clusters: Vec<ClusterResult> = futures::stream::iter(contexts)
            .map(|context| read_cluster(connect, context, scope, timeout))
            .buffered(CONCURRENT_CLUSTERS)
            .collect()
            .await;
        Fleet::of(clusters)
    }

    /// The fleet of these clusters' results, with its totals.
    pub fn of(clusters: Vec<ClusterResult>) -> Fleet {
        let out_of_date = clusters
            .iter()
            .filter_map(|c| c.revisions.as_ref())
            .map(|r| r.body.out_of_date)
            .sum();
        let failed = clusters.iter().filter(|c| c.error.is_some()).count();
        Fleet {
            clusters,
            out_of_date,
            failed,
        }
    }

    /// 1 when no cluster could be read, 5 when some could not, else 3 with `--check` and
    /// out-of-date proxies, else 0.
    pub fn exit_code(&self, check: bool) -> u8 {
        if self.failed > 0 && self.failed == self.clusters.len() {
            exit::ERROR
        } else if self.failed > 0 {
            exit::PARTIAL
        } else if check && self.out_of_date > 0 {
            exit::OUT_OF_DATE
        } else {
            exit::OK
        }
    }
}

async fn read_cluster(connect: &ConnectArgs, context: &str, scope: &Scope, timeout: Option<Duration>) -> ClusterResult {
    let mut args = connect.clone();
    args.context = Some(context.to_string());
    let read = async {
        let conn = args.connect().await?;
        let mesh = collect::read_mesh(&conn, scope).await?;
        Ok::<_, Error>(Report::new(mesh, *scope != Scope::All))
    };
    let outcome = match timeout {
        Some(t) => tokio::time::timeout(t, read).await.unwrap_or_else(|_| {
            Err(Error::Other(anyhow::anyhow!(
                "no answer within {} (--request-timeout)",
                humantime(t)
            )))
        }),
        None => read.await,
    };
    match outcome {
        Ok(report) => ClusterResult {
            context: context.to_string(),
            revisions: Some(shared::output::Envelope::new(crate::report::KIND, report)),
            error: None,
        },
        Err(e) => ClusterResult {
            context: context.to_string(),
            revisions: None,
            error: Some(ClusterError {
                reason: reason(&e).to_string(),
                message: e.to_string().lines().next().unwrap_or_default().to_string(),
            }),
        },
    }
}

fn reason(e: &Error) -> &'static str {
    match e {
        // kube's own connect timeout (30 s unless --request-timeout) says so in its reason.
        Error::Unreachable { reason, .. }
            if reason.contains("deadline has elapsed") || reason.contains("timed out") =>
        {
            "Timeout"
        }
        Error::Unreachable { .. } => "Unreachable",
        Error::Unauthorized { .. } => "Unauthorized",
        Error::Forbidden { .. } => "Forbidden",
        Error::UntrustedServer { .. } => "UntrustedServer",
        Error::Kubeconfig(_) => "Kubeconfig",
        Error::Other(o) if o.to_string().contains("--request-timeout") => "Timeout",
        _ => "Error",
    }
}

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Every context of the kubeconfig kubectl would read (`--kubeconfig`, else `$KUBECONFIG`'s
/// files merged in order, else `~/.kube/config`), in order, each once.
pub fn all_contexts(connect: &ConnectArgs) -> shared::Result<Vec<String>> {
    let paths: Vec<PathBuf> = match (&connect.kubeconfig, std::env::var_os("KUBECONFIG")) {
        (Some(p), _) => vec![p.clone()],
        (None, Some(list)) if !list.is_empty() => std::env::split_paths(&list).collect(),
        _ => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".kube/config"))
            .into_iter()
            .collect(),
    };
    let mut names: Vec<String> = vec![];
    for path in paths.iter().filter(|p| p.exists()) {
        let config = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| Error::Kubeconfig(format!("cannot read kubeconfig {}: {e}", path.display())))?;
        for c in config.contexts {
            if !names.contains(&c.name) {
                names.push(c.name);
            }
        }
    }
    if names.is_empty() {
        let looked: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::Usage(format!(
            "--all-contexts: no context in {}; add contexts with `kubectl config set-context` or name them with --context",
            shared::error::known(looked.iter().map(String::as_str))
        )));
    }
    Ok(names)
}
