//! What the user sees while the roll runs: on a terminal one live line per workload, else
//! plain timestamped lines (on stderr when stdout carries a JSON or YAML summary).

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use shared::output::Paint;
use shared::rollout::Progress;

/// Where one workload's roll stands.
#[derive(Debug, Clone)]
pub enum Phase {
    Starting,
    AlreadyRolling,
    Restarting,
    /// Restarted; the controller has not yet observed the new template.
    Observing,
    Rolling(Progress),
    Retrying(String),
    Verifying,
    Hook,
    Pausing(Duration),
    Done(Duration, bool),
    Failed(Duration, String),
    Interrupted(Duration),
    NotStarted,
}

impl Phase {
    fn text(&self) -> String {
        match self {
            Phase::Starting => "starting".into(),
            Phase::AlreadyRolling => "a rollout is already under way: waiting for it".into(),
            Phase::Restarting => "restarting".into(),
            Phase::Observing => "restarted, waiting for the controller".into(),
            Phase::Rolling(p) => format!("rolling {}/{} ready", p.ready, p.desired),
            Phase::Retrying(e) => format!("API error, retrying: {e}"),
            Phase::Verifying => "verifying new pods".into(),
            Phase::Hook => "running --exec".into(),
            Phase::Pausing(d) => format!("done, pausing {} (--pause)", crate::human(*d)),
            Phase::Done(d, true) => format!("done in {}", crate::human(*d)),
            Phase::Done(d, false) => format!("done in {} (its rollout was already under way)", crate::human(*d)),
            Phase::Failed(d, m) => format!("failed after {}: {m}", crate::human(*d)),
            Phase::Interrupted(d) => format!("interrupted after {}", crate::human(*d)),
            Phase::NotStarted => "not started".into(),
        }
    }

    fn finished(&self) -> bool {
        matches!(
            self,
            Phase::Done(..) | Phase::Failed(..) | Phase::Interrupted(_) | Phase::NotStarted
        )
    }
}

enum Mode {
    Live {
        multi: MultiProgress,
        bars: Vec<ProgressBar>,
    },
    Plain {
        stderr: bool,
    },
}

pub struct Ui {
    mode: Mode,
    labels: Vec<String>,
    last: Mutex<Vec<String>>,
    paint: Paint,
}

impl Ui {
    /// `live`: a terminal is watching stdout.
    pub fn new(labels: Vec<String>, live: bool, stderr: bool, paint: Paint) -> Ui {
        let width = labels.iter().map(String::len).max().unwrap_or(0);
        let mode = if live {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let bars = labels
                .iter()
                .map(|l| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(idle_style());
                    bar.set_prefix(format!("{l:<width$}"));
                    bar.set_message(paint.dim("waiting"));
                    bar
                })
                .collect();
            Mode::Live { multi, bars }
        } else {
            Mode::Plain { stderr }
        };
        let n = labels.len();
        Ui {
            mode,
            labels,
            last: Mutex::new(vec![String::new(); n]),
            paint,
        }
    }

    pub fn phase(&self, i: usize, phase: Phase) {
        let text = phase.text();
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last[i] == text {
                return;
            }
            last[i] = text.clone();
        }
        match &self.mode {
            Mode::Live { bars, .. } => {
                let bar = &bars[i];
                let coloured = match &phase {
                    Phase::Done(..) => self.paint.good(&text),
                    Phase::Failed(..) => self.paint.bad(&text),
                    Phase::Interrupted(_) | Phase::Retrying(_) => self.paint.warn(&text),
                    Phase::NotStarted => self.paint.dim(&text),
                    _ => text,
                };
                if matches!(phase, Phase::Starting) {
                    bar.reset_elapsed();
                    bar.set_style(active_style());
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
                if phase.finished() || matches!(phase, Phase::Pausing(_)) {
                    // Not `finish`: a finished bar ignores later messages, and a done
                    // workload may still be followed by --pause. Dropped bars stay drawn.
                    bar.disable_steady_tick();
                    bar.set_style(idle_style());
                }
                bar.set_message(coloured);
            }
            Mode::Plain { stderr } => {
                let line = format!("{} {}: {text}", stamp(), self.labels[i]);
                write_line(*stderr, &line);
            }
        }
    }

    /// Leave every line drawn as it last read (unfinished bars are cleared when dropped).
    pub fn finish(&self) {
        if let Mode::Live { bars, .. } = &self.mode {
            for bar in bars {
                bar.disable_steady_tick();
                bar.abandon();
            }
        }
    }

    /// A line above the live display (or in the plain stream).
    pub fn println(&self, line: &str) {
        match &self.mode {
            Mode::Live { multi, .. } => {
                let _ = multi.println(line);
            }
            Mode::Plain { stderr } => write_line(*stderr, line),
        }
    }
}

fn write_line(stderr: bool, line: &str) {
    if stderr {
        let _ = writeln!(std::io::stderr(), "{line}");
    } else {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn stamp() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn idle_style() -> ProgressStyle {
    ProgressStyle::with_template("  {prefix}  {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn active_style() -> ProgressStyle {
    ProgressStyle::with_template("  {prefix}  {spinner:.cyan} {msg} {elapsed:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}
