//! The document `revisions` prints: the same data for the table and for `-o json|yaml`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use shared::model::mesh::version_key;
use shared::model::{Injection, Mesh, ProxyState, Warning};
use shared::output::{Paint, SCHEMA_VERSION, render, table};

use crate::View;

/// `-o json|yaml` schema (documented in README.md, versioned by `schemaVersion`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema_version: u32,
    pub kind: &'static str,
    pub default_revision: Option<String>,
    pub revisions: Vec<RevisionRow>,
    pub tags: Vec<TagRow>,
    pub namespaces: Vec<NamespaceRow>,
    pub proxies: Vec<ProxyState>,
    /// Live injected pods.
    pub total_proxies: usize,
    pub out_of_date: usize,
    /// Succeeded/Failed injected pods, counted apart.
    pub terminal_pods: usize,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRow {
    pub name: String,
    pub tags: Vec<String>,
    pub default: bool,
    /// The version its proxies should run (istiod's image tag).
    pub version: Option<String>,
    pub istiod: Option<shared::model::Istiod>,
    pub ready: bool,
    pub injector: Option<shared::model::InjectorConfig>,
    pub webhook: Option<String>,
    /// False for a revision seen only on proxies: its control plane is gone.
    pub installed: bool,
    pub namespaces: Vec<String>,
    /// Live proxies by version (`override` for a proxyImage override).
    pub proxies: BTreeMap<String, usize>,
    pub out_of_date: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagRow {
    pub name: String,
    pub revision: String,
    pub webhook: String,
    pub namespaces: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceRow {
    pub name: String,
    pub rev_label: Option<String>,
    pub injection_label: Option<String>,
    pub injection: Injection,
    /// Live proxies by injecting revision.
    pub proxies: BTreeMap<String, usize>,
    pub out_of_date: usize,
}

impl Report {
    /// `narrowed`: the user named namespaces, so every one of them is listed even without
    /// labels or proxies.
    pub fn new(mesh: &Mesh, narrowed: bool) -> Report {
        let cp = &mesh.control_plane;
        let mut names: BTreeSet<String> = cp.revisions.keys().cloned().collect();
        names.extend(mesh.proxies.iter().filter_map(|p| p.proxy.revision.clone()));
        let revisions = names
            .into_iter()
            .map(|name| {
                let rev = cp.revisions.get(&name);
                RevisionRow {
                    tags: rev.map(|r| r.tags.clone()).unwrap_or_default(),
                    default: rev.is_some_and(|r| r.default),
                    version: rev.and_then(|r| r.version().map(String::from)),
                    istiod: rev.and_then(|r| r.istiod.clone()),
                    ready: rev.is_some_and(|r| r.ready()),
                    injector: rev.and_then(|r| r.injector.clone()),
                    webhook: rev.and_then(|r| r.webhook.clone()),
                    installed: rev.is_some(),
                    namespaces: mesh.namespaces_using(&name).iter().map(|n| n.name.clone()).collect(),
                    proxies: mesh.versions_of(&name),
                    out_of_date: mesh.proxies_of(&name).filter(|p| p.is_out_of_date()).count(),
                    name,
                }
            })
            .collect();
        let tags = cp
            .tags
            .values()
            .map(|t| TagRow {
                name: t.name.clone(),
                revision: t.revision.clone(),
                webhook: t.webhook.clone(),
                namespaces: mesh
                    .namespaces
                    .values()
                    .filter(|n| matches!(&n.injection, Injection::Revision { tag: Some(tag), .. } if *tag == t.name))
                    .map(|n| n.name.clone())
                    .collect(),
            })
            .collect();
        let namespaces = mesh
            .namespaces
            .values()
            .map(|n| {
                let mut proxies = BTreeMap::new();
                let mut out_of_date = 0;
                for p in mesh.proxies.iter().filter(|p| p.proxy.namespace == n.name) {
                    *proxies
                        .entry(p.proxy.revision.clone().unwrap_or_else(|| "unknown".into()))
                        .or_default() += 1;
                    out_of_date += usize::from(p.is_out_of_date());
                }
                NamespaceRow {
                    name: n.name.clone(),
                    rev_label: n.rev_label.clone(),
                    injection_label: n.injection_label.clone(),
                    injection: n.injection.clone(),
                    proxies,
                    out_of_date,
                }
            })
            .filter(|n| narrowed || n.rev_label.is_some() || n.injection_label.is_some() || !n.proxies.is_empty())
            .collect();
        Report {
            schema_version: SCHEMA_VERSION,
            kind: "MeshRevisions",
            default_revision: cp.default_revision.clone(),
            revisions,
            tags,
            namespaces,
            proxies: mesh.proxies.clone(),
            total_proxies: mesh.proxies.len(),
            out_of_date: mesh.out_of_date_count(),
            terminal_pods: mesh.terminal.len(),
            warnings: mesh.warnings(),
        }
    }

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
            let istiod = match &r.istiod {
                Some(i) if r.ready => paint.good(&format!("{}/{}", i.ready_replicas, i.replicas)),
                Some(i) => paint.bad(&format!("{}/{}", i.ready_replicas, i.replicas)),
                None if r.installed => paint.bad("missing"),
                None => paint.bad("removed"),
            };
            let mut row = vec![
                if r.default {
                    format!("{} (default)", r.name)
                } else {
                    r.name.clone()
                },
                dash(r.tags.join(",")),
                r.version.clone().unwrap_or_else(|| "-".into()),
                istiod,
                dash(if wide {
                    r.namespaces.join(",")
                } else {
                    abbreviate(&r.namespaces)
                }),
                dash(counts(&r.proxies)),
                if r.out_of_date > 0 {
                    paint.warn(&r.out_of_date.to_string())
                } else {
                    "0".into()
                },
            ];
            if wide {
                row.push(
                    r.istiod
                        .as_ref()
                        .map(|i| format!("{}/{}", i.namespace, i.name))
                        .unwrap_or_else(|| "-".into()),
                );
                row.push(
                    r.injector
                        .as_ref()
                        .and_then(|i| i.hub.clone())
                        .unwrap_or_else(|| "-".into()),
                );
                row.push(r.webhook.clone().unwrap_or_else(|| "-".into()));
            }
            t.add_row(row);
        }
        let mut out = render(&t);
        if !self.tags.is_empty() {
            let mut tags = table(&["tag", "revision", "namespaces"]);
            for tag in &self.tags {
                tags.add_row(vec![
                    tag.name.clone(),
                    tag.revision.clone(),
                    dash(tag.namespaces.join(",")),
                ]);
            }
            out.push_str("\n\n");
            out.push_str(&render(&tags));
        }
        out
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
                n.rev_label.clone().unwrap_or_else(|| "-".into()),
                n.injection_label.clone().unwrap_or_else(|| "-".into()),
                injector,
                dash(counts(&n.proxies)),
                if n.out_of_date > 0 {
                    paint.warn(&n.out_of_date.to_string())
                } else {
                    "0".into()
                },
            ];
            if wide {
                row.push(by);
            }
            t.add_row(row);
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
            let status = if p.is_out_of_date() {
                paint.warn(&format!(
                    "out of date: {}",
                    p.out_of_date
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            } else {
                paint.good("up to date")
            };
            let mut row = vec![
                p.proxy.namespace.clone(),
                p.proxy.workload.to_string(),
                p.proxy.pod.clone(),
                p.proxy.revision.clone().unwrap_or_else(|| "-".into()),
                version_key(&p.proxy),
                status,
            ];
            if wide {
                row.push(p.proxy.image.clone());
                row.push(
                    if p.proxy.gateway {
                        "gateway"
                    } else if p.proxy.native {
                        "native"
                    } else {
                        "classic"
                    }
                    .into(),
                );
                row.push(p.expected_revision.clone().unwrap_or_else(|| "-".into()));
            }
            t.add_row(row);
        }
        render(&t)
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

/// `1.27.4: 7, 1.28.3: 2`
fn counts(m: &BTreeMap<String, usize>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
