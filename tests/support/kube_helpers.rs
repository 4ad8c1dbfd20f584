//! Small helpers over the Kubernetes API for end-to-end tests: namespaces, kubectl apply,
//! bounded waits on conditions.
use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::Value;

use super::control_plane::ControlPlane;

/// Creates namespace `name` (ignores "already exists").
pub async fn create_namespace(client: &kube::Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

impl ControlPlane {
    /// `kubectl apply -n <ns> -f -` with `yaml` on stdin, as a user would; panics on failure.
    pub fn apply(&self, namespace: &str, yaml: &str) {
        let (ok, out, err) = self.apply_result(namespace, yaml);
        assert!(ok, "kubectl apply failed: {err}\n{out}\n--- input:\n{yaml}");
    }

    /// Like [`ControlPlane::apply`] but returns (success, stdout, stderr).
    pub fn apply_result(&self, namespace: &str, yaml: &str) -> (bool, String, String) {
        let mut child = self
            .kubectl()
            .args(["apply", "-n", namespace, "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl");
        child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `kubectl get <what> -n <ns> -o json`, parsed; `None` if it does not exist.
    pub fn get_json(&self, namespace: &str, what: &str) -> Option<Value> {
        let (ok, out, err) = self.kubectl_run(&["get", "-n", namespace, what, "-o", "json"]);
        if !ok {
            assert!(
                err.contains("NotFound") || err.contains("not found"),
                "kubectl get {what}: {err}"
            );
            return None;
        }
        Some(serde_json::from_str(&out).expect("kubectl json"))
    }
}

/// The condition `type_` of an object's status as (status, reason, message).
pub fn condition(obj: &Value, type_: &str) -> Option<(String, String, String)> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Polls `probe` every 250 ms until it returns `Some`, at most `timeout`; panics with `what`
/// and the last value seen. Returns the value and how long it took.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> (Option<T>, String),
) -> (T, Duration) {
    let began = Instant::now();
    loop {
        let (found, last) = probe();
        if let Some(v) = found {
            return (v, began.elapsed());
        }
        assert!(
            began.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; last seen: {last}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until `kind/name` in `ns` has condition `type_` with `status` (and `reason` if given).
pub fn wait_condition(
    cp: &ControlPlane,
    ns: &str,
    what: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
    timeout: Duration,
) -> (Value, Duration) {
    wait_for(&format!("{what} {type_}={status} {reason:?}"), timeout, || {
        let obj = cp.get_json(ns, what);
        let cond = obj.as_ref().and_then(|o| condition(o, type_));
        let hit = cond
            .as_ref()
            .is_some_and(|(s, r, _)| s == status && reason.is_none_or(|want| want == r));
        (if hit { obj.clone() } else { None }, format!("{cond:?}"))
    })
}
