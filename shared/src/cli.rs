//! The few lines every plugin's `main` shares: parse, run on a runtime, map errors to exit
//! codes.

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
    let args = A::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
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
