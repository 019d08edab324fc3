//! `kubectl mesh`: the one executable krew links. `kubectl mesh <step> …` runs the step's
//! own binary `kubectl-mesh-<step>`, shipped next to it; alone it prints the upgrade
//! workflow. The same binary answers kubectl's plugin completion when it is called as
//! `kubectl_complete-mesh`.

mod complete;
mod lookup;
mod overview;
mod steps;

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command as Process, ExitCode};

use clap::{Arg, Command, CommandFactory};
use shared::exit;

use steps::{Found, STEPS, Step};

/// The name kubectl looks for on PATH to complete `kubectl mesh …` (kubectl ≥ 1.26).
const COMPLETE_NAME: &str = "kubectl_complete-mesh";

/// Every step as a subcommand carrying the step's own flags, for completions. A step whose
/// crate is not linked here is still listed, with its summary, so its name completes.
fn command() -> Command {
    let linked: Vec<(&str, Command)> = vec![
        ("revisions", kubectl_mesh_revisions::Cli::command()),
        ("relabel", kubectl_mesh_relabel::Args::command()),
        ("roll", kubectl_mesh_roll::Args::command()),
        ("prune", kubectl_mesh_prune::Args::command()),
        ("switchover", kubectl_mesh_switchover::Args::command()),
    ];
    let mut root = Command::new("kubectl-mesh")
        .bin_name("kubectl-mesh")
        .version(shared::VERSION)
        .about("Carry a live cluster through an Istio upgrade, one step at a time")
        .subcommand_required(false);
    for step in STEPS {
        let sub = match linked.iter().find(|(name, _)| *name == step.name) {
            Some((_, cmd)) => cmd
                .clone()
                .name(step.name)
                .bin_name(format!("kubectl-mesh {}", step.name)),
            None => Command::new(step.name).about(step.summary),
        };
        root = root.subcommand(sub);
    }
    root.subcommand(Command::new("version").about("Print the version of kubectl-mesh and of every step"))
        .subcommand(
            Command::new("completion")
                .about("Print a shell completion script for kubectl-mesh (bash, zsh or fish)")
                .arg(Arg::new("shell").required(true).value_parser(["bash", "zsh", "fish"])),
        )
}

/// The whole program: `args` as the process got them, argv[0] included.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let mut args = args.into_iter();
    let argv0 = args.next().unwrap_or_default();
    let args: Vec<OsString> = args.collect();
    if let Some(prefix) = completion_call(&argv0) {
        let words: Vec<OsString> = prefix.into_iter().map(OsString::from).chain(args).collect();
        return print_completions(&words);
    }
    let first = args.first().map(|a| a.to_string_lossy().into_owned());
    match first.as_deref() {
        None | Some("-h" | "--help") => {
            print!("{}", overview());
            ExitCode::SUCCESS
        }
        Some("help") => match args.get(1).map(|a| a.to_string_lossy().into_owned()) {
            Some(name) => match steps::find(&name) {
                Some(step) => run_step(step, vec!["--help".into()]),
                None => unknown_step(&[name]),
            },
            None => {
                print!("{}", overview());
                ExitCode::SUCCESS
            }
        },
        Some("-V" | "--version") => {
            println!("kubectl-mesh {}", shared::VERSION);
            ExitCode::SUCCESS
        }
        Some("version") => versions(),
        Some("completion") => completion_script(&args[1..]),
        Some("__complete") => print_completions(&args[1..]),
        Some(name) => match steps::find(name) {
            Some(step) => run_step(step, args[1..].to_vec()),
            None => {
                let words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
                unknown_step(&words)
            }
        },
    }
}

/// Called as `kubectl_complete-mesh` (or `kubectl_complete-mesh-<step>`, which kubectl looks
/// for when the step binaries are themselves on PATH): the words to prepend, if any.
fn completion_call(argv0: &OsString) -> Option<Option<String>> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    let rest = name.strip_prefix(COMPLETE_NAME)?;
    if rest.is_empty() {
        return Some(None);
    }
    rest.strip_prefix('-')
        .and_then(steps::find)
        .map(|step| Some(step.name.to_string()))
}

fn print_completions(words: &[OsString]) -> ExitCode {
    let words: Vec<String> = words.iter().map(|w| w.to_string_lossy().into_owned()).collect();
    // The shell shows whatever a completion prints: a bug must cost candidates, not garble
    // the user's prompt with a panic message.
    std::panic::set_hook(Box::new(|_| {}));
    let out = std::panic::catch_unwind(|| complete::complete(&command(), &words, &lookup::Cluster))
        .unwrap_or_else(|_| complete::Completions::none());
    let _ = std::io::stdout().write_all(out.to_string().as_bytes());
    ExitCode::SUCCESS
}

fn overview() -> String {
    let locations: Vec<Option<Found>> = STEPS.iter().map(|s| steps::locate(&s.binary())).collect();
    let me = std::env::current_exe().ok().and_then(|p| p.canonicalize().ok());
    overview::render(me.as_deref(), &locations)
}

/// Replace this process with the step's binary, so its exit code and signals are the user's.
fn run_step(step: Step, args: Vec<OsString>) -> ExitCode {
    let binary = step.binary();
    let Some(found) = steps::locate(&binary) else {
        let next_to = steps::install_dir()
            .map(|d| format!("next to kubectl-mesh in {}", d.display()))
            .unwrap_or_else(|| "next to kubectl-mesh".into());
        eprintln!(
            "error: kubectl mesh {}: {binary} is not installed (looked {next_to} and on PATH); \
             reinstall with `kubectl krew install mesh`, or put {binary} on PATH",
            step.name
        );
        return ExitCode::from(exit::ERROR);
    };
    let err = Process::new(found.path()).args(args).exec();
    eprintln!(
        "error: kubectl mesh {}: cannot run {}: {err}",
        step.name,
        found.path().display()
    );
    ExitCode::from(exit::ERROR)
}

/// The message for `words` (as typed after `kubectl mesh`) whose first is not a step.
fn unknown_step_message(words: &[String]) -> String {
    let name = words.first().map(String::as_str).unwrap_or("");
    let names: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
    let mut message = if name.starts_with('-') {
        // kubectl passes everything after `mesh` as is: the step must come first.
        let example = match words.iter().position(|w| steps::find(w).is_some()) {
            Some(i) => {
                let mut reordered = vec![words[i].clone()];
                reordered.extend(
                    words
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, w)| w.clone()),
                );
                format!("kubectl mesh {}", reordered.join(" "))
            }
            None => format!("kubectl mesh revisions {}", words.join(" ")),
        };
        format!("error: kubectl mesh: {name:?} comes before a step; flags go after it: `{example}`")
    } else {
        format!("error: kubectl mesh: unknown step {name:?}")
    };
    message.push_str(&format!("\nThe steps are: {}, version, completion.", names.join(", ")));
    if let Some(close) = names.iter().find(|s| distance(s, name) <= 2) {
        message.push_str(&format!("\nDid you mean `kubectl mesh {close}`?"));
    }
    message.push_str("\nRun `kubectl mesh` for the upgrade workflow.");
    message
}

fn unknown_step(words: &[String]) -> ExitCode {
    eprintln!("{}", unknown_step_message(words));
    ExitCode::from(exit::USAGE)
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + usize::from(ca != *cb));
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// One line per binary: name, its own `--version`, where it is. A missing or failing step
/// makes the exit code 1, so a script can check an install is complete.
fn versions() -> ExitCode {
    let me = std::env::current_exe().ok().and_then(|p| p.canonicalize().ok());
    println!(
        "{:<24} {:<28} {}",
        "kubectl-mesh",
        shared::VERSION,
        me.map(|p| p.display().to_string()).unwrap_or_default()
    );
    let mut complete = true;
    let mut commits = vec![shared::VERSION.to_string()];
    for step in STEPS {
        let binary = step.binary();
        let Some(found) = steps::locate(&binary) else {
            println!("{binary:<24} not installed");
            complete = false;
            continue;
        };
        match version_of(found.path()) {
            Ok(v) => {
                println!("{binary:<24} {v:<28} {}", found.path().display());
                commits.push(v);
            }
            Err(why) => {
                println!("{binary:<24} {why:<28} {}", found.path().display());
                complete = false;
            }
        }
    }
    commits.dedup();
    if commits.len() > 1 {
        eprintln!("warning: the binaries come from different builds; reinstall them together");
    }
    if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::ERROR)
    }
}

/// What a step binary's `--version` says, or why it said nothing.
fn version_of(binary: &Path) -> Result<String, String> {
    let output = Process::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| format!("(cannot run: {e})"))?;
    if !output.status.success() {
        return Err(format!("(--version failed: {})", output.status));
    }
    // clap prints "<name> <version>"; keep the version.
    match String::from_utf8_lossy(&output.stdout).lines().next().map(str::trim) {
        Some(line) if !line.is_empty() => Ok(line.split_once(' ').map_or(line, |(_, v)| v).to_string()),
        _ => Err("(--version printed nothing)".to_string()),
    }
}

fn completion_script(args: &[OsString]) -> ExitCode {
    let shell = match args.first().and_then(|a| a.to_str()) {
        Some("bash") => clap_complete::Shell::Bash,
        Some("zsh") => clap_complete::Shell::Zsh,
        Some("fish") => clap_complete::Shell::Fish,
        other => {
            eprintln!(
                "error: kubectl mesh completion: {} (choose bash, zsh or fish)\n\
                 For `kubectl mesh <TAB>` through kubectl itself, link kubectl-mesh as {COMPLETE_NAME} on PATH instead.",
                match other {
                    Some(s) => format!("unknown shell {s:?}"),
                    None => "which shell?".to_string(),
                }
            );
            return ExitCode::from(exit::USAGE);
        }
    };
    let mut cmd = command();
    clap_complete::generate(shell, &mut cmd, "kubectl-mesh", &mut std::io::stdout());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_step_lists_the_steps_and_suggests_the_closest() {
        let words = |w: &[&str]| w.iter().map(ToString::to_string).collect::<Vec<_>>();
        let message = unknown_step_message(&words(&["rol", "--dry-run"]));
        assert!(message.contains("unknown step \"rol\""), "{message}");
        assert!(message.contains("The steps are: revisions, relabel, roll, prune, switchover, version, completion."));
        assert!(message.contains("Did you mean `kubectl mesh roll`?"));
        let message = unknown_step_message(&words(&["upgrade"]));
        assert!(!message.contains("Did you mean"), "{message}");
        let message = unknown_step_message(&words(&["-n", "shop", "roll", "--dry-run"]));
        assert!(
            message.contains("flags go after it: `kubectl mesh roll -n shop --dry-run`"),
            "{message}"
        );
    }

    #[test]
    fn completion_names() {
        assert_eq!(completion_call(&"/krew/bin/kubectl_complete-mesh".into()), Some(None));
        assert_eq!(
            completion_call(&"kubectl_complete-mesh-roll".into()),
            Some(Some("roll".to_string()))
        );
        assert_eq!(completion_call(&"kubectl_complete-mesh-nope".into()), None);
        assert_eq!(completion_call(&"/usr/bin/kubectl-mesh".into()), None);
    }

    #[test]
    fn the_combined_command_is_valid() {
        command().debug_assert();
    }
}
