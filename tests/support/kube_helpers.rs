//! Small helpers over the Kubernetes API for end-to-end tests: namespaces, kubectl apply and get,
//! bounded waits on conditions that hand back the typed [`CellInterconnect`] or
//! [`InfraEndpoint`] (so tests assert on `status.local.session_state`, not on JSON pointers).
use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cellnet::api::infra_endpoint::NeutronStatus;
use cellnet::api::{CellInterconnect, InfraEndpoint, SideStatus};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ObjectMeta, PostParams};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::control_plane::{ControlPlane, report};

/// Creates namespace `name` through the API. Returns true if it is new, false if it already
/// existed (tests that share one, e.g. the controller's own, may each create it).
pub async fn namespace(cp: &ControlPlane, name: &str) -> bool {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<Namespace>::all(cp.client().await)
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 409 => false,
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// A cellnet kind as the tests read it back: typed, found by kubectl's short name.
pub trait Kind: DeserializeOwned {
    /// kubectl's short name: `cic`, `iep`.
    const SHORT: &'static str;

    /// `status.conditions` (none without a status).
    fn conditions(&self) -> &[Condition];

    /// The condition `type_`, if the status has it.
    fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions().iter().find(|c| c.type_ == type_)
    }
}

impl Kind for CellInterconnect {
    const SHORT: &'static str = "cic";

    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }
}

impl Kind for InfraEndpoint {
    const SHORT: &'static str = "iep";

    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }
}

/// Shortcuts into an interconnect's status, for assertions: `obj.local()`, `obj.remote()`.
pub trait InterconnectStatusExt {
    fn local(&self) -> Option<&SideStatus>;
    fn remote(&self) -> Option<&SideStatus>;
}

impl InterconnectStatusExt for CellInterconnect {
    fn local(&self) -> Option<&SideStatus> {
        self.status.as_ref()?.local.as_ref()
    }

    fn remote(&self) -> Option<&SideStatus> {
        self.status.as_ref()?.remote.as_ref()
    }
}

/// Shortcut into an endpoint's status, for assertions: `ep.neutron()`.
pub trait EndpointStatusExt {
    fn neutron(&self) -> Option<&NeutronStatus>;
}

impl EndpointStatusExt for InfraEndpoint {
    fn neutron(&self) -> Option<&NeutronStatus> {
        self.status.as_ref()?.neutron.as_ref()
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

    /// `kubectl get <what> -n <ns> -o json`, parsed; `None` if it does not exist. The raw object,
    /// for checks that must see every byte (no secret leaked) or read it as other tools do.
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

    /// `kubectl get <kind>/<name> -n <ns> -o json` as the typed object; `None` if it does not
    /// exist. Panics if the object does not read as `K` (the API types and the server disagree).
    pub fn get<K: Kind>(&self, namespace: &str, name: &str) -> Option<K> {
        let json = self.get_json(namespace, &format!("{}/{name}", K::SHORT))?;
        Some(
            serde_json::from_value(json.clone())
                .unwrap_or_else(|e| panic!("{}/{name} does not read as its type: {e}\n{json}", K::SHORT)),
        )
    }
}

/// The condition `type_` of a raw object's status as (status, reason, message).
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

/// Conditions on one line each, `Ready=False SdnUnreachable: message`, for timeout messages.
pub fn describe(conditions: &[Condition]) -> String {
    let lines: Vec<String> = conditions
        .iter()
        .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
        .collect();
    format!("[{}]", lines.join("; "))
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

/// Waits (at most `timeout`) until `<kind>/<name>` in `ns` has condition `type_` with `status`
/// (and `reason` if given); returns the object as it was then and how long it took. On a
/// timeout it panics with every condition it last saw.
pub fn wait_condition<K: Kind>(
    cp: &ControlPlane,
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
    timeout: Duration,
) -> (K, Duration) {
    let what = format!("{ns}/{}/{name} {type_}={status} {reason:?}", K::SHORT);
    wait_for(&what, timeout, || {
        let obj = cp.get::<K>(ns, name);
        let hit = obj
            .as_ref()
            .and_then(|o| o.condition(type_))
            .is_some_and(|c| c.status == status && reason.is_none_or(|want| c.reason == want));
        let seen = obj
            .as_ref()
            .map_or_else(|| "not found".to_string(), |o| describe(o.conditions()));
        (obj.filter(|_| hit), seen)
    })
}

/// [`wait_condition`] for `Ready=True`; reports how long it took.
pub fn wait_ready<K: Kind>(cp: &ControlPlane, ns: &str, name: &str, timeout: Duration) -> (K, Duration) {
    let (obj, took) = wait_condition(cp, ns, name, "Ready", "True", None, timeout);
    report(&format!(
        "{ns}/{}/{name}: Ready after {:.1} s",
        K::SHORT,
        took.as_secs_f64()
    ));
    (obj, took)
}

/// [`wait_condition`] on the raw object `what` (`cic/<name>`, `iep/<name>`), for tests that read
/// it as other tools do (kstatus, Argo CD health).
pub fn wait_condition_json(
    cp: &ControlPlane,
    ns: &str,
    what: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
    timeout: Duration,
) -> (Value, Duration) {
    wait_for(
        &format!("{ns}/{what} {type_}={status} {reason:?}"),
        timeout,
        || {
            let obj = cp.get_json(ns, what);
            let cond = obj.as_ref().and_then(|o| condition(o, type_));
            let hit = cond
                .as_ref()
                .is_some_and(|(s, r, _)| s == status && reason.is_none_or(|want| want == r));
            (if hit { obj.clone() } else { None }, format!("{cond:?}"))
        },
    )
}
