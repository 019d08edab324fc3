//! How `revisions` prints its [`Report`]: a table per view for people, one document for
//! `-o json|yaml`.

mod tables;

use std::collections::BTreeSet;

use shared::output::{Envelope, Format, OutputArgs, Paint};

use crate::View;
use crate::plan::Report;

/// The `kind` of the `-o json|yaml` document.
pub(crate) const KIND: &str = "MeshRevisions";

impl Report {
    /// The `-o json|yaml` document: `schemaVersion` and `kind` first, then the report.
    pub fn document(&self) -> Envelope<&Report> {
        Envelope::new(KIND, self)
    }

    /// Print the document or the view's table, as `-o` asks.
    pub fn print(&self, view: View, output: &OutputArgs) -> shared::Result<()> {
        match output.format {
            Format::Json | Format::Yaml => self.document().print(output.format),
            Format::Name => shared::output::write_stdout(&self.names(view)),
            format if !output.headers() => {
                shared::output::write_stdout(&self.rows(view, format == Format::Wide, output.paint()))
            }
            format => shared::output::write_stdout(&self.render(view, format == Format::Wide, output.paint())),
        }
    }

    /// `-o name`: what the view lists, one `kind/name` a line as kubectl prints it
    /// (`revision/1-27`, `namespace/default`, `pod/webapp-…`).
    pub fn names(&self, view: View) -> String {
        match view {
            View::Revisions => shared::output::names(self.revisions.iter().map(|r| format!("revision/{}", r.name))),
            View::Namespaces => shared::output::names(self.namespaces.iter().map(|n| format!("namespace/{}", n.name))),
            View::Proxies => shared::output::names(self.proxies.iter().map(|p| format!("pod/{}", p.state.proxy.pod))),
        }
    }

    /// `--no-headers`: the view's main table without its header row, and nothing else (no
    /// tag or component tables, warnings or summary), for scripts.
    pub fn rows(&self, view: View, wide: bool, paint: Paint) -> String {
        let table = self.render(view, wide, paint);
        let main = table.split("\n\n").next().unwrap_or_default();
        let mut lines = main.lines().skip(1).peekable();
        if lines.peek().is_none() {
            return String::new();
        }
        lines.map(|l| format!("{l}\n")).collect()
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

    /// How many proxies are out of date and what to do: `kubectl mesh roll`, unless the
    /// revision a restart sends them to cannot inject the new pods.
    fn summary(&self, paint: Paint) -> String {
        let terminal = if self.terminal_pods > 0 {
            format!(" ({} completed/failed pods not counted)", self.terminal_pods)
        } else {
            String::new()
        };
        if self.out_of_date == 0 {
            return paint.good(&format!("All {} proxies are up to date{terminal}.", self.total_proxies));
        }
        let stale = format!(
            "{} of {} proxies are out of date{terminal}",
            paint.warn(&self.out_of_date.to_string()),
            self.total_proxies
        );
        let rejected: Vec<&str> = self
            .proxies
            .iter()
            .filter_map(|p| p.restart_rejected.as_deref())
            .collect();
        let why = rejected
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>();
        match rejected.len() {
            0 => format!("{stale}: restart them with `kubectl mesh roll --one-at-a-time`."),
            n if n == self.out_of_date => format!(
                "{stale}: a restart would be rejected: {}. Fix that first, then `kubectl mesh roll`.",
                paint.bad(&why.join("; "))
            ),
            n => format!(
                "{stale}: restart them with `kubectl mesh roll --one-at-a-time`, except {n} whose restart would be rejected: {}.",
                paint.bad(&why.join("; "))
            ),
        }
    }
}
