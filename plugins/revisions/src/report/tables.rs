//! The tables of each view, with kubectl's look: upper-case headers, no borders, `-` for
//! nothing.

use std::collections::BTreeMap;

use shared::model::mesh::version_key;
use shared::model::{Injection, OutOfDateReason, Proxy, ProxyKind};
use shared::output::{Paint, render, table};

use crate::plan::{ComponentRow, NamespaceRow, ProxyRow, Report, RevisionRow};

impl Report {
    /// One row per revision, then the tags as `istioctl tag list` prints them, then the
    /// components that are not sidecars.
    pub(super) fn revisions_table(&self, wide: bool, paint: Paint) -> String {
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
            out.push_str(&self.tags_table(wide));
        }
        if !self.components.is_empty() {
            out.push_str("\n\n");
            out.push_str(&self.components_table(wide));
        }
        out
    }

    /// TAG REVISION NAMESPACES, as `istioctl tag list` prints it (istioctl/pkg/tag/tag.go
    /// listTags): NAMESPACES are those labelled `istio.io/rev=<tag>`. `-o wide` adds what
    /// the tag is made of and the namespaces whose new pods its webhook injects.
    fn tags_table(&self, wide: bool) -> String {
        let mut headers = vec!["tag", "revision", "namespaces"];
        if wide {
            headers.extend(["webhook", "service", "injects"]);
        }
        let mut t = table(&headers);
        for tag in &self.tags {
            let mut row = vec![tag.name.clone(), tag.revision.clone(), dash(tag.labelled.join(","))];
            if wide {
                row.push(dash(tag.webhook.clone()));
                row.push(or_dash(tag.service.as_deref()));
                row.push(dash(tag.namespaces.join(",")));
            }
            t.add_row(row);
        }
        render(&t)
    }

    /// ztunnel, istio-cni, waypoints and Gateway API gateways; REVISION is the revision
    /// their pods belong to, `-> <rev>` when another istiod now renders them.
    fn components_table(&self, wide: bool) -> String {
        let mut headers = vec!["component", "namespace", "name", "revision", "version", "pods", "ready"];
        if wide {
            headers.push("workload");
        }
        let mut t = table(&headers);
        for c in &self.components {
            let mut row = vec![
                c.label().to_string(),
                c.component.namespace.clone(),
                c.name().to_string(),
                component_revision(c),
                component_version(c),
                c.component.pods.to_string(),
                format!("{}/{}", c.ready, c.component.pods),
            ];
            if wide {
                row.push(c.component.workload.to_string());
            }
            t.add_row(row);
        }
        render(&t)
    }

    /// One row per namespace; the dataplane-mode, ztunnel and waypoint columns appear when a
    /// namespace listed is ambient or names a waypoint.
    pub(super) fn namespaces_table(&self, wide: bool, paint: Paint) -> String {
        let ambient = self
            .namespaces
            .iter()
            .any(|n| n.dataplane_mode.is_some() || n.waypoint.is_some());
        let mut headers = vec![
            "namespace",
            "istio.io/rev",
            "istio-injection",
            "injector",
            "proxies",
            "out of date",
        ];
        if ambient {
            headers.extend(["istio.io/dataplane-mode", "ztunnel", "waypoint"]);
        }
        if wide {
            headers.push("decided by");
        }
        let mut t = table(&headers);
        for n in &self.namespaces {
            t.add_row(namespace_row(n, ambient, wide, paint));
        }
        render(&t)
    }

    pub(super) fn proxies_table(&self, wide: bool, paint: Paint) -> String {
        let mut headers = vec!["namespace", "workload", "pod", "revision", "version", "status"];
        if wide {
            headers.extend(["image", "sidecar", "expected revision"]);
        }
        let mut t = table(&headers);
        for p in &self.proxies {
            let proxy = &p.state.proxy;
            let mut row = vec![
                proxy.namespace.clone(),
                proxy.workload.to_string(),
                proxy.pod.clone(),
                or_dash(proxy.revision.as_deref()),
                version_key(proxy),
                proxy_status(p, paint),
            ];
            if wide {
                row.push(proxy.image.clone());
                row.push(sidecar_kind(proxy).into());
                row.push(or_dash(p.state.expected_revision.as_deref()));
            }
            t.add_row(row);
        }
        render(&t)
    }
}

fn revision_row(r: &RevisionRow, wide: bool, paint: Paint) -> Vec<String> {
    let namespaces: Vec<String> = r
        .namespaces
        .iter()
        .cloned()
        .chain(r.ambient_namespaces.iter().map(|n| format!("{n} (ambient)")))
        .collect();
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
            namespaces.join(",")
        } else {
            abbreviate(&namespaces)
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

fn component_revision(c: &ComponentRow) -> String {
    let current = dash(c.component.revisions.iter().cloned().collect::<Vec<_>>().join(","));
    match &c.component.expected_revision {
        Some(e) if !c.component.revisions.contains(e) || c.component.revisions.len() > 1 => {
            format!("{current} -> {e}")
        }
        _ => current,
    }
}

/// The version, or the count of pods on each when they differ.
fn component_version(c: &ComponentRow) -> String {
    match c.component.versions.len() {
        1 => c.component.versions.keys().next().cloned().unwrap_or_default(),
        _ => dash(counts(&c.component.versions)),
    }
}

fn namespace_row(n: &NamespaceRow, ambient: bool, wide: bool, paint: Paint) -> Vec<String> {
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
    if ambient {
        row.push(or_dash(n.dataplane_mode.as_deref()));
        row.push(match &n.ambient {
            Some(a) => a.revision.clone().unwrap_or_else(|| paint.bad("none read")),
            None => "-".into(),
        });
        row.push(match &n.waypoint {
            Some(w) => waypoint(w, &n.name, paint),
            None => "-".into(),
        });
    }
    if wide {
        row.push(by);
    }
    row
}

/// `waypoint (1-28)`, `other-ns/waypoint (1-28)`, `waypoint (not found)`.
fn waypoint(w: &crate::plan::WaypointRef, namespace: &str, paint: Paint) -> String {
    let name = if w.namespace == namespace {
        w.name.clone()
    } else {
        format!("{}/{}", w.namespace, w.name)
    };
    match &w.revision {
        Some(r) => format!("{name} ({r})"),
        None => format!("{name} ({})", paint.bad("not found")),
    }
}

/// `up to date`, or why not. A restart the API server would reject says so instead of
/// naming the revision it would get.
fn proxy_status(p: &ProxyRow, paint: Paint) -> String {
    let state = &p.state;
    if !state.is_out_of_date() {
        return paint.good("up to date");
    }
    let mut told = false;
    let mut reasons: Vec<String> = state
        .out_of_date
        .iter()
        .map(|r| match (r, &p.restart_rejected) {
            (OutOfDateReason::Revision { injected, .. }, Some(why)) => {
                told = true;
                format!(
                    "injected by {}, a restart would be rejected: {why}",
                    injected.as_deref().unwrap_or("an unknown revision")
                )
            }
            (r, _) => r.to_string(),
        })
        .collect();
    if let (false, Some(why)) = (told, &p.restart_rejected) {
        reasons.push(format!("a restart would be rejected: {why}"));
    }
    paint.warn(&format!("out of date: {}", reasons.join("; ")))
}

/// How the proxy runs: a gateway, a waypoint, a native sidecar (an init container with
/// restartPolicy Always), or a classic sidecar container.
fn sidecar_kind(p: &Proxy) -> &'static str {
    match p.kind {
        ProxyKind::Waypoint => "waypoint",
        _ if p.gateway => "gateway",
        _ if p.native => "native",
        _ => "classic",
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
