//! Output shared by every step: formats, colour rules, tables, the schema version.

use std::io::IsTerminal;

use comfy_table::{ContentArrangement, Table, presets};
use owo_colors::OwoColorize;
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
    pub fn good(&self, s: &str) -> String {
        if self.enabled {
            s.green().to_string()
        } else {
            s.to_string()
        }
    }
    pub fn bad(&self, s: &str) -> String {
        if self.enabled {
            s.red().bold().to_string()
        } else {
            s.to_string()
        }
    }
    pub fn warn(&self, s: &str) -> String {
        if self.enabled {
            s.yellow().to_string()
        } else {
            s.to_string()
        }
    }
    pub fn dim(&self, s: &str) -> String {
        if self.enabled {
            s.dimmed().to_string()
        } else {
            s.to_string()
        }
    }
    pub fn bold(&self, s: &str) -> String {
        if self.enabled {
            s.bold().to_string()
        } else {
            s.to_string()
        }
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
    fn tables_have_no_borders_and_no_trailing_space() {
        let mut t = table(&["name", "ready"]);
        t.add_row(vec!["istiod-1-27", "1/1"]);
        let out = render(&t);
        assert!(out.starts_with("NAME"), "{out}");
        assert!(!out.contains('|'));
        assert!(out.lines().all(|l| l == l.trim_end()));
    }
}
