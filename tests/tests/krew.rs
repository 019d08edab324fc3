//! Installing kubectl-mesh with the real krew: the archive and manifest that
//! `release/build-archive` makes, installed into a temporary KREW_ROOT, used through krew's
//! symlink, listed by kubectl without warnings, and uninstalled without leftovers.
//!
//! Needs `go` (krew is built once from its Go module, cached by release/krew), `git`,
//! kubectl, and the workspace binaries (`cargo build --workspace --bins`): the archive packs
//! those debug binaries rather than building release ones, which would take minutes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kubectl_mesh_e2e::bin_dir;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run, require success, return stdout; the command and its output go to the transcript.
fn run(transcript: &mut String, what: &str, cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    transcript.push_str(&format!(
        "$ {what}\n{}{}[exit {}]\n\n",
        text(&out.stdout),
        text(&out.stderr),
        out.status.code().map_or("signal".into(), |c| c.to_string())
    ));
    assert!(out.status.success(), "{what} failed:\n{transcript}");
    out
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn krew_installs_the_archive_and_kubectl_mesh_reaches_every_step_through_its_symlink() {
    let repo = repo();
    let kubectl = which_kubectl();
    let work = std::env::temp_dir().join(format!("kubectl-mesh-krew-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let krew_root = work.join("krew");
    let dist = work.join("dist");
    std::fs::create_dir_all(&krew_root).unwrap();
    let mut transcript = String::new();

    let krew_dir = run(
        &mut transcript,
        "release/krew",
        Command::new(repo.join("release/krew")).current_dir(&repo),
    );
    let krew_dir = PathBuf::from(text(&krew_dir.stdout).trim());
    assert!(krew_dir.join("kubectl-krew").is_file(), "{transcript}");

    let built = run(
        &mut transcript,
        &format!(
            "release/build-archive --bin-dir {} --out {}",
            bin_dir().display(),
            dist.display()
        ),
        Command::new(repo.join("release/build-archive"))
            .args([
                "--bin-dir".as_ref(),
                bin_dir().as_os_str(),
                "--out".as_ref(),
                dist.as_os_str(),
            ])
            .current_dir(&repo),
    );
    let built = text(&built.stdout);
    let mut lines = built.lines();
    let archive = PathBuf::from(lines.next().expect("archive path"));
    let manifest = PathBuf::from(lines.next().expect("manifest path"));
    assert!(
        archive
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("_linux_amd64.tar.gz")
    );
    assert_eq!(manifest.file_name().unwrap(), "mesh.yaml");
    let rendered = std::fs::read_to_string(&manifest).unwrap();
    let sha = text(&Command::new("sha256sum").arg(&archive).output().unwrap().stdout);
    let sha = sha.split_whitespace().next().unwrap();
    assert!(rendered.contains(&format!("sha256: {sha}\n")), "{rendered}");
    assert!(!rendered.contains("{{"), "placeholders left:\n{rendered}");

    // krew-index's own validator: the structural rules and the platform selectors.
    run(
        &mut transcript,
        "validate-krew-manifest -manifest dist/mesh.yaml -skip-install",
        Command::new(krew_dir.join("validate-krew-manifest")).args([
            "-manifest".as_ref(),
            manifest.as_os_str(),
            "-skip-install".as_ref(),
        ]),
    );

    // Only krew's bin and krew itself on PATH: no target/debug, so the dispatcher can only
    // find its steps next to its real location in krew's store.
    let path: OsString = std::env::join_paths([
        krew_root.join("bin"),
        krew_dir.clone(),
        kubectl.parent().unwrap().to_path_buf(),
        PathBuf::from("/bin"),
    ])
    .unwrap();
    let env = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PATH", &path)
            .env("HOME", &work)
            .env("KREW_ROOT", &krew_root)
            .env("KUBECONFIG", work.join("no-kubeconfig"))
            .current_dir(&work);
    };
    let kube = |args: &[&str]| {
        let mut cmd = Command::new(&kubectl);
        cmd.args(args);
        env(&mut cmd);
        cmd
    };

    let install = run(
        &mut transcript,
        &format!(
            "kubectl krew install --manifest={} --archive={}",
            manifest.display(),
            archive.display()
        ),
        &mut kube(&[
            "krew",
            "install",
            &format!("--manifest={}", manifest.display()),
            &format!("--archive={}", archive.display()),
        ]),
    );
    assert!(text(&install.stderr).contains("Installed plugin: mesh"), "{transcript}");

    let store = krew_root.join("store/mesh").join(rendered_version(&rendered));
    let link = krew_root.join("bin/kubectl-mesh");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        store.join("kubectl-mesh"),
        "{transcript}"
    );
    for file in [
        "kubectl-mesh",
        "kubectl-mesh-revisions",
        "kubectl-mesh-relabel",
        "kubectl-mesh-roll",
        "kubectl-mesh-prune",
        "kubectl-mesh-switchover",
        "LICENSE",
        "README.md",
    ] {
        assert!(store.join(file).is_file(), "{file} not in krew's store:\n{transcript}");
    }
    assert!(
        !krew_root.join("bin/kubectl-mesh-roll").exists(),
        "krew links only the plugin's bin"
    );

    let help = run(
        &mut transcript,
        "kubectl mesh revisions --help",
        &mut kube(&["mesh", "revisions", "--help"]),
    );
    assert!(
        text(&help.stdout).contains("Usage: kubectl mesh revisions"),
        "{transcript}"
    );
    let help = run(
        &mut transcript,
        "kubectl mesh roll --help",
        &mut kube(&["mesh", "roll", "--help"]),
    );
    assert!(text(&help.stdout).contains("Usage: kubectl mesh roll"), "{transcript}");

    let overview = run(&mut transcript, "kubectl mesh", &mut kube(&["mesh"]));
    let overview = text(&overview.stdout);
    let store_real = store.canonicalize().unwrap();
    for step in ["revisions", "relabel", "roll", "prune", "switchover"] {
        let line = format!("{step:<10} {}/kubectl-mesh-{step}\n", store_real.display());
        assert!(overview.contains(&line), "{line:?} missing:\n{overview}");
    }

    let versions = run(&mut transcript, "kubectl mesh version", &mut kube(&["mesh", "version"]));
    let versions = text(&versions.stdout);
    assert_eq!(versions.lines().count(), 6, "{transcript}");
    assert!(
        versions
            .lines()
            .all(|l| l.contains("(commit ") && l.contains(&store_real.display().to_string())),
        "every binary from krew's store, with its commit:\n{versions}"
    );

    let list = run(&mut transcript, "kubectl plugin list", &mut kube(&["plugin", "list"]));
    let listed = format!("{}{}", text(&list.stdout), text(&list.stderr)).to_lowercase();
    assert!(!listed.contains("warning"), "{transcript}");
    assert!(text(&list.stdout).contains(&link.display().to_string()), "{transcript}");

    // `krew uninstall` wants a local index (a git clone); offline, an empty one will do.
    let index = krew_root.join("index/default");
    std::fs::create_dir_all(&index).unwrap();
    run(
        &mut transcript,
        "git init index/default",
        Command::new("git").args(["init", "-q"]).arg(&index),
    );
    let before_uninstall: Vec<PathBuf> = files_under(&krew_root)
        .into_iter()
        .filter(|p| !p.starts_with(&index))
        .collect();
    run(
        &mut transcript,
        "kubectl krew uninstall mesh",
        &mut kube(&["krew", "uninstall", "mesh"]),
    );
    let left: Vec<PathBuf> = files_under(&krew_root)
        .into_iter()
        .filter(|p| !p.starts_with(&index))
        .collect();
    assert!(
        left.is_empty(),
        "left behind after uninstall: {left:?}\n(installed were {before_uninstall:?})\n{transcript}"
    );
    assert!(!store.exists() && !link.exists());

    // Kept for release notes and bug reports; the archive itself is not.
    let _ = std::fs::write(bin_dir().join("krew-install-transcript.txt"), &transcript);
    eprintln!("{transcript}");
    let _ = std::fs::remove_dir_all(&work);
}

fn rendered_version(manifest: &str) -> String {
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("version: "))
        .expect("spec.version in the rendered manifest")
        .to_string()
}

fn which_kubectl() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .expect("kubectl is not on PATH: the krew test runs the real kubectl")
}
