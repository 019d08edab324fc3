//! How `revisions` prints its [`Report`]: a table per view for people, one document for
//! `-o json|yaml`.

use std::collections::BTreeMap;

use shared::model::Injection;
use shared::model::mesh::version_key;
use shared::output::{Envelope, Format, OutputArgs, Paint, render, table};

use crate::View;
use crate::plan::{NamespaceRow, Report, RevisionRow};

/// The `kind` of the `-o json|yaml` document.
const KIND: &str = "MeshRevisions";

impl Report {
    /// The `-o json|yaml` document: `schemaVersion` and `kind` first, then the report.
    pub fn document(&self) -> Envelope<&Report> {
        Envelope::new(KIND, self)
    }

    /// Print the document or the view's table, as `-o` asks.
    pub fn print(&self, view: View, output: &OutputArgs) -> shared::Result<()> {
        match output.format {
            Format::Json | Format::Yaml => self.document().print(output.format),
            format => {
                print!("{}", self.render(view, format == Format::Wide, output.paint()));
                Ok(())
            }
        }
    }

    /// The view's table, then the warnings, then a one-line summary.
    pub fn render(&self, view: View, wide: bool, paint: Paint) -> String {
        let mut out = match view {
            View::Revisions => self.revisions_table(wide, paint),
            View::Namespaces => self.namespaces_table(wide, paint),
            View::Proxies => self.proxies_table(wide, paint),
        };
        out.push('\n');
        if !self.warnings.is_empty() {
            out.push_str(&format!("\n{}\n", paint.bold("Warnings:")));
            for w in &self.warnings {
                out.push_str(&format!("  {} {}\n", paint.warn(&format!("[{}]", w.code)), w.message));
            }
        }
        out.push('\n');
        out.push_str(&self.summary(paint));
        out.push('\n');
        out
    }

    fn summary(&self, paint: Paint) -> String {
        let terminal = if self.terminal_pods > 0 {
            format!(" ({} completed/failed pods not counted)", self.terminal_pods)
        } else {
            String::new()
        };
        if self.out_of_date == 0 {
            paint.good(&format!("All {} proxies are up to date{terminal}.", self.total_proxies))
        } else {
            format!(
                "{} of {} proxies are out of date{terminal}: restart them with `kubectl mesh roll --one-at-a-time`.",
                paint.warn(&self.out_of_date.to_string()),
                self.total_proxies
            )
        }
    }

    /// One row per revision, then the tags and where they point.
    fn revisions_table(&self, wide: bool, paint: Paint) -> String {
        let mut headers = vec![
            "revision",
            "tags",
            "version",
            "istiod",
            "namespaces",
            "proxies",
            "out of date",
        ];
        if wide {
            headers.extend(["istiod deployment", "hub", "webhook"]);
        }
        let mut t = table(&headers);
        for r in &self.revisions {
            t.add_row(revision_row(r, wide, paint));
        }
        let mut out = render(&t);
        if !self.tags.is_empty() {
            out.push_str("\n\n");
            out.push_str(&self.tags_table());
        }
        out
    }

    fn tags_table(&self) -> String {
        let mut t = table(&["tag", "revision", "namespaces"]);
        for tag in &self.tags {
            t.add_row(vec![
                tag.name.clone(),
                tag.revision.clone(),
                dash(tag.namespaces.join(",")),
            ]);
        }
        render(&t)
    }

    fn namespaces_table(&self, wide: bool, paint: Paint) -> String {
        let mut headers = vec![
            "namespace",
            "istio.io/rev",
            "istio-injection",
            "injector",
            "proxies",
            "out of date",
        ];
        if wide {
            headers.push("decided by");
        }
        let mut t = table(&headers);
        for n in &self.namespaces {
            t.add_row(namespace_row(n, wide, paint));
        }
        render(&t)
    }

    fn proxies_table(&self, wide: bool, paint: Paint) -> String {
        let mut headers = vec!["namespace", "workload", "pod", "revision", "version", "status"];
        if wide {
            headers.extend(["image", "sidecar", "expected revision"]);
        }
        let mut t = table(&headers);
        for p in &self.proxies {
            let mut row = vec![
                p.proxy.namespace.clone(),
                p.proxy.workload.to_string(),
                p.proxy.pod.clone(),
                or_dash(p.proxy.revision.as_deref()),
                version_key(&p.proxy),
                proxy_status(p, paint),
            ];
            if wide {
                row.push(p.proxy.image.clone());
                row.push(sidecar_kind(&p.proxy).into());
                row.push(or_dash(p.expected_revision.as_deref()));
            }
            t.add_row(row);
        }
        render(&t)
    }
}

fn revision_row(r: &RevisionRow, wide: bool, paint: Paint) -> Vec<String> {
    let mut row = vec![
        if r.default {
            format!("{} (default)", r.name)
        } else {
            r.name.clone()
        },
        dash(r.tags.join(",")),
        or_dash(r.version.as_deref()),
        istiod_status(r, paint),
        dash(if wide {
            r.namespaces.join(",")
        } else {
            abbreviate(&r.namespaces)
        }),
        dash(counts(&r.proxies)),
        out_of_date(r.out_of_date, paint),
    ];
    if wide {
        row.push(or_dash(
            r.istiod
                .as_ref()
                .map(|i| format!("{}/{}", i.namespace, i.name))
                .as_deref(),
        ));
        row.push(or_dash(r.injector.as_ref().and_then(|i| i.hub.as_deref())));
        row.push(or_dash(r.webhook.as_deref()));
    }
    row
}

/// `ready/wanted` replicas of the revision's istiod, `missing` for an installed revision
/// without one, `removed` for a revision seen only on proxies.
fn istiod_status(r: &RevisionRow, paint: Paint) -> String {
    match &r.istiod {
        Some(i) if r.ready => paint.good(&format!("{}/{}", i.ready_replicas, i.replicas)),
        Some(i) => paint.bad(&format!("{}/{}", i.ready_replicas, i.replicas)),
        None if r.installed => paint.bad("missing"),
        None => paint.bad("removed"),
    }
}

fn namespace_row(n: &NamespaceRow, wide: bool, paint: Paint) -> Vec<String> {
    let (injector, by) = match &n.injection {
        Injection::Revision {
            revision,
            tag: Some(tag),
            by,
        } => (format!("{revision} (tag {tag})"), by.clone()),
        Injection::Revision { revision, by, .. } => (revision.clone(), by.clone()),
        Injection::Disabled => ("disabled".into(), "istio-injection".into()),
        Injection::NotLabeled => ("-".into(), "pod labels".into()),
        Injection::Broken { reason } => (paint.bad("none"), reason.clone()),
    };
    let mut row = vec![
        n.name.clone(),
        or_dash(n.rev_label.as_deref()),
        or_dash(n.injection_label.as_deref()),
        injector,
        dash(counts(&n.proxies)),
        out_of_date(n.out_of_date, paint),
    ];
    if wide {
        row.push(by);
    }
    row
}

fn proxy_status(p: &shared::model::ProxyState, paint: Paint) -> String {
    if p.is_out_of_date() {
        let reasons: Vec<String> = p.out_of_date.iter().map(ToString::to_string).collect();
        paint.warn(&format!("out of date: {}", reasons.join("; ")))
    } else {
        paint.good("up to date")
    }
}

/// How the proxy runs: a gateway, a native sidecar (an init container with
/// restartPolicy Always), or a classic sidecar container.
fn sidecar_kind(p: &shared::model::Proxy) -> &'static str {
    if p.gateway {
        "gateway"
    } else if p.native {
        "native"
    } else {
        "classic"
    }
}

fn out_of_date(count: usize, paint: Paint) -> String {
    if count > 0 {
        paint.warn(&count.to_string())
    } else {
        "0".into()
    }
}

/// `a,b,c +17 more`: keeps the default table readable on clusters with many namespaces
/// (`-o wide` lists them all).
fn abbreviate(names: &[String]) -> String {
    const SHOWN: usize = 3;
    if names.len() <= SHOWN {
        names.join(",")
    } else {
        format!("{} +{} more", names[..SHOWN].join(","), names.len() - SHOWN)
    }
}

fn dash(s: String) -> String {
    if s.is_empty() { "-".into() } else { s }
}

fn or_dash(s: Option<&str>) -> String {
    s.unwrap_or("-").to_string()
}

/// `1.27.4: 7, 1.28.3: 2`
fn counts(m: &BTreeMap<String, usize>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
