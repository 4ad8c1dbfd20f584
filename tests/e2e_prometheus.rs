//! The shipped alerts and dashboard against the real thing: a real Prometheus (Debian's
//! package) scrapes the real controller, which runs against a real control plane and two real
//! gobgpd cells; it evaluates deploy/monitoring/cellnet-alerts.yaml with every `for:` shortened.
//! A speaker is stopped: the link's alerts fire in Prometheus' own API, and every panel query of
//! deploy/monitoring/cellnet-dashboard.json returns data; the speaker comes back (empty, as after
//! a crash): the alerts resolve.
mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use cellnet::api::CellInterconnect;
use serde_json::Value;
use support::gobgp::Gobgpd;
use support::manifests::{BGP_PORT, endpoint, interconnect};
use support::prometheus::{Prometheus, with_short_for};
use support::{ControllerProcess, namespace, report, wait_for, wait_ready};

/// Fresh sessions need 6-9 s (GoBGP's connect-retry timer); start-up of the speakers adds to it.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// From a stopped speaker to the alerts firing: the controller notices (stream end, poll), writes
/// status and metrics, Prometheus scrapes (1 s) and holds the alert for the short `for:`.
const FIRE_TIMEOUT: Duration = Duration::from_secs(60);
/// From the speaker's restart to the alerts resolved: configured again, session up (6-9 s).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(120);
/// The test's `for:` of every alert (10m and 5m in the shipped file).
const SHORT_FOR: &str = "3s";
const NS: &str = "e2e-prometheus";

fn repo_file(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Speakers on 127.0.20.x: away from the other end-to-end tests' addresses.
fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 20, last)
}

fn managed(name: &str, speaker: &Gobgpd, last: u8) -> String {
    endpoint(name)
        .cell(&speaker.name)
        .address(addr(last))
        .asn(65200 + u32::from(last))
        .port(BGP_PORT)
        .gobgp(&speaker.api_url())
        .yaml()
}

/// Waits until alert `name` with `labels` is firing (`true`) or neither firing nor pending.
fn wait_alert(
    prom: &Prometheus,
    name: &str,
    labels: &[(&str, &str)],
    firing: bool,
    timeout: Duration,
) -> Duration {
    let what = format!("{name} {labels:?} {}", if firing { "firing" } else { "resolved" });
    let (_, took) = wait_for(&what, timeout, || {
        let found = match firing {
            true => !prom.alerts_matching(name, labels, "firing").is_empty(),
            false => ["firing", "pending"]
                .iter()
                .all(|state| prom.alerts_matching(name, labels, state).is_empty()),
        };
        (found.then_some(()), format!("{:#?}", prom.alerts()))
    });
    took
}

/// Every panel query of the dashboard, with Grafana's variables as a Prometheus query needs them.
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard: Value =
        serde_json::from_str(&repo_file("deploy/monitoring/cellnet-dashboard.json")).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "30s")
                .replace("$cell", ".*");
            queries.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    queries
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_speaker_fires_the_shipped_alerts_in_a_real_prometheus_and_they_resolve() {
    let cp = support::control_plane();
    cp.install_crds();
    let metrics = format!("127.0.0.1:{}", support::free_port());
    let _controller = ControllerProcess::start(
        cp,
        &[
            "--metrics-bind-address",
            &metrics,
            "--leader-elect",
            "--leader-election-namespace",
            "default",
            "--leader-election-id",
            "cellnet-e2e-prometheus",
        ],
    );
    let rules = with_short_for(&repo_file("deploy/monitoring/cellnet-alerts.yaml"), SHORT_FOR);
    let prom = Prometheus::start(&[metrics], &rules);

    namespace(cp, NS).await;
    let a = Gobgpd::start("prom-a", addr(1), None);
    let mut b = Gobgpd::start("prom-b", addr(2), None);
    let applied = Instant::now();
    cp.apply(
        NS,
        &[
            managed("ep-a", &a, 1),
            managed("ep-b", &b, 2),
            interconnect("a-b", "ep-a", "ep-b").yaml(),
        ]
        .join("---\n"),
    );
    wait_ready::<CellInterconnect>(cp, NS, "a-b", READY_TIMEOUT);
    report(&format!(
        "apply -> Ready: {:.1} s",
        applied.elapsed().as_secs_f64()
    ));

    // Healthy, as Prometheus sees it: the link Ready, the controller leading, no alert at all
    // once the rules had time to fire (every `for:` is 3 s, evaluation every second).
    let link = format!("{NS}/a-b");
    let ready = format!("cellnet_interconnect_ready{{interconnect=\"{link}\"}} == 1");
    let (_, took) = wait_for("Prometheus sees the link Ready", Duration::from_secs(30), || {
        (
            (prom.targets_up() && !prom.query(&ready).is_empty()).then_some(()),
            format!("{:?}", prom.query("up")),
        )
    });
    report(&format!(
        "Ready -> seen Ready by Prometheus: {:.1} s",
        took.as_secs_f64()
    ));
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(prom.alerts(), Vec::<Value>::new(), "no alert on a healthy link");

    // Break the link: cell prom-b's speaker stops.
    b.kill();
    let broken = Instant::now();
    for (name, labels) in [
        (
            "CellnetSDNUnreachable",
            vec![("cell", "prom-b"), ("infraendpoint", "e2e-prometheus/ep-b")],
        ),
        (
            "CellnetInterconnectNotReady",
            vec![
                ("interconnect", link.as_str()),
                ("local_cell", "prom-a"),
                ("remote_cell", "prom-b"),
            ],
        ),
        (
            "CellnetBGPSessionDown",
            vec![("cell", "prom-a"), ("peer_cell", "prom-b")],
        ),
    ] {
        wait_alert(&prom, name, &labels, true, FIRE_TIMEOUT);
        report(&format!(
            "speaker stopped -> {name} firing: {:.1} s",
            broken.elapsed().as_secs_f64()
        ));
    }
    for quiet in [
        "CellnetControllerAbsent",
        "CellnetLeaderMissing",
        "CellnetBGPSessionFlapping",
    ] {
        assert!(
            prom.alerts_matching(quiet, &[], "firing").is_empty(),
            "{quiet}: {:#?}",
            prom.alerts()
        );
    }

    // Every panel of the dashboard has data (now that a link is broken, its not-Ready panels too).
    let queries = dashboard_queries();
    for (panel, expr) in &queries {
        assert!(
            !prom.query(expr).is_empty(),
            "dashboard panel {panel:?}: no data for {expr}"
        );
    }
    let cells: Vec<Value> = prom
        .query("cellnet_bgp_sessions")
        .iter()
        .map(|s| s["metric"]["cell"].clone())
        .collect();
    assert!(
        cells.contains(&"prom-a".into()),
        "the $cell variable finds the cells: {cells:?}"
    );
    report(&format!("{} dashboard queries return data", queries.len()));

    // Restore: the speaker comes back empty; cellnet configures it again and the alerts resolve.
    b.restart_bare();
    let restored = Instant::now();
    for name in [
        "CellnetSDNUnreachable",
        "CellnetInterconnectNotReady",
        "CellnetBGPSessionDown",
    ] {
        wait_alert(&prom, name, &[], false, RESOLVE_TIMEOUT);
        report(&format!(
            "speaker restarted -> {name} resolved: {:.1} s",
            restored.elapsed().as_secs_f64()
        ));
    }
    drop(a);
}
