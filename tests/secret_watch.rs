//! The controller's watches, seen from the API server's own metrics (issue 18 item 8, issue 21
//! item 2):
//!
//! - one watch per kind for both controllers: interconnects, endpoints
//!   (`apiserver_longrunning_requests{verb="WATCH", resource=...}`);
//! - one Secret watch for both controllers (`apiserver_longrunning_requests{verb="WATCH",
//!   resource="secrets"}`), one per namespace with `--secret-namespaces`;
//! - metadata only: the sizes of the LIST answers and of the watch events the API server sent
//!   (`apiserver_response_sizes`, `apiserver_watch_events_sizes`) stay far below the size of a
//!   Secret it holds, while a full LIST of that Secret, made by the test as a calibration, lands
//!   above it. A controller that listed or watched whole Secrets fails both checks.
//!
//! Its own test binary: no other controller of this control plane watches Secrets or cellnet's
//! kinds.
mod ops;
mod support;

use std::time::Duration;

use ops::{Replica, sample};
use support::{ControlPlane, namespace, report, wait_for};

/// A Secret value of 600 KiB (Secrets hold at most 1 MiB).
const BIG: usize = 600 * 1024;
/// What a metadata-only answer or event stays below (the upper bound of a histogram bucket of both
/// metrics); the big Secret alone is 60 times larger.
const METADATA_BOUND: &str = "10000";
const WATCH_EVENT_BOUND: &str = "8192";

const SECRETS_WATCH: &[(&str, &str)] = &[("resource", "secrets"), ("verb", "WATCH")];
const SECRETS_LIST: &[(&str, &str)] = &[("resource", "secrets"), ("verb", "LIST")];

fn apiserver_metrics(cp: &ControlPlane) -> String {
    let (ok, out, err) = cp.kubectl_run(&["get", "--raw", "/metrics"]);
    assert!(ok, "kubectl get --raw /metrics: {err}");
    out
}

/// Watches of Secrets the API server holds open, with these extra labels.
fn secret_watches(cp: &ControlPlane, labels: &[(&str, &str)]) -> f64 {
    let want: Vec<_> = SECRETS_WATCH.iter().chain(labels).copied().collect();
    sample(&apiserver_metrics(cp), "apiserver_longrunning_requests", &want).unwrap_or(0.0)
}

/// (all, at most `bound` bytes): observations of the histogram `name` with `labels`.
fn observations(metrics: &str, name: &str, labels: &[(&str, &str)], bound: &str) -> (f64, f64) {
    let all = sample(metrics, &format!("{name}_count"), labels).unwrap_or(0.0);
    let mut small_labels = labels.to_vec();
    small_labels.push(("le", bound));
    let small = sample(metrics, &format!("{name}_bucket"), &small_labels).unwrap_or(0.0);
    (all, small)
}

fn list_sizes(metrics: &str) -> (f64, f64) {
    observations(metrics, "apiserver_response_sizes", SECRETS_LIST, METADATA_BOUND)
}

fn watch_event_sizes(metrics: &str) -> (f64, f64) {
    observations(
        metrics,
        "apiserver_watch_events_sizes",
        &[("resource", "secrets")],
        WATCH_EVENT_BOUND,
    )
}

fn delta(after: (f64, f64), before: (f64, f64)) -> (f64, f64) {
    (after.0 - before.0, after.1 - before.1)
}

/// A labelled Secret holding `BIG` random bytes, created (`first`) or replaced (not client-side applied: the copy kubectl keeps
/// in an annotation would put the value into the metadata).
fn create_big_secret(cp: &ControlPlane, ns: &str, name: &str, first: bool) {
    // Random bytes: the API server gzips large answers, and a repeated byte would shrink to nothing.
    let mut blob = vec![0u8; BIG];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut blob))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob");
    std::fs::write(&file, blob).unwrap();
    let (ok, out, err) = cp.kubectl_run(&[
        "create",
        "secret",
        "generic",
        name,
        "-n",
        ns,
        &format!("--from-file=blob={}", file.display()),
        "--dry-run=client",
        "-o",
        "json",
    ]);
    assert!(ok, "kubectl create secret: {err}");
    let mut secret: serde_json::Value = serde_json::from_str(&out).unwrap();
    secret["metadata"]["labels"] = serde_json::json!({"cellnet.io/credentials": "true"});
    let file = dir.path().join("secret.json");
    std::fs::write(&file, secret.to_string()).unwrap();
    let verb = if first { "create" } else { "replace" };
    let (ok, _, err) = cp.kubectl_run(&[verb, "-f", &file.display().to_string()]);
    assert!(ok, "kubectl {verb} secret: {err}");
}

/// Watches of cellnet's `resource` (interconnects, endpoints) the API server holds open.
fn cellnet_watches(cp: &ControlPlane, resource: &str) -> f64 {
    let labels = [("group", "cellnet.io"), ("resource", resource), ("verb", "WATCH")];
    sample(&apiserver_metrics(cp), "apiserver_longrunning_requests", &labels).unwrap_or(0.0)
}

/// Waits (bounded) until the API server holds `want` Secret watches with `labels`.
fn wait_watches(cp: &ControlPlane, labels: &[(&str, &str)], want: f64, what: &str) {
    let (_, took) = wait_for(what, Duration::from_secs(30), || {
        let n = secret_watches(cp, labels);
        ((n == want).then_some(()), format!("{n} Secret watches"))
    });
    report(&format!("{what} after {:.1} s", took.as_secs_f64()));
}

fn start_controller(cp: &ControlPlane, name: &str, args: &[&str]) -> Replica {
    let mut controller = Replica::start(name, &cp.kubeconfig, args);
    let took = controller.wait_log("caches synced", Duration::from_secs(60));
    report(&format!(
        "{name}: caches synced after {:.1} s",
        took.as_secs_f64()
    ));
    controller
}

/// (all, large) watch events of Secrets sent by the API server since `before`, once `settled`
/// says the count is complete.
fn watch_events_since(cp: &ControlPlane, before: &str, settled: impl Fn((f64, f64)) -> bool) -> (f64, f64) {
    wait_for("the watch events of a change", Duration::from_secs(30), || {
        let d = delta(
            watch_event_sizes(&apiserver_metrics(cp)),
            watch_event_sizes(before),
        );
        (settled(d).then_some(d), format!("{d:?}"))
    });
    // Any event still in flight to another watcher.
    std::thread::sleep(Duration::from_secs(1));
    let d = delta(
        watch_event_sizes(&apiserver_metrics(cp)),
        watch_event_sizes(before),
    );
    (d.0, d.0 - d.1)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_watch_per_kind_serves_both_controllers_secrets_as_metadata_only() {
    let cp = support::control_plane();
    cp.install_crds();
    let (a, b) = ("sw-a", "sw-b");
    namespace(cp, a).await;
    namespace(cp, b).await;
    create_big_secret(cp, a, "big", true);
    // The API server's own informers watch Secrets too (whole ones): counted before the controller.
    let own = secret_watches(cp, &[]);
    report(&format!("the API server's own Secret watches: {own}"));

    // Calibration: a full LIST of the big Secret lands above the bound, and so does each event of
    // a change sent to a watch of whole Secrets (the API server's own).
    let before = apiserver_metrics(cp);
    let (ok, _, err) = cp.kubectl_run(&["get", "secrets", "-n", a, "-o", "json"]);
    assert!(ok, "{err}");
    let full = delta(list_sizes(&apiserver_metrics(cp)), list_sizes(&before));
    assert_eq!(full, (1.0, 0.0), "a full LIST is above {METADATA_BOUND} bytes");
    create_big_secret(cp, a, "big", false);
    let (_, whole) = watch_events_since(cp, &before, |d| d.0 >= own);
    report(&format!(
        "a change sent {whole} whole-Secret events before the controller ran"
    ));

    // Cluster-wide (the controller's default): one watch for both controllers.
    let before = apiserver_metrics(cp);
    let mut controller = start_controller(cp, "sw-cluster", &[]);
    wait_watches(cp, &[], own + 1.0, "one more Secret watch, cluster-wide");
    // Both controllers are running; a second watch would show by now.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(secret_watches(cp, &[]), own + 1.0, "{}", controller.log());
    // Interconnects and endpoints: one watch each, whose events both controllers read.
    let kinds = ["cellinterconnects", "infraendpoints"].map(|r| (r, cellnet_watches(cp, r)));
    report(&format!("watches held by the controller: {kinds:?}"));
    assert_eq!(kinds.map(|(_, n)| n), [1.0, 1.0], "{}", controller.log());

    // A change of the big Secret reaches the controller's watch as metadata: one more small event,
    // no more whole ones than before.
    create_big_secret(cp, a, "big", false);
    let (events, large) = watch_events_since(cp, &before, |d| d.1 >= 1.0);
    let lists = delta(list_sizes(&apiserver_metrics(cp)), list_sizes(&before));
    report(&format!(
        "cluster-wide: Secret LISTs (all, <= {METADATA_BOUND} B) {lists:?}; watch events {events}, above {WATCH_EVENT_BOUND} B {large}"
    ));
    assert!(lists.0 >= 1.0, "the controller listed Secrets: {lists:?}");
    assert_eq!(lists.0, lists.1, "every LIST answer was metadata only");
    assert_eq!(large, whole, "no whole Secret was sent to the controller's watch");
    assert_eq!(controller.terminate(), Some(0), "{}", controller.log());
    wait_watches(cp, &[], own, "the controller's Secret watch closed");

    // --secret-namespaces: one watch per namespace (RBAC per namespace), for both controllers.
    let before = apiserver_metrics(cp);
    let flag = format!("--secret-namespaces={a},{b}");
    let mut controller = start_controller(cp, "sw-namespaced", &[&flag]);
    wait_watches(
        cp,
        &[("scope", "namespace")],
        2.0,
        "one Secret watch per namespace",
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(secret_watches(cp, &[]), own + 2.0, "{}", controller.log());
    let lists = delta(list_sizes(&apiserver_metrics(cp)), list_sizes(&before));
    report(&format!(
        "namespaced: Secret LISTs (all, <= {METADATA_BOUND} B) {lists:?}"
    ));
    assert!(lists.0 >= 2.0, "one LIST per namespace: {lists:?}");
    assert_eq!(lists.0, lists.1, "every LIST answer was metadata only");
    assert_eq!(controller.terminate(), Some(0), "{}", controller.log());
}
