//! Errors every plugin can report, and the exit codes scripts can rely on.

/// Exit codes shared by every `kubectl mesh` step. Documented in README.md; never renumber.
pub mod exit {
    /// Success: the step did what was asked (or found nothing to do).
    pub const OK: u8 = 0;
    /// An error: the cluster could not be read or written, a bug, an I/O failure.
    pub const ERROR: u8 = 1;
    /// Usage: unknown flag, missing argument, malformed value. Nothing was read or changed.
    pub const USAGE: u8 = 2;
    /// `revisions --check`: at least one proxy is out of date.
    pub const OUT_OF_DATE: u8 = 3;
    /// A safety check refused the step (target missing or not ready, revision still in use,
    /// no confirmation). Nothing was changed.
    pub const REFUSED: u8 = 4;
    /// The step ran for several objects and some of them failed; the rest were done.
    pub const PARTIAL: u8 = 5;
    /// `roll`: a workload's rollout failed or its new pods carry the wrong proxy; the roll stopped.
    pub const ROLLOUT_FAILED: u8 = 6;
    /// Interrupted by Ctrl-C (SIGINT), after a clean stop: 128 + 2, the status a shell
    /// gives a process SIGINT ends.
    pub const INTERRUPTED: u8 = 130;
    /// Stopped by SIGTERM (`kill`, a CI job's timeout, a pod's termination), after a clean
    /// stop: 128 + 15, the status a shell reports for a process SIGTERM ends, so the caller
    /// that sent it sees the code it expects.
    pub const TERMINATED: u8 = 143;
}

/// An error that knows which exit code it deserves and says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input the user can fix (a flag value, a name that does not exist).
    #[error("{0}")]
    Usage(String),
    /// A safety check said no; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// The kubeconfig is missing, malformed or names something that is not in it.
    #[error("{0}")]
    Kubeconfig(String),
    /// The API server could not be reached.
    #[error(
        "cannot reach the Kubernetes API server at {url}: {reason}\n  check that the cluster is running and that the context is the right one (--context)"
    )]
    Unreachable { url: String, reason: String },
    /// The server answered with a certificate no configured authority signed.
    #[error(
        "the API server at {url} presented a certificate that is not trusted ({reason})\n  set certificate-authority (or certificate-authority-data) for this cluster in the kubeconfig, or pass --certificate-authority; TLS verification is never switched off unless asked (--insecure-skip-tls-verify)"
    )]
    UntrustedServer { url: String, reason: String },
    /// 401 from the API server.
    #[error(
        "the API server at {url} rejected the credentials (401 Unauthorized) while trying to {action}\n  log in again or choose another user (--user, --context)"
    )]
    Unauthorized { url: String, action: String },
    /// 403 from the API server.
    #[error(
        "not allowed to {action} (403 Forbidden): {message}\n  ask a cluster admin for RBAC permission to {action}"
    )]
    Forbidden { action: String, message: String },
    /// Any other API error, with what we were doing.
    #[error("failed to {action}: {message}")]
    Api { action: String, message: String, code: u16 },
    /// Everything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Refused(_) => exit::REFUSED,
            _ => exit::ERROR,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The names that do exist, for "not found" messages: `a, b, c`, or `none`.
pub fn known<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Turn a kube error into one that names the server, the verb and the resource.
pub fn api_error(err: kube::Error, url: &str, action: impl Into<String>) -> Error {
    let action = action.into();
    match err {
        kube::Error::Api(status) => match status.code {
            401 => Error::Unauthorized {
                url: url.to_string(),
                action,
            },
            403 => Error::Forbidden {
                action,
                message: status.message,
            },
            code => Error::Api {
                action,
                message: status.message,
                code,
            },
        },
        kube::Error::HyperError(e) => unreachable(url, chain(&e)),
        kube::Error::Service(e) => unreachable(url, chain(e.as_ref())),
        other => Error::Api {
            action,
            message: chain(&other),
            code: 0,
        },
    }
}

/// A connection that failed: a TLS verification failure is named as such (rustls says
/// "invalid peer certificate"), anything else is an unreachable server.
fn unreachable(url: &str, reason: String) -> Error {
    let url = url.to_string();
    if reason.contains("invalid peer certificate") || reason.contains("certificate verify failed") {
        Error::UntrustedServer { url, reason }
    } else {
        Error::Unreachable { url, reason }
    }
}

/// The error and its sources on one line, so "connection refused" is not hidden behind
/// "client error (Connect)".
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Print an error the way every plugin does (on stderr, prefixed with the command) and
/// return its exit code.
pub fn report(command: &str, err: &Error) -> std::process::ExitCode {
    eprintln!("error: {command}: {err}");
    std::process::ExitCode::from(err.exit_code())
}
