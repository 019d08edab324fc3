//! How `switchover` prints its [`Report`]: tables for people, one document (kind
//! `MeshSwitchover`) for `-o json|yaml`, the blocking objects for `-o name`
//! (as kubectl names them: `deployment.apps/web`, `service/web`).

use shared::output::{Envelope, Format, OutputArgs, Paint, table};

use crate::plan::{Parity, Report, WorkloadRow};

/// The `kind` of the `-o json|yaml` document.
const KIND: &str = "MeshSwitchover";

impl Report {
    /// The `-o json|yaml` document: `schemaVersion` and `kind` first, then the report.
    pub fn document(&self) -> Envelope<&Report> {
        Envelope::new(KIND, self)
    }

    /// Print the document or the tables, as `-o` asks.
    pub fn print(&self, output: &OutputArgs) -> shared::Result<()> {
        match output.format {
            Format::Json | Format::Yaml => self.document().print(output.format),
            Format::Name => shared::output::write_stdout(&self.names()),
            format => shared::output::write_stdout(&self.render(output, format == Format::Wide, output.paint())),
        }
    }

    /// `-o name`: the workloads and Services that block, one a line, as kubectl's `-o name`
    /// names them (`deployment.apps/web`, `service/web`).
    pub fn names(&self) -> String {
        let blocking = |p: Parity| matches!(p, Parity::Missing | Parity::Different);
        shared::output::names(
            self.workloads
                .iter()
                .filter(|w| blocking(w.parity))
                .map(|w| shared::output::object_name("apps", &w.kind, &w.name))
                .chain(
                    self.services
                        .iter()
                        .filter(|s| blocking(s.parity))
                        .map(|s| shared::output::object_name("", "Service", &s.name)),
                ),
        )
    }

    /// The verdict, the parity tables, the new side's mesh, the stateful workloads, then
    /// every reason.
    pub fn render(&self, output: &OutputArgs, wide: bool, paint: Paint) -> String {
        let verdict = if self.ready {
            paint.good("READY")
        } else {
            let n = self.reasons.len();
            paint.bad(&format!(
                "NOT READY ({n} {})",
                if n == 1 { "reason" } else { "reasons" }
            ))
        };
        let mut out = format!(
            "Switchover from {} to {} (namespaces: {}): {verdict}\n\n",
            self.from,
            self.to,
            dash(&self.namespaces.join(","))
        );
        out.push_str(&self.workloads_table(output, wide, paint));
        out.push_str("\n\n");
        out.push_str(&self.services_table(output, paint));
        out.push_str("\n\n");
        out.push_str(&self.mesh_section(output, paint));
        if !self.stateful.is_empty() {
            out.push_str("\n\n");
            out.push_str(&self.stateful_table(output));
        }
        out.push_str("\n\n");
        out.push_str(&self.conclusion(paint));
        out
    }

    fn workloads_table(&self, output: &OutputArgs, wide: bool, paint: Paint) -> String {
        let mut headers = vec![
            "workload",
            "namespace",
            "old ready",
            "new ready",
            "parity",
            "differences",
        ];
        if wide {
            headers.push("images (old)");
        }
        let mut t = table(&headers);
        for w in &self.workloads {
            let mut row = vec![
                format!("{}/{}", w.kind.to_lowercase(), w.name),
                w.namespace.clone(),
                ready(w.old.as_ref()),
                ready(w.new.as_ref()),
                parity(w.parity, paint),
                dash(&w.differences.join("; ")),
            ];
            if wide {
                row.push(images(w));
            }
            t.add_row(row);
        }
        output.render(&t)
    }

    fn services_table(&self, output: &OutputArgs, paint: Paint) -> String {
        let mut t = table(&["service", "namespace", "ports", "parity", "differences"]);
        for s in &self.services {
            let ports = if s.old_ports.is_empty() {
                &s.new_ports
            } else {
                &s.old_ports
            };
            t.add_row(vec![
                format!("service/{}", s.name),
                s.namespace.clone(),
                dash(&ports.join(", ")),
                parity(s.parity, paint),
                dash(&s.differences.join("; ")),
            ]);
        }
        output.render(&t)
    }

    fn mesh_section(&self, output: &OutputArgs, paint: Paint) -> String {
        let m = &self.mesh;
        let mut t = table(&["revision", "version", "istiod"]);
        for r in &m.revisions {
            let state = match (r.installed, r.ready) {
                (_, true) => paint.good("ready"),
                (true, false) => paint.bad("not ready"),
                (false, false) => paint.bad("missing"),
            };
            t.add_row(vec![
                r.name.clone(),
                r.version.clone().unwrap_or_else(|| "-".into()),
                state,
            ]);
        }
        let g = &m.gateway;
        let deployment = match (g.ready_replicas, g.replicas) {
            (Some(r), Some(n)) => format!("{r}/{n} ready"),
            _ => paint.bad("no Deployment"),
        };
        let external = match &g.external {
            None => paint.bad("no Service"),
            Some(e) if e.is_empty() => paint.bad("no external address"),
            Some(e) => format!("external address {}", e.join(", ")),
        };
        format!(
            "Mesh in {}:\n{}\nProxies: {} ({} out of date, {} workloads without a sidecar)\nIngress gateway {}/{}: {deployment}, {external}",
            self.to,
            output.render(&t),
            m.proxies,
            m.out_of_date,
            m.not_injected.len(),
            g.namespace,
            g.name
        )
    }

    fn stateful_table(&self, output: &OutputArgs) -> String {
        let mut t = table(&["stateful", "namespace", "cluster", "why", "allowed"]);
        for s in &self.stateful {
            t.add_row(vec![
                format!("{}/{}", s.kind.to_lowercase(), s.name),
                s.namespace.clone(),
                s.cluster.clone(),
                s.why.clone(),
                if s.allowed { "yes".into() } else { "no".into() },
            ]);
        }
        output.render(&t)
    }

    fn conclusion(&self, paint: Paint) -> String {
        if self.ready {
            return format!(
                "{} can take the load of {}: move traffic to its ingress gateway at the load balancer (a share first, then all), drain {}, then retire it.\n",
                self.to, self.from, self.from
            );
        }
        let mut out = format!("{}\n", paint.bold("Not ready:"));
        for r in &self.reasons {
            out.push_str(&format!("  {} {}\n", paint.warn(&format!("[{}]", r.code)), r.message));
        }
        out
    }
}

fn ready(w: Option<&crate::plan::Workload>) -> String {
    w.map_or_else(|| "-".into(), |w| format!("{}/{}", w.ready, w.replicas))
}

fn images(w: &WorkloadRow) -> String {
    let side = w.old.as_ref().or(w.new.as_ref());
    dash(
        &side
            .map(|s| s.images.values().cloned().collect::<Vec<_>>().join(","))
            .unwrap_or_default(),
    )
}

fn parity(p: Parity, paint: Paint) -> String {
    match p {
        Parity::Same => paint.good("same"),
        Parity::Extra => paint.dim("extra"),
        other => paint.bad(&other.to_string()),
    }
}

fn dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.to_string() }
}
