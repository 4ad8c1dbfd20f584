//! A real Neutron API server (Debian's `python3-neutron` 21 with neutron-dynamic-routing) and a
//! real Keystone (`python3-keystone` 22) for the tests, on free 127.0.0.1 ports.
//!
//! As checked in the shared notes: Neutron runs by hand with `auth_strategy = noauth`, SQLite,
//! `transport_url = fake://` and the `bgp` service plugin; its schema is created from the models
//! (the migrations do not run on SQLite). The schema is built once per machine into
//! `$HOME/.cache/cellnet/neutron/` and copied for each server. Keystone uses SQLite and fernet
//! tokens, bootstrapped with an admin password; its catalog points at the Neutron.
//!
//! Processes are spawned through [`super::gobgp::spawn_kept`] (`PR_SET_PDEATHSIG`), each in its
//! own process group, and killed (the whole group) on drop.
#![allow(dead_code)]

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::control_plane::{free_port, report};
use super::gobgp::spawn_kept;

const PYTHON: &str = "/usr/bin/python3";
const PACKAGES: [&str; 3] = [
    "python3-neutron",
    "python3-neutron-dynamic-routing",
    "python3-keystone",
];
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The admin password of the test Keystone.
pub const ADMIN_PASSWORD: &str = "cellnet-admin-pw";

fn installed() -> bool {
    Path::new("/usr/lib/python3/dist-packages/neutron_dynamic_routing").is_dir()
        && Path::new("/usr/lib/python3/dist-packages/keystone").is_dir()
        && Path::new("/usr/bin/keystone-manage").is_file()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(format!(
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Installs Neutron, neutron-dynamic-routing and Keystone from Debian's packages when missing
/// (as root; otherwise panics with the command to run).
pub fn ensure_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if installed() {
            return;
        }
        assert!(
            is_root(),
            "Neutron and Keystone are needed by these tests: run `sudo apt-get install --no-install-recommends {}` \
             (or `sudo make prereqs`)",
            PACKAGES.join(" ")
        );
        let began = Instant::now();
        let install = || {
            run(Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600"])
                .args(PACKAGES)
                .env("DEBIAN_FRONTEND", "noninteractive"))
        };
        install()
            .or_else(|_| {
                run(Command::new("apt-get").args(["update", "-q", "-o", "DPkg::Lock::Timeout=600"]))?;
                install()
            })
            .unwrap_or_else(|e| panic!("cannot install Neutron and Keystone: {e}"));
        report(&format!(
            "installed {} in {:.0} s",
            PACKAGES.join(" "),
            began.elapsed().as_secs_f64()
        ));
    });
}

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/cellnet/neutron")
}

/// A SQLite database with Neutron's (and neutron-dynamic-routing's) schema, made once.
fn template_db() -> PathBuf {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = cache_dir();
        std::fs::create_dir_all(&dir).expect("create the Neutron cache dir");
        let version = run(Command::new("dpkg-query").args(["-W", "-f", "${Version}", "python3-neutron"]))
            .unwrap_or_default()
            .replace([':', '/', '~'], "_");
        // WAL (kept in the file): the periodic worker's reads do not block the API's commits.
        let db = dir.join(format!("neutron-{version}-wal.db"));
        if db.is_file() {
            return db;
        }
        let began = Instant::now();
        let staging = tempfile::NamedTempFile::new_in(&dir).expect("temp file");
        let script = "import sys, sqlalchemy\n\
                      from neutron.db.migration.models import head\n\
                      import neutron_dynamic_routing.db.migration.models.head  # noqa: F401\n\
                      engine = sqlalchemy.create_engine('sqlite:///' + sys.argv[1])\n\
                      head.get_metadata().create_all(engine)\n\
                      with engine.connect() as c:\n    c.exec_driver_sql('PRAGMA journal_mode=WAL')\n";
        run(Command::new(PYTHON).arg("-c").arg(script).arg(staging.path()))
            .unwrap_or_else(|e| panic!("cannot create Neutron's schema: {e}"));
        staging.persist(&db).expect("keep the Neutron schema");
        report(&format!(
            "Neutron schema created in {:.1} s",
            began.elapsed().as_secs_f64()
        ));
        db
    })
    .clone()
}

const API_PASTE: &str = "[composite:neutron]\nuse = egg:Paste#urlmap\n/: neutronversions_composite\n/v2.0: neutronapi_v2_0\n\n\
[composite:neutronapi_v2_0]\nuse = call:neutron.auth:pipeline_factory\n\
noauth = request_id fake_project_id catch_errors extensions neutronapiapp_v2_0\n\n\
[composite:neutronversions_composite]\nuse = call:neutron.auth:pipeline_factory\nnoauth = neutronversions\n\n\
[filter:request_id]\npaste.filter_factory = oslo_middleware:RequestId.factory\n\n\
[filter:catch_errors]\npaste.filter_factory = oslo_middleware:CatchErrors.factory\n\n\
[filter:fake_project_id]\npaste.filter_factory = neutron.auth:NoauthFakeProjectId.factory\n\n\
[filter:extensions]\npaste.filter_factory = neutron.api.extensions:plugin_aware_extension_middleware_factory\n\n\
[app:neutronversions]\npaste.app_factory = neutron.pecan_wsgi.app:versions_factory\n\n\
[app:neutronapiapp_v2_0]\npaste.app_factory = neutron.api.v2.router:APIRouter.factory\n";

/// A process in its own group; the group is killed on drop.
struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        cmd.process_group(0);
        let child = spawn_kept(cmd).expect("spawn");
        Proc { child }
    }

    fn kill(&mut self, signal: i32) {
        // SAFETY: kill(2) on our own child's process group.
        unsafe { libc::kill(-(self.child.id() as i32), signal) };
    }

    /// SIGTERM to the group, then SIGKILL after 10 s.
    fn stop(mut self) {
        self.kill(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // The workers leave with the parent; make sure.
                self.kill(libc::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill(libc::SIGKILL);
        let _ = self.child.try_wait();
    }
}

fn wait_http(url: &str, log: &Path, child: &mut Child, what: &str) -> Duration {
    let began = Instant::now();
    loop {
        let ok = raw_request("GET", url, None, &[], Duration::from_secs(2))
            .is_ok_and(|(code, _, _)| (200..400).contains(&code));
        if ok {
            return began.elapsed();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) during start-up:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            began.elapsed() < READY_TIMEOUT,
            "{what} not ready in {READY_TIMEOUT:?}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running neutron-server (noauth); stopped on drop.
pub struct Neutron {
    pub port: u16,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
}

impl Neutron {
    /// Installs if needed, writes the config into a temp dir and starts neutron-server.
    pub fn start() -> Neutron {
        ensure_installed();
        let began = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("neutron-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        std::fs::copy(template_db(), d.join("neutron.db")).expect("copy the Neutron schema");
        std::fs::create_dir_all(d.join("lock")).unwrap();
        std::fs::write(d.join("api-paste.ini"), API_PASTE).unwrap();
        let mut n = Neutron {
            port: free_port(),
            dir,
            proc: None,
        };
        n.write_conf();
        n.spawn();
        report(&format!(
            "neutron-server started on 127.0.0.1:{} in {:.1} s",
            n.port,
            began.elapsed().as_secs_f64()
        ));
        n
    }

    fn write_conf(&self) {
        let d = self.dir.path().display();
        // `vni_ranges` is the pool of tenant networks; an admin's provider network may take a VNI
        // outside it (ML2's tunnel driver then records the allocation), as the vxlan test's 10100.
        let conf = format!(
            "[DEFAULT]\nauth_strategy = noauth\ncore_plugin = ml2\nservice_plugins = bgp\ntransport_url = fake://\n\
             api_workers = 0\nrpc_workers = 0\nrpc_state_report_workers = 0\nbind_host = 127.0.0.1\nbind_port = {port}\n\
             api_paste_config = {d}/api-paste.ini\nnotify_nova_on_port_status_changes = false\n\
             notify_nova_on_port_data_changes = false\nstate_path = {d}\n\
             [database]\nconnection = sqlite:///{d}/neutron.db\n\
             [ml2]\ntype_drivers = flat,vlan,vxlan\ntenant_network_types = vxlan\nmechanism_drivers =\n\
             [ml2_type_flat]\nflat_networks = *\n\
             [ml2_type_vlan]\nnetwork_vlan_ranges = infra,physnet-vlan\n\
             [ml2_type_vxlan]\nvni_ranges = 1:100\n\
             [oslo_concurrency]\nlock_path = {d}/lock\n\
             [quotas]\nquota_driver = neutron.db.quota.driver_null.DbQuotaDriverNull\n",
            port = self.port
        );
        std::fs::write(self.dir.path().join("neutron.conf"), conf).unwrap();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("neutron-server.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut cmd = Command::new(PYTHON);
        cmd.arg("-c")
            .arg("import sys; from neutron.cmd.eventlet.server import main; sys.argv[0] = 'neutron-server'; sys.exit(main())")
            .arg("--config-file")
            .arg(self.dir.path().join("neutron.conf"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut proc = Proc::spawn(cmd);
        wait_http(&self.url(), &self.log_path(), &mut proc.child, "neutron-server");
        self.proc = Some(proc);
    }

    /// `http://127.0.0.1:<port>` (no `/v2.0`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, bounded); the database is kept.
    pub fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            p.stop();
        }
    }

    /// Starts it again on the same port with the same database.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// One call to Neutron's API with a plain HTTP client (independent of cellnet's client): (HTTP status, JSON).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        http(method, &format!("{}/v2.0{path}", self.url()), body, &[])
    }

    /// `GET /v2.0{path}` and the value at `key`, asserting 200.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let (status, v) = self.api("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }
}

impl Drop for Neutron {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            let keep = std::env::temp_dir().join(format!("neutron-server-{}.log", self.port));
            let _ = std::fs::write(&keep, &log);
            eprintln!(
                "--- neutron-server log (last 60 lines; all of it in {}) ---",
                keep.display()
            );
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
        self.proc.take();
    }
}

/// (status, lower-cased headers, body).
type RawResponse = (u16, Vec<(String, String)>, String);

/// A minimal HTTP/1.1 client over std (no curl on a fresh machine, and independent of cellnet's
/// reqwest client): (status, headers, body). `http://127.0.0.1:port/path` only.
fn raw_request(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> std::io::Result<RawResponse> {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://").expect("http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr: std::net::SocketAddr = authority.parse().expect("host:port");
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let hdrs: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = hdrs
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let payload = if chunked {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    Ok((status, hdrs, payload))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One HTTP call: (status, JSON body or Null); status 0 when the server did not answer.
pub fn http(
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let body = body.map(|b| b.to_string());
    match raw_request(method, url, body.as_deref(), headers, Duration::from_secs(20)) {
        Ok((status, _, text)) => (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        ),
        Err(_) => (0, serde_json::Value::Null),
    }
}

/// The value of response header `name` of a POST.
fn post_header(url: &str, body: &serde_json::Value, name: &str) -> Option<String> {
    let (_, headers, _) =
        raw_request("POST", url, Some(&body.to_string()), &[], Duration::from_secs(20)).ok()?;
    let name = name.to_ascii_lowercase();
    headers.into_iter().find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// A running Keystone (keystone-wsgi-public, SQLite, fernet) whose catalog lists `neutron_url`
/// as the `network` endpoint (public, RegionOne). Stopped on drop.
pub struct Keystone {
    pub port: u16,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
}

impl Keystone {
    pub fn start(neutron_url: &str) -> Keystone {
        ensure_installed();
        let began = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("keystone-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path().to_path_buf();
        let port = free_port();
        let conf = format!(
            "[DEFAULT]\nlog_dir = {d}\n[database]\nconnection = sqlite:///{d}/keystone.db\n[token]\nprovider = fernet\n\
             [fernet_tokens]\nkey_repository = {d}/fernet-keys\n[fernet_receipts]\nkey_repository = {d}/fernet-keys\n\
             [credential]\nkey_repository = {d}/credential-keys\n[identity]\npassword_hash_rounds = 4\n",
            d = d.display()
        );
        std::fs::write(d.join("keystone.conf"), conf).unwrap();
        let manage = |args: &[&str]| {
            run(Command::new("keystone-manage")
                .arg("--config-file")
                .arg(d.join("keystone.conf"))
                .args(args)
                .current_dir(&d))
            .unwrap_or_else(|e| panic!("keystone-manage {args:?}: {e}"));
        };
        manage(&["db_sync"]);
        manage(&[
            "fernet_setup",
            "--keystone-user",
            "root",
            "--keystone-group",
            "root",
        ]);
        manage(&[
            "credential_setup",
            "--keystone-user",
            "root",
            "--keystone-group",
            "root",
        ]);
        let public = format!("http://127.0.0.1:{port}/v3/");
        manage(&[
            "bootstrap",
            "--bootstrap-password",
            ADMIN_PASSWORD,
            "--bootstrap-public-url",
            &public,
            "--bootstrap-region-id",
            "RegionOne",
        ]);
        let log_path = d.join("keystone-wsgi.log");
        let log = File::options().create(true).append(true).open(&log_path).unwrap();
        let mut cmd = Command::new("keystone-wsgi-public");
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("OS_KEYSTONE_CONFIG_DIR", &d)
            .current_dir(&d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut proc = Proc::spawn(cmd);
        wait_http(
            &format!("http://127.0.0.1:{port}/v3"),
            &log_path,
            &mut proc.child,
            "keystone-wsgi-public",
        );
        let ks = Keystone {
            port,
            dir,
            proc: Some(proc),
        };
        // The network service and its endpoint, with the admin's token.
        let token = ks.admin_token();
        let h = [("X-Auth-Token", token.as_str())];
        let (s, svc) = http(
            "POST",
            &ks.v3("/services"),
            Some(&serde_json::json!({"service": {"name": "neutron", "type": "network"}})),
            &h,
        );
        assert_eq!(s, 201, "create service: {svc}");
        let (s, ep) = http(
            "POST",
            &ks.v3("/endpoints"),
            Some(
                &serde_json::json!({"endpoint": {"service_id": svc["service"]["id"], "interface": "public",
                "region_id": "RegionOne", "url": neutron_url}}),
            ),
            &h,
        );
        assert_eq!(s, 201, "create endpoint: {ep}");
        report(&format!(
            "keystone started on 127.0.0.1:{port} in {:.1} s",
            began.elapsed().as_secs_f64()
        ));
        ks
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v3", self.port)
    }

    fn v3(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    fn password_body(password: &str) -> serde_json::Value {
        serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    }

    /// A project-scoped token of the admin.
    pub fn admin_token(&self) -> String {
        post_header(
            &self.v3("/auth/tokens"),
            &Self::password_body(ADMIN_PASSWORD),
            "X-Subject-Token",
        )
        .expect("admin token")
    }

    /// Creates an application credential of the admin: (id, secret).
    pub fn application_credential(&self, name: &str) -> (String, String) {
        let token = self.admin_token();
        let h = [("X-Auth-Token", token.as_str())];
        let (_, me) = http(
            "GET",
            &self.v3("/auth/tokens"),
            None,
            &[h[0], ("X-Subject-Token", &token)],
        );
        let user = me["token"]["user"]["id"].as_str().expect("user id").to_string();
        let (s, v) = http(
            "POST",
            &self.v3(&format!("/users/{user}/application_credentials")),
            Some(&serde_json::json!({"application_credential": {"name": name}})),
            &h,
        );
        assert_eq!(s, 201, "application credential: {v}");
        (
            v["application_credential"]["id"].as_str().unwrap().to_string(),
            v["application_credential"]["secret"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    }

    /// How many token requests Keystone has served (from its log), to check caching.
    pub fn token_requests(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("keystone-wsgi.log"))
            .unwrap_or_default()
            .matches("POST /v3/auth/tokens")
            .count()
    }
}

impl Drop for Keystone {
    fn drop(&mut self) {
        self.proc.take();
    }
}
