//! The connection flags every plugin takes (kubectl's own, since kubectl parses none of
//! them for a plugin) and the client they build: the kubeconfig as kubectl merges it, or
//! the in-cluster configuration, with kubectl's overrides (`--server`, `--token`, `--as`,
//! `--certificate-authority`, ...) applied as client-go applies them, the proxy kubectl
//! would use, and kubectl's `-v` log.

mod proxy;
mod verbosity;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgAction;
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, KubeconfigError, NamedAuthInfo, NamedCluster,
    NamedContext,
};
use secrecy::SecretString;

use crate::error::{Error, Result};

/// kubectl's connection and scope flags, flattened into every plugin's arguments.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Cluster connection")]
pub struct ConnectArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, a colon-separated list merged as
    /// kubectl does, else ~/.kube/config, else the in-cluster configuration)
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
    /// The address of the Kubernetes API server (instead of the kubeconfig's)
    #[arg(short = 's', long, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server (instead of the kubeconfig user's
    /// credentials)
    #[arg(long, value_name = "TOKEN", value_parser = TokenParser)]
    pub token: Option<SecretString>,
    /// Username to impersonate for the operation: a user or
    /// system:serviceaccount:NAMESPACE:NAME
    #[arg(long = "as", value_name = "USER")]
    pub impersonate: Option<String>,
    /// Group to impersonate for the operation (repeatable)
    #[arg(long = "as-group", value_name = "GROUP")]
    pub impersonate_groups: Vec<String>,
    /// UID to impersonate for the operation
    #[arg(long = "as-uid", value_name = "UID")]
    pub impersonate_uid: Option<String>,
    /// Path to a certificate file for the certificate authority of the API server
    #[arg(long, value_name = "PATH", conflicts_with = "insecure_skip_tls_verify")]
    pub certificate_authority: Option<PathBuf>,
    /// Do not check the server's certificate: HTTPS connections become insecure
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set)]
    pub insecure_skip_tls_verify: bool,
    /// Server name to check the server's certificate against (default: the server's host)
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Log level, as kubectl's: 6 logs each API request's method, URL and status on stderr,
    /// 8 and 9 kube's own debug and trace events
    #[arg(short = 'v', long = "v", value_name = "N", default_value_t = 0)]
    pub verbosity: u8,
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
        value_parser = crate::model::labels::namespace_name,
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
    /// Build a client the way kubectl would connect: the kubeconfig (or, without one, the
    /// flags alone or the in-cluster configuration), kubectl's overrides, the proxy kubectl
    /// would use. No request is made yet.
    pub async fn connect(&self) -> Result<Connection> {
        verbosity::init(self.verbosity);
        let (mut kubeconfig, options) = self.source()?;
        let cluster = selected_cluster(&mut kubeconfig, &options);
        let cluster_proxy = cluster.as_ref().and_then(|c| c.proxy_url.clone());
        if let Some(cluster) = cluster {
            self.override_cluster(cluster)?;
        }
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| config_error(&e))?;
        self.override_user(&mut config.auth_info)?;
        if let Some(timeout) = self.request_timeout.filter(|t| !t.is_zero()) {
            config.connect_timeout = Some(timeout);
            config.read_timeout = Some(timeout);
            config.write_timeout = Some(timeout);
        }
        config.proxy_url = proxy::proxy_for(cluster_proxy.as_deref(), &config.cluster_url, |name| {
            std::env::var(name).ok()
        })?;
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

    /// The kubeconfig to connect with and which of its contexts, clusters and users: the
    /// merged kubeconfig files when they name a context; else, as client-go's
    /// `DeferredLoadingClientConfig` does, one made of the flags alone when `--server` is
    /// given, or of the in-cluster configuration inside a pod.
    fn source(&self) -> Result<(Kubeconfig, KubeConfigOptions)> {
        let found = self.read_kubeconfig()?;
        let has_context = match &found {
            Some(kubeconfig) => {
                self.check_names(kubeconfig)?;
                self.context.is_some() || kubeconfig.current_context.as_deref().is_some_and(|c| !c.is_empty())
            }
            None => false,
        };
        match (found, pick(has_context, self.server.is_some(), in_cluster_possible())) {
            (Some(kubeconfig), Some(Source::Kubeconfig)) => Ok((
                kubeconfig,
                KubeConfigOptions {
                    context: self.context.clone(),
                    cluster: self.cluster.clone(),
                    user: self.user.clone(),
                },
            )),
            (_, Some(Source::Flags)) => Ok((single_context(Cluster::default(), None, None), Default::default())),
            (_, Some(Source::InCluster)) => Ok((in_cluster_kubeconfig()?, Default::default())),
            (Some(_), _) => Err(Error::Kubeconfig(
                "the kubeconfig has no current context; pass --context NAME or run `kubectl config use-context NAME`"
                    .into(),
            )),
            (None, _) => Err(self.no_kubeconfig()),
        }
    }

    /// kubectl refuses a --context, --cluster or --user the kubeconfig does not define
    /// (client-go's tools/clientcmd/client_config.go, ConfirmUsable); we also name the ones
    /// it does define.
    fn check_names(&self, kubeconfig: &Kubeconfig) -> Result<()> {
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
        )
    }

    /// `--server`, `--certificate-authority`, `--insecure-skip-tls-verify` and
    /// `--tls-server-name` over the kubeconfig's cluster, with client-go's precedence
    /// (`DirectClientConfig.getCluster`): insecure drops the CA, a CA drops insecure and
    /// the inline CA data, and a new `--server` drops the kubeconfig's TLS server name.
    fn override_cluster(&self, cluster: &mut Cluster) -> Result<()> {
        if let Some(server) = &self.server {
            cluster.server = Some(server.clone());
        }
        if self.insecure_skip_tls_verify {
            cluster.insecure_skip_tls_verify = Some(true);
            cluster.certificate_authority = None;
            cluster.certificate_authority_data = None;
        }
        if let Some(path) = &self.certificate_authority {
            let path = std::path::absolute(path)
                .map_err(|e| Error::Usage(format!("--certificate-authority {}: {e}", path.display())))?;
            cluster.certificate_authority = Some(path.display().to_string());
            cluster.certificate_authority_data = None;
            cluster.insecure_skip_tls_verify = Some(false);
        }
        if self.tls_server_name.is_some() || self.server.is_some() {
            cluster.tls_server_name = self.tls_server_name.clone();
        }
        Ok(())
    }

    /// `--token` and `--as`/`--as-group`/`--as-uid` over the kubeconfig's user. A token
    /// replaces the user's other credentials but a client certificate, as in kubectl (whose
    /// exec plugins are not run when a token is given: client-go's
    /// `plugin/pkg/client/auth/exec/exec.go`, UpdateTransportConfig).
    fn override_user(&self, user: &mut AuthInfo) -> Result<()> {
        if let Some(token) = &self.token {
            user.token = Some(token.clone());
            user.token_file = None;
            user.username = None;
            user.password = None;
            user.auth_provider = None;
            user.exec = None;
        }
        if let Some(name) = &self.impersonate {
            user.impersonate = Some(name.clone());
        }
        if !self.impersonate_groups.is_empty() {
            user.impersonate_groups = Some(self.impersonate_groups.clone());
        }
        if let Some(uid) = &self.impersonate_uid {
            user.impersonate_uid = Some(uid.clone());
        }
        // client-go's transport/round_trippers.go refuses the same.
        let groups = user.impersonate_groups.as_ref().is_some_and(|g| !g.is_empty());
        if user.impersonate.as_deref().unwrap_or("").is_empty() && (groups || user.impersonate_uid.is_some()) {
            return Err(Error::Usage(
                "--as-group and --as-uid need --as: requesting groups or a uid without impersonating a user".into(),
            ));
        }
        Ok(())
    }

    /// The kubeconfig as kubectl reads it: `--kubeconfig`, else the files of `KUBECONFIG`
    /// merged (missing ones skipped), else `~/.kube/config`.
    pub fn load_kubeconfig(&self) -> Result<Kubeconfig> {
        self.read_kubeconfig()?.ok_or_else(|| self.no_kubeconfig())
    }

    /// [`ConnectArgs::load_kubeconfig`], or `None` when there is no kubeconfig file to read.
    fn read_kubeconfig(&self) -> Result<Option<Kubeconfig>> {
        if let Some(path) = &self.kubeconfig {
            if !path.exists() {
                return Err(Error::Kubeconfig(format!(
                    "kubeconfig {} does not exist (from --kubeconfig)",
                    path.display()
                )));
            }
            return read(path).map(Some);
        }
        // kubectl skips files of the list that do not exist, and merges the rest in order:
        // the first file to set a value wins.
        let mut merged: Option<Kubeconfig> = None;
        for path in kubeconfig_paths().iter().filter(|p| p.exists()) {
            let next = read(path)?;
            merged = Some(match merged {
                None => next,
                Some(m) => m
                    .merge(next)
                    .map_err(|e| Error::Kubeconfig(format!("cannot merge kubeconfig {}: {e}", path.display())))?,
            });
        }
        Ok(merged)
    }

    fn no_kubeconfig(&self) -> Error {
        let paths = kubeconfig_paths();
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
    }
}

/// Drop the empty entries of `NO_PROXY` and `no_proxy` (`a,b,` → `a,b`): Go skips them, kube
/// 5 refuses the whole variable for one. The value means the same to every program that
/// reads it after, exec credential plugins and `roll --exec` commands included.
///
/// # Safety
/// Changing the environment races with any other thread reading it: call this while the
/// process has one thread, first thing in `main` ([`crate::cli::main`] does).
pub unsafe fn tidy_no_proxy() {
    for name in ["NO_PROXY", "no_proxy"] {
        if let Ok(value) = std::env::var(name) {
            let tidy = proxy::without_empty_entries(&value);
            if tidy != value {
                // SAFETY: the caller guarantees the process has one thread.
                unsafe { std::env::set_var(name, tidy) };
            }
        }
    }
}

/// Where a connection's settings come from when no `--kubeconfig` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The kubeconfig files, which name a context.
    Kubeconfig,
    /// The flags alone (`--server`, `--token`, ...): no kubeconfig names a context.
    Flags,
    /// Inside a pod: its ServiceAccount's token and the cluster's CA.
    InCluster,
}

/// client-go's `DeferredLoadingClientConfig.ClientConfig`: a kubeconfig that names a
/// context wins; without one, flags that name a server; without those, the in-cluster
/// configuration when it is possible; else nothing (an error naming what was looked at).
fn pick(has_context: bool, server_flag: bool, in_cluster: bool) -> Option<Source> {
    if has_context {
        Some(Source::Kubeconfig)
    } else if server_flag {
        Some(Source::Flags)
    } else if in_cluster {
        Some(Source::InCluster)
    } else {
        None
    }
}

/// The ServiceAccount token every pod gets (client-go's rest/config.go, InClusterConfig).
const IN_CLUSTER_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// client-go's `inClusterClientConfig.Possible`: the API server's address in the
/// environment and a ServiceAccount token on disk.
fn in_cluster_possible() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    set("KUBERNETES_SERVICE_HOST")
        && set("KUBERNETES_SERVICE_PORT")
        && Path::new(IN_CLUSTER_TOKEN).metadata().is_ok_and(|m| m.is_file())
}

/// kube's in-cluster configuration as a kubeconfig, so the flags apply to it as to any
/// other. The namespace is `POD_NAMESPACE`, else the ServiceAccount's (client-go's
/// `inClusterClientConfig.Namespace`).
fn in_cluster_kubeconfig() -> Result<Kubeconfig> {
    let config = kube::Config::incluster().map_err(|e| {
        Error::Kubeconfig(format!(
            "cannot use the in-cluster configuration: {}",
            crate::error::chain(&e)
        ))
    })?;
    let namespace = std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or(config.default_namespace);
    let cluster = Cluster {
        server: Some(config.cluster_url.to_string()),
        certificate_authority: config.root_cert_file.map(|p| p.display().to_string()),
        ..Default::default()
    };
    Ok(single_context(cluster, Some(config.auth_info), Some(namespace)))
}

/// A kubeconfig of one context, for the settings that come from elsewhere.
fn single_context(cluster: Cluster, user: Option<AuthInfo>, namespace: Option<String>) -> Kubeconfig {
    const NAME: &str = "kubectl-mesh";
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: NAME.into(),
            cluster: Some(cluster),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: NAME.into(),
            auth_info: Some(user.unwrap_or_default()),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: NAME.into(),
            context: Some(Context {
                cluster: NAME.into(),
                user: Some(NAME.into()),
                namespace,
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some(NAME.into()),
        ..Default::default()
    }
}

/// The cluster `options` select in `kubeconfig`: `--cluster`, else the context's.
fn selected_cluster<'a>(kubeconfig: &'a mut Kubeconfig, options: &KubeConfigOptions) -> Option<&'a mut Cluster> {
    let context_name = options.context.as_ref().or(kubeconfig.current_context.as_ref())?;
    let name = match &options.cluster {
        Some(name) => name.clone(),
        None => kubeconfig
            .contexts
            .iter()
            .find(|c| &c.name == context_name)?
            .context
            .as_ref()?
            .cluster
            .clone(),
    };
    kubeconfig
        .clusters
        .iter_mut()
        .find(|c| c.name == name)?
        .cluster
        .as_mut()
}

/// kube's loading error, with a proxy problem named as such rather than as a kubeconfig's.
fn config_error(err: &KubeconfigError) -> Error {
    let detail = crate::error::chain(err);
    match err {
        KubeconfigError::ParseProxyUrl(_) => Error::Usage(format!(
            "the proxy (HTTPS_PROXY, or the kubeconfig's proxy-url) is not a URL: {detail}"
        )),
        KubeconfigError::ParseNoProxy(_) => Error::Usage(format!("NO_PROXY cannot be read: {detail}")),
        _ => Error::Kubeconfig(format!("invalid kubeconfig: {detail}")),
    }
}

/// `--token`: a request header carries it, so it must be visible ASCII. A bad one is
/// refused without echoing it (clap's own message would print the value).
#[derive(Debug, Clone, Copy)]
struct TokenParser;

impl clap::builder::TypedValueParser for TokenParser {
    type Value = SecretString;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<SecretString, clap::Error> {
        match value.to_str() {
            Some(token) if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) => {
                Ok(SecretString::from(token))
            }
            _ => Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                "invalid value for '--token <TOKEN>' (not shown): a token is non-empty visible ASCII, without spaces or line breaks\n",
            )
            .with_cmd(cmd)),
        }
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

/// The files of `KUBECONFIG`, else `~/.kube/config`.
fn kubeconfig_paths() -> Vec<PathBuf> {
    match std::env::var_os("KUBECONFIG") {
        Some(value) if !value.is_empty() => std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        _ => std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(".kube").join("config"))
            .into_iter()
            .collect(),
    }
}

fn read(path: &Path) -> Result<Kubeconfig> {
    verbosity::log(
        verbosity::REQUESTS,
        &format!("Config loaded from file:  {}", path.display()),
    );
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
        total = Duration::try_from_secs_f64(secs)
            .ok()
            .and_then(|d| total.checked_add(d))
            .ok_or_else(|| format!("invalid duration {text:?}: too long"))?;
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
        assert!(parse_duration("5125000000000000h").unwrap_err().contains("too long"));
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

    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        connect: ConnectArgs,
    }

    fn flags(args: &[&str]) -> ConnectArgs {
        Flags::try_parse_from(std::iter::once("step").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .connect
    }

    #[test]
    fn kubectl_global_flags_parse_as_kubectl_writes_them() {
        use clap::CommandFactory;
        Flags::command().debug_assert();
        let f = flags(&[
            "-s",
            "https://api:6443",
            "--token=abc.def",
            "--as=system:serviceaccount:ns:reader",
            "--as-group",
            "a",
            "--as-group=b",
            "--as-uid",
            "42",
            "--tls-server-name",
            "kubernetes",
            "-v=6",
        ]);
        assert_eq!(f.server.as_deref(), Some("https://api:6443"));
        assert_eq!(f.impersonate.as_deref(), Some("system:serviceaccount:ns:reader"));
        assert_eq!(f.impersonate_groups, ["a", "b"]);
        assert_eq!(f.impersonate_uid.as_deref(), Some("42"));
        assert_eq!(f.tls_server_name.as_deref(), Some("kubernetes"));
        assert_eq!(f.verbosity, 6);
        assert!(!f.insecure_skip_tls_verify);
        for (args, level) in [
            (&["--v=9"][..], 9),
            (&["-v", "7"][..], 7),
            (&["-v8"][..], 8),
            (&[][..], 0),
        ] {
            assert_eq!(flags(args).verbosity, level, "{args:?}");
        }
        assert!(flags(&["--insecure-skip-tls-verify"]).insecure_skip_tls_verify);
        assert!(flags(&["--insecure-skip-tls-verify=true"]).insecure_skip_tls_verify);
        assert!(!flags(&["--insecure-skip-tls-verify=false"]).insecure_skip_tls_verify);
        assert!(
            Flags::try_parse_from([
                "step",
                "--insecure-skip-tls-verify",
                "--certificate-authority",
                "ca.crt"
            ])
            .is_err()
        );
    }

    #[test]
    fn tokens_are_never_shown() {
        let f = flags(&["--token", "sEcReT-t0ken"]);
        assert!(!format!("{f:?}").contains("sEcReT"), "{f:?}");
        let err = Flags::try_parse_from(["step", "--token", "sEcReT\nsecond-line"]).unwrap_err();
        assert!(!err.to_string().contains("sEcReT"), "{err}");
        assert!(Flags::try_parse_from(["step", "--token", ""]).is_err());
    }

    #[test]
    fn cluster_flags_override_the_kubeconfig_as_client_go_does() {
        let kubeconfig = || Cluster {
            server: Some("https://old:6443".into()),
            certificate_authority_data: Some("Q0E=".into()),
            tls_server_name: Some("old-name".into()),
            proxy_url: Some("http://proxy:3128".into()),
            ..Default::default()
        };
        let mut c = kubeconfig();
        flags(&["--insecure-skip-tls-verify"]).override_cluster(&mut c).unwrap();
        assert_eq!(c.insecure_skip_tls_verify, Some(true));
        assert_eq!(c.certificate_authority_data, None);
        assert_eq!(c.tls_server_name.as_deref(), Some("old-name"));

        let mut c = Cluster {
            insecure_skip_tls_verify: Some(true),
            ..kubeconfig()
        };
        flags(&["--certificate-authority", "/etc/ca.crt"])
            .override_cluster(&mut c)
            .unwrap();
        assert_eq!(c.insecure_skip_tls_verify, Some(false));
        assert_eq!(c.certificate_authority.as_deref(), Some("/etc/ca.crt"));
        assert_eq!(c.certificate_authority_data, None);

        // A new server drops the old server's TLS name unless one is given with it.
        let mut c = kubeconfig();
        flags(&["--server", "https://new:6443"])
            .override_cluster(&mut c)
            .unwrap();
        assert_eq!(c.server.as_deref(), Some("https://new:6443"));
        assert_eq!(c.tls_server_name, None);
        assert_eq!(c.certificate_authority_data.as_deref(), Some("Q0E="));
        assert_eq!(c.proxy_url.as_deref(), Some("http://proxy:3128"));
        let mut c = kubeconfig();
        flags(&["-s", "https://new:6443", "--tls-server-name", "kubernetes"])
            .override_cluster(&mut c)
            .unwrap();
        assert_eq!(c.tls_server_name.as_deref(), Some("kubernetes"));

        let mut c = kubeconfig();
        flags(&[]).override_cluster(&mut c).unwrap();
        assert_eq!(format!("{c:?}"), format!("{:?}", kubeconfig()));
    }

    #[test]
    fn token_and_impersonation_override_the_kubeconfig_user() {
        use secrecy::ExposeSecret;
        let kubeconfig = || AuthInfo {
            token_file: Some("/t".into()),
            client_certificate_data: Some("cert".into()),
            exec: Some(Default::default()),
            impersonate_groups: Some(vec!["from-kubeconfig".into()]),
            ..Default::default()
        };
        let mut user = kubeconfig();
        flags(&["--token", "abc", "--as", "jane", "--as-group", "ops", "--as-uid", "7"])
            .override_user(&mut user)
            .unwrap();
        assert_eq!(
            user.token.as_ref().map(|t| t.expose_secret().to_string()).as_deref(),
            Some("abc")
        );
        assert!(user.token_file.is_none() && user.exec.is_none());
        assert_eq!(user.client_certificate_data.as_deref(), Some("cert"));
        assert_eq!(user.impersonate.as_deref(), Some("jane"));
        assert_eq!(user.impersonate_groups, Some(vec!["ops".to_string()]));
        assert_eq!(user.impersonate_uid.as_deref(), Some("7"));

        let mut user = kubeconfig();
        flags(&["--as", "jane"]).override_user(&mut user).unwrap();
        assert_eq!(user.impersonate_groups, Some(vec!["from-kubeconfig".to_string()]));
        assert!(user.exec.is_some() && user.token.is_none());

        for args in [&["--as-group", "ops"][..], &["--as-uid", "7"][..]] {
            let err = flags(args).override_user(&mut AuthInfo::default()).unwrap_err();
            assert!(matches!(err, Error::Usage(_)), "{args:?}: {err:?}");
            assert!(
                err.to_string().starts_with("--as-group and --as-uid need --as"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_source_is_picked_as_client_go_picks_it() {
        use Source::*;
        // (kubeconfig names a context, --server given, in a pod) -> source
        let table = [
            ((true, false, false), Some(Kubeconfig)),
            ((true, true, true), Some(Kubeconfig)),
            ((false, true, true), Some(Flags)),
            ((false, true, false), Some(Flags)),
            ((false, false, true), Some(InCluster)),
            ((false, false, false), None),
        ];
        for ((context, server, pod), want) in table {
            assert_eq!(pick(context, server, pod), want, "{context} {server} {pod}");
        }
    }

    #[test]
    fn the_selected_cluster_follows_the_context_or_cluster_flag() {
        let mut k = single_context(
            Cluster {
                server: Some("https://one".into()),
                ..Default::default()
            },
            None,
            Some("ns".into()),
        );
        k.clusters.push(NamedCluster {
            name: "two".into(),
            cluster: Some(Cluster {
                server: Some("https://two".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        let server = |k: &mut Kubeconfig, o: &KubeConfigOptions| selected_cluster(k, o).and_then(|c| c.server.clone());
        assert_eq!(server(&mut k, &Default::default()).as_deref(), Some("https://one"));
        let two = KubeConfigOptions {
            cluster: Some("two".into()),
            ..Default::default()
        };
        assert_eq!(server(&mut k, &two).as_deref(), Some("https://two"));
        let missing = KubeConfigOptions {
            context: Some("nowhere".into()),
            ..Default::default()
        };
        assert_eq!(server(&mut k, &missing), None);
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
