//! What the user sees while the roll runs, drawn from act's events: on a terminal one live
//! line per workload, else plain timestamped lines (on stderr when stdout carries a JSON or
//! YAML summary).

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use shared::output::Paint;

use crate::act::Event;
use crate::human;

/// A workload's line for an event; `None` for the hook's output, printed as it is, and for
/// the ready counts, which only the report records.
fn text(event: &Event) -> Option<String> {
    Some(match event {
        Event::Started => "starting".into(),
        Event::AlreadyRolling => "a rollout is already under way: waiting for it".into(),
        Event::Restarting => "restarting".into(),
        Event::Restarted { .. } | Event::Waiting { progress: None } => "restarted, waiting for the controller".into(),
        Event::Waiting { progress: Some(p) } => format!("rolling {}/{} ready", p.ready, p.desired),
        Event::Retrying { error } => format!("API error, retrying: {error}"),
        Event::Verifying => "verifying new pods".into(),
        Event::Hook => "running --exec".into(),
        Event::HookOutput { .. } | Event::Ready { .. } => return None,
        Event::Pausing { pause } => format!("done, pausing {} (--pause)", human(*pause)),
        Event::Done {
            elapsed,
            restarted: true,
        } => format!("done in {}", human(*elapsed)),
        Event::Done {
            elapsed,
            restarted: false,
        } => format!("done in {} (its rollout was already under way)", human(*elapsed)),
        Event::Accepted { elapsed } => format!(
            "restart accepted by the API server in {} (server dry run)",
            human(*elapsed)
        ),
        Event::Failed { elapsed, message } => format!("failed after {}: {message}", human(*elapsed)),
        Event::Refused { message, .. } => format!("refused: {message}"),
        Event::Interrupted { elapsed } => format!("interrupted after {}", human(*elapsed)),
        Event::NotStarted => "not started".into(),
    })
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

pub(crate) struct Ui {
    mode: Mode,
    labels: Vec<String>,
    last: Mutex<Vec<String>>,
    paint: Paint,
}

impl Ui {
    /// `live`: a terminal is watching stdout.
    pub(crate) fn new(labels: Vec<String>, live: bool, stderr: bool, paint: Paint) -> Ui {
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

    /// Show workload `i`'s event: its live line changes, or a plain line is written.
    pub(crate) fn show(&self, i: usize, event: &Event) {
        let Some(text) = text(event) else {
            if let Event::HookOutput { line } = event {
                self.println(&format!("    {} | {line}", self.labels[i]));
            }
            return;
        };
        {
            let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if last[i] == text {
                return;
            }
            last[i] = text.clone();
        }
        match &self.mode {
            Mode::Live { bars, .. } => self.draw(&bars[i], event, text),
            Mode::Plain { stderr } => {
                let line = format!("{} {}: {text}", stamp(), self.labels[i]);
                write_line(*stderr, &line);
            }
        }
    }

    fn draw(&self, bar: &ProgressBar, event: &Event, text: String) {
        let coloured = match event {
            Event::Done { .. } | Event::Accepted { .. } => self.paint.good(&text),
            Event::Failed { .. } | Event::Refused { .. } => self.paint.bad(&text),
            Event::Interrupted { .. } | Event::Retrying { .. } => self.paint.warn(&text),
            Event::NotStarted => self.paint.dim(&text),
            _ => text,
        };
        if *event == Event::Started {
            bar.reset_elapsed();
            bar.set_style(active_style());
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        if event.result().is_some() || matches!(event, Event::Pausing { .. }) {
            // Not `finish`: a finished bar ignores later messages, and a done workload may
            // still be followed by --pause. Dropped bars stay drawn.
            bar.disable_steady_tick();
            bar.set_style(idle_style());
        }
        bar.set_message(coloured);
    }

    /// Leave every line drawn as it last read (unfinished bars are cleared when dropped).
    pub(crate) fn finish(&self) {
        if let Mode::Live { bars, .. } = &self.mode {
            for bar in bars {
                bar.disable_steady_tick();
                bar.abandon();
            }
        }
    }

    /// A line above the live display (or in the plain stream).
    fn println(&self, line: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::rollout::Progress;

    #[test]
    fn events_read_as_before() {
        let p = Progress { ready: 1, desired: 3 };
        assert_eq!(
            text(&Event::Waiting { progress: Some(p) }).unwrap(),
            "rolling 1/3 ready"
        );
        assert_eq!(text(&Event::Hook).unwrap(), "running --exec");
        let done = Event::Done {
            elapsed: Duration::from_secs(90),
            restarted: true,
        };
        assert_eq!(text(&done).unwrap(), "done in 1m30s");
        assert!(text(&Event::HookOutput { line: "ok".into() }).is_none());
    }
}
