//! The whole reconcile pipeline against in-memory speakers: the real controller code in this
//! process, a real kube-apiserver, and `cellnet::sdn::fake` behind the SDN connector seam
//! (`controller::Config::connector`). Fast checks of the pipeline's rules — ownership, drift,
//! both sides' ledger claims, cleanup — without gobgpd; the real-process tests (e2e_gobgp,
//! e2e_opendaylight, faults_*) stay the proof that the real backends behave the same.
#[path = "pipeline_fake_sdn/networks.rs"]
mod networks;
#[path = "pipeline_fake_sdn/segments.rs"]
mod segments;
mod support;
#[path = "pipeline_fake_sdn/trust.rs"]
mod trust;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cellnet::api::{CellInterconnect, Reason};
use cellnet::controller::Config;
use cellnet::sdn::fake::{FakeConnector, FakeSpeaker};
use cellnet::sdn::{BackendKind, SessionState};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use support::ControlPlane;
use support::manifests::{self, BGP_PORT, interconnect};

/// Every wait of this binary: the pipeline against in-memory speakers takes well under a second;
/// the bound covers a cold API server and the 1 s speaker poll.
const WAIT: Duration = Duration::from_secs(30);

static FAKES: OnceLock<Arc<FakeConnector>> = OnceLock::new();
static METRICS: OnceLock<Arc<cellnet::metrics::Metrics>> = OnceLock::new();

/// The controller's metrics as `/metrics` would serve them.
fn metrics_text() -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    METRICS.get().expect("controller started").register(&mut registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
    out
}

/// The shared control plane and the in-memory speakers of the one controller of this binary
/// (started on first use on a runtime of its own, so it outlives each test's runtime).
fn env() -> (&'static ControlPlane, Arc<FakeConnector>) {
    let cp = support::control_plane();
    cp.install_crds();
    let fakes = FAKES.get_or_init(|| {
        let fakes = Arc::new(FakeConnector::default());
        let connector: Arc<dyn cellnet::sdn::Connector> = fakes.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("controller runtime");
            runtime.block_on(async move {
                let config = Config {
                    connector,
                    sdn_resync_interval: Duration::from_secs(1),
                    ..Default::default()
                };
                let metrics = METRICS.get_or_init(Default::default).clone();
                cellnet::controller::run(cp.client().await, config, metrics, std::future::pending()).await
            })
        });
        fakes
    });
    (cp, fakes.clone())
}

/// Endpoint `name` of cell `name` (external until given an SDN).
fn endpoint(name: &str, address: &str, asn: u32) -> manifests::Endpoint {
    manifests::endpoint(name)
        .cell(name)
        .address(address)
        .asn(asn)
        .port(BGP_PORT)
}

async fn create<K>(client: &kube::Client, ns: &str, obj: &K)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), obj)
        .await
        .expect("create");
}

/// Waits (bounded) until `check` holds; panics with what was last seen.
async fn wait_until<T: std::fmt::Debug>(
    what: &str,
    mut probe: impl AsyncFnMut() -> T,
    check: impl Fn(&T) -> bool,
) -> T {
    let began = Instant::now();
    loop {
        let seen = probe().await;
        if check(&seen) {
            return seen;
        }
        assert!(
            began.elapsed() < WAIT,
            "{what}: not within {WAIT:?}; last seen: {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Ready condition's (status, reason) of an interconnect.
async fn ready(client: &kube::Client, ns: &str, name: &str) -> Option<(String, String)> {
    let cic = Api::<CellInterconnect>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .ok()??;
    let c = cic.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
    Some((c.status, c.reason))
}

/// The reasons of the Events on objects of `ns`.
async fn event_reasons(client: &kube::Client, ns: &str) -> Vec<String> {
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .expect("list events");
    events.items.into_iter().filter_map(|e| e.reason).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn gobgp(fakes: &FakeConnector, url: &str) -> FakeSpeaker {
    let speaker = fakes.speaker(BackendKind::GoBgp, url);
    speaker.set_new_session(SessionState::Established);
    speaker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_on_both_speakers_drift_repaired_and_removed_on_deletion() {
    let (cp, fakes) = env();
    let client = cp.client().await;
    let ns = "pipeline-gobgp";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let (a, b) = (
        gobgp(&fakes, "http://fake-a:50051"),
        gobgp(&fakes, "http://fake-b:50051"),
    );
    let a_ep = endpoint("a", "192.0.2.1", 65001).gobgp("http://fake-a:50051");
    create(&client, ns, &a_ep.typed()).await;
    let b_ep = endpoint("b", "192.0.2.2", 65002).gobgp("http://fake-b:50051");
    create(&client, ns, &b_ep.typed()).await;
    create(&client, ns, &interconnect("a-b", "a", "b").typed()).await;

    let ready_now = wait_until(
        "Ready",
        async || ready(&client, ns, "a-b").await,
        |r| r.as_ref().is_some_and(|(s, _)| s == "True"),
    )
    .await;
    assert_eq!(ready_now.unwrap().1, Reason::SessionEstablished.as_str());
    assert_eq!(
        a.global().map(|g| g.asn),
        Some(65001),
        "the bare speaker was started"
    );
    let peer = &a.peers()[&ip("192.0.2.2")];
    assert_eq!(
        (peer.config.peer_asn, peer.owner.as_deref()),
        (65002, Some("cellnet:pipeline-gobgp/a-b"))
    );
    assert_eq!(b.peers()[&ip("192.0.2.1")].config.peer_asn, 65001);

    // Drift: the peer removed behind cellnet's back comes back through the speaker poll.
    let writes = a.writes();
    assert!(a.remove(ip("192.0.2.2")));
    wait_until(
        "peer repaired",
        async || a.peers().contains_key(&ip("192.0.2.2")),
        |back| *back,
    )
    .await;
    assert_eq!(a.writes(), writes + 1, "one write: the re-created peer");
    wait_until(
        "DriftRepaired Event",
        async || event_reasons(&client, ns).await,
        |r| r.iter().any(|r| r == Reason::DriftRepaired.as_str()),
    )
    .await;

    let series = r#"cellnet_bgp_sessions{cell="a",peer="192.0.2.2","#;
    assert!(metrics_text().contains(series), "{}", metrics_text());
    Api::<CellInterconnect>::namespaced(client.clone(), ns)
        .delete("a-b", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until(
        "peers removed",
        async || (a.peers().len(), b.peers().len()),
        |n| *n == (0, 0),
    )
    .await;
    wait_until(
        "session series gone with the interconnect",
        async || metrics_text(),
        |m| !m.contains(r#"cell="a",peer="192.0.2.2""#),
    )
    .await;
    wait_until(
        "object gone",
        async || ready(&client, ns, "a-b").await,
        Option::is_none,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_peer_is_a_conflict_and_survives_deletion() {
    let (cp, fakes) = env();
    let client = cp.client().await;
    let ns = "pipeline-foreign";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let (a, _b) = (
        gobgp(&fakes, "http://fake-c:50051"),
        gobgp(&fakes, "http://fake-d:50051"),
    );
    let c_ep = endpoint("c", "192.0.2.3", 65003).gobgp("http://fake-c:50051");
    create(&client, ns, &c_ep.typed()).await;
    let d_ep = endpoint("d", "192.0.2.4", 65004).gobgp("http://fake-d:50051");
    create(&client, ns, &d_ep.typed()).await;
    // An operator's own peer at the address cellnet would use.
    let theirs = cellnet::sdn::PeerConfig::new(ip("192.0.2.4"), 64999, ip("192.0.2.3"), "");
    a.insert_foreign(theirs, Some("operator".into()));
    create(&client, ns, &interconnect("c-d", "c", "d").typed()).await;
    let verdict = wait_until(
        "conflict",
        async || ready(&client, ns, "c-d").await,
        |r| {
            r.as_ref()
                .is_some_and(|(_, reason)| reason == Reason::PeerConflict.as_str())
        },
    )
    .await;
    assert_eq!(verdict.unwrap().0, "False");
    Api::<CellInterconnect>::namespaced(client.clone(), ns)
        .delete("c-d", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until(
        "object gone",
        async || ready(&client, ns, "c-d").await,
        Option::is_none,
    )
    .await;
    let left = &a.peers()[&ip("192.0.2.4")];
    assert_eq!(
        (left.config.peer_asn, left.owner.as_deref()),
        (64999, Some("operator")),
        "untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opendaylight_on_both_sides_keeps_both_ledger_claims_and_removes_both_peers() {
    let (cp, fakes) = env();
    let client = cp.client().await;
    let ns = "pipeline-odl";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "odl", "labels": {"cellnet.io/credentials": "true"}},
        "stringData": {"username": "admin", "password": "admin"}
    }))
    .unwrap();
    create(&client, ns, &secret).await;
    let (e, f) = (
        fakes.speaker(BackendKind::OpenDaylight, "http://fake-odl-e:8181"),
        fakes.speaker(BackendKind::OpenDaylight, "http://fake-odl-f:8181"),
    );
    for s in [&e, &f] {
        s.set_new_session(SessionState::Established);
    }
    let e_ep = endpoint("e", "192.0.2.5", 65005).opendaylight("http://fake-odl-e:8181", "odl");
    create(&client, ns, &e_ep.typed()).await;
    let f_ep = endpoint("f", "192.0.2.6", 65006).opendaylight("http://fake-odl-f:8181", "odl");
    create(&client, ns, &f_ep.typed()).await;
    create(&client, ns, &interconnect("e-f", "e", "f").typed()).await;
    wait_until(
        "Ready",
        async || ready(&client, ns, "e-f").await,
        |r| r.as_ref().is_some_and(|(s, _)| s == "True"),
    )
    .await;
    let cic = Api::<CellInterconnect>::namespaced(client.clone(), ns)
        .get("e-f")
        .await
        .unwrap();
    // The ledger is in status (only the controller writes it).
    let ledger: Vec<(String, String)> = cic
        .status
        .iter()
        .flat_map(|s| &s.owned_peers)
        .map(|p| (p.speaker.clone(), p.neighbor.clone()))
        .collect();
    let want = |url: &str, neighbor: &str| (format!("OpenDaylight|{url}"), neighbor.to_string());
    assert_eq!(
        ledger,
        vec![
            want("http://fake-odl-e:8181", "192.0.2.6"),
            want("http://fake-odl-f:8181", "192.0.2.5")
        ],
        "both sides' claims kept"
    );
    Api::<CellInterconnect>::namespaced(client.clone(), ns)
        .delete("e-f", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until(
        "both neighbours removed",
        async || (e.peers().len(), f.peers().len()),
        |n| *n == (0, 0),
    )
    .await;
}
