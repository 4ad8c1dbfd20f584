//! A real Prometheus (Debian's `prometheus` package, installed by hack/prereqs.sh) as a child of
//! the test: bound to 127.0.0.1, its data in a temp dir, scraping given targets every second and
//! evaluating given rules every second. Queries go through its HTTP API
//! (https://prometheus.io/docs/prometheus/latest/querying/api/).
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::control_plane::{free_port, report};
use super::gobgp::spawn_kept;

/// Scrape and rule evaluation interval.
pub const INTERVAL: &str = "1s";
/// How long Prometheus may take to start and answer /-/ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Prometheus; killed on drop.
pub struct Prometheus {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

/// `text` with every `for:` of a rules file set to `short` (tests cannot wait 10 minutes).
pub fn with_short_for(text: &str, short: &str) -> String {
    text.lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: {short}", &l[..l.len() - l.trim_start().len()]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`host:port`, job `cellnet`) with `rules` (a rules
    /// file's text); returns once it is ready. Panics (with its log) if it does not start.
    pub fn start(targets: &[String], rules: &str) -> Prometheus {
        let began = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("cellnet-prometheus-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("rules.yaml"), rules).unwrap();
        let config = serde_json::json!({
            "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL, "scrape_timeout": INTERVAL},
            "rule_files": ["rules.yaml"],
            "scrape_configs": [{"job_name": "cellnet", "static_configs": [{"targets": targets}]}],
        });
        // JSON is YAML.
        std::fs::write(dir.path().join("prometheus.yml"), config.to_string()).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
        let child = spawn_kept(cmd).unwrap_or_else(|e| {
            panic!("cannot run prometheus ({e}): install it with `bash hack/prereqs.sh` (Debian's prometheus package)")
        });
        let mut p = Prometheus { port, child, dir };
        loop {
            if let Ok((200, _)) = p.get("/-/ready") {
                break;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", p.log());
            }
            assert!(
                began.elapsed() < START_TIMEOUT,
                "prometheus not ready in 30 s:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        report(&format!(
            "prometheus ready in {:.1} s on 127.0.0.1:{port}",
            began.elapsed().as_secs_f64()
        ));
        p
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("prometheus.log")
    }

    /// A plain HTTP/1.0 GET (no chunked answers): status and body.
    fn get(&self, path_and_query: &str) -> Result<(u16, String), String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        write!(s, "GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
        let mut text = String::new();
        s.read_to_string(&mut text).map_err(|e| e.to_string())?;
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
        let code = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or("no status")?;
        Ok((code, body.to_string()))
    }

    /// `GET path` from the API, its `data` field; panics on an error answer.
    fn api(&self, path_and_query: &str) -> Value {
        let (code, body) = self
            .get(path_and_query)
            .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"));
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path_and_query}: {e}: {body}"));
        assert!(
            code == 200 && v["status"] == "success",
            "{path_and_query}: {code} {body}"
        );
        v["data"].clone()
    }

    /// The instant vector (or scalar) `expr` evaluates to now: its samples.
    pub fn query(&self, expr: &str) -> Vec<Value> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(expr)));
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => data["result"].as_array().cloned().unwrap_or_default(),
            _ => vec![data["result"].clone()],
        }
    }

    /// Every active alert (pending or firing) with its labels and state.
    pub fn alerts(&self) -> Vec<Value> {
        self.api("/api/v1/alerts")["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The active alerts named `name` whose labels include `labels`, in `state` (`firing`).
    pub fn alerts_matching(&self, name: &str, labels: &[(&str, &str)], state: &str) -> Vec<Value> {
        self.alerts()
            .into_iter()
            .filter(|a| {
                a["labels"]["alertname"] == name
                    && a["state"] == state
                    && labels.iter().all(|(k, v)| a["labels"][*k] == *v)
            })
            .collect()
    }

    /// Whether the last scrape of every target succeeded.
    pub fn targets_up(&self) -> bool {
        let up = self.query("up");
        !up.is_empty() && up.iter().all(|s| s["value"][1] == "1")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
