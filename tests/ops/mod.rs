//! Helpers of tests/production.rs and tests/packaging.rs: helm (hack/helm.sh), kustomize (the
//! control plane's kubectl), the Argo CD Lua health check run by Debian's Lua, a kstatus reader,
//! plain HTTP GETs, and controller replicas that may stand by (so never log "controllers started").
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::control_plane::report;
use crate::support::controller::controller_binary;
use crate::support::gobgp::spawn_kept;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command; returns (success, stdout, stderr).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`run`] with `input` on stdin.
pub fn run_with_input(cmd: &mut Command, input: &str) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The helm binary from `hack/helm.sh` (built once, cached in ~/.cache/cellnet/bin).
pub fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let began = Instant::now();
        let out = Command::new("bash")
            .arg(repo().join("hack/helm.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run hack/helm.sh");
        assert!(out.status.success(), "hack/helm.sh failed; see its output above");
        let path = PathBuf::from(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap()
                .trim(),
        );
        report(&format!(
            "helm ready in {:.1} s: {}",
            began.elapsed().as_secs_f64(),
            path.display()
        ));
        path
    })
}

/// `helm <args>` in the repository; returns (success, stdout, stderr).
pub fn helm_run(args: &[&str]) -> (bool, String, String) {
    run(Command::new(helm()).args(args).current_dir(repo()))
}

/// `helm template` of the chart as release `cellnet` in `cellnet-system`, with `extra` arguments;
/// its documents.
pub fn helm_template(extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        "cellnet",
        "charts/cellnet",
        "--namespace",
        "cellnet-system",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = helm_run(&args);
    assert!(ok, "helm {args:?}: {err}");
    yaml_docs(&out)
}

/// Splits multi-document YAML into JSON values (empty documents dropped).
pub fn yaml_docs(text: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|doc| {
            let v = serde_yaml::Value::deserialize(doc).expect("valid YAML");
            (!v.is_null()).then(|| serde_json::to_value(v).expect("YAML as JSON"))
        })
        .collect()
}

/// Panics unless the controller's ClusterRole may get, list and watch Secrets in every namespace.
pub fn assert_cluster_wide_secrets(docs: &[Value]) {
    let rules = &find(docs, "ClusterRole", "cellnet-controller")["rules"];
    let secrets = serde_json::json!(["secrets"]);
    let verbs = serde_json::json!(["get", "list", "watch"]);
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"] == secrets && r["verbs"] == verbs),
        "{rules}"
    );
}

/// The document of `kind` named `name`.
pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} among {:?}", kinds(docs)))
}

pub fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or("?"),
                d["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// A JSON value as a Lua table constructor.
pub fn lua_literal(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// Lua interpreters the health check is run with: 5.1 (the language of Argo CD's gopher-lua) and
/// 5.4. Both come from Debian (hack/prereqs.sh).
pub const LUAS: [&str; 2] = ["lua5.1", "lua5.4"];

/// Runs deploy/argocd/health.lua on `obj` with `lua`, as Argo CD does (global `obj`, returned
/// table `hs`); returns (status, message).
pub fn argocd_health_with(lua: &str, obj: &Value) -> (String, String) {
    let script = repo().join("deploy/argocd/health.lua");
    let program = format!(
        "obj = {}\nlocal hs = dofile({})\nio.write(tostring(hs.status), \"\\n\", tostring(hs.message))\n",
        lua_literal(obj),
        lua_string(&script.display().to_string())
    );
    let (ok, out, err) = run_with_input(Command::new(lua).arg("-"), &program);
    assert!(ok, "{lua} failed: {err}");
    let (status, message) = out.split_once('\n').unwrap_or((&out, ""));
    (status.to_string(), message.to_string())
}

/// [`argocd_health_with`] with every interpreter, which must agree.
pub fn argocd_health(obj: &Value) -> (String, String) {
    let results: Vec<_> = LUAS.iter().map(|lua| argocd_health_with(lua, obj)).collect();
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "interpreters disagree: {results:?}"
    );
    results.into_iter().next().unwrap()
}

/// kstatus's status of a custom resource (sigs.k8s.io/cli-utils/pkg/kstatus/status, generic rules
/// for kinds it does not know): `InProgress` while `status.observedGeneration` lags
/// `metadata.generation` or `Reconciling` is True, `Failed` when `Stalled` is True, else `Current`.
/// Flux (`wait: true`, `healthChecks`) and `kubectl`-less tooling such as kpt use exactly these.
pub fn kstatus(obj: &Value) -> (&'static str, String) {
    if obj["metadata"]["deletionTimestamp"].is_string() {
        return ("Terminating", "deletion in progress".into());
    }
    if let (Some(generation), Some(observed)) = (
        obj["metadata"]["generation"].as_i64(),
        obj["status"]["observedGeneration"].as_i64(),
    ) && observed != generation
    {
        return (
            "InProgress",
            format!("observedGeneration {observed} != generation {generation}"),
        );
    }
    let cond = |t: &str| {
        obj["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .cloned()
    };
    if let Some(c) = cond("Reconciling")
        && c["status"] == "True"
    {
        return ("InProgress", c["message"].as_str().unwrap_or_default().into());
    }
    if let Some(c) = cond("Stalled")
        && c["status"] == "True"
    {
        return ("Failed", c["message"].as_str().unwrap_or_default().into());
    }
    ("Current", "Resource is current".into())
}

/// GET `path` on `addr` over plain HTTP/1.1; returns (status code, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let (head, body) = out.split_once("\r\n\r\n").ok_or("no HTTP head")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status code")?;
    Ok((code, body.to_string()))
}

/// The value of the sample `name{labels...}` whose labels include every `want` pair.
pub fn sample(exposition: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, labels) = series.split_once('{').unwrap_or((series, "}"));
            (n == name && want.iter().all(|(k, v)| labels.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .reduce(|a, b| a + b)
}

/// A controller process that may stand by (leader election), with fixed metrics and probe ports.
pub struct Replica {
    pub name: String,
    child: Option<Child>,
    log_path: PathBuf,
    pub metrics: SocketAddr,
    pub probes: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Replica {
    pub fn start(name: &str, kubeconfig: &Path, args: &[&str]) -> Replica {
        let dir = tempfile::Builder::new()
            .prefix("cellnet-replica-")
            .tempdir()
            .unwrap();
        let log_path = dir.path().join("controller.log");
        let metrics: SocketAddr = format!("127.0.0.1:{}", crate::support::free_port())
            .parse()
            .unwrap();
        let probes: SocketAddr = format!("127.0.0.1:{}", crate::support::free_port())
            .parse()
            .unwrap();
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(controller_binary());
        cmd.args(args)
            .arg(format!("--metrics-bind-address={metrics}"))
            .arg(format!("--health-probe-bind-address={probes}"))
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,cellnet=debug")
            .env("NO_COLOR", "1")
            .env("POD_NAME", name)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = spawn_kept(cmd).expect("spawn cellnet-controller");
        Replica {
            name: name.into(),
            child: Some(child),
            log_path,
            metrics,
            probes,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; panics (with the log) after `timeout` or on exit.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> Duration {
        let began = Instant::now();
        loop {
            if self.log().contains(needle) {
                return began.elapsed();
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "{} exited ({status}) waiting for {needle:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                began.elapsed() < timeout,
                "{}: no {needle:?} in {timeout:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        let addr = if path == "/metrics" {
            self.metrics
        } else {
            self.probes
        };
        http_get(addr, path)
    }

    /// SIGKILL: a crash, no lease release.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM; waits (at most 10 s) and returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Waits for the process to exit by itself; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let began = Instant::now();
        while began.elapsed() < timeout {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `kubectl kustomize` of an overlay of deploy/ with `components` (names under
/// deploy/components/), as docs/install.md shows; returns the YAML. The overlay lives in a temp
/// directory and names deploy/ by a relative path (kustomize refuses absolute ones).
pub fn kustomize_with(kubectl: &Path, components: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let up = "../".repeat(dir.path().components().count() - 1);
    let deploy = format!(
        "{up}{}",
        repo()
            .join("deploy")
            .display()
            .to_string()
            .trim_start_matches('/')
    );
    let mut text = format!("resources:\n  - {deploy}\ncomponents:\n");
    for c in components {
        text.push_str(&format!("  - {deploy}/components/{c}\n"));
    }
    std::fs::write(dir.path().join("kustomization.yaml"), text).unwrap();
    let (ok, out, err) = run(Command::new(kubectl).arg("kustomize").arg(dir.path()));
    assert!(ok, "kubectl kustomize with {components:?}: {err}");
    out
}
