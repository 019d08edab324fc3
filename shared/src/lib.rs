//! What every kubectl-mesh step means by the same words: the connection flags and client,
//! the Istio model read from API objects, output formats and exit codes.
//!
//! Each step is the same pipeline: read the cluster ([`collect`]) → model ([`model`],
//! pure) → plan (pure, in the step) → act (API calls) → report ([`output`]).

pub mod access;
pub mod cli;
pub mod collect;
pub mod connect;
pub mod error;
pub mod model;
pub mod output;
pub mod retry;
pub mod rollout;

pub use cli::VERSION;
pub use connect::{ConnectArgs, Connection, Scope, ScopeArgs};
pub use error::{Error, Result, exit};
pub mod tag;
