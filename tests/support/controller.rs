//! The real `cellnet-controller` binary as a child process of the test.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::control_plane::{ControlPlane, report};
use super::gobgp::spawn_kept;

/// How long the controller may take to connect and start its watches.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of the controller binary built by cargo for this test run.
pub fn controller_binary() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_cellnet-controller") {
        Some(p) => PathBuf::from(p),
        // Examples (the sandbox) get no CARGO_BIN_EXE_*; they run after `cargo build`.
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/debug/cellnet-controller"),
    }
}

/// A running controller; killed on drop. Its log (text format) is in [`ControllerProcess::log`].
pub struct ControllerProcess {
    child: Option<Child>,
    binary: PathBuf,
    log_path: PathBuf,
    kubeconfig: PathBuf,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl ControllerProcess {
    /// Starts the controller as admin against `cp` with `args` and waits until it runs.
    pub fn start(cp: &ControlPlane, args: &[&str]) -> ControllerProcess {
        Self::start_with(&cp.kubeconfig, args)
    }

    /// Starts the controller with another identity (e.g. its ServiceAccount's kubeconfig).
    pub fn start_with(kubeconfig: &Path, args: &[&str]) -> ControllerProcess {
        Self::launch(&controller_binary(), kubeconfig, args)
    }

    /// Starts another build of the controller (e.g. main's, for the bench) as admin against `cp`.
    pub fn start_binary(cp: &ControlPlane, binary: &Path, args: &[&str]) -> ControllerProcess {
        Self::launch(binary, &cp.kubeconfig, args)
    }

    fn launch(binary: &Path, kubeconfig: &Path, args: &[&str]) -> ControllerProcess {
        let dir = tempfile::Builder::new()
            .prefix("cellnet-controller-")
            .tempdir()
            .expect("temp dir");
        let mut p = ControllerProcess {
            child: None,
            binary: binary.to_path_buf(),
            log_path: dir.path().join("controller.log"),
            kubeconfig: kubeconfig.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            _dir: dir,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let began = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info,cellnet=debug")
            .env("NO_COLOR", "1")
            // Ephemeral ports unless the test passes the flags: parallel controllers never clash.
            .env("CELLNET_METRICS_BIND_ADDRESS", "127.0.0.1:0")
            .env("CELLNET_HEALTH_PROBE_BIND_ADDRESS", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log);
        let mut child = spawn_kept(cmd).expect("spawn cellnet-controller");
        let before = self.log().matches("controllers started").count();
        loop {
            if self.log().matches("controllers started").count() > before {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "cellnet-controller exited ({status}) during start-up:\n{}",
                    self.log()
                );
            }
            assert!(
                began.elapsed() < START_TIMEOUT,
                "controller not started in 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        report(&format!(
            "controller started in {:.1} s",
            began.elapsed().as_secs_f64()
        ));
        self.child = Some(child);
    }

    /// Where the controller's log is written.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the controller logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, no cleanup (a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Starts it again with the same identity and arguments (after `kill` or `stop`).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The control plane (CRDs installed) and one controller for the whole test binary, started with
/// `args` by the first test that asks (later callers get that one, whatever their `args`).
pub fn shared(args: &[&str]) -> (&'static ControlPlane, &'static ControllerProcess) {
    static CONTROLLER: std::sync::OnceLock<ControllerProcess> = std::sync::OnceLock::new();
    let cp = super::control_plane::control_plane();
    cp.install_crds();
    (cp, CONTROLLER.get_or_init(|| ControllerProcess::start(cp, args)))
}
