//! A real etcd + kube-apiserver for the tests, one per test binary.
//!
//! The binaries come from `hack/envtest.sh` (or `KUBEBUILDER_ASSETS`). The processes are started
//! from a keeper thread that lives as long as the test binary: children get `PR_SET_PDEATHSIG`,
//! which follows the spawning *thread*, and an `atexit` hook stops them and removes the temp dir
//! when libtest exits, also after failed tests.
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};

/// How long the control plane may take to become ready before the tests give up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running control plane shared by every test of one test binary.
pub struct ControlPlane {
    /// Admin kubeconfig (`system:masters`).
    pub kubeconfig: PathBuf,
    /// Directory holding `kube-apiserver`, `etcd` and `kubectl`.
    pub assets: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// Scratch directory of this control plane (certificates, data, logs).
    pub dir: PathBuf,
    ca_cert_pem: String,
    /// The client CA, to mint certificates for other identities.
    issuer: Issuer<'static, KeyPair>,
    etcd_port: u16,
    etcd_peer_port: u16,
    api_port: u16,
    /// Process ids of the running etcd and kube-apiserver; [`ControlPlane::restart`] changes them.
    pids: Mutex<ServerPids>,
}

/// The running server processes (`None` while stopped by [`ControlPlane::stop_servers`]).
#[derive(Debug, Clone, Copy, Default)]
struct ServerPids {
    etcd: Option<u32>,
    apiserver: Option<u32>,
}

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();
/// Everything the exit hook must stop or remove.
static CLEANUP: Mutex<Cleanup> = Mutex::new(Cleanup {
    pids: Vec::new(),
    dirs: Vec::new(),
});

struct Cleanup {
    pids: Vec<u32>,
    dirs: Vec<PathBuf>,
}

/// The shared control plane, started on first use. Blocking: call it from any test.
pub fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| {
        // The keeper thread spawns the processes and then parks forever (see module docs).
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("control-plane-keeper".into())
            .spawn(move || {
                let result = std::panic::catch_unwind(start);
                let _ = tx.send(result);
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn control-plane keeper thread");
        match rx.recv().expect("keeper thread reports") {
            Ok(cp) => cp,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Prints a timing line that libtest does not capture, so slow stages show in `make test`.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "[support] {line}");
}

/// A free TCP port on 127.0.0.1, never one this process handed out before
/// ([`super::gobgp::free_api_port`]).
pub fn free_port() -> u16 {
    super::gobgp::free_api_port()
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The asset directory: `KUBEBUILDER_ASSETS`, else what `hack/envtest.sh` prints (it builds or reuses).
fn assets_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("KUBEBUILDER_ASSETS") {
        let dir = PathBuf::from(dir);
        if ["kube-apiserver", "etcd", "kubectl"]
            .iter()
            .all(|b| dir.join(b).is_file())
        {
            return dir;
        }
    }
    let out = Command::new("bash")
        .arg(repo_root().join("hack/envtest.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run hack/envtest.sh");
    assert!(
        out.status.success(),
        "hack/envtest.sh failed; see its output above"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("hack/envtest.sh printed the assets dir")
            .trim(),
    )
}

fn start() -> ControlPlane {
    let began = Instant::now();
    let assets = assets_dir();
    let dir = tempfile::Builder::new()
        .prefix("cellnet-cp-")
        .tempdir()
        .expect("temp dir")
        .keep();
    register_exit_hook();
    CLEANUP.lock().unwrap().dirs.push(dir.clone());

    let pki = Pki::generate(&dir);
    let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());
    let mut etcd = spawn_etcd(&assets, &dir, etcd_port, peer_port, false);
    let server = format!("https://127.0.0.1:{api_port}");
    let mut apiserver = spawn_apiserver(&assets, &dir, etcd_port, api_port, false);

    let kubeconfig = dir.join("kubeconfig");
    write_kubeconfig(
        &kubeconfig,
        &server,
        &pki.ca_cert_pem,
        &pki.admin_cert_pem,
        &pki.admin_key_pem,
    );
    let cp = ControlPlane {
        kubeconfig,
        assets,
        server,
        dir,
        ca_cert_pem: pki.ca_cert_pem,
        issuer: pki.issuer,
        etcd_port,
        etcd_peer_port: peer_port,
        api_port,
        pids: Mutex::new(ServerPids {
            etcd: Some(etcd.id()),
            apiserver: Some(apiserver.id()),
        }),
    };
    cp.wait_ready(
        began,
        &mut [("etcd", &mut etcd), ("kube-apiserver", &mut apiserver)],
    );
    report(&format!(
        "control plane ready in {:.1} s at {} (dir {})",
        began.elapsed().as_secs_f64(),
        cp.server,
        cp.dir.display()
    ));
    cp
}

impl ControlPlane {
    /// A new client for the calling test's runtime (clients hold connections tied to a runtime).
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kubeconfig to config");
        kube::Client::try_from(config).expect("build client")
    }

    /// `kubectl` built with the server, pointed at this control plane as admin.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.assets.join("kubectl"));
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// Runs kubectl with `args` and returns (success, stdout, stderr).
    pub fn kubectl_run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.kubectl().args(args).output().expect("run kubectl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A kubeconfig for a user authenticated by a client certificate (`CN=user`, `O=group`...),
    /// so tests can act with less than admin rights.
    pub fn kubeconfig_for(&self, user: &str, groups: &[&str]) -> PathBuf {
        let (cert, key) = client_cert(&self.issuer, user, groups);
        // ServiceAccount users have colons, which KUBECONFIG (a path list) cannot hold.
        let file: String = user
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("kubeconfig-{file}"));
        write_kubeconfig(&path, &self.server, &self.ca_cert_pem, &cert, &key);
        path
    }

    /// etcd's client URL, for tests that inspect storage or restart the server.
    pub fn etcd_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.etcd_port)
    }

    fn wait_ready(&self, began: Instant, children: &mut [(&str, &mut Child)]) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            for (name, child) in children.iter_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{name} exited ({status}) before the control plane was ready; its log:\n{}",
                        tail(&self.dir.join(format!("{name}.log")), 30)
                    );
                }
            }
            let (ok, out, _) = self.kubectl_run(&["get", "--raw", "/readyz", "--request-timeout=2s"]);
            if ok && out.trim() == "ok" {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "kube-apiserver not ready after {:.0} s; last lines of its log:\n{}\netcd:\n{}",
                    began.elapsed().as_secs_f64(),
                    tail(&self.dir.join("kube-apiserver.log"), 30),
                    tail(&self.dir.join("etcd.log"), 10)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Spawns a child that dies with the keeper thread and is stopped by the exit hook. A `restart`
/// appends to the log (so it keeps the first run's lines) and spawns from the process-long keeper
/// thread of [`super::gobgp::spawn_kept`], because the calling test thread ends with its test and
/// `PR_SET_PDEATHSIG` follows the spawning thread.
fn spawn(mut cmd: Command, log: &Path, restart: bool) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(restart)
        .truncate(!restart)
        .open(log)
        .expect("create log file");
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let program = cmd.get_program().to_owned();
    let child = if restart {
        super::gobgp::spawn_kept(cmd)
    } else {
        cmd.spawn()
    }
    .unwrap_or_else(|e| panic!("spawn {program:?}: {e}"));
    CLEANUP.lock().unwrap().pids.push(child.id());
    child
}

fn spawn_etcd(assets: &Path, dir: &Path, port: u16, peer_port: u16, restart: bool) -> Child {
    let client_url = format!("http://127.0.0.1:{port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let mut cmd = Command::new(assets.join("etcd"));
    cmd.args(["--name", "cellnet-test", "--data-dir"])
        .arg(dir.join("etcd-data"))
        .args([
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args(["--initial-cluster", &format!("cellnet-test={peer_url}")])
        .args(["--log-level", "warn"]);
    if supports_flag(&assets.join("etcd"), "--unsafe-no-fsync") {
        // Test data is thrown away: fsync only slows every write.
        cmd.arg("--unsafe-no-fsync");
    }
    spawn(cmd, &dir.join("etcd.log"), restart)
}

fn supports_flag(binary: &Path, flag: &str) -> bool {
    Command::new(binary)
        .arg("--help")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).contains(flag)
                || String::from_utf8_lossy(&o.stderr).contains(flag)
        })
        .unwrap_or(false)
}

/// Flags as envtest and the shared notes give them; the PKI files are already in `dir`.
fn spawn_apiserver(assets: &Path, dir: &Path, etcd_port: u16, api_port: u16, restart: bool) -> Child {
    let p = |name: &str| dir.join(name).display().to_string();
    let mut cmd = Command::new(assets.join("kube-apiserver"));
    cmd.arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
        .arg(format!("--cert-dir={}", p("apiserver-certs")))
        .arg(format!("--tls-cert-file={}", p("serving.crt")))
        .arg(format!("--tls-private-key-file={}", p("serving.key")))
        .arg(format!("--client-ca-file={}", p("ca.crt")))
        .arg(format!("--secure-port={api_port}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        // Only an allocation range inside the server; nothing is ever sent there.
        .arg("--service-cluster-ip-range=10.0.0.0/24")
        .arg("--allow-privileged=true")
        .arg("--authorization-mode=RBAC")
        .arg("--disable-admission-plugins=ServiceAccount")
        .arg("--service-account-issuer=https://kubernetes.default.svc")
        .arg(format!("--service-account-key-file={}", p("sa.pub")))
        .arg(format!("--service-account-signing-key-file={}", p("sa.key")))
        .arg("--v=1");
    spawn(cmd, &dir.join("kube-apiserver.log"), restart)
}

/// Certificates the control plane needs, written into the scratch dir.
struct Pki {
    ca_cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    admin_cert_pem: String,
    admin_key_pem: String,
}

impl Pki {
    fn generate(dir: &Path) -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.distinguished_name = dn("cellnet-test-ca", &[]);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("self-sign CA");
        let issuer = Issuer::new(ca, ca_key);

        let serving_key = KeyPair::generate().expect("serving key");
        let mut serving = CertificateParams::new(vec!["localhost".to_string()]).expect("serving params");
        serving
            .subject_alt_names
            .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
        serving.distinguished_name = dn("kube-apiserver", &[]);
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving
            .signed_by(&serving_key, &issuer)
            .expect("sign serving cert");

        let (admin_cert_pem, admin_key_pem) = client_cert(&issuer, "cellnet-test-admin", &["system:masters"]);
        let sa_key = KeyPair::generate().expect("service account key");

        let write = |name: &str, data: &str| std::fs::write(dir.join(name), data).expect("write pki file");
        write("ca.crt", &ca_cert.pem());
        write("serving.crt", &serving_cert.pem());
        write("serving.key", &serving_key.serialize_pem());
        write("sa.key", &sa_key.serialize_pem());
        // The verifying side wants the public key (it does not parse a PKCS#8 EC private key).
        write("sa.pub", &sa_key.public_key_pem());
        Pki {
            ca_cert_pem: ca_cert.pem(),
            issuer,
            admin_cert_pem,
            admin_key_pem,
        }
    }
}

fn dn(common_name: &str, organizations: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    for o in organizations {
        dn.push(DnType::OrganizationName, *o);
    }
    dn
}

/// A client certificate: the API server takes CN as the user and each O as a group.
fn client_cert(issuer: &Issuer<'_, KeyPair>, user: &str, groups: &[&str]) -> (String, String) {
    let key = KeyPair::generate().expect("client key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    params.distinguished_name = dn(user, groups);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer).expect("sign client cert");
    (cert.pem(), key.serialize_pem())
}

fn write_kubeconfig(path: &Path, server: &str, ca: &str, cert: &str, key: &str) {
    use base64_lite::encode;
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: cellnet-test\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\nusers:\n- name: user\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: cellnet-test\n  context:\n    cluster: cellnet-test\n    user: user\ncurrent-context: cellnet-test\n",
        encode(ca.as_bytes()),
        encode(cert.as_bytes()),
        encode(key.as_bytes())
    );
    std::fs::write(path, text).expect("write kubeconfig");
}

/// Standard base64, enough for kubeconfig data fields (avoids one more dependency).
mod base64_lite {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(input: &[u8]) -> String {
        let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
        for chunk in input.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

extern "C" fn stop_everything() {
    let Ok(cleanup) = CLEANUP.lock() else { return };
    for pid in &cleanup.pids {
        // SAFETY: plain kill(2) on a pid this process spawned.
        unsafe { libc::kill(*pid as i32, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    for pid in &cleanup.pids {
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            reap(*pid);
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; a no-op if it already exited.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
        reap(*pid);
    }
    for dir in &cleanup.dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: non-blocking wait on our own child; lets /proc/<pid> disappear.
    unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
}

fn register_exit_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a plain extern "C" function; libtest exits through exit(3).
        unsafe { libc::atexit(stop_everything) };
    });
}

impl ControlPlane {
    /// Installs `crds/*.yaml` (server-side apply) and waits until they are Established. Once per
    /// test binary; later calls return at once.
    pub fn install_crds(&self) {
        static DONE: OnceLock<()> = OnceLock::new();
        DONE.get_or_init(|| {
            let began = Instant::now();
            let crds = repo_root().join("crds");
            let (ok, _, err) = self.kubectl_run(&[
                "apply",
                "--server-side",
                "--field-manager=cellnet-tests",
                "-f",
                crds.to_str().expect("utf-8 path"),
            ]);
            assert!(ok, "kubectl apply crds/: {err}");
            let (ok, _, err) = self.kubectl_run(&[
                "wait",
                "--for=condition=Established",
                "--timeout=30s",
                "crd/infraendpoints.cellnet.io",
                "crd/cellinterconnects.cellnet.io",
            ]);
            assert!(ok, "CRDs not Established: {err}");
            report(&format!(
                "CRDs installed in {:.1} s",
                began.elapsed().as_secs_f64()
            ));
        });
    }
}

/// How long a stopping etcd or kube-apiserver may take after SIGTERM before it gets SIGKILL
/// (kube-apiserver 1.34 stops listening at once but then often hangs; 15 s were not enough).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

impl ControlPlane {
    /// Restarts the whole control plane for real: [`ControlPlane::stop_servers`] then
    /// [`ControlPlane::start_servers`]. Returns how long the API was gone. Only for test binaries
    /// that own their control plane's schedule (every test of the binary sees the outage).
    pub fn restart(&self) -> Duration {
        let began = Instant::now();
        self.stop_servers();
        self.start_servers();
        began.elapsed()
    }

    /// Stops kube-apiserver, then etcd (SIGTERM; SIGKILL after 5 s) and reaps both. The data
    /// dir, certificates and ports stay for [`ControlPlane::start_servers`]. Returns how long it took.
    pub fn stop_servers(&self) -> Duration {
        let began = Instant::now();
        let mut pids = self.pids.lock().unwrap_or_else(|p| p.into_inner());
        for (name, pid) in [
            ("kube-apiserver", pids.apiserver.take()),
            ("etcd", pids.etcd.take()),
        ] {
            let Some(pid) = pid else { continue };
            let stopped = Instant::now();
            let graceful = terminate(pid, STOP_TIMEOUT);
            CLEANUP.lock().unwrap().pids.retain(|p| *p != pid);
            report(&format!(
                "{name} (pid {pid}) stopped in {:.1} s{}",
                stopped.elapsed().as_secs_f64(),
                if graceful {
                    ""
                } else {
                    " (SIGKILL after SIGTERM timed out)"
                }
            ));
        }
        began.elapsed()
    }

    /// Starts etcd and kube-apiserver again on the same ports, with the same data dir and
    /// certificates (what was stored before is still there), and waits until `/readyz` is ok.
    /// Returns how long that took. A no-op for a server that still runs.
    pub fn start_servers(&self) -> Duration {
        let began = Instant::now();
        let mut pids = self.pids.lock().unwrap_or_else(|p| p.into_inner());
        let mut children = Vec::new();
        if pids.etcd.is_none() {
            let etcd = spawn_etcd(&self.assets, &self.dir, self.etcd_port, self.etcd_peer_port, true);
            pids.etcd = Some(etcd.id());
            children.push(("etcd", etcd));
        }
        if pids.apiserver.is_none() {
            let apiserver = spawn_apiserver(&self.assets, &self.dir, self.etcd_port, self.api_port, true);
            pids.apiserver = Some(apiserver.id());
            children.push(("kube-apiserver", apiserver));
        }
        let mut refs: Vec<(&str, &mut Child)> = children.iter_mut().map(|(n, c)| (*n, c)).collect();
        self.wait_ready(began, &mut refs);
        report(&format!(
            "control plane started again in {:.1} s at {}",
            began.elapsed().as_secs_f64(),
            self.server
        ));
        began.elapsed()
    }
}

/// SIGTERM, then SIGKILL after `timeout`; reaps the child. Returns whether it exited on SIGTERM.
fn terminate(pid: u32, timeout: Duration) -> bool {
    // SAFETY: kill(2) on a child this process spawned and has not reaped yet.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if reaped(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    while !reaped(pid) {
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Non-blocking wait on our own child: true once it has exited (or is not our child any more).
fn reaped(pid: u32) -> bool {
    let mut status = 0;
    // SAFETY: non-blocking waitpid on a pid this process spawned.
    let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
    r == pid as i32 || r == -1
}
