//! `kubectl mesh` on the sandbox: kubectl's own plugin completion reaching
//! `kubectl_complete-mesh`, which looks revisions, tags and namespaces up in the cluster.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use kubectl_mesh_e2e::{Sandbox, bin_dir};

struct Links(PathBuf);

impl Links {
    /// A folder of symlinks to the built `kubectl-mesh`, under the given names.
    fn new(tag: &str, names: &[&str]) -> Links {
        let dir = std::env::temp_dir().join(format!("kubectl-mesh-complete-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in names {
            symlink(bin_dir().join("kubectl-mesh"), dir.join(name)).unwrap();
        }
        Links(dir)
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn complete(sandbox: &Sandbox, path: &[&Path], words: &[&str]) -> String {
    let mut cmd = sandbox.kubectl();
    cmd.env("PATH", std::env::join_paths(path).unwrap())
        .arg("__complete")
        .args(words);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kubectl_completes_revisions_tags_and_namespaces_from_the_cluster() {
    let sandbox = Sandbox::fresh("canary");
    let system = [Path::new("/usr/bin"), Path::new("/bin")];

    // As krew installs it: kubectl-mesh alone on PATH, plus the completion link.
    let krew = Links::new("krew", &["kubectl-mesh", "kubectl_complete-mesh"]);
    let path = [krew.0.as_path(), system[0], system[1]];
    assert_eq!(
        complete(&sandbox, &path, &["mesh", "relabel", "--to", ""]),
        "1-27\trevision, istiod 1.27.4, tags default\n\
         1-28\trevision, istiod 1.28.3\n\
         default\ttag -> 1-27\n:4\n"
    );
    assert_eq!(
        complete(&sandbox, &path, &["mesh", "prune", "1-2"]),
        "1-27\trevision, istiod 1.27.4, tags default\n1-28\trevision, istiod 1.28.3\n:4\n"
    );
    // switchover's --from and --to name kubeconfig contexts.
    let contexts = complete(&sandbox, &path, &["mesh", "switchover", "--from", ""]);
    assert!(
        contexts.lines().any(|l| l.split('\t').next() == Some("sandbox")),
        "{contexts}"
    );
    let namespaces = complete(&sandbox, &path, &["mesh", "roll", "-n", ""]);
    for ns in ["default", "istio-system", "kube-system"] {
        assert!(namespaces.lines().any(|l| l == ns), "{ns} missing: {namespaces}");
    }
    // A context the kubeconfig does not have: nothing, quietly.
    assert_eq!(
        complete(
            &sandbox,
            &path,
            &["mesh", "roll", "--context", "nope", "--revision", ""]
        ),
        ":4\n"
    );

    // Installed straight on PATH, kubectl sees `mesh roll` as its own plugin and asks
    // kubectl_complete-mesh-roll.
    let straight = Links::new("path", &["kubectl_complete-mesh-roll"]);
    let bins = bin_dir();
    let path = [straight.0.as_path(), bins.as_path(), system[0], system[1]];
    assert_eq!(
        complete(&sandbox, &path, &["mesh", "roll", "--revision", "1-2"]),
        "1-27\trevision, istiod 1.27.4, tags default\n1-28\trevision, istiod 1.28.3\n:4\n"
    );
    let flags = complete(&sandbox, &path, &["mesh", "roll", "--one"]);
    assert!(flags.starts_with("--one-at-a-time\t"), "{flags}");
}
