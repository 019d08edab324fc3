//! Completion in Cobra's `__complete` protocol, which kubectl (≥ 1.26) speaks with a plugin's
//! `kubectl_complete-<plugin>` executable: it passes the words typed after the plugin name,
//! the last one being the word to complete (`""` after a space), and reads one candidate per
//! line (`value\tdescription`), then `:<directive>`.
//!
//! Flags come from the steps' own clap definitions; revision names, tags, namespaces and
//! contexts are looked up in the cluster (or kubeconfig) through [`Lookup`], quickly or not
//! at all.

use std::fmt;

use clap::{Arg, ArgAction, Command, ValueHint};
use shared::ConnectArgs;

/// Cobra's ShellCompDirective bits used here.
pub(crate) mod directive {
    /// Let the shell complete file names.
    pub(crate) const DEFAULT: u32 = 0;
    /// Offer only the candidates, never file names.
    pub(crate) const NO_FILE_COMP: u32 = 4;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) value: String,
    pub(crate) description: Option<String>,
}

impl Candidate {
    pub(crate) fn new(value: impl Into<String>, description: impl Into<String>) -> Candidate {
        let description = description.into();
        Candidate {
            value: value.into(),
            description: (!description.is_empty()).then_some(description),
        }
    }

    pub(crate) fn bare(value: impl Into<String>) -> Candidate {
        Candidate {
            value: value.into(),
            description: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completions {
    pub(crate) candidates: Vec<Candidate>,
    pub(crate) directive: u32,
}

impl Completions {
    /// No candidates, and no file names either.
    pub(crate) fn none() -> Completions {
        Completions {
            candidates: vec![],
            directive: directive::NO_FILE_COMP,
        }
    }

    fn only(candidates: Vec<Candidate>, prefix: &str) -> Completions {
        Completions {
            candidates: candidates.into_iter().filter(|c| c.value.starts_with(prefix)).collect(),
            directive: directive::NO_FILE_COMP,
        }
    }
}

impl fmt::Display for Completions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.candidates {
            match &c.description {
                // A tab or newline in a description would break the line protocol.
                Some(d) => writeln!(f, "{}\t{}", c.value, d.replace(['\t', '\n'], " "))?,
                None => writeln!(f, "{}", c.value)?,
            }
        }
        writeln!(f, ":{}", self.directive)
    }
}

/// The values that need a cluster or the kubeconfig. Each returns nothing on any error:
/// a completion must never print an error or hang.
pub(crate) trait Lookup {
    /// Revision names and revision tags.
    fn revisions(&self, connect: &ConnectArgs) -> Vec<Candidate>;
    fn namespaces(&self, connect: &ConnectArgs) -> Vec<Candidate>;
    fn contexts(&self, connect: &ConnectArgs) -> Vec<Candidate>;
}

/// Arguments whose values are revisions or tags, by their clap id, in every step:
/// relabel `--to/--from/--tag`, roll `--revision`, prune's `<REVISION>`.
const REVISION_ARGS: [&str; 4] = ["to", "from", "tag", "revision"];

/// What kind of value an argument takes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Values {
    Files,
    Revisions,
    Namespaces,
    Contexts,
    Fixed(Vec<Candidate>),
    Unknown,
}

fn values_of(arg: &Arg) -> Values {
    let id = arg.get_id().as_str();
    let fixed: Vec<Candidate> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| Candidate::new(v.get_name(), v.get_help().map(ToString::to_string).unwrap_or_default()))
        .collect();
    if !fixed.is_empty() {
        Values::Fixed(fixed)
    } else if id == "kubeconfig" || matches!(arg.get_value_hint(), ValueHint::FilePath | ValueHint::AnyPath) {
        Values::Files
    } else if id == "context" || arg.get_value_names().is_some_and(|n| n.iter().any(|v| v == "CONTEXT")) {
        // `--context`, and switchover's `--from`/`--to`, which name contexts too.
        Values::Contexts
    } else if id == "namespace" {
        Values::Namespaces
    } else if REVISION_ARGS.contains(&id) {
        Values::Revisions
    } else {
        Values::Unknown
    }
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// Whether the next word is this flag's value (`--dry-run` with `require_equals` never
/// takes the next word: `--dry-run=server`).
fn takes_next_word(arg: &Arg) -> bool {
    takes_value(arg) && !arg.is_require_equals_set()
}

fn repeatable(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append | ArgAction::Count)
}

fn first_line(arg: &Arg) -> String {
    arg.get_help()
        .map(|h| h.to_string().lines().next().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// Complete `words` (typed after `kubectl mesh`; the last is the partial word) against
/// `root`, whose subcommands are the steps.
pub(crate) fn complete(root: &Command, words: &[String], lookup: &dyn Lookup) -> Completions {
    let Some((current, before)) = words.split_last() else {
        return complete(root, &[String::new()], lookup);
    };
    let mut root = root.clone();
    root.build();
    let Some((step, typed)) = before.split_first() else {
        let subcommands = root
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| Candidate::new(c.get_name(), c.get_about().map(ToString::to_string).unwrap_or_default()))
            .collect();
        return Completions::only(subcommands, current);
    };
    match root.find_subcommand(step) {
        Some(cmd) => complete_step(cmd, typed, current, lookup),
        None => Completions::none(),
    }
}

/// What the words before the current one say.
struct Typed<'a> {
    /// The flag whose value the current word is, if any.
    pending: Option<&'a Arg>,
    /// Flags given so far, by id.
    given: Vec<&'a str>,
    positionals: usize,
    after_double_dash: bool,
    connect: ConnectArgs,
}

fn read_typed<'a>(cmd: &'a Command, typed: &[String]) -> Typed<'a> {
    let mut state = Typed {
        pending: None,
        given: vec![],
        positionals: 0,
        after_double_dash: false,
        connect: ConnectArgs::default(),
    };
    for word in typed {
        if let Some(arg) = state.pending.take() {
            remember(&mut state.connect, arg, word);
            continue;
        }
        if state.after_double_dash {
            state.positionals += 1;
        } else if word == "--" {
            state.after_double_dash = true;
        } else if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            if let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(name)) {
                state.given.push(arg.get_id().as_str());
                match value {
                    Some(v) => remember(&mut state.connect, arg, v),
                    None if takes_next_word(arg) => state.pending = Some(arg),
                    None => {}
                }
            }
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            // Short flags may be bundled (`-Aq`); the first that takes a value ends the word.
            for (i, c) in shorts.char_indices() {
                let Some(arg) = cmd.get_arguments().find(|a| a.get_short() == Some(c)) else {
                    break;
                };
                state.given.push(arg.get_id().as_str());
                if takes_value(arg) {
                    let rest = &shorts[i + c.len_utf8()..];
                    let rest = rest.strip_prefix('=').unwrap_or(rest);
                    if rest.is_empty() {
                        state.pending = Some(arg);
                    } else {
                        remember(&mut state.connect, arg, rest);
                    }
                    break;
                }
            }
        } else {
            state.positionals += 1;
        }
    }
    state
}

/// Keep the connection flags already typed, so lookups ask the cluster the user means.
fn remember(connect: &mut ConnectArgs, arg: &Arg, value: &str) {
    match arg.get_id().as_str() {
        "kubeconfig" => connect.kubeconfig = Some(value.into()),
        "context" => connect.context = Some(value.into()),
        "cluster" => connect.cluster = Some(value.into()),
        "user" => connect.user = Some(value.into()),
        _ => {}
    }
}

fn complete_step(cmd: &Command, typed: &[String], current: &str, lookup: &dyn Lookup) -> Completions {
    let state = read_typed(cmd, typed);
    if let Some(arg) = state.pending {
        return complete_value(arg, current, "", &state.connect, lookup);
    }
    if !state.after_double_dash
        && let Some(long) = current.strip_prefix("--")
        && let Some((name, value)) = long.split_once('=')
    {
        return match cmd.get_arguments().find(|a| a.get_long() == Some(name)) {
            Some(arg) if takes_value(arg) => complete_value(arg, value, &format!("--{name}="), &state.connect, lookup),
            _ => Completions::none(),
        };
    }
    if !state.after_double_dash && current.starts_with('-') {
        return Completions::only(flags(cmd, &state, current.starts_with("--")), current);
    }
    let mut positionals = cmd.get_positionals().filter(|a| !a.is_hide_set());
    let arg = positionals.nth(state.positionals).or_else(|| {
        cmd.get_positionals()
            .last()
            .filter(|a| matches!(a.get_action(), ArgAction::Append))
    });
    match arg {
        Some(arg) => complete_value(arg, current, "", &state.connect, lookup),
        // Nothing positional left: the flags are all there is to type.
        None if current.is_empty() => Completions::only(flags(cmd, &state, true), ""),
        None => Completions::none(),
    }
}

fn flags(cmd: &Command, state: &Typed<'_>, long_only: bool) -> Vec<Candidate> {
    let mut out = vec![];
    for arg in cmd.get_arguments().filter(|a| !a.is_positional() && !a.is_hide_set()) {
        if state.given.contains(&arg.get_id().as_str()) && !repeatable(arg) {
            continue;
        }
        let help = first_line(arg);
        if let Some(long) = arg.get_long() {
            out.push(Candidate::new(format!("--{long}"), help.clone()));
        }
        if !long_only && let Some(short) = arg.get_short() {
            out.push(Candidate::new(format!("-{short}"), help));
        }
    }
    out
}

fn complete_value(arg: &Arg, current: &str, prefix: &str, connect: &ConnectArgs, lookup: &dyn Lookup) -> Completions {
    let candidates = match values_of(arg) {
        Values::Files => {
            return Completions {
                candidates: vec![],
                directive: directive::DEFAULT,
            };
        }
        Values::Fixed(values) => values,
        Values::Revisions => lookup.revisions(connect),
        Values::Namespaces => lookup.namespaces(connect),
        Values::Contexts => lookup.contexts(connect),
        Values::Unknown => vec![],
    };
    let candidates = candidates
        .into_iter()
        .filter(|c| c.value.starts_with(current))
        .map(|c| Candidate {
            value: format!("{prefix}{}", c.value),
            description: c.description,
        })
        .collect();
    Completions {
        candidates,
        directive: directive::NO_FILE_COMP,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Records the connection flags each lookup was asked with.
    #[derive(Default)]
    struct Fake {
        asked: RefCell<Vec<(String, Option<String>)>>,
    }

    impl Lookup for Fake {
        fn revisions(&self, connect: &ConnectArgs) -> Vec<Candidate> {
            self.asked
                .borrow_mut()
                .push(("revisions".into(), connect.context.clone()));
            vec![
                Candidate::new("1-27", "revision, istiod 1.27.4"),
                Candidate::new("1-28", "revision, istiod 1.28.3"),
                Candidate::new("default", "tag -> 1-27"),
            ]
        }
        fn namespaces(&self, connect: &ConnectArgs) -> Vec<Candidate> {
            self.asked.borrow_mut().push((
                "namespaces".into(),
                connect.kubeconfig.as_ref().map(|p| p.display().to_string()),
            ));
            vec![Candidate::bare("default"), Candidate::bare("istio-system")]
        }
        fn contexts(&self, _: &ConnectArgs) -> Vec<Candidate> {
            vec![Candidate::bare("sandbox"), Candidate::bare("prod")]
        }
    }

    fn root() -> Command {
        crate::command()
    }

    fn run(words: &[&str]) -> (String, Fake) {
        let fake = Fake::default();
        let words: Vec<String> = words.iter().map(ToString::to_string).collect();
        (complete(&root(), &words, &fake).to_string(), fake)
    }

    fn values(out: &str) -> Vec<&str> {
        out.lines()
            .filter(|l| !l.starts_with(':'))
            .map(|l| l.split('\t').next().unwrap())
            .collect()
    }

    #[test]
    fn steps_complete_with_descriptions_and_no_files() {
        let (out, _) = run(&["r"]);
        assert_eq!(values(&out), ["revisions", "relabel", "roll"]);
        assert!(out.contains("revisions\tShow every Istio control-plane revision"));
        assert!(out.ends_with("\n:4\n"), "{out}");
        let (out, _) = run(&[""]);
        for step in [
            "revisions",
            "relabel",
            "roll",
            "prune",
            "switchover",
            "version",
            "completion",
        ] {
            assert!(values(&out).contains(&step), "{step} missing from {out}");
        }
    }

    #[test]
    fn flags_come_from_the_steps_own_arguments() {
        let (out, _) = run(&["revisions", "--na"]);
        assert_eq!(values(&out), ["--namespaces", "--namespace"]);
        assert!(out.contains("--namespaces\tOne row per namespace instead of per revision\n"));
        let (out, _) = run(&["revisions", "-"]);
        assert!(values(&out).contains(&"-n") && values(&out).contains(&"--kubeconfig"));
        // Given once, not offered again; -n is repeatable.
        let (out, _) = run(&["revisions", "--check", "-n", "default", "--"]);
        assert!(!values(&out).contains(&"--check"));
        assert!(values(&out).contains(&"--namespace"));
    }

    #[test]
    fn fixed_values_and_files() {
        let (out, _) = run(&["revisions", "-o", ""]);
        assert_eq!(values(&out), ["table", "wide", "json", "yaml", "name"]);
        let (out, _) = run(&["revisions", "--output=j"]);
        assert_eq!(values(&out), ["--output=json"]);
        let (out, _) = run(&["revisions", "--kubeconfig", ""]);
        assert_eq!(out, ":0\n", "the shell completes file names");
    }

    #[test]
    fn namespaces_are_looked_up_with_the_kubeconfig_already_typed() {
        let (out, fake) = run(&["revisions", "--kubeconfig", "/tmp/kc", "-n", "i"]);
        assert_eq!(out, "istio-system\n:4\n");
        assert_eq!(fake.asked.borrow()[0], ("namespaces".into(), Some("/tmp/kc".into())));
        let (out, _) = run(&["revisions", "--kubeconfig=/tmp/kc", "-nd"]);
        assert_eq!(out, ":4\n", "-nd is a whole word already");
        let (out, _) = run(&["revisions", "--context", ""]);
        assert_eq!(values(&out), ["sandbox", "prod"]);
        // The fleet view takes --context again; switchover's --from and --to are contexts.
        let (out, _) = run(&["revisions", "--context", "sandbox", "--con"]);
        assert_eq!(values(&out), ["--context"]);
        let (out, _) = run(&["switchover", "--from", ""]);
        assert_eq!(values(&out), ["sandbox", "prod"]);
        let (out, fake) = run(&["switchover", "--from", "sandbox", "--to", "p"]);
        assert_eq!(values(&out), ["prod"]);
        assert!(
            fake.asked.borrow().is_empty(),
            "no revision looked up for a context flag"
        );
    }

    #[test]
    fn unknown_steps_and_values_give_nothing() {
        assert_eq!(run(&["nope", "--"]).0, ":4\n");
        assert_eq!(run(&["revisions", "--request-timeout", ""]).0, ":4\n");
        assert_eq!(run(&["revisions", "--bogus=x"]).0, ":4\n");
    }

    #[test]
    fn revisions_and_tags_for_the_steps_that_take_one() {
        let all = ["1-27", "1-28", "default"];
        assert_eq!(values(&run(&["relabel", "--to", ""]).0), all);
        assert_eq!(
            values(&run(&["relabel", "-n", "default", "--from", "1-2"]).0),
            ["1-27", "1-28"]
        );
        assert_eq!(values(&run(&["relabel", "--tag", "d"]).0), ["default"]);
        assert_eq!(
            values(&run(&["roll", "--revision=1-"]).0),
            ["--revision=1-27", "--revision=1-28"]
        );
        assert_eq!(values(&run(&["prune", ""]).0), all);
        let (out, fake) = run(&["prune", "--context", "sandbox", "1"]);
        assert!(out.starts_with("1-27\trevision, istiod 1.27.4\n"), "{out}");
        assert_eq!(fake.asked.borrow()[0], ("revisions".into(), Some("sandbox".into())));
        // One revision per prune: after it, only flags.
        assert!(values(&run(&["prune", "1-27", ""]).0).contains(&"--dry-run"));
    }

    #[test]
    fn an_optional_value_after_equals_does_not_swallow_the_next_word() {
        let (out, _) = run(&["relabel", "--dry-run", "--t"]);
        assert!(
            values(&out).contains(&"--to") && values(&out).contains(&"--tag"),
            "{out}"
        );
        assert!(!values(&out).contains(&"--dry-run"), "already given: {out}");
        assert_eq!(
            values(&run(&["relabel", "--dry-run="]).0),
            ["--dry-run=none", "--dry-run=client", "--dry-run=server"]
        );
    }

    #[test]
    fn completion_offers_the_shells() {
        let (out, _) = run(&["completion", ""]);
        assert_eq!(values(&out), ["bash", "zsh", "fish"]);
    }

    #[test]
    fn the_output_is_cobras_line_protocol() {
        let c = Completions {
            candidates: vec![Candidate::new("1-28", "revision\twith a tab"), Candidate::bare("x")],
            directive: 4,
        };
        assert_eq!(c.to_string(), "1-28\trevision with a tab\nx\n:4\n");
    }
}
