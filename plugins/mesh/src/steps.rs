//! The steps of the upgrade and where their binaries are: next to `kubectl-mesh` first
//! (krew installs them together in its store and links only `kubectl-mesh`), then on PATH.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// One step of the upgrade, shipped as its own binary `kubectl-mesh-<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) name: &'static str,
    pub(crate) summary: &'static str,
}

impl Step {
    pub(crate) fn binary(&self) -> String {
        format!("kubectl-mesh-{}", self.name)
    }
}

/// In the order an upgrade uses them.
pub(crate) const STEPS: [Step; 5] = [
    Step {
        name: "revisions",
        summary: "Show the control-plane revisions and tags, what each serves, and what is out of date",
    },
    Step {
        name: "relabel",
        summary: "Point namespaces (or a revision tag) at another control-plane revision",
    },
    Step {
        name: "roll",
        summary: "Restart the workloads running out-of-date proxies, gated on healthy rollouts",
    },
    Step {
        name: "prune",
        summary: "Remove a control-plane revision that no longer serves any proxy",
    },
    Step {
        name: "switchover",
        summary: "Check whether a new cluster can take an old cluster's load (a live cluster switchover)",
    },
];

pub(crate) fn find(name: &str) -> Option<Step> {
    STEPS.iter().copied().find(|s| s.name == name)
}

/// Where a binary was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// In the folder of the running `kubectl-mesh` (after resolving symlinks).
    Sibling(PathBuf),
    /// On PATH.
    Path(PathBuf),
}

impl Found {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Found::Sibling(p) | Found::Path(p) => p,
        }
    }
}

/// The folder the running executable really lives in. krew's `bin/kubectl-mesh` is a
/// symlink into `store/mesh/<version>/`, where the step binaries are: only the
/// canonicalized path leads there.
pub(crate) fn install_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
    exe.parent().map(Path::to_path_buf)
}

/// Find `binary` next to the dispatcher first, then on `path` (a PATH value).
pub(crate) fn resolve(binary: &str, install_dir: Option<&Path>, path: Option<&OsStr>) -> Option<Found> {
    if let Some(dir) = install_dir {
        let candidate = dir.join(binary);
        if is_executable(&candidate) {
            return Some(Found::Sibling(candidate));
        }
    }
    let path = path?;
    let cwd = std::env::current_dir().ok()?;
    which::which_in(binary, Some(path), cwd).ok().map(Found::Path)
}

/// [`resolve`] with this process's install folder and PATH.
pub(crate) fn locate(binary: &str) -> Option<Found> {
    resolve(binary, install_dir().as_deref(), std::env::var_os("PATH").as_deref())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kubectl-mesh-steps-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn executable(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_sibling_wins_over_path() {
        let store = temp("store");
        let bin = temp("bin");
        let sibling = executable(&store, "kubectl-mesh-roll", 0o755);
        executable(&bin, "kubectl-mesh-roll", 0o755);
        let path = std::env::join_paths([&bin]).unwrap();
        assert_eq!(
            resolve("kubectl-mesh-roll", Some(&store), Some(&path)),
            Some(Found::Sibling(sibling))
        );
    }

    #[test]
    fn path_is_used_when_there_is_no_sibling() {
        let store = temp("empty-store");
        let bin = temp("path");
        let on_path = executable(&bin, "kubectl-mesh-prune", 0o755);
        let path = std::env::join_paths([Path::new("/nonexistent"), &bin]).unwrap();
        assert_eq!(
            resolve("kubectl-mesh-prune", Some(&store), Some(&path)),
            Some(Found::Path(on_path))
        );
    }

    #[test]
    fn a_sibling_that_is_not_executable_is_skipped() {
        let store = temp("noexec");
        executable(&store, "kubectl-mesh-relabel", 0o644);
        assert_eq!(resolve("kubectl-mesh-relabel", Some(&store), None), None);
        let path = std::env::join_paths([&store]).unwrap();
        assert_eq!(resolve("kubectl-mesh-relabel", None, Some(&path)), None);
    }

    #[test]
    fn steps_are_in_upgrade_order() {
        let names: Vec<_> = STEPS.iter().map(|s| s.name).collect();
        assert_eq!(names, ["revisions", "relabel", "roll", "prune", "switchover"]);
        assert_eq!(find("roll").unwrap().binary(), "kubectl-mesh-roll");
        assert!(find("rol").is_none());
    }
}
