//! Real `gobgpd` processes for the tests: one per [`Gobgpd`], on its own 127.0.0.x address.
//!
//! Self-contained (std, tempfile, serde_json, libc) so that any test binary can include it with
//! `mod gobgp;` or `#[path = "support/gobgp.rs"] mod gobgp;`. The API is driven by the tests'
//! own client; the `gobgp` CLI is used only to look at a speaker from the outside or to make
//! peers "by hand" the way an operator would.
//!
//! Several speakers share one BGP port (e.g. 1790) on different loopback addresses: start them
//! with listen addresses `127.0.0.x` and give the peers a local address and remote port.
//!
//! Child processes must not outlive the test binary: they get `PR_SET_PDEATHSIG(SIGKILL)`. That
//! signal follows the *thread* that spawned the child, so every gobgpd is spawned from one keeper
//! thread that lives as long as the process (see [`spawn_kept`]); [`Gobgpd`]'s `Drop` also kills
//! it, so a test that ends (or panics) stops its speakers at once.
#![allow(dead_code)]

use std::fs::File;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a starting gobgpd may take to answer on its API.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `gobgp` CLI call may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(10);
/// GoBGP's `PeerState.SessionState` for Established.
pub const ESTABLISHED: i64 = 6;

/// Where the GoBGP binaries are.
#[derive(Debug)]
pub struct GobgpBinaries {
    pub gobgpd: PathBuf,
    pub gobgp: PathBuf,
}

/// Finds `gobgpd` and `gobgp`, installing the Debian package `gobgpd` if needed: with apt-get
/// when root, else by `apt-get download` + `dpkg -x` into `$HOME/.cache/cellnet/gobgp`.
/// Panics with instructions if neither works.
pub fn ensure_gobgpd_installed() -> &'static GobgpBinaries {
    static BINARIES: OnceLock<GobgpBinaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        if let Some(found) = find_binaries() {
            return found;
        }
        let mut attempts = Vec::new();
        if is_root() {
            match apt_install() {
                Ok(()) => {
                    if let Some(found) = find_binaries() {
                        return found;
                    }
                    attempts.push("apt-get install gobgpd succeeded but gobgpd is not on PATH".to_owned());
                }
                Err(e) => attempts.push(e),
            }
        }
        match user_install() {
            Ok(found) => return found,
            Err(e) => attempts.push(e),
        }
        panic!(
            "gobgpd (GoBGP 3.x) is needed by these tests but is not installed and could not be \
             installed:\n  - {}\nInstall it with `sudo apt-get install gobgpd` (or `make prereqs`).",
            attempts.join("\n  - ")
        );
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn user_cache() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".cache/cellnet/gobgp"))
}

fn find_binaries() -> Option<GobgpBinaries> {
    let on_path = |name: &str| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    };
    if let (Some(gobgpd), Some(gobgp)) = (on_path("gobgpd"), on_path("gobgp")) {
        return Some(GobgpBinaries { gobgpd, gobgp });
    }
    let bin = user_cache()?.join("usr/bin");
    let (gobgpd, gobgp) = (bin.join("gobgpd"), bin.join("gobgp"));
    (gobgpd.is_file() && gobgp.is_file()).then_some(GobgpBinaries { gobgpd, gobgp })
}

fn run_quiet(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(format!("{cmd:?} failed ({}): {}", out.status, stderr.trim()))
}

fn apt_install() -> Result<(), String> {
    let install = || {
        run_quiet(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "gobgpd"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    // A fresh machine may have no package lists yet.
    install().or_else(|_| {
        run_quiet(Command::new("apt-get").args(["update", "-q", "-o", "DPkg::Lock::Timeout=300"]))?;
        install()
    })
}

fn user_install() -> Result<GobgpBinaries, String> {
    let cache = user_cache().ok_or("HOME is not set")?;
    let parent = cache.parent().ok_or("bad cache path")?;
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let download = tempfile::tempdir_in(parent).map_err(|e| e.to_string())?;
    run_quiet(
        Command::new("apt-get")
            .args(["download", "gobgpd"])
            .current_dir(download.path()),
    )?;
    let deb = std::fs::read_dir(download.path())
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download gobgpd produced no .deb")?;
    // Unpack beside the cache and rename, so a concurrent test binary never sees half a tree.
    let staging = download.path().join("root");
    run_quiet(Command::new("dpkg").arg("-x").arg(&deb).arg(&staging))?;
    if std::fs::rename(&staging, &cache).is_err() && !cache.join("usr/bin/gobgpd").is_file() {
        return Err(format!(
            "could not move the unpacked package to {}",
            cache.display()
        ));
    }
    find_binaries().ok_or_else(|| format!("{} holds no usr/bin/gobgpd", cache.display()))
}

/// Spawns `cmd` from a thread that lives as long as the test binary, with
/// `PR_SET_PDEATHSIG(SIGKILL)`, so the child dies with the process even if nothing drops it.
pub fn spawn_kept(mut cmd: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gobgpd-keeper".into())
            .spawn(move || {
                // Never returns while the process lives: the senders sit in a static.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the gobgpd keeper thread");
        Mutex::new(tx)
    });
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() == 1 {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    keeper
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, reply_tx))
        .expect("gobgpd keeper is gone");
    reply_rx.recv().expect("gobgpd keeper is gone")
}

/// A free TCP port on 127.0.0.1 (free when asked; the process binds it right after), never one
/// this process handed out before: gobgpd binds its API some 100 ms after it starts, and the
/// kernel gave the same port to two speakers started back to back (the bench then saw two
/// endpoints on one API, a SpeakerConflict that stalled the run). Also behind
/// `control_plane::free_port`, so that every port of a test process comes from one list.
pub fn free_api_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// TLS files for a gobgpd started with `--tls`.
#[derive(Debug, Clone)]
struct TlsFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// One running gobgpd; killed on drop.
pub struct Gobgpd {
    /// A label for logs and temp dirs.
    pub name: String,
    /// The loopback address this speaker's BGP is meant to use (tests pass it as the listen and
    /// router address).
    pub address: Ipv4Addr,
    /// The gRPC API port on [`Gobgpd::api_host`]; kept across [`Gobgpd::restart_bare`].
    pub api_port: u16,
    /// Where the API listens: 127.0.0.1, or the cell's management address in a namespace.
    pub api_host: Ipv4Addr,
    /// The network namespace it runs in (`ip netns exec`), if any; the CLI runs there too.
    pub netns: Option<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
    tls: Option<TlsFiles>,
    /// Start with `-r` (see [`Gobgpd::start_again`]).
    restarting: bool,
}

impl std::fmt::Debug for Gobgpd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gobgpd")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("api_port", &self.api_port)
            .field("api_host", &self.api_host)
            .field("netns", &self.netns)
            .field("log", &self.log_path())
            .finish()
    }
}

impl Gobgpd {
    /// Starts `gobgpd --api-hosts 127.0.0.1:<free port> --pprof-disable -p [-f config]` and
    /// waits (at most 10 s) until its API answers and, with a config that has a `[global]`
    /// section, until that config is applied. Panics with the log on failure.
    pub fn start(name: &str, bgp_addr: Ipv4Addr, config_toml: Option<&str>) -> Gobgpd {
        Self::start_inner(name, bgp_addr, config_toml, None, None, None)
    }

    /// Like [`Gobgpd::start`] (bare) inside network namespace `netns`, the API on
    /// `api_host:<free port>` (an address of that namespace the tests can reach).
    pub fn start_in_netns(name: &str, netns: &str, api_host: Ipv4Addr, bgp_addr: Ipv4Addr) -> Gobgpd {
        Self::start_inner(name, bgp_addr, None, None, None, Some((netns, api_host)))
    }

    /// Like [`Gobgpd::start_in_netns`], started with `config_toml` (`-f`): waits until a
    /// `[global]` section is applied.
    pub fn start_in_netns_with_config(
        name: &str,
        netns: &str,
        api_host: Ipv4Addr,
        bgp_addr: Ipv4Addr,
        config_toml: &str,
    ) -> Gobgpd {
        Self::start_inner(
            name,
            bgp_addr,
            Some(config_toml),
            None,
            None,
            Some((netns, api_host)),
        )
    }

    /// Like [`Gobgpd::start`] on a fixed API port (the demo's examples name their API URLs).
    pub fn start_on_port(name: &str, bgp_addr: Ipv4Addr, api_port: u16, config_toml: Option<&str>) -> Gobgpd {
        Self::start_inner(name, bgp_addr, config_toml, None, Some(api_port), None)
    }

    /// Like [`Gobgpd::start`], with the API served over TLS (`--tls`) from this PEM certificate
    /// and key; the certificate must be valid for 127.0.0.1 and signed by `ca_pem` (which the
    /// CLI then trusts).
    pub fn start_tls(name: &str, bgp_addr: Ipv4Addr, ca_pem: &str, cert_pem: &str, key_pem: &str) -> Gobgpd {
        Self::start_inner(
            name,
            bgp_addr,
            None,
            Some((ca_pem, cert_pem, key_pem)),
            None,
            None,
        )
    }

    fn start_inner(
        name: &str,
        bgp_addr: Ipv4Addr,
        config_toml: Option<&str>,
        tls: Option<(&str, &str, &str)>,
        fixed_port: Option<u16>,
        netns: Option<(&str, Ipv4Addr)>,
    ) -> Gobgpd {
        ensure_gobgpd_installed();
        let dir = tempfile::Builder::new()
            .prefix(&format!("gobgpd-{name}-"))
            .tempdir()
            .expect("temp dir");
        let tls = tls.map(|(ca, cert, key)| {
            let files = TlsFiles {
                ca: dir.path().join("ca.crt"),
                cert: dir.path().join("api.crt"),
                key: dir.path().join("api.key"),
            };
            std::fs::write(&files.ca, ca).expect("write TLS CA");
            std::fs::write(&files.cert, cert).expect("write TLS cert");
            std::fs::write(&files.key, key).expect("write TLS key");
            files
        });
        if let Some(config) = config_toml {
            std::fs::write(dir.path().join("gobgpd.toml"), config).expect("write gobgpd.toml");
        }
        let mut gobgpd = Gobgpd {
            name: name.to_owned(),
            address: bgp_addr,
            api_port: 0,
            api_host: netns.map_or(Ipv4Addr::LOCALHOST, |(_, host)| host),
            netns: netns.map(|(ns, _)| ns.to_owned()),
            child: None,
            dir,
            tls,
            restarting: false,
        };
        let wait_global = config_toml.is_some_and(|c| c.contains("[global"));
        // The API port is free when picked but another process may grab it first: retry.
        let mut last_error = String::new();
        for _ in 0..3 {
            gobgpd.api_port = fixed_port.unwrap_or_else(free_api_port);
            match gobgpd.spawn(config_toml.is_some(), wait_global) {
                Ok(()) => return gobgpd,
                Err(e) => last_error = e,
            }
        }
        panic!(
            "gobgpd {name} did not start: {last_error}\n--- log ---\n{}",
            gobgpd.log()
        );
    }

    /// Starts the process on `self.api_port` and waits until it is ready.
    fn spawn(&mut self, with_config: bool, wait_global: bool) -> Result<(), String> {
        let bins = ensure_gobgpd_installed();
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open gobgpd log");
        let mut cmd = self.command(&bins.gobgpd);
        cmd.arg(format!("--api-hosts={}:{}", self.api_host, self.api_port))
            .arg("--pprof-disable")
            .arg("-p");
        if with_config {
            cmd.arg("-f").arg(self.dir.path().join("gobgpd.toml"));
        }
        if self.restarting {
            cmd.arg("-r");
        }
        if let Some(tls) = &self.tls {
            cmd.arg("--tls")
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key);
        }
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        let child = spawn_kept(cmd).map_err(|e| format!("spawn {}: {e}", bins.gobgpd.display()))?;
        self.child = Some(child);
        self.wait_ready(wait_global)
    }

    fn wait_ready(&mut self, wait_global: bool) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let api: SocketAddr = (self.api_host, self.api_port).into();
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!("gobgpd exited during start-up: {status}"));
            }
            if TcpStream::connect_timeout(&api, Duration::from_millis(200)).is_ok() {
                match self.cli(&["global", "-j"]) {
                    Ok(global) if !wait_global || global.contains("\"asn\"") => return Ok(()),
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "the API on {}:{} did not answer within {READY_TIMEOUT:?}",
                    self.api_host, self.api_port
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The API URL for the backend: `http://127.0.0.1:<port>` (`https://` with TLS; the
    /// namespace's management address instead of 127.0.0.1 in a namespace).
    pub fn api_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.api_host, self.api_port)
    }

    /// `program`, run inside this speaker's namespace if it has one.
    fn command(&self, program: &Path) -> Command {
        match &self.netns {
            Some(ns) => {
                // `ip netns exec` execs the program: the child's pid is the program's.
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// The file gobgpd logs to (appended to across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("gobgpd.log")
    }

    /// Everything gobgpd logged so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(self.log_path()) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGSTOP: a hung speaker (the kernel still accepts TCP connections, nothing answers).
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`Gobgpd::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{} is not running", self.name));
        // SAFETY: kill(2) on our own child, not yet reaped (we hold its Child).
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0, "kill {pid}");
    }

    /// Kills the process (SIGKILL) and reaps it. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process and starts a bare one (no config) on the same API port: what a
    /// crashed-and-restarted speaker looks like (no global config, no peers). Panics on failure.
    pub fn restart_bare(&mut self) {
        self.kill();
        // The old socket may linger for a moment.
        let deadline = Instant::now() + READY_TIMEOUT;
        let result = loop {
            match self.spawn(false, false) {
                Ok(()) => break Ok(()),
                Err(e) if Instant::now() > deadline => break Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        if let Err(e) = result {
            panic!(
                "gobgpd {} did not restart: {e}\n--- log ---\n{}",
                self.name,
                self.log()
            );
        }
    }

    /// Starts the speaker again after [`Gobgpd::kill`], from its own config file only (the
    /// static part of a cell: its global settings and fabric neighbour; nothing cellnet
    /// configured), on the same API port; with `graceful`, as GoBGP's graceful restart guide
    /// says a restarting speaker is started (`-r`: the Restart State and Forwarding State bits
    /// in its capability, and route selection deferred until its neighbours sent End-of-RIB).
    /// Panics on failure.
    pub fn start_again(&mut self, graceful: bool) {
        assert!(self.child.is_none(), "{} is still running", self.name);
        self.restarting = graceful;
        let deadline = Instant::now() + READY_TIMEOUT;
        let result = loop {
            match self.spawn(true, true) {
                Ok(()) => break Ok(()),
                Err(e) if Instant::now() > deadline => break Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        if let Err(e) = result {
            panic!(
                "gobgpd {} did not start again: {e}\n--- log ---\n{}",
                self.name,
                self.log()
            );
        }
    }

    /// Runs the `gobgp` CLI against this speaker; `Err` with its output if it fails.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let bins = ensure_gobgpd_installed();
        // In a namespace the CLI runs there, so it still works while the management link is cut.
        let mut cmd = self.command(&bins.gobgp);
        cmd.args(["-u", &self.api_host.to_string(), "-p", &self.api_port.to_string()]);
        if let Some(tls) = &self.tls {
            cmd.arg("--tls").arg("--tls-ca-file").arg(&tls.ca);
        }
        cmd.args(args);
        let out = run_with_timeout(cmd, CLI_TIMEOUT)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "gobgp {args:?}: {} {}{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `gobgp neighbor -j`: every peer as GoBGP's JSON (an array; empty when there is none).
    pub fn neighbors_json(&self) -> serde_json::Value {
        let out = self
            .cli(&["neighbor", "-j"])
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        match serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("gobgp neighbor -j: {e}: {out}")) {
            serde_json::Value::Null => serde_json::Value::Array(Vec::new()),
            value => value,
        }
    }

    /// `gobgp neighbor ADDR -j`: one peer as GoBGP's JSON, `None` if there is none.
    pub fn neighbor_json(&self, addr: IpAddr) -> Option<serde_json::Value> {
        let out = self.cli(&["neighbor", &addr.to_string(), "-j"]).ok()?;
        serde_json::from_str(out.trim()).ok()
    }

    /// `state.session_state` of a peer (6 = Established), `None` if there is no such peer.
    pub fn session_state(&self, addr: IpAddr) -> Option<i64> {
        let peer = self.neighbor_json(addr)?;
        // Protobuf JSON omits zero values: a missing state is 0 (UNKNOWN).
        Some(
            peer.pointer("/state/session_state")
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
        )
    }

    /// Polls until the peer at `addr` is Established; returns how long that took. Panics with
    /// this speaker's peers and log after `timeout`. Blocking: call it from `spawn_blocking` in
    /// async tests.
    pub fn wait_established(&self, addr: IpAddr, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.session_state(addr) == Some(ESTABLISHED) {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                panic!(
                    "{}: peer {addr} not Established after {timeout:?}\npeers: {}\n--- log ---\n{}",
                    self.name,
                    self.neighbors_json(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Adds a peer like an operator would: `gobgp neighbor add ADDR as ASN` (no description).
    pub fn neighbor_add_by_hand(&self, addr: IpAddr, peer_as: u32) {
        self.cli(&["neighbor", "add", &addr.to_string(), "as", &peer_as.to_string()])
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
    }

    /// Deletes a peer like an operator would: `gobgp neighbor del ADDR`.
    pub fn neighbor_del_by_hand(&self, addr: IpAddr) {
        self.cli(&["neighbor", "del", &addr.to_string()])
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
    }

    /// The directory holding this speaker's log, config and TLS files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Gobgpd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a short command, killing it after `timeout` (the CLI can hang on a dead API).
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    // Read the pipes on another thread so a large output cannot block the child.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => {
            // SAFETY: plain kill(2) of our own child, which is not reaped until the reader returns.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = rx.recv();
            Err(format!("{cmd:?} did not finish within {timeout:?}"))
        }
    }
}
