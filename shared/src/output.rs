//! Output shared by every step: formats, colour rules, tables, the schema version, and
//! stdout itself (a closed pipe ends the step as it ends kubectl).

use std::io::{IsTerminal, Write};

use comfy_table::{ContentArrangement, presets};
use owo_colors::{OwoColorize, Style};
use serde::Serialize;

/// The table [`table`] makes, for steps that draw their own.
pub use comfy_table::Table;

/// Version of the `-o json|yaml` documents. Bumped only on an incompatible change;
/// fields may be added without a bump.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// A table for people
    #[default]
    Table,
    /// A wider table with more columns
    Wide,
    /// JSON for scripts (schema documented in README.md)
    Json,
    /// YAML, the same document as JSON
    Yaml,
    /// One kind/name per line, as kubectl's -o name (for xargs and loops)
    Name,
}

/// `--color`: when to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Color {
    /// On a terminal, unless NO_COLOR is set; also off a terminal when FORCE_COLOR is set
    #[default]
    Auto,
    /// Always, even into a pipe or a file
    Always,
    /// Never
    Never,
}

/// `-o`, `--no-headers` and `--color`, flattened into every step.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print tables without their header row, as kubectl's --no-headers
    #[arg(long)]
    pub no_headers: bool,
    /// When to colour the output; a bare --color means always
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Color::Auto, num_args = 0..=1, require_equals = true, default_missing_value = "always")]
    pub color: Color,
    /// Never colour the output (the same as --color=never)
    #[arg(long)]
    pub no_color: bool,
}

impl OutputArgs {
    /// Colour or not, decided once: `--no-color`/`--color`, then `NO_COLOR`, then
    /// `FORCE_COLOR`, then whether stdout is a terminal.
    pub fn paint(&self) -> Paint {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let forced = std::env::var("FORCE_COLOR").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
        Paint {
            enabled: colour_wanted(self.color(), set("NO_COLOR"), forced, std::io::stdout().is_terminal()),
        }
    }

    /// `--color`, with `--no-color` meaning `never`.
    pub fn color(&self) -> Color {
        if self.no_color { Color::Never } else { self.color }
    }

    pub fn machine(&self) -> bool {
        matches!(self.format, Format::Json | Format::Yaml)
    }

    /// Whether stdout carries only what a script reads (`-o json|yaml|name`): progress and
    /// notes for people then go to stderr, or nowhere.
    pub fn scripted(&self) -> bool {
        self.machine() || self.format == Format::Name
    }

    /// Whether tables keep their header row (`--no-headers` drops it).
    pub fn headers(&self) -> bool {
        !self.no_headers
    }

    /// Render a table from [`table`], with its header row unless `--no-headers`.
    pub fn render(&self, t: &Table) -> String {
        if self.headers() { render(t) } else { render_rows(t) }
    }
}

/// The colour decision table. An explicit `--color=always|never` wins; `auto` is off with
/// `NO_COLOR` (no-color.org: a flag overrides it), else on with `FORCE_COLOR`
/// (force-color.org), else on only on a terminal.
pub fn colour_wanted(choice: Color, no_color_env: bool, force_color_env: bool, terminal: bool) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => !no_color_env && (force_color_env || terminal),
    }
}

/// Colours that switch off as one.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    pub enabled: bool,
}

impl Paint {
    fn apply(self, s: &str, style: Style) -> String {
        if self.enabled {
            s.style(style).to_string()
        } else {
            s.to_string()
        }
    }
    pub fn good(self, s: &str) -> String {
        self.apply(s, Style::new().green())
    }
    pub fn bad(self, s: &str) -> String {
        self.apply(s, Style::new().red().bold())
    }
    pub fn warn(self, s: &str) -> String {
        self.apply(s, Style::new().yellow())
    }
    pub fn dim(self, s: &str) -> String {
        self.apply(s, Style::new().dimmed())
    }
    pub fn bold(self, s: &str) -> String {
        self.apply(s, Style::new().bold())
    }
}

/// kubectl's `--dry-run` values, for every step that changes the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DryRun {
    /// Change the cluster
    #[default]
    None,
    /// Print what would change; send nothing
    Client,
    /// Send the changes with the API server's dryRun: validated, not persisted
    Server,
}

impl DryRun {
    /// Anything but `none`: nothing is persisted.
    pub fn is_dry(self) -> bool {
        self != DryRun::None
    }

    /// Whether requests go to the API server (`none` and `server`).
    pub fn sends(self) -> bool {
        self != DryRun::Client
    }

    /// The `dryRun=All` query flag for write calls.
    pub fn server(self) -> bool {
        self == DryRun::Server
    }

    /// `" (dry run)"` / `" (server dry run)"` after what would have been done, as kubectl
    /// prints it.
    pub fn suffix(self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Client => " (dry run)",
            DryRun::Server => " (server dry run)",
        }
    }
}

/// `--dry-run[=none|client|server]`, flattened into every step that changes the cluster.
/// A bare `--dry-run` means `client`, as in kubectl.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct DryRunArgs {
    /// Only print (client) or only validate on the server (server) what would change
    #[arg(long = "dry-run", value_enum, value_name = "none|client|server", num_args = 0..=1, require_equals = true, default_missing_value = "client", default_value = "none")]
    pub dry_run: DryRun,
}

/// The one shape of every `-o json|yaml` document: `schemaVersion`, `kind`, `dryRun` (for
/// steps that change the cluster), then the step's own fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T: Serialize> {
    pub schema_version: u32,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<DryRun>,
    #[serde(flatten)]
    pub body: T,
}

impl<T: Serialize> Envelope<T> {
    /// A read-only step's document (no `dryRun`).
    pub fn new(kind: &'static str, body: T) -> Self {
        Envelope {
            schema_version: SCHEMA_VERSION,
            kind,
            dry_run: None,
            body,
        }
    }

    /// A document of a step that changes the cluster.
    pub fn with_dry_run(kind: &'static str, dry_run: DryRun, body: T) -> Self {
        Envelope {
            dry_run: Some(dry_run),
            ..Envelope::new(kind, body)
        }
    }

    /// Print as JSON or YAML.
    pub fn print(&self, format: Format) -> crate::Result<()> {
        print_document(format, self)
    }
}

/// A table that reads like kubectl's: upper-case headers, no borders.
pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_uppercase()));
    for col in t.column_iter_mut() {
        col.set_padding(PADDING);
    }
    t
}

/// No space before a column, three after it, as kubectl's tables.
const PADDING: (u16, u16) = (0, 3);

/// Render a table with trailing spaces trimmed.
pub fn render(t: &Table) -> String {
    t.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

/// Render a table's rows without its header row (kubectl's `--no-headers`): the columns
/// are as wide as their widest cell, not their header.
pub fn render_rows(t: &Table) -> String {
    let mut rows = Table::new();
    rows.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    for row in t.row_iter() {
        rows.add_row(row.clone());
    }
    for col in rows.column_iter_mut() {
        col.set_padding(PADDING);
    }
    render(&rows)
}

/// `-o name`: one `kind/name` per line, as kubectl prints them.
pub fn names<I, S>(names: I) -> String
where
    I: IntoIterator<Item = S>,
    S: std::fmt::Display,
{
    names.into_iter().map(|n| format!("{n}\n")).collect()
}

/// One object as kubectl's `-o name` prints it: `kind.group/name` in lower case, the kind
/// alone for the core group (`deployment.apps/web`, `service/istiod`), never a namespace
/// (`printObj` in staging/src/k8s.io/cli-runtime/pkg/printers/name.go).
pub fn object_name(group: &str, kind: &str, name: &str) -> String {
    if group.is_empty() {
        format!("{}/{name}", kind.to_lowercase())
    } else {
        format!("{}.{group}/{name}", kind.to_lowercase())
    }
}

/// Print a document as JSON or YAML, serialized straight into stdout through a buffer:
/// the document is never held whole as text (at 10,000 proxies the JSON is about 10 MB).
fn print_document<T: Serialize>(format: Format, doc: &T) -> crate::Result<()> {
    // The buffer outside: the serializers' many small writes are copies into it, and only
    // whole buffers go through the watch.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, Watched::new(std::io::stdout().lock()));
    let written = match format {
        Format::Yaml => serde_saphyr::to_io_writer(&mut out, doc).map_err(|e| format!("cannot write YAML: {e}")),
        _ => serde_json::to_writer_pretty(&mut out, doc)
            .map_err(|e| format!("cannot write JSON: {e}"))
            .and_then(|()| out.write_all(b"\n").map_err(|e| format!("cannot write JSON: {e}"))),
    }
    .and_then(|()| out.flush().map_err(|e| format!("cannot write to stdout: {e}")));
    match written {
        Err(_) if out.get_ref().closed => crate::cli::closed_pipe(),
        Err(message) => Err(anyhow::anyhow!(message).into()),
        Ok(()) => Ok(()),
    }
}

/// A writer that remembers whether its reader went away, whatever error type the
/// serializer wraps the broken pipe in.
struct Watched<W> {
    inner: W,
    closed: bool,
}

impl<W> Watched<W> {
    const fn new(inner: W) -> Self {
        Watched { inner, closed: false }
    }

    fn note<R>(&mut self, result: std::io::Result<R>) -> std::io::Result<R> {
        if let Err(e) = &result {
            self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe;
        }
        result
    }
}

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.note(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.note(result)
    }
}

/// Write `text` to stdout. When the reader has gone (`kubectl mesh revisions | head -1`),
/// the step ends as kubectl does, by SIGPIPE and without a word ([`crate::cli::closed_pipe`]);
/// `print!` ends the same way, through the hook [`crate::cli::main`] installs.
pub fn write_stdout(text: &str) -> crate::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::cli::closed_pipe(),
        Err(e) => Err(anyhow::anyhow!("cannot write to stdout: {e}").into()),
        Ok(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_decision_table() {
        use Color::*;
        // (choice, NO_COLOR, FORCE_COLOR, terminal) -> colour
        let table = [
            ((Auto, false, false, true), true),
            ((Auto, false, false, false), false),
            ((Auto, true, false, true), false),
            ((Auto, false, true, false), true),
            ((Auto, true, true, true), false),
            ((Always, true, false, false), true),
            ((Always, false, false, false), true),
            ((Never, false, true, true), false),
            ((Never, false, false, true), false),
        ];
        for ((choice, no_color, force, terminal), want) in table {
            assert_eq!(
                colour_wanted(choice, no_color, force, terminal),
                want,
                "{choice:?} NO_COLOR={no_color} FORCE_COLOR={force} terminal={terminal}"
            );
        }
    }

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        output: OutputArgs,
    }

    fn flags(args: &[&str]) -> OutputArgs {
        use clap::Parser;
        Flags::try_parse_from(std::iter::once("step").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .output
    }

    #[test]
    fn color_flags_read_like_git_and_no_color_stays_an_alias() {
        use clap::CommandFactory;
        Flags::command().debug_assert();
        assert_eq!(flags(&[]).color(), Color::Auto);
        assert_eq!(flags(&["--color"]).color(), Color::Always);
        assert_eq!(flags(&["--color=never"]).color(), Color::Never);
        assert_eq!(flags(&["--color=always"]).color(), Color::Always);
        assert_eq!(flags(&["--no-color"]).color(), Color::Never);
        assert_eq!(flags(&["--no-color", "--color=always"]).color(), Color::Never);
        assert!(!flags(&["--color=never"]).paint().enabled);
        assert!(flags(&["--color=always"]).paint().enabled);
    }

    #[test]
    fn name_format_and_no_headers_parse() {
        let f = flags(&["-o", "name", "--no-headers"]);
        assert_eq!(f.format, Format::Name);
        assert!(!f.headers() && !f.machine());
        assert!(flags(&[]).headers());
        assert_eq!(
            names(["namespace/default", "namespace/prod"]),
            "namespace/default\nnamespace/prod\n"
        );
        assert_eq!(names(Vec::<String>::new()), "");
        assert_eq!(object_name("apps", "Deployment", "web"), "deployment.apps/web");
        assert_eq!(object_name("", "Service", "istiod"), "service/istiod");
        assert_eq!(
            object_name("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "x"),
            "mutatingwebhookconfiguration.admissionregistration.k8s.io/x"
        );
    }

    #[test]
    fn no_headers_drops_the_header_and_sizes_columns_by_their_cells() {
        let mut t = table(&["namespace", "out of date", "x"]);
        t.add_row(vec!["default", "0", "a"]);
        t.add_row(vec!["istio-system", "12", "b"]);
        let with = flags(&[]).render(&t);
        assert_eq!(with.lines().next(), Some("NAMESPACE      OUT OF DATE   X"));
        let without = flags(&["--no-headers"]).render(&t);
        assert_eq!(without, "default        0    a\nistio-system   12   b");
        assert_eq!(render_rows(&table(&["a"])), "");
    }

    #[test]
    fn envelope_comes_first_and_flattens_the_body() {
        #[derive(Serialize)]
        struct Body {
            revision: &'static str,
        }
        let doc = Envelope::with_dry_run("MeshPrune", DryRun::Server, Body { revision: "1-27" });
        let json = serde_json::to_string(&doc).unwrap();
        assert_eq!(
            json,
            r#"{"schemaVersion":1,"kind":"MeshPrune","dryRun":"server","revision":"1-27"}"#
        );
        let read_only = serde_json::to_value(Envelope::new("MeshRevisions", Body { revision: "x" })).unwrap();
        assert!(read_only.get("dryRun").is_none());
    }

    #[test]
    fn dry_run_words_read_like_kubectl() {
        assert_eq!(DryRun::Client.suffix(), " (dry run)");
        assert!(!DryRun::Client.sends() && DryRun::Server.sends() && DryRun::None.sends());
        assert!(DryRun::Server.server() && DryRun::Server.is_dry() && !DryRun::None.is_dry());
    }

    #[test]
    fn tables_have_no_borders_and_no_trailing_space() {
        let mut t = table(&["name", "ready"]);
        t.add_row(vec!["istiod-1-27", "1/1"]);
        let out = render(&t);
        assert!(out.starts_with("NAME"), "{out}");
        assert!(!out.contains('|'));
        assert!(out.lines().all(|l| l == l.trim_end()));
    }
}
