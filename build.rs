//! Generates the GoBGP v3 gRPC client from the vendored protos in `proto/gobgp/`, and records the
//! git commit the binaries are built from (`--version`, `cellnet_build_info`).
//!
//! `protox` parses the protos in pure Rust, so building needs no system `protoc`.
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/gobgp");
    record_git_commit();
    let fds = protox::compile(
        ["gobgp.proto", "attribute.proto", "capability.proto"],
        ["proto/gobgp"],
    )?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        // These carry `auth_password`; src/sdn/gobgp/proto.rs gives them a redacting `Debug`.
        .skip_debug([
            "apipb.PeerConf",
            "apipb.PeerState",
            "apipb.PeerGroupConf",
            "apipb.PeerGroupState",
        ])
        .compile_fds(fds)?;
    Ok(())
}

/// Sets `CELLNET_GIT_COMMIT` for the crate: `$CELLNET_GIT_COMMIT` when given (image builds and
/// source tarballs have no `.git`), else `git rev-parse`, else `unknown`. Never fails the build.
fn record_git_commit() {
    println!("cargo:rerun-if-env-changed=CELLNET_GIT_COMMIT");
    let commit = std::env::var("CELLNET_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CELLNET_GIT_COMMIT={}", commit.trim());
    // Build again when HEAD moves: the HEAD file (per worktree), the branch it points to, packed refs.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", name.trim()]) {
            let path = std::path::Path::new(path.trim());
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}

/// `git <args>`'s output, or `None` without git or outside a repository.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then_some(text)
}
