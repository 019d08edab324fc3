//! How the fleet view prints: one table with a CLUSTER column (a row per revision of each
//! cluster, a row with the reason for a cluster that could not be read), one `MeshFleet`
//! document for `-o json|yaml`.

use shared::output::{Envelope, Format, OutputArgs, Paint, table};

use super::Fleet;
use crate::plan::RevisionRow;

/// The `kind` of the fleet's `-o json|yaml` document.
const KIND: &str = "MeshFleet";

impl Fleet {
    pub fn document(&self) -> Envelope<&Fleet> {
        Envelope::new(KIND, self)
    }

    pub fn print(&self, output: &OutputArgs) -> shared::Result<()> {
        match output.format {
            Format::Json | Format::Yaml => self.document().print(output.format),
            Format::Name => shared::output::write_stdout(&self.names()),
            _ => shared::output::write_stdout(&self.render(output, output.paint())),
        }
    }

    /// `-o name`: `<context>/revision/<name>`, one a line, for the clusters read.
    pub fn names(&self) -> String {
        shared::output::names(self.clusters.iter().flat_map(|c| {
            c.revisions
                .iter()
                .flat_map(|d| d.body.revisions.iter())
                .map(move |r| format!("{}/revision/{}", c.context, r.name))
        }))
    }

    /// The table, then one line per cluster that could not be read, then a summary.
    pub fn render(&self, output: &OutputArgs, paint: Paint) -> String {
        let mut t = table(&[
            "cluster",
            "revision",
            "tags",
            "version",
            "istiod",
            "proxies",
            "out of date",
        ]);
        for c in &self.clusters {
            match (&c.revisions, &c.error) {
                (Some(doc), _) if doc.body.revisions.is_empty() => {
                    t.add_row(vec![
                        c.context.clone(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "0".into(),
                    ]);
                }
                (Some(doc), _) => {
                    for r in &doc.body.revisions {
                        t.add_row(row(&c.context, r, paint));
                    }
                }
                (None, Some(e)) => {
                    t.add_row(vec![
                        c.context.clone(),
                        paint.bad(&format!("error: {}", e.reason)),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                    ]);
                }
                (None, None) => {}
            }
        }
        let mut out = output.render(&t);
        out.push('\n');
        if !output.headers() {
            return out;
        }
        let errors: Vec<_> = self
            .clusters
            .iter()
            .filter_map(|c| Some((&c.context, c.error.as_ref()?)))
            .collect();
        if !errors.is_empty() {
            out.push('\n');
            for (context, e) in errors {
                out.push_str(&format!(
                    "{} {context}: {}\n",
                    paint.bad(&format!("[{}]", e.reason)),
                    e.message
                ));
            }
        }
        out.push('\n');
        out.push_str(&self.summary(paint));
        out.push('\n');
        out
    }

    fn summary(&self, paint: Paint) -> String {
        let read = self.clusters.len() - self.failed;
        let mut s = format!("{read} of {} clusters read", self.clusters.len());
        if self.failed > 0 {
            s.push_str(&format!(" ({} could not be read)", paint.bad(&self.failed.to_string())));
        }
        if self.out_of_date == 0 {
            s.push_str(": no proxy is out of date.");
        } else {
            s.push_str(&format!(
                ": {} {} out of date; see `kubectl mesh revisions --context CLUSTER`.",
                paint.warn(&self.out_of_date.to_string()),
                if self.out_of_date == 1 { "proxy" } else { "proxies" }
            ));
        }
        s
    }
}

fn row(context: &str, r: &RevisionRow, paint: Paint) -> Vec<String> {
    let dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
    let istiod = match &r.istiod {
        Some(i) if r.ready => paint.good(&format!("{}/{}", i.ready_replicas, i.replicas)),
        Some(i) => paint.bad(&format!("{}/{}", i.ready_replicas, i.replicas)),
        None if r.installed => paint.bad("missing"),
        None => paint.dim("removed"),
    };
    let proxies = r
        .proxies
        .iter()
        .map(|(v, n)| format!("{v}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let out_of_date = if r.out_of_date > 0 {
        paint.warn(&r.out_of_date.to_string())
    } else {
        "0".to_string()
    };
    vec![
        context.to_string(),
        if r.default {
            format!("{} (default)", r.name)
        } else {
            r.name.clone()
        },
        dash(r.tags.join(",")),
        r.version.clone().unwrap_or_else(|| "-".into()),
        istiod,
        dash(proxies),
        out_of_date,
    ]
}
