//! Which proxy a request to the API server goes through, decided as kubectl decides it:
//! the cluster's `proxy-url` from the kubeconfig when set (client-go's
//! `tools/clientcmd/client_config.go`, `clientConfig.Proxy = http.ProxyURL(u)`), else Go's
//! `http.ProxyFromEnvironment` (`golang.org/x/net/http/httpproxy/proxy.go`): `HTTPS_PROXY`
//! for an `https://` server, `HTTP_PROXY` for `http://`, never for `localhost` or a loopback
//! address, and never for a server `NO_PROXY` matches.
//!
//! kube 5 reads the same variables but matches `NO_PROXY` against the proxy's own address
//! rather than the server's, so the decision is made here and handed to kube as
//! `Config::proxy_url`. kube also refuses a `NO_PROXY` with an empty entry (`a,b,`), which
//! Go skips: [`super::tidy_no_proxy`] drops those entries when a step starts.

use std::net::IpAddr;

use http::Uri;

use crate::error::{Error, Result};

/// The proxy for requests to `server`: `cluster_proxy` (the kubeconfig's `proxy-url`) when
/// given, else the one the environment names for it. `env` reads a variable (the process
/// environment outside tests).
pub(crate) fn proxy_for(
    cluster_proxy: Option<&str>,
    server: &Uri,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Uri>> {
    if let Some(proxy) = cluster_proxy.filter(|p| !p.is_empty()) {
        return parse_proxy(proxy, "the kubeconfig's proxy-url").map(Some);
    }
    let first = |names: [&str; 2]| names.into_iter().find_map(|n| env(n).filter(|v| !v.is_empty()));
    let (proxy, variable) = match server.scheme_str() {
        Some("https") => (first(["HTTPS_PROXY", "https_proxy"]), "HTTPS_PROXY"),
        Some("http") => (first(["HTTP_PROXY", "http_proxy"]), "HTTP_PROXY"),
        _ => (None, ""),
    };
    let Some(proxy) = proxy else { return Ok(None) };
    let no_proxy = first(["NO_PROXY", "no_proxy"]).unwrap_or_default();
    if !use_proxy(server, &no_proxy) {
        return Ok(None);
    }
    parse_proxy(&proxy, variable).map(Some)
}

/// `NO_PROXY` without its empty entries, the others as they were.
pub(super) fn without_empty_entries(no_proxy: &str) -> String {
    no_proxy
        .split(',')
        .filter(|entry| !entry.trim().is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// A proxy address as Go reads it: `host:port` without a scheme means `http://host:port`.
fn parse_proxy(text: &str, from: &str) -> Result<Uri> {
    let text = text.trim();
    let parsed = text
        .parse::<Uri>()
        .ok()
        .filter(|u| u.scheme().is_some() && u.host().is_some());
    parsed
        .or_else(|| format!("http://{text}").parse::<Uri>().ok())
        .ok_or_else(|| Error::Usage(format!("invalid proxy address {text:?} (from {from})")))
}

/// Whether a request to `server` goes through the proxy: Go's `useProxy`.
fn use_proxy(server: &Uri, no_proxy: &str) -> bool {
    let Some(host) = server.host() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let port = server.port_u16().unwrap_or(match server.scheme_str() {
        Some("http") => 80,
        _ => 443,
    });
    let ip = host.parse::<IpAddr>().ok();
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    !no_proxy
        .split(',')
        .filter_map(|entry| Matcher::parse(&entry.trim().to_ascii_lowercase()))
        .any(|m| m.matches(&host, port, ip))
}

/// One entry of `NO_PROXY`, as Go's `httpproxy` parses it.
#[derive(Debug, PartialEq)]
enum Matcher {
    /// `*`: no proxy for anything.
    All,
    /// `10.0.0.0/8`, `fd00::/8`.
    Cidr(IpAddr, u8),
    /// `10.1.2.3`, `10.1.2.3:6443`, `[::1]:6443`.
    Ip(IpAddr, Option<u16>),
    /// `example.com` (itself and its subdomains), `.example.com` and `*.example.com` (its
    /// subdomains only), each with an optional `:port`.
    Domain {
        suffix: String,
        port: Option<u16>,
        itself: bool,
    },
}

impl Matcher {
    fn parse(entry: &str) -> Option<Matcher> {
        if entry.is_empty() {
            return None;
        }
        if entry == "*" {
            return Some(Matcher::All);
        }
        if let Some((addr, bits)) = entry.split_once('/') {
            let ip = addr.parse::<IpAddr>().ok()?;
            let bits = bits
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= if ip.is_ipv4() { 32 } else { 128 })?;
            return Some(Matcher::Cidr(ip, bits));
        }
        let (host, port) = split_port(entry);
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok()?),
            None => None,
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(Matcher::Ip(ip, port));
        }
        if host.is_empty() {
            return None;
        }
        let host = host.strip_prefix('*').filter(|h| h.starts_with('.')).unwrap_or(host);
        let itself = !host.starts_with('.');
        let suffix = if itself { format!(".{host}") } else { host.to_string() };
        Some(Matcher::Domain { suffix, port, itself })
    }

    fn matches(&self, host: &str, port: u16, ip: Option<IpAddr>) -> bool {
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        match self {
            Matcher::All => true,
            Matcher::Cidr(net, bits) => ip.is_some_and(|ip| in_network(ip, *net, *bits)),
            Matcher::Ip(want, p) => ip == Some(*want) && port_ok(p),
            Matcher::Domain {
                suffix,
                port: p,
                itself,
            } => ip.is_none() && (host.ends_with(suffix.as_str()) || (*itself && host == &suffix[1..])) && port_ok(p),
        }
    }
}

/// `host:port` → (`host`, `port`), `[v6]:port` → (`v6`, `port`); anything else is a bare host.
fn split_port(entry: &str) -> (&str, Option<&str>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once("]:") {
            Some((host, port)) => (host, Some(port)),
            None => (rest.trim_end_matches(']'), None),
        };
    }
    match entry.rsplit_once(':') {
        // More than one colon: a bare IPv6 address.
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (entry, None),
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_string())
    }

    fn proxy(server: &str, vars: &[(&str, &str)]) -> Option<String> {
        proxy_for(None, &server.parse().unwrap(), env(vars))
            .unwrap()
            .map(|u| u.to_string())
    }

    const PROXY: (&str, &str) = ("HTTPS_PROXY", "http://proxy.corp:3128");

    #[test]
    fn https_servers_use_https_proxy_and_http_servers_http_proxy() {
        let vars = [PROXY, ("HTTP_PROXY", "http://plain:8080")];
        assert_eq!(
            proxy("https://api.corp:6443", &vars).as_deref(),
            Some("http://proxy.corp:3128/")
        );
        assert_eq!(
            proxy("http://api.corp:8080", &vars).as_deref(),
            Some("http://plain:8080/")
        );
        assert_eq!(proxy("http://api.corp:8080", &[PROXY]), None);
        assert_eq!(
            proxy("https://api.corp", &[("https_proxy", "socks5://s:1080")]).as_deref(),
            Some("socks5://s:1080/")
        );
        assert_eq!(proxy("https://api.corp", &[]), None);
    }

    #[test]
    fn a_proxy_without_scheme_is_http_as_in_go() {
        assert_eq!(
            proxy("https://api.corp", &[("HTTPS_PROXY", "proxy.corp:3128")]).as_deref(),
            Some("http://proxy.corp:3128/")
        );
    }

    #[test]
    fn localhost_and_loopback_never_go_through_the_proxy() {
        for server in [
            "https://localhost:6443",
            "https://127.0.0.1:6443",
            "https://127.3.2.1",
            "https://[::1]:6443",
        ] {
            assert_eq!(proxy(server, &[PROXY]), None, "{server}");
        }
    }

    #[test]
    fn no_proxy_entries_match_as_in_go() {
        let cases = [
            ("https://api.corp:6443", "api.corp", true),
            ("https://api.corp:6443", "corp", true),
            ("https://api.corp:6443", ".corp", true),
            ("https://api.corp:6443", "*.corp", true),
            ("https://corp:6443", ".corp", false),
            ("https://corp:6443", "corp", true),
            ("https://notcorp:6443", "corp", false),
            ("https://api.corp:6443", "api.corp:6443", true),
            ("https://api.corp:6443", "api.corp:443", false),
            ("https://api.corp", "api.corp:443", true),
            ("https://10.1.2.3:6443", "10.0.0.0/8", true),
            ("https://11.1.2.3:6443", "10.0.0.0/8", false),
            ("https://10.1.2.3:6443", "10.1.2.3", true),
            ("https://10.1.2.3:6443", "10.1.2.3:6443", true),
            ("https://10.1.2.3:6443", "10.1.2.3:443", false),
            ("https://[fd00::5]:6443", "fd00::/8", true),
            ("https://[fd00::5]:6443", "[fd00::5]:6443", true),
            ("https://[fd00::5]:6443", "fd00::5", true),
            ("https://10.1.2.3:6443", "1.2.3", false),
            ("https://API.CORP:6443", "api.corp", true),
            ("https://api.corp:6443", "*", true),
            ("https://api.corp:6443", " other , api.corp ,", true),
            ("https://api.corp:6443", ",,", false),
        ];
        for (server, no_proxy, bypass) in cases {
            let got = proxy(server, &[PROXY, ("NO_PROXY", no_proxy)]);
            assert_eq!(got.is_none(), bypass, "{server} with NO_PROXY={no_proxy:?}");
        }
        assert_eq!(proxy("https://api.corp", &[PROXY, ("no_proxy", "api.corp")]), None);
        // NO_PROXY wins over no_proxy, as in Go.
        assert!(
            proxy(
                "https://api.corp",
                &[PROXY, ("NO_PROXY", "other"), ("no_proxy", "api.corp")]
            )
            .is_some()
        );
    }

    #[test]
    fn empty_no_proxy_entries_are_dropped_and_the_rest_kept() {
        assert_eq!(without_empty_entries("a, .b ,"), "a, .b ");
        assert_eq!(without_empty_entries(",,10.0.0.0/8,,*.corp,"), "10.0.0.0/8,*.corp");
        assert_eq!(without_empty_entries(" , "), "");
        assert_eq!(without_empty_entries("a,b"), "a,b");
        for value in ["a, .b ,", ",,10.0.0.0/8,,*.corp,"] {
            let server: Uri = "https://x.corp".parse().unwrap();
            let before = proxy_for(None, &server, env(&[PROXY, ("NO_PROXY", value)])).unwrap();
            let tidy = without_empty_entries(value);
            let after = proxy_for(None, &server, env(&[PROXY, ("NO_PROXY", &tidy)])).unwrap();
            assert_eq!(before, after, "{value:?}");
        }
    }

    #[test]
    fn the_kubeconfig_proxy_url_wins_over_the_environment_and_no_proxy() {
        let server: Uri = "https://127.0.0.1:6443".parse().unwrap();
        let got = proxy_for(Some("socks5://jump:1080"), &server, env(&[PROXY, ("NO_PROXY", "*")])).unwrap();
        assert_eq!(got.unwrap().to_string(), "socks5://jump:1080/");
        let got = proxy_for(Some(""), &server, env(&[])).unwrap();
        assert_eq!(got, None);
    }

    #[test]
    fn a_malformed_proxy_is_a_usage_error_naming_its_variable() {
        let err = proxy_for(
            None,
            &"https://api.corp".parse().unwrap(),
            env(&[("HTTPS_PROXY", "http://a b")]),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "invalid proxy address \"http://a b\" (from HTTPS_PROXY)"
        );
    }
}
