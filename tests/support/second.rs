//! A second sandbox beside the default one, for what spans two clusters (a live
//! switchover, the fleet view), and one kubeconfig naming both.
//!
//! The second sandbox lives in `<state>-b` with every port 1000 below the first's
//! (23379 → 22379 by default), so it never collides with the default sandbox, and each
//! `SANDBOX_B_STATE` / `SANDBOX_B_<NAME>_PORT` set in the environment overrides one of them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Place, Sandbox, state_dir};

/// The port variables `tests/sandbox/lib.sh` reads, with its defaults.
const PORTS: [(&str, u16); 8] = [
    ("ETCD_PORT", 23379),
    ("ETCD_PEER_PORT", 23380),
    ("APISERVER_PORT", 23443),
    ("KCM_PORT", 23257),
    ("SCHEDULER_PORT", 23259),
    ("KWOK_PORT", 23247),
    ("INJECTOR_PORT", 23444),
    ("INJECTOR_PROXY_PORT", 23445),
];

/// How far below the first sandbox's ports the second's are.
const OFFSET: u16 = 1000;

impl Place {
    /// The second sandbox: `SANDBOX_B_*` where set, else the first's state dir with `-b`
    /// and its ports minus [`OFFSET`].
    fn second() -> Place {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let state = var("SANDBOX_B_STATE").map_or_else(
            || {
                let mut s = state_dir().into_os_string();
                s.push("-b");
                PathBuf::from(s)
            },
            PathBuf::from,
        );
        let mut env = vec![("SANDBOX_STATE".to_owned(), state.display().to_string())];
        for (name, default) in PORTS {
            let port = var(&format!("SANDBOX_B_{name}")).unwrap_or_else(|| {
                let first = var(&format!("SANDBOX_{name}"))
                    .map(|p| p.parse::<u16>().unwrap_or_else(|e| panic!("SANDBOX_{name}={p}: {e}")))
                    .unwrap_or(default);
                assert!(
                    first > OFFSET,
                    "SANDBOX_{name}={first} leaves no room for a second sandbox below it"
                );
                (first - OFFSET).to_string()
            });
            env.push((format!("SANDBOX_{name}"), port));
        }
        Place { state, env }
    }
}

impl Sandbox {
    /// The second sandbox (see the module's notes), reset to `scenario` and held as
    /// [`Sandbox::fresh`] holds the first.
    ///
    /// # Panics
    /// When `tests/sandbox/up` fails; the panic carries its output.
    pub fn second(scenario: &str) -> Sandbox {
        Place::second().fresh(scenario)
    }

    /// Both sandboxes at once: the default one reset to `first`, the second to `second`,
    /// started side by side. The locks are always taken first then second, so two tests
    /// asking for a pair wait for each other instead of deadlocking.
    ///
    /// # Panics
    /// When either `tests/sandbox/up` fails.
    pub fn pair(first: &str, second: &str) -> (Sandbox, Sandbox) {
        let a = Place::first();
        let b = Place::second();
        let lock_a = super::lock_sandbox(&a);
        let lock_b = super::lock_sandbox(&b);
        // Build once before the two `up`s run side by side: a cold build must not run twice
        // into the same cache.
        let build = super::sandbox_dir().join("build");
        let built = Command::new(&build)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", build.display()));
        assert!(
            built.status.success(),
            "{} failed:\n{}",
            build.display(),
            String::from_utf8_lossy(&built.stderr)
        );
        let (kubeconfig_a, kubeconfig_b) = std::thread::scope(|s| {
            let up_b = s.spawn(|| super::sandbox_up(&b, &["--scenario", second]));
            let kubeconfig_a = super::sandbox_up(&a, &["--scenario", first]);
            (
                kubeconfig_a,
                up_b.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            )
        });
        let make = |kubeconfig, scenario: &str, place, lock| Sandbox {
            kubeconfig,
            scenario: scenario.to_owned(),
            place,
            _lock: lock,
        };
        (
            make(kubeconfig_a, first, a, lock_a),
            make(kubeconfig_b, second, b, lock_b),
        )
    }
}

/// One context of a kubeconfig that names several clusters.
pub enum FleetContext<'a> {
    /// The sandbox as its admin.
    Admin(&'a str, &'a Sandbox),
    /// The sandbox's CA and admin, but a server address where nothing listens (port 1 on
    /// the loopback): every request is refused.
    Unreachable(&'a str, &'a Sandbox),
    /// The sandbox, authenticating with this bearer token.
    Token(&'a str, &'a Sandbox, &'a str),
    /// The sandbox's CA and admin at another server URL (a listener that never answers).
    Server(&'a str, &'a Sandbox, &'a str),
}

/// Writes to `path` one kubeconfig holding each context, named as given (cluster and user
/// take the same name); the first is the current context.
pub fn fleet_kubeconfig(path: &Path, contexts: &[FleetContext<'_>]) -> PathBuf {
    let mut clusters = vec![];
    let mut users = vec![];
    let mut named = vec![];
    for c in contexts {
        let (name, sandbox) = match c {
            FleetContext::Admin(n, s)
            | FleetContext::Unreachable(n, s)
            | FleetContext::Token(n, s, _)
            | FleetContext::Server(n, s, _) => (*n, *s),
        };
        let admin = sandbox.admin_kubeconfig();
        let mut cluster = admin["clusters"][0]["cluster"].clone();
        let mut user = admin["users"][0]["user"].clone();
        match c {
            FleetContext::Admin(..) => {}
            FleetContext::Unreachable(..) => cluster["server"] = "https://127.0.0.1:1".into(),
            FleetContext::Token(_, _, token) => user = serde_json::json!({ "token": token }),
            FleetContext::Server(_, _, url) => cluster["server"] = (*url).into(),
        }
        clusters.push(serde_json::json!({ "name": name, "cluster": cluster }));
        users.push(serde_json::json!({ "name": name, "user": user }));
        named.push(serde_json::json!({
            "name": name,
            "context": { "cluster": name, "user": name, "namespace": "default" },
        }));
    }
    let current = named.first().map(|c| c["name"].clone()).unwrap_or_default();
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": users,
        "contexts": named,
        "current-context": current,
    });
    let text = serde_json::to_string_pretty(&doc).expect("kubeconfig as JSON");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.to_path_buf()
}
