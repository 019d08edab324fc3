// Records the git commit so every binary's --version names the source it was built from.
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    println!(
        "cargo:rustc-env=MESH_GIT_COMMIT={commit}{}",
        if dirty { "-dirty" } else { "" }
    );
    if let Ok(top) = Command::new("git").args(["rev-parse", "--git-dir"]).output()
        && top.status.success()
    {
        let dir = String::from_utf8_lossy(&top.stdout).trim().to_string();
        // HEAD's reflog changes on every commit and checkout.
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/logs/HEAD");
    }
}
