//! Completion values read from the cluster and the kubeconfig, each bounded by a short
//! timeout: a slow or unreachable cluster must cost the user one pause, not a hung shell.

use std::future::Future;
use std::time::Duration;

use shared::{ConnectArgs, Scope};

use crate::complete::{Candidate, Lookup};

/// How long a completion may wait for the cluster.
const TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct Cluster;

fn within<T: Default>(work: impl Future<Output = Option<T>>) -> T {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return T::default();
    };
    runtime
        .block_on(async { tokio::time::timeout(TIMEOUT, work).await })
        .ok()
        .flatten()
        .unwrap_or_default()
}

impl Lookup for Cluster {
    fn revisions(&self, connect: &ConnectArgs) -> Vec<Candidate> {
        within(async {
            let conn = connect.connect().await.ok()?;
            let cp = shared::collect::read_control_plane(&conn).await.ok()?;
            let mut out: Vec<Candidate> = cp
                .revisions
                .values()
                .map(|r| {
                    let mut about = vec!["revision".to_string()];
                    if let Some(v) = r.version() {
                        about.push(format!("istiod {v}"));
                    }
                    if !r.tags.is_empty() {
                        about.push(format!("tags {}", r.tags.join(", ")));
                    }
                    Candidate::new(&r.name, about.join(", "))
                })
                .collect();
            out.extend(
                cp.tags
                    .values()
                    .filter(|t| !cp.revisions.contains_key(&t.name))
                    .map(|t| Candidate::new(&t.name, format!("tag -> {}", t.revision))),
            );
            Some(out)
        })
    }

    fn namespaces(&self, connect: &ConnectArgs) -> Vec<Candidate> {
        within(async {
            let conn = connect.connect().await.ok()?;
            let list = shared::collect::list_namespaces(&conn, &Scope::All).await.ok()?;
            Some(
                list.into_iter()
                    .filter_map(|ns| ns.metadata.name)
                    .map(Candidate::bare)
                    .collect(),
            )
        })
    }

    fn contexts(&self, connect: &ConnectArgs) -> Vec<Candidate> {
        let Ok(config) = connect.load_kubeconfig() else {
            return vec![];
        };
        config
            .contexts
            .into_iter()
            .map(|ctx| {
                let about = ctx
                    .context
                    .map(|c| format!("cluster {}", c.cluster))
                    .unwrap_or_default();
                Candidate::new(ctx.name, about)
            })
            .collect()
    }
}
