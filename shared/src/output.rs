//! Output shared by every step: formats, colour rules, tables, the schema version.

use std::io::IsTerminal;

use comfy_table::{ContentArrangement, Table, presets};
use owo_colors::{OwoColorize, Style};
use serde::Serialize;

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
}

/// `-o` and `--no-color`, flattened into every step.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Never colour the output (also off when NO_COLOR is set or stdout is not a terminal)
    #[arg(long)]
    pub no_color: bool,
}

impl OutputArgs {
    pub fn paint(&self) -> Paint {
        Paint {
            enabled: colour_wanted(self.no_color, std::io::stdout().is_terminal()),
        }
    }

    pub fn machine(&self) -> bool {
        matches!(self.format, Format::Json | Format::Yaml)
    }
}

/// Colour only on a terminal, never with `NO_COLOR` (any non-empty value) or `--no-color`.
pub fn colour_wanted(no_color_flag: bool, terminal: bool) -> bool {
    let env_off = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    terminal && !no_color_flag && !env_off
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
        col.set_padding((0, 3));
    }
    t
}

/// Render a table with trailing spaces trimmed.
pub fn render(t: &Table) -> String {
    t.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

/// Print a document as JSON or YAML.
pub fn print_document<T: Serialize>(format: Format, doc: &T) -> crate::Result<()> {
    let text = match format {
        Format::Yaml => serde_saphyr::to_string(doc).map_err(|e| anyhow::anyhow!("cannot write YAML: {e}"))?,
        _ => serde_json::to_string_pretty(doc).map_err(|e| anyhow::anyhow!("cannot write JSON: {e}"))? + "\n",
    };
    print!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_opt_out() {
        // NO_COLOR is not set in the test environment unless the caller set it.
        if std::env::var_os("NO_COLOR").is_none() {
            assert!(colour_wanted(false, true));
        }
        assert!(!colour_wanted(false, false));
        assert!(!colour_wanted(true, true));
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
