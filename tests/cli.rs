//! The `cellnet-controller` binary as an operator meets it: flags, errors, signals.
mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when a failed assertion unwinds, so no controller outlives the test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn controller() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cellnet-controller"));
    cmd.env_remove("RUST_LOG");
    // Ephemeral ports: never clash with another controller on this machine.
    cmd.env("CELLNET_METRICS_BIND_ADDRESS", "127.0.0.1:0")
        .env("CELLNET_HEALTH_PROBE_BIND_ADDRESS", "127.0.0.1:0");
    cmd
}

#[test]
fn help_and_version() {
    let help = controller().arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--log-format"), "{text}");
    let version = controller().arg("--version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!(
            "cellnet-controller {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            built_from()
        )
    );
}

/// The commit the binaries must report: this checkout's HEAD (or `$CELLNET_GIT_COMMIT`, or
/// `unknown` without git), as build.rs finds it.
fn built_from() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let commit = cellnet::build_info::GIT_COMMIT;
    match std::env::var("CELLNET_GIT_COMMIT") {
        Ok(given) if !given.trim().is_empty() => assert_eq!(commit, given.trim()),
        // A binary built before the last commit reports the commit it was built from: one of ours.
        _ if git(&["rev-parse", "HEAD"]).is_some() => assert!(
            commit.len() == 12 && git(&["cat-file", "-e", &format!("{commit}^{{commit}}")]).is_some(),
            "{commit:?} is no commit of this repository"
        ),
        _ => assert_eq!(commit, "unknown"),
    }
    commit.into()
}

#[test]
fn plugin_version_needs_no_cluster() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-cellnet"))
        .arg("version")
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "kubectl-cellnet {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            built_from()
        )
    );
}

#[test]
fn unreachable_cluster_gives_one_clear_line_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let port = support::free_port(); // nothing listens there
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let out = controller().env("KUBECONFIG", &kubeconfig).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(
            "cellnet-controller: error: cannot reach the Kubernetes API server at https://127.0.0.1:"
        ),
        "{stderr}"
    );
}

/// A malformed `--endpoint-allow` rule stops the controller before it starts, with the rule named.
#[test]
fn a_bad_allowlist_rule_is_refused_at_start() {
    let out = controller()
        .args(["--endpoint-allow", "10.0.0.0/8,host:99999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--endpoint-allow") && stderr.contains("host:99999"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn exits_zero_on_sigterm_within_five_seconds() {
    let cp = support::control_plane();
    cp.install_crds();
    for format in ["text", "json"] {
        let mut child = KillOnDrop(
            controller()
                .env("KUBECONFIG", &cp.kubeconfig)
                .args(["--log-format", format])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        // Wait until it has connected, so the signal hits a running controller.
        let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut warned = false;
        loop {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "controller exited early"
            );
            // Without --endpoint-allow it calls any URL an object names: it says so.
            warned |= line.contains("no --endpoint-allow");
            if line.contains("controllers started") {
                assert!(warned, "no start-up warning about the missing allowlist");
                break;
            }
            assert!(Instant::now() < deadline, "controller did not connect in 30 s");
        }
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(line.trim()).expect("a JSON log line");
            assert_eq!(v["level"], "INFO", "{line}");
        }
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let sent = Instant::now();
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "still running 5 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{status}");
    }
}
