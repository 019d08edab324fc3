//! The fleet view's table, document and exit codes, from the canary and in-place fixtures
//! as two clusters and a third that could not be read.

#[allow(unreachable_pub)]
#[path = "../../../shared/tests/common/mod.rs"]
mod common;

use kubectl_mesh_revisions::Report;
use kubectl_mesh_revisions::fleet::{ClusterError, ClusterResult, Fleet};
use shared::output::{Envelope, Paint};

fn cluster(context: &str, files: &[&str]) -> ClusterResult {
    let report = Report::new(common::load(files).mesh(), false);
    ClusterResult {
        context: context.into(),
        revisions: Some(Envelope::new("MeshRevisions", report)),
        error: None,
    }
}

fn fleet(clusters: Vec<ClusterResult>) -> Fleet {
    Fleet::of(clusters)
}

fn gone() -> ClusterResult {
    ClusterResult {
        context: "eu".into(),
        revisions: None,
        error: Some(ClusterError {
            reason: "Forbidden".into(),
            message: "not allowed to list pods in all namespaces (403 Forbidden)".into(),
        }),
    }
}

fn rows(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn one_table_with_a_cluster_column_and_the_reason_for_the_cluster_not_read() {
    let f = fleet(vec![
        cluster("canary", common::CANARY),
        cluster("inplace", common::INPLACE),
        gone(),
    ]);
    let text = f.render(&Default::default(), Paint { enabled: false });
    let rows = rows(&text);
    assert_eq!(rows[0], "CLUSTER REVISION TAGS VERSION ISTIOD PROXIES OUT OF DATE");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("canary 1-27 (default) default 1.27.4 1/1")),
        "{text}"
    );
    assert!(rows.iter().any(|r| r.starts_with("inplace default")), "{text}");
    assert!(rows.contains(&"eu error: Forbidden - - - - -".to_string()), "{text}");
    assert!(
        rows.contains(&"[Forbidden] eu: not allowed to list pods in all namespaces (403 Forbidden)".to_string()),
        "{text}"
    );
    assert!(text.contains("2 of 3 clusters read (1 could not be read)"), "{text}");
    assert_eq!(f.exit_code(false), shared::exit::PARTIAL);
    assert_eq!(
        f.exit_code(true),
        shared::exit::PARTIAL,
        "a partial view is never a clean check"
    );
}

#[test]
fn the_document_holds_each_clusters_revisions_document() {
    let f = fleet(vec![cluster("canary", common::CANARY), gone()]);
    let doc = serde_json::to_value(f.document()).unwrap();
    assert_eq!(doc["kind"], "MeshFleet");
    assert_eq!(doc["failed"], 1);
    let single = serde_json::to_value(Report::new(common::load(common::CANARY).mesh(), false).document()).unwrap();
    assert_eq!(doc["clusters"][0]["revisions"], single);
    assert_eq!(doc["clusters"][1]["error"]["reason"], "Forbidden");
    assert!(doc["clusters"][1].get("revisions").is_none());
}

#[test]
fn exit_codes() {
    let stale = fleet(vec![
        cluster("canary", common::CANARY),
        cluster("inplace", common::INPLACE),
    ]);
    assert!(stale.out_of_date > 0);
    assert_eq!(stale.exit_code(false), shared::exit::OK);
    assert_eq!(stale.exit_code(true), shared::exit::OUT_OF_DATE);
    assert_eq!(fleet(vec![gone()]).exit_code(false), shared::exit::ERROR);
}
