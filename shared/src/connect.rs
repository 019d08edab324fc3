//! The connection flags every plugin takes (kubectl's own, since kubectl parses none of
//! them for a plugin) and the client they build.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{Error, Result};

/// kubectl's connection and scope flags, flattened into every plugin's arguments.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Cluster connection")]
pub struct ConnectArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, a colon-separated list merged as
    /// kubectl does, else ~/.kube/config)
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The kubeconfig cluster to use
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// How long to wait for one API request before giving up (e.g. 10s, 1m; 0 = no limit)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub request_timeout: Option<Duration>,
}

/// `-n/--namespace` and `-A/--all-namespaces`, for steps that act on namespaces.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Scope")]
pub struct ScopeArgs {
    /// Namespace to look at (repeatable; default: the context's namespace for namespaced
    /// steps)
    #[arg(
        id = "namespace",
        short = 'n',
        long = "namespace",
        value_name = "NAMESPACE",
        conflicts_with = "all_namespaces"
    )]
    pub namespaces: Vec<String>,
    /// Look at every namespace
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// Which namespaces a step reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Namespaces(Vec<String>),
}

impl Scope {
    pub fn includes(&self, namespace: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Namespaces(list) => list.iter().any(|n| n == namespace),
        }
    }
}

impl ScopeArgs {
    /// The scope these flags ask for; `fallback` is used when neither flag is given.
    pub fn scope(&self, fallback: Scope) -> Scope {
        if self.all_namespaces {
            Scope::All
        } else if !self.namespaces.is_empty() {
            let mut list = self.namespaces.clone();
            list.sort();
            list.dedup();
            Scope::Namespaces(list)
        } else {
            fallback
        }
    }
}

/// A client with the facts error messages need.
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    /// The API server URL, for messages.
    pub url: String,
    /// The context's default namespace (kubectl's default for `-n`).
    pub default_namespace: String,
}

impl ConnectArgs {
    /// Load the kubeconfig the way kubectl does and build a client. No request is made yet.
    pub async fn connect(&self) -> Result<Connection> {
        let kubeconfig = self.load_kubeconfig()?;
        // kubectl refuses a --context, --cluster or --user the kubeconfig does not define
        // (client-go's tools/clientcmd/client_config.go, ConfirmUsable); we also name the
        // ones it does define.
        named_in_kubeconfig(
            "context",
            self.context.as_deref(),
            kubeconfig.contexts.iter().map(|c| c.name.as_str()),
        )?;
        named_in_kubeconfig(
            "cluster",
            self.cluster.as_deref(),
            kubeconfig.clusters.iter().map(|c| c.name.as_str()),
        )?;
        named_in_kubeconfig(
            "user",
            self.user.as_deref(),
            kubeconfig.auth_infos.iter().map(|c| c.name.as_str()),
        )?;
        if self.context.is_none() && kubeconfig.current_context.as_deref().unwrap_or("").is_empty() {
            return Err(Error::Kubeconfig(
                "the kubeconfig has no current context; pass --context NAME or run `kubectl config use-context NAME`"
                    .into(),
            ));
        }
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| Error::Kubeconfig(format!("invalid kubeconfig: {}", crate::error::chain(&e))))?;
        if let Some(timeout) = self.request_timeout.filter(|t| !t.is_zero()) {
            config.connect_timeout = Some(timeout);
            config.read_timeout = Some(timeout);
            config.write_timeout = Some(timeout);
        }
        let url = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let default_namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config)
            .map_err(|e| Error::Kubeconfig(format!("cannot build a client for {url}: {}", crate::error::chain(&e))))?;
        Ok(Connection {
            client,
            url,
            default_namespace,
        })
    }

    /// The kubeconfig as kubectl reads it: `--kubeconfig`, else the files of `KUBECONFIG`
    /// merged (missing ones skipped), else `~/.kube/config`.
    pub fn load_kubeconfig(&self) -> Result<Kubeconfig> {
        if let Some(path) = &self.kubeconfig {
            if !path.exists() {
                return Err(Error::Kubeconfig(format!(
                    "kubeconfig {} does not exist (from --kubeconfig)",
                    path.display()
                )));
            }
            return read(path);
        }
        let paths: Vec<PathBuf> = match std::env::var_os("KUBECONFIG") {
            Some(value) if !value.is_empty() => std::env::split_paths(&value)
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
            _ => home_kubeconfig().into_iter().collect(),
        };
        // kubectl skips files of the list that do not exist, and merges the rest in order:
        // the first file to set a value wins.
        let mut merged: Option<Kubeconfig> = None;
        for path in paths.iter().filter(|p| p.exists()) {
            let next = read(path)?;
            merged = Some(match merged {
                None => next,
                Some(m) => m
                    .merge(next)
                    .map_err(|e| Error::Kubeconfig(format!("cannot merge kubeconfig {}: {e}", path.display())))?,
            });
        }
        merged.ok_or_else(|| {
            let looked = if paths.is_empty() {
                "~/.kube/config (HOME is not set)".to_string()
            } else {
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            Error::Kubeconfig(format!(
                "no kubeconfig found (looked at {looked}); pass --kubeconfig PATH or set KUBECONFIG"
            ))
        })
    }
}

/// A usage error naming the `what`s that do exist when `given` is not one of `names`.
fn named_in_kubeconfig<'a>(what: &str, given: Option<&str>, names: impl Iterator<Item = &'a str>) -> Result<()> {
    let names: Vec<&str> = names.collect();
    match given {
        Some(name) if !names.contains(&name) => Err(Error::Usage(format!(
            "{what} {name:?} is not in the kubeconfig (known {what}s: {})",
            crate::error::known(names)
        ))),
        _ => Ok(()),
    }
}

fn home_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".kube").join("config"))
}

fn read(path: &Path) -> Result<Kubeconfig> {
    Kubeconfig::read_from(path).map_err(|e| {
        Error::Kubeconfig(format!(
            "kubeconfig {} is malformed: {}",
            path.display(),
            crate::error::chain(&e)
        ))
    })
}

/// Parse kubectl-style durations: `30s`, `5m`, `1h30m`, `250ms`, or plain seconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number, e.g. 30s, 5m, 1h"
            ));
        }
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: bad number"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            "" => return Err(format!("invalid duration {text:?}: missing unit (ms, s, m, h)")),
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m, h)"
                ));
            }
        };
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("12").unwrap(), Duration::from_secs(12));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("10").is_ok());
    }

    #[test]
    fn a_name_not_in_the_kubeconfig_is_a_usage_error_listing_the_known_ones() {
        let names = || ["nowhere", "staging"].into_iter();
        assert!(named_in_kubeconfig("cluster", None, names()).is_ok());
        assert!(named_in_kubeconfig("cluster", Some("staging"), names()).is_ok());
        let err = named_in_kubeconfig("user", Some("admin"), names()).unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "user \"admin\" is not in the kubeconfig (known users: nowhere, staging)"
        );
        let err = named_in_kubeconfig("cluster", Some("prod"), std::iter::empty()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cluster \"prod\" is not in the kubeconfig (known clusters: none)"
        );
    }

    #[test]
    fn scope_prefers_all_then_named_then_fallback() {
        let all = ScopeArgs {
            namespaces: vec![],
            all_namespaces: true,
        };
        assert_eq!(all.scope(Scope::Namespaces(vec!["x".into()])), Scope::All);
        let named = ScopeArgs {
            namespaces: vec!["b".into(), "a".into(), "b".into()],
            all_namespaces: false,
        };
        assert_eq!(named.scope(Scope::All), Scope::Namespaces(vec!["a".into(), "b".into()]));
        let none = ScopeArgs::default();
        assert_eq!(none.scope(Scope::All), Scope::All);
    }
}
