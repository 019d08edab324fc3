//! The few lines every plugin's `main` shares: parse, run on a runtime, map errors to exit
//! codes, and end as kubectl ends when the reader of its output has gone.

use std::future::Future;
use std::process::ExitCode;

use clap::Parser;

/// `0.1.0 (commit 1a2b3c4d5e6f)`: every binary's `--version`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("MESH_GIT_COMMIT"), ")");

/// Parse the arguments, run the step, print an error on stderr and exit with its code.
/// `command` is how the user typed it (`kubectl mesh roll`), for messages.
pub fn main<A, F, Fut>(command: &str, step: F) -> ExitCode
where
    A: Parser,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = crate::Result<u8>>,
{
    end_quietly_on_closed_pipe();
    // SAFETY: first thing in the step's main, before the runtime: one thread.
    unsafe { crate::connect::tidy_no_proxy() };
    let args = A::parse();
    // One thread runs every task; the one CPU-heavy job, decoding list pages, has its own
    // blocking thread (collect.rs). With two worker threads, hyper's connection task and
    // the task reading the body woke each other across threads for every TLS read: at
    // 10,000 pods 44,600 context switches and 0.15 s of system time, against 1,500 and
    // 0.05 s on one thread (bench/REPORT.md, "What changed since run A").
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {command}: cannot start the async runtime: {e}");
            return ExitCode::from(crate::exit::ERROR);
        }
    };
    match runtime.block_on(step(args)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => crate::error::report(command, &err),
    }
}

/// Make `print!`/`eprintln!` into a closed pipe end the process as [`closed_pipe`] does,
/// instead of panicking ("failed printing to stdout: Broken pipe", exit 101). Rust ignores
/// SIGPIPE, so the write fails with EPIPE and std panics with that message; every other
/// panic is reported as before. [`main`] calls it; a binary with a `main` of its own (the
/// `kubectl mesh` dispatcher) calls it first thing.
pub fn end_quietly_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_closed_pipe(info.payload()) {
            closed_pipe();
        }
        report(info);
    }));
}

/// Whether a panic is std's "failed printing to stdout/stderr" for a closed pipe.
fn is_closed_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    let epipe = std::io::Error::from_raw_os_error(libc::EPIPE).to_string();
    message.starts_with("failed printing to std") && message.ends_with(&epipe)
}

/// The reader of stdout has gone (`kubectl mesh revisions --proxies | head -1`): end now,
/// without a word, as kubectl does. Go's runtime lets a write to a closed stdout or stderr
/// kill the process with SIGPIPE (os/signal's "SIGPIPE" notes), so the shell sees 141 and
/// `set -o pipefail` scripts the same status for kubectl and for every step.
pub fn closed_pipe() -> ! {
    // SAFETY: `signal` and `raise` are async-signal-safe libc calls on values libc defines;
    // restoring SIGPIPE's default action then raising it ends the process at once.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Not reached on Unix; elsewhere, the status a shell shows for SIGPIPE.
    std::process::exit(141)
}

/// The signal that stops a step that changes the cluster: each stops it the same way (no
/// new change is sent, a summary of what was done and what is left), and each has its exit
/// code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Signal {
    /// Ctrl-C.
    #[serde(rename = "SIGINT")]
    Interrupt,
    /// `kill`, a CI job cancelled, a pod stopped.
    #[serde(rename = "SIGTERM")]
    Terminate,
}

impl Signal {
    /// 130 or 143: 128 + the signal's number, the status a shell shows for it.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => crate::exit::INTERRUPTED,
            Signal::Terminate => crate::exit::TERMINATED,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "Ctrl-C",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// The first SIGINT or SIGTERM; pending forever if neither can be listened to. Once
/// listened to, neither ends the process any more: the step stops itself.
pub async fn stop_signal() -> Option<Signal> {
    let interrupt = async { tokio::signal::ctrl_c().await.ok().map(|()| Signal::Interrupt) };
    let terminate = async {
        #[cfg(unix)]
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            return term.recv().await.map(|()| Signal::Terminate);
        }
        std::future::pending::<Option<Signal>>().await
    };
    tokio::select! {
        Some(s) = interrupt => Some(s),
        Some(s) = terminate => Some(s),
        else => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_pipe_on_stdout_or_stderr_ends_quietly() {
        let epipe = std::io::Error::from_raw_os_error(libc::EPIPE);
        let stdout: Box<dyn std::any::Any + Send> = Box::new(format!("failed printing to stdout: {epipe}"));
        let stderr: Box<dyn std::any::Any + Send> = Box::new(format!("failed printing to stderr: {epipe}"));
        assert!(is_closed_pipe(stdout.as_ref()));
        assert!(is_closed_pipe(stderr.as_ref()));
        let other_error: Box<dyn std::any::Any + Send> = Box::new(format!(
            "failed printing to stdout: {}",
            std::io::Error::from_raw_os_error(libc::ENOSPC)
        ));
        assert!(!is_closed_pipe(other_error.as_ref()));
        let other_panic: Box<dyn std::any::Any + Send> = Box::new("index out of bounds");
        assert!(!is_closed_pipe(other_panic.as_ref()));
    }
}

/// The flags every step that reads namespaces takes: kubectl's scope (`-n`, `-A`), output
/// (`-o`, colour) and connection flags. Flattened into each step's own `Args`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StepArgs {
    #[command(flatten)]
    pub scope: crate::ScopeArgs,
    #[command(flatten)]
    pub output: crate::output::OutputArgs,
    #[command(flatten)]
    pub connect: crate::ConnectArgs,
}
