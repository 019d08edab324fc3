//! The dispatcher as krew lays it out: `bin/kubectl-mesh` a symlink into a store folder
//! that holds the step binaries. Steps here are small scripts that report how they were run,
//! so the tests see exactly what the dispatcher passed on.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MESH: &str = env!("CARGO_BIN_EXE_kubectl-mesh");

struct Layout {
    root: PathBuf,
    store: PathBuf,
    bin: PathBuf,
    /// A folder on PATH after `bin`, like /usr/local/bin.
    elsewhere: PathBuf,
}

impl Layout {
    fn new(tag: &str) -> Layout {
        let root = std::env::temp_dir().join(format!("kubectl-mesh-dispatch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let layout = Layout {
            store: root.join("store/mesh/v0.1.0"),
            bin: root.join("bin"),
            elsewhere: root.join("elsewhere"),
            root,
        };
        for dir in [&layout.store, &layout.bin, &layout.elsewhere] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let installed = layout.store.join("kubectl-mesh");
        if std::fs::hard_link(MESH, &installed).is_err() {
            std::fs::copy(MESH, &installed).unwrap();
        }
        symlink(&installed, layout.bin.join("kubectl-mesh")).unwrap();
        layout
    }

    /// A step that prints where it ran from and its arguments, then exits with `code`.
    fn step(&self, dir: &Path, name: &str, code: i32) {
        script(
            &dir.join(format!("kubectl-mesh-{name}")),
            &format!("echo \"$0 $*\"\nexit {code}\n"),
        );
    }

    fn path(&self) -> std::ffi::OsString {
        std::env::join_paths([&self.bin, &self.elsewhere, Path::new("/usr/bin"), Path::new("/bin")]).unwrap()
    }

    /// Run the dispatcher through krew's symlink, as kubectl would.
    fn mesh(&self, args: &[&str]) -> Output {
        Command::new(self.bin.join("kubectl-mesh"))
            .args(args)
            .env("PATH", self.path())
            .output()
            .unwrap()
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_sibling_in_the_store_runs_even_when_path_has_another() {
    let l = Layout::new("sibling");
    l.step(&l.store, "roll", 7);
    l.step(&l.elsewhere, "roll", 0);
    let out = l.mesh(&["roll", "--one-at-a-time", "-n", "default"]);
    let expected = format!(
        "{} --one-at-a-time -n default\n",
        l.store.join("kubectl-mesh-roll").display()
    );
    assert_eq!(text(&out.stdout), expected, "stderr: {}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(7), "the step's exit code passes through");
}

#[test]
fn a_step_missing_from_the_store_is_taken_from_path() {
    let l = Layout::new("path");
    l.step(&l.elsewhere, "prune", 0);
    let out = l.mesh(&["prune", "1-27"]);
    assert_eq!(
        text(&out.stdout),
        format!("{} 1-27\n", l.elsewhere.join("kubectl-mesh-prune").display())
    );
    assert!(out.status.success());
}

#[test]
fn a_signal_that_ends_the_step_ends_the_dispatcher() {
    let l = Layout::new("signal");
    script(&l.store.join("kubectl-mesh-roll"), "kill -TERM $$\nsleep 5\n");
    let out = l.mesh(&["roll"]);
    assert_eq!(out.status.signal(), Some(15), "exec, not a child: {:?}", out.status);
}

#[test]
fn a_missing_step_says_where_it_looked() {
    let l = Layout::new("missing");
    let out = l.mesh(&["relabel", "--to", "1-28"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("kubectl-mesh-relabel is not installed"), "{err}");
    assert!(
        err.contains(&l.store.canonicalize().unwrap().display().to_string()),
        "{err}"
    );
}

#[test]
fn an_unknown_step_is_a_usage_error_listing_the_steps() {
    let l = Layout::new("unknown");
    let out = l.mesh(&["upgrade"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: kubectl mesh: unknown step \"upgrade\""),
        "{err}"
    );
    assert!(err.contains("revisions, relabel, roll, prune, switchover"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn alone_it_prints_the_workflow_and_what_is_installed_where() {
    let l = Layout::new("overview");
    l.step(&l.store, "revisions", 0);
    l.step(&l.elsewhere, "roll", 0);
    let out = l.mesh(&[]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1. kubectl mesh revisions"), "{stdout}");
    assert!(stdout.contains("6. kubectl mesh prune 1-27"), "{stdout}");
    let store = l.store.canonicalize().unwrap();
    assert!(
        stdout.contains(&format!("revisions  {}/kubectl-mesh-revisions\n", store.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "roll       {}/kubectl-mesh-roll (from PATH)",
            l.elsewhere.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("prune      not installed"), "{stdout}");
}

#[test]
fn version_runs_every_binary() {
    let l = Layout::new("version");
    for step in ["revisions", "relabel", "roll", "prune", "switchover"] {
        script(
            &l.store.join(format!("kubectl-mesh-{step}")),
            &format!("echo \"kubectl-mesh-{step} 0.1.0 (commit {step}0000000)\"\n"),
        );
    }
    let out = l.mesh(&["version"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with("kubectl-mesh ") && first.contains("(commit "),
        "{stdout}"
    );
    assert!(
        stdout.contains("kubectl-mesh-roll        0.1.0 (commit roll0000000)"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 6);
    assert!(text(&out.stderr).contains("different builds"));

    std::fs::remove_file(l.store.join("kubectl-mesh-prune")).unwrap();
    let out = l.mesh(&["version"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("kubectl-mesh-prune       not installed"));
}

#[test]
fn kubectl_runs_the_dispatcher_and_its_completion() {
    let Ok(kubectl) = which::which("kubectl") else {
        panic!("kubectl is not on PATH: these tests run the plugin through the real kubectl");
    };
    let l = Layout::new("kubectl");
    l.step(&l.store, "roll", 3);
    symlink(l.store.join("kubectl-mesh"), l.bin.join("kubectl_complete-mesh")).unwrap();
    let run = |args: &[&str]| {
        Command::new(&kubectl)
            .args(args)
            .env("PATH", l.path())
            .env("KUBECONFIG", l.root.join("none"))
            .output()
            .unwrap()
    };

    let out = run(&["mesh", "roll", "--dry-run"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("kubectl-mesh-roll --dry-run\n"));

    // kubectl ≥ 1.26 asks kubectl_complete-mesh; `__complete` is kubectl's own hidden command.
    let out = run(&["__complete", "mesh", "ro"]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("roll\t"), "{stdout}");
    assert!(stdout.ends_with(":4\n"), "{stdout}");
    let out = run(&["__complete", "mesh", "revisions", "--che"]);
    assert_eq!(
        text(&out.stdout),
        "--check\tExit with code 3 when any proxy is out of date\n:4\n"
    );
    // No cluster behind KUBECONFIG: no candidates, no error, no file names.
    let out = run(&["__complete", "mesh", "revisions", "-n", ""]);
    assert_eq!(text(&out.stdout), ":4\n");
    assert!(out.status.success());
}

#[test]
fn completion_scripts_cover_the_steps() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(MESH).args(["completion", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains("kubectl-mesh"), "{shell}");
        for needle in ["revisions", "relabel", "roll", "prune", "namespaces"] {
            assert!(script.contains(needle), "{shell} script lacks {needle}");
        }
    }
    let out = Command::new(MESH).args(["completion", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown shell \"tcsh\""));
}

#[test]
fn a_cluster_that_never_answers_costs_a_completion_two_seconds_not_a_hang() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold every connection without a byte in reply, like a wedged API server.
    std::thread::spawn(move || {
        let mut held = vec![];
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let l = Layout::new("hang");
    let kubeconfig = l.root.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: wedged\n\
             clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n\
             contexts: [{{name: wedged, context: {{cluster: c, user: u}}}}]\n"
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(MESH)
        .args(["__complete", "prune", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(text(&out.stdout), ":4\n", "{}", text(&out.stderr));
    assert!(
        out.stderr.is_empty(),
        "a completion prints no errors: {}",
        text(&out.stderr)
    );
    assert!(
        took >= std::time::Duration::from_millis(1900) && took < std::time::Duration::from_secs(4),
        "took {took:?}"
    );
}
