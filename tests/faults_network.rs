//! Faults of issue 11 that concern the network between cells and their speakers, on real
//! processes: the real controller, a real control plane, real gobgpd speakers.
//!
//! - fault 1: the underlay between two cells is cut (their SDN APIs stay reachable);
//! - fault 2: one cell's management link is cut (its SDN API unreachable, its sessions stay up);
//! - fault 3: a hung speaker (gobgpd under SIGSTOP: TCP connects succeed, calls never answer);
//! - fault 6: interconnects deleted while their speaker is down.
//!
//! Faults 1 and 2 use cells with their own network (tests/support/netns.rs): each cell's gobgpd
//! runs in a network namespace made here, its API reached over a management veth from the root
//! namespace (where the controller runs), its BGP session over an underlay veth to the other
//! cell; addresses from 198.51.100.0/24 only. Without root or `ip netns` those two tests print
//! why and skip. The other speakers run on 127.0.5.x (BGP port 1790).
//!
//! One control plane and one controller serve the binary, with the default SDN settings passed
//! explicitly (`--sdn-resync-interval 10s --sdn-timeout 5s`), so that the times reported are
//! those of a default deployment. A speaker that stops answering without closing its connection
//! (management cut, SIGSTOP) is noticed by its watcher's `ListPeer` poll (every resync interval,
//! failing after the timeout) or by the next reconcile's own call timing out: at most about
//! resync + 2 x timeout (20 s). A 2 s resync was tried and was no faster here (one run each:
//! 7.1 s and 7.2 s against 7.0 s and 6.2 s), so the binary keeps the default. Fault 1 is found
//! through GoBGP's event stream and depends only on the BGP hold time.
//!
//! Fault 1 asserts that the controller made no SDN write (its `cellnet_sdn_writes_total`), so it
//! runs alone (write half of [`TURN`]); the others run side by side (read half).
mod ops;
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cellnet::api::{CellInterconnect, InfraEndpoint};
use kube::ResourceExt as _;
use serde_json::Value;
use support::gobgp::{ESTABLISHED, Gobgpd};
use support::manifests::{self, BGP_PORT};
use support::netns::{self, CellPair};
use support::{
    ControlPlane, ControllerProcess, InterconnectStatusExt as _, Kind as _, condition, describe, namespace,
    report, wait_condition, wait_for, wait_ready,
};

/// The interconnects' hold time (manifests::interconnect sets hold 9 s, keepalive 3 s).
const HOLD_TIME: Duration = Duration::from_secs(9);
/// After the hold timer fires: GoBGP's event, the reconcile and the status write.
const DETECT_GRACE: Duration = Duration::from_secs(5);
/// Fresh sessions need 6-9 s (GoBGP's connect-retry timer); a loaded machine adds to it.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// Resync interval and SDN timeout the controller runs with: the defaults (module comment).
const RESYNC: &str = "10s";
const SDN_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on noticing an unreachable or hung speaker: poll interval (10 s) + call timeout (5 s)
/// + one more call of the requeued reconcile (5 s) + a loaded machine.
const UNREACHABLE_DETECT: Duration = Duration::from_secs(40);

/// Fault 1 takes it exclusively; the others share it.
static TURN: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

struct Env {
    cp: &'static ControlPlane,
    _controller: ControllerProcess,
    metrics: SocketAddr,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let cp = support::control_plane();
        cp.install_crds();
        let metrics: SocketAddr = (Ipv4Addr::LOCALHOST, support::free_port()).into();
        let controller = ControllerProcess::start(
            cp,
            &[
                "--sdn-resync-interval",
                RESYNC,
                "--sdn-timeout",
                &format!("{}s", SDN_TIMEOUT.as_secs()),
                "--metrics-bind-address",
                &metrics.to_string(),
            ],
        );
        Env {
            cp,
            _controller: controller,
            metrics,
        }
    })
}

impl Env {
    /// The controller's `cellnet_sdn_writes_total`, all operations.
    fn sdn_writes(&self) -> f64 {
        let (code, text) = ops::http_get(self.metrics, "/metrics").expect("scrape /metrics");
        assert_eq!(code, 200, "{text}");
        ops::sample(&text, "cellnet_sdn_writes_total", &[]).unwrap_or(0.0)
    }
}

fn skip_without_netns(test: &str) -> bool {
    match netns::unavailable() {
        Some(why) => {
            println!("SKIPPED {test}: cannot make network namespaces here: {why}");
            true
        }
        None => false,
    }
}

fn loopback(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 5, last)
}

/// A GoBGP InfraEndpoint for speaker `g` (cell = its name, address = its BGP address).
fn endpoint(name: &str, g: &Gobgpd, asn: u32) -> String {
    manifests::endpoint(name)
        .cell(&g.name)
        .address(g.address)
        .asn(asn)
        .port(BGP_PORT)
        .gobgp(&g.api_url())
        .yaml()
}

/// Endpoints `ep-<x>` and `ep-<y>` for speakers `x` and `y` and the interconnect `<x>-<y>`.
fn pair_yaml(x: &Gobgpd, y: &Gobgpd, asn: impl Fn(&Gobgpd) -> u32) -> String {
    [
        endpoint(&format!("ep-{}", x.name), x, asn(x)),
        endpoint(&format!("ep-{}", y.name), y, asn(y)),
        manifests::interconnect(
            &cic_name(x, y),
            &format!("ep-{}", x.name),
            &format!("ep-{}", y.name),
        )
        .yaml(),
    ]
    .join("---\n")
}

fn cic_name(x: &Gobgpd, y: &Gobgpd) -> String {
    format!("{}-{}", x.name, y.name)
}

fn loopback_asn(g: &Gobgpd) -> u32 {
    65500 + u32::from(g.address.octets()[3])
}

fn netns_asn(g: &Gobgpd) -> u32 {
    65400 + u32::from(g.address.octets()[3])
}

/// The Ready condition of `what` (`cic/<name>`, `iep/<name>`) as (status, reason, message).
fn ready(cp: &ControlPlane, ns: &str, what: &str) -> Option<(String, String, String)> {
    cp.get_json(ns, what).and_then(|o| condition(&o, "Ready"))
}

/// Applies `yaml` (endpoints and interconnect `cic`) and waits until `cic` is Ready. Returns
/// (apply -> both sides configured, apply -> Ready): the controller's own work, then the session.
fn apply_timed(cp: &ControlPlane, ns: &str, yaml: &str, cic: &str) -> (Duration, Duration) {
    let began = Instant::now();
    cp.apply(ns, yaml);
    let mut configured = None;
    wait_for(&format!("{ns}/cic/{cic} Ready"), READY_TIMEOUT, || {
        let obj = cp.get::<CellInterconnect>(ns, cic);
        let is_true = |t: &str| {
            obj.as_ref()
                .and_then(|o| o.condition(t))
                .is_some_and(|c| c.status == "True")
        };
        if configured.is_none() && is_true("LocalConfigured") && is_true("RemoteConfigured") {
            configured = Some(began.elapsed());
        }
        let last = obj
            .as_ref()
            .map_or_else(|| "not found".to_string(), |o| describe(o.conditions()));
        (is_true("Ready").then_some(()), last)
    });
    let ready = began.elapsed();
    (configured.unwrap_or(ready), ready)
}

/// What a speaker holds as configuration for `peer`: GoBGP's JSON without any `state` and
/// without the TCP ports of the current connection.
fn peer_config(g: &Gobgpd, peer: Ipv4Addr) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("state");
                map.remove("local_port");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = g
        .neighbor_json(IpAddr::V4(peer))
        .unwrap_or_else(|| panic!("{}: no peer {peer}: {}", g.name, g.neighbors_json()));
    strip(&mut v);
    v
}

/// Waits (bounded) for an Event with `reason` about object `name` in `ns` whose message contains
/// every one of `needles`; returns its message.
fn wait_event(cp: &ControlPlane, ns: &str, name: &str, reason: &str, needles: &[&str]) -> String {
    let (message, _) = wait_for(
        &format!("Event {reason} about {name} with {needles:?}"),
        Duration::from_secs(20),
        || {
            let (ok, out, err) = cp.kubectl_run(&["get", "events", "-n", ns, "-o", "json"]);
            assert!(ok, "{err}");
            let events: Value = serde_json::from_str(&out).expect("events JSON");
            let items = events["items"].as_array().cloned().unwrap_or_default();
            let hit = items.iter().find_map(|e| {
                let message = e["message"].as_str()?;
                (e["reason"] == reason
                    && e["involvedObject"]["name"] == name
                    && needles.iter().all(|n| message.contains(n)))
                .then(|| message.to_string())
            });
            let seen: Vec<String> = items
                .iter()
                .map(|e| format!("{} {}", e["reason"], e["message"]))
                .collect();
            (hit, format!("{seen:#?}"))
        },
    );
    message
}

/// Deletes every interconnect and endpoint of `ns` and waits until their finalizers are gone,
/// while the speakers still run (so no object is left retrying a speaker that went away).
fn clean_up(cp: &ControlPlane, ns: &str) {
    for kind in ["cellinterconnects", "infraendpoints"] {
        let (ok, _, err) = cp.kubectl_run(&["delete", "-n", ns, kind, "--all", "--wait=false"]);
        assert!(ok, "{err}");
    }
    let (_, took) = wait_for(&format!("{ns} emptied"), Duration::from_secs(60), || {
        let (ok, out, err) =
            cp.kubectl_run(&["get", "-n", ns, "cellinterconnects,infraendpoints", "-o", "name"]);
        assert!(ok, "{err}");
        (out.trim().is_empty().then_some(()), out)
    });
    report(&format!("{ns}: cleaned up in {:.1} s", took.as_secs_f64()));
}

/// One gobgpd in each cell's namespace, named `<prefix>1` and `<prefix>2`, BGP on the underlay.
fn speakers_in(cells: &CellPair, prefix: &str) -> (Gobgpd, Gobgpd) {
    let start = |n: u8, cell: &support::netns::NetCell| {
        Gobgpd::start_in_netns(&format!("{prefix}{n}"), &cell.netns, cell.api_host, cell.underlay)
    };
    (start(1, &cells.a), start(2, &cells.b))
}

#[tokio::test(flavor = "multi_thread")]
async fn underlay_cut_is_a_session_fault_and_heals_without_changes() {
    let _turn = TURN.write().await;
    if skip_without_netns("underlay_cut_is_a_session_fault_and_heals_without_changes") {
        return;
    }
    let env = env();
    let cp = env.cp;
    let ns = "faults-underlay";
    namespace(cp, ns).await;
    // Declared before the speakers: dropped (namespaces removed) after they are killed.
    let cells = CellPair::create();
    let (a, b) = speakers_in(&cells, "cell-u");
    let cic = cic_name(&a, &b);
    let what = format!("cic/{cic}");
    let (_, to_ready) = apply_timed(cp, ns, &pair_yaml(&a, &b, netns_asn), &cic);
    report(&format!(
        "underlay: {cic} Ready {:.1} s after apply (over the underlay veth)",
        to_ready.as_secs_f64()
    ));
    let (before, _) = wait_ready::<CellInterconnect>(cp, ns, &cic, READY_TIMEOUT);
    assert_eq!(a.session_state(IpAddr::V4(b.address)), Some(ESTABLISHED));
    assert_eq!(b.session_state(IpAddr::V4(a.address)), Some(ESTABLISHED));
    let config_before = (peer_config(&a, b.address), peer_config(&b, a.address));
    let writes_before = env.sdn_writes();
    assert!(
        writes_before > 0.0,
        "the metric counts the peers just created (else the check below proves nothing)"
    );

    cells.set_underlay(false);
    let cut = Instant::now();
    // The first Ready=False must already carry the right reason (never SdnUnreachable).
    let ((status, reason, message), took) = wait_for(
        &format!("{what} Ready=False after the underlay cut"),
        HOLD_TIME + DETECT_GRACE,
        || {
            let c = ready(cp, ns, &what);
            (c.clone().filter(|c| c.0 != "True"), format!("{c:?}"))
        },
    );
    report(&format!(
        "underlay cut -> Ready=False {reason} in {:.1} s (hold time {} s)",
        took.as_secs_f64(),
        HOLD_TIME.as_secs()
    ));
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SessionNotEstablished"),
        "{message}"
    );
    assert!(
        message.contains("cell cell-u1") && message.contains("cell cell-u2"),
        "names both cells: {message}"
    );
    let event = wait_event(cp, ns, &cic, "SessionDown", &["cell cell-u1", "cell cell-u2"]);
    report(&format!("underlay cut: Event SessionDown: {event}"));
    // While it lasts: still a session fault, and both SDN APIs are fine.
    for _ in 0..4 {
        let (s, r, m) = ready(cp, ns, &what).expect("Ready condition");
        assert_eq!(
            (s.as_str(), r.as_str()),
            ("False", "SessionNotEstablished"),
            "{m}"
        );
        for ep in ["iep/ep-cell-u1", "iep/ep-cell-u2"] {
            let c = ready(cp, ns, ep);
            assert_eq!(c.as_ref().map(|c| c.0.as_str()), Some("True"), "{ep}: {c:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_ne!(a.session_state(IpAddr::V4(b.address)), Some(ESTABLISHED));
    assert_ne!(b.session_state(IpAddr::V4(a.address)), Some(ESTABLISHED));

    cells.set_underlay(true);
    let restored = Instant::now();
    // Only the local cell dials (spec.bgp.passiveSide defaults to Remote): two gobgpd dialling
    // each other at once could both wait in OpenSent until GoBGP's 240 s OpenSent timer ended
    // (osrg/gobgp#304), which this test once had to allow for. One dialler reconnects within
    // GoBGP's connect loop, so a fresh session's bound holds. On a timeout it says what the
    // speakers report: a stale status and a session that never came back are different bugs.
    let (after, took) = wait_for(
        &format!("{ns}/{what} Ready after the underlay is back"),
        READY_TIMEOUT,
        || {
            let obj = cp.get::<CellInterconnect>(ns, &cic);
            let cond = obj.as_ref().and_then(|o| o.condition("Ready")).cloned();
            let hit = cond.as_ref().is_some_and(|c| c.status == "True");
            let speakers = format!(
                "GoBGP session state a->b {:?}, b->a {:?} (6 = Established)",
                a.session_state(IpAddr::V4(b.address)),
                b.session_state(IpAddr::V4(a.address))
            );
            (if hit { obj } else { None }, format!("{cond:?}; {speakers}"))
        },
    );
    report(&format!(
        "underlay restored -> Ready in {:.1} s ({:.1} s after the cut), nobody touched anything",
        took.as_secs_f64(),
        cut.elapsed().as_secs_f64()
    ));
    assert!(restored.elapsed() < READY_TIMEOUT);
    assert_eq!(a.session_state(IpAddr::V4(b.address)), Some(ESTABLISHED));
    // No configuration change: same peer config on both speakers, no SDN write, same object.
    let config_after = (peer_config(&a, b.address), peer_config(&b, a.address));
    assert_eq!(config_after, config_before, "peer configuration changed");
    let writes = env.sdn_writes() - writes_before;
    assert_eq!(writes, 0.0, "the controller wrote to a speaker {writes} times");
    assert_eq!(after.metadata.generation, before.metadata.generation);
    let flaps = after.local().map_or(0, |l| l.flaps);
    assert!(flaps >= 1, "the loss is counted as a flap: {:?}", after.status);
    // The remote cell (b) listens, the local one dials; status and the speakers say so.
    assert_eq!(
        config_after.1["transport"]["passive_mode"], true,
        "{}",
        config_after.1
    );
    assert_ne!(
        config_after.0["transport"]["passive_mode"], true,
        "{}",
        config_after.0
    );
    let passive = (
        after.local().map(|l| l.passive),
        after.remote().map(|r| r.passive),
    );
    assert_eq!(passive, (Some(false), Some(true)), "{:?}", after.status);
    clean_up(cp, ns);
}

#[tokio::test(flavor = "multi_thread")]
async fn management_cut_marks_only_that_cell_unreachable() {
    let _turn = TURN.read().await;
    if skip_without_netns("management_cut_marks_only_that_cell_unreachable") {
        return;
    }
    let env = env();
    let cp = env.cp;
    let ns = "faults-mgmt";
    namespace(cp, ns).await;
    let cells = CellPair::create();
    let (a, b) = speakers_in(&cells, "cell-m");
    let speakers: Vec<Gobgpd> = (1..=4)
        .map(|n| Gobgpd::start(&format!("cell-o{n}"), loopback(10 + n), None))
        .collect();
    let [c, d, e, f] = &speakers[..] else {
        unreachable!()
    };
    let cic = cic_name(&a, &b);
    let what = format!("cic/{cic}");
    cp.apply(ns, &pair_yaml(&a, &b, netns_asn));
    // Without the cut: another pair, from apply to Ready.
    let normal = apply_timed(cp, ns, &pair_yaml(c, d, loopback_asn), &cic_name(c, d));
    wait_ready::<CellInterconnect>(cp, ns, &cic, READY_TIMEOUT);

    cells.a.set_management(false);
    let cut = Instant::now();
    let (obj, took) = wait_condition::<CellInterconnect>(
        cp,
        ns,
        &cic,
        "Ready",
        "False",
        Some("SdnUnreachable"),
        UNREACHABLE_DETECT,
    );
    report(&format!(
        "management link of cell-m1 cut -> {cic} SdnUnreachable in {:.1} s",
        took.as_secs_f64()
    ));
    let message = &obj.condition("Ready").unwrap().message;
    assert!(message.contains("cell cell-m1"), "names the cell: {message}");
    let event = wait_event(cp, ns, &cic, "SdnUnreachable", &["cell cell-m1"]);
    report(&format!("management cut: Event SdnUnreachable: {event}"));
    let (_, took) = wait_condition::<InfraEndpoint>(
        cp,
        ns,
        "ep-cell-m1",
        "Ready",
        "False",
        Some("SdnUnreachable"),
        UNREACHABLE_DETECT,
    );
    report(&format!(
        "management cut -> endpoint of cell-m1 SdnUnreachable {:.1} s later",
        took.as_secs_f64()
    ));

    // Only that cell: the other endpoint and the other cells' interconnect stay Ready, and the
    // BGP session itself stays up (seen from inside both namespaces).
    for other in [
        "iep/ep-cell-m2",
        "iep/ep-cell-o1",
        &format!("cic/{}", cic_name(c, d)),
    ] {
        let cond = ready(cp, ns, other);
        assert_eq!(
            cond.as_ref().map(|c| c.0.as_str()),
            Some("True"),
            "{other}: {cond:?}"
        );
    }
    assert_eq!(b.session_state(IpAddr::V4(a.address)), Some(ESTABLISHED));
    assert_eq!(a.session_state(IpAddr::V4(b.address)), Some(ESTABLISHED));
    // A new interconnect between two other cells, applied while the cut lasts.
    let during = apply_timed(cp, ns, &pair_yaml(e, f, loopback_asn), &cic_name(e, f));
    report(&format!(
        "other cells, apply -> configured / Ready: {:.1} s / {:.1} s without the cut, \
         {:.1} s / {:.1} s during the management cut",
        normal.0.as_secs_f64(),
        normal.1.as_secs_f64(),
        during.0.as_secs_f64(),
        during.1.as_secs_f64()
    ));
    let (s, r, m) = ready(cp, ns, &what).unwrap();
    assert_eq!(
        (s.as_str(), r.as_str()),
        ("False", "SdnUnreachable"),
        "still cut: {m}"
    );
    assert_eq!(b.session_state(IpAddr::V4(a.address)), Some(ESTABLISHED));

    cells.a.set_management(true);
    let (_, took) = wait_ready::<CellInterconnect>(cp, ns, &cic, READY_TIMEOUT);
    report(&format!(
        "management link restored -> Ready in {:.1} s ({:.1} s after the cut)",
        took.as_secs_f64(),
        cut.elapsed().as_secs_f64()
    ));
    wait_ready::<InfraEndpoint>(cp, ns, "ep-cell-m1", UNREACHABLE_DETECT);
    clean_up(cp, ns);
}

#[tokio::test(flavor = "multi_thread")]
async fn hung_speaker_times_out_without_slowing_the_rest() {
    let _turn = TURN.read().await;
    let env = env();
    let cp = env.cp;
    let ns = "faults-hung";
    namespace(cp, ns).await;
    let speakers: Vec<Gobgpd> = (1..=6)
        .map(|n| Gobgpd::start(&format!("cell-h{n}"), loopback(20 + n), None))
        .collect();
    let [hung, peer, c, d, e, f] = &speakers[..] else {
        unreachable!()
    };
    let cic = cic_name(hung, peer);
    cp.apply(ns, &pair_yaml(hung, peer, loopback_asn));
    let normal = apply_timed(cp, ns, &pair_yaml(c, d, loopback_asn), &cic_name(c, d));
    wait_ready::<CellInterconnect>(cp, ns, &cic, READY_TIMEOUT);

    hung.pause();
    let stopped = Instant::now();
    let (obj, took) = wait_condition::<CellInterconnect>(
        cp,
        ns,
        &cic,
        "Ready",
        "False",
        Some("SdnUnreachable"),
        UNREACHABLE_DETECT,
    );
    report(&format!(
        "speaker SIGSTOPped -> {cic} SdnUnreachable in {:.1} s (--sdn-timeout {} s)",
        took.as_secs_f64(),
        SDN_TIMEOUT.as_secs()
    ));
    let message = &obj.condition("Ready").unwrap().message;
    assert!(
        message.contains("cell cell-h1")
            && message.contains(&format!("did not answer within {} s", SDN_TIMEOUT.as_secs())),
        "a timeout, naming the cell: {message}"
    );
    let event = wait_event(cp, ns, &cic, "SdnUnreachable", &["cell cell-h1"]);
    report(&format!("hung speaker: Event SdnUnreachable: {event}"));
    // The rest of the fleet: a new interconnect between two other cells.
    let during = apply_timed(cp, ns, &pair_yaml(e, f, loopback_asn), &cic_name(e, f));
    report(&format!(
        "other cells, apply -> configured / Ready: {:.1} s / {:.1} s without the hung speaker, \
         {:.1} s / {:.1} s while it hangs",
        normal.0.as_secs_f64(),
        normal.1.as_secs_f64(),
        during.0.as_secs_f64(),
        during.1.as_secs_f64()
    ));
    let cond = ready(cp, ns, &format!("cic/{}", cic_name(c, d)));
    assert_eq!(cond.as_ref().map(|c| c.0.as_str()), Some("True"), "{cond:?}");

    hung.resume();
    let (_, took) = wait_ready::<CellInterconnect>(cp, ns, &cic, READY_TIMEOUT);
    report(&format!(
        "SIGCONT -> Ready in {:.1} s ({:.1} s after the SIGSTOP)",
        took.as_secs_f64(),
        stopped.elapsed().as_secs_f64()
    ));
    assert_eq!(hung.session_state(IpAddr::V4(peer.address)), Some(ESTABLISHED));
    clean_up(cp, ns);
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_waits_for_a_dead_speaker_and_completes_when_it_returns() {
    let _turn = TURN.read().await;
    let env = env();
    let cp = env.cp;
    let ns = "faults-delete";
    namespace(cp, ns).await;
    let mut dead = Gobgpd::start("cell-d1", loopback(31), None);
    let peer = Gobgpd::start("cell-d2", loopback(32), None);
    let cic = cic_name(&dead, &peer);
    let what = format!("cic/{cic}");
    cp.apply(ns, &pair_yaml(&dead, &peer, loopback_asn));
    wait_ready::<CellInterconnect>(cp, ns, &cic, READY_TIMEOUT);

    dead.kill();
    let (ok, _, err) = cp.kubectl_run(&["delete", "-n", ns, &what, "--wait=false"]);
    assert!(ok, "{err}");
    let deleted = Instant::now();
    let (obj, took) = wait_for(
        &format!("{what} to say why its deletion waits"),
        UNREACHABLE_DETECT,
        || {
            let obj = cp.get::<CellInterconnect>(ns, &cic);
            let blocked = obj.as_ref().and_then(|o| o.condition("Ready")).is_some_and(|c| {
                c.status == "False"
                    && c.reason == "SdnUnreachable"
                    && c.message.contains("cannot remove peer")
            });
            let seen = format!("{:?}", obj.as_ref().map(|o| &o.status));
            (obj.filter(|_| blocked), seen)
        },
    );
    report(&format!(
        "delete with the speaker down -> blocked, condition says why, in {:.1} s",
        took.as_secs_f64()
    ));
    let message = &obj.condition("Ready").unwrap().message;
    assert!(message.contains("cell cell-d1"), "{message}");
    // The finalizer holds while the speaker stays down.
    std::thread::sleep(Duration::from_secs(3));
    let obj = cp
        .get::<CellInterconnect>(ns, &cic)
        .expect("still there while the speaker is down");
    assert!(obj.metadata.deletion_timestamp.is_some(), "{obj:?}");
    assert!(
        obj.finalizers().iter().any(|f| f == "cellnet.io/cleanup"),
        "{obj:?}"
    );
    let event = wait_event(
        cp,
        ns,
        &cic,
        "CleanupBlocked",
        &["cell cell-d1", "cannot remove peer"],
    );
    report(&format!("delete while down: Event CleanupBlocked: {event}"));

    // The speaker comes back on the same API port with its saved configuration, cellnet's
    // peer included (the way a router restarts from its saved config).
    let toml = format!(
        "[global.config]\n  as = {asn}\n  router-id = \"{a}\"\n  port = {BGP_PORT}\n  local-address-list = [\"{a}\"]\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{p}\"\n    peer-as = {peer_asn}\n    \
         description = \"cellnet:{ns}/{cic}\"\n  [neighbors.transport.config]\n    local-address = \"{a}\"\n    \
         remote-port = {BGP_PORT}\n",
        asn = loopback_asn(&dead),
        a = dead.address,
        p = peer.address,
        peer_asn = loopback_asn(&peer),
    );
    let back = Gobgpd::start_on_port("cell-d1", dead.address, dead.api_port, Some(&toml));
    let returned = Instant::now();
    report(&format!(
        "speaker back after {:.1} s down",
        deleted.elapsed().as_secs_f64()
    ));
    let loaded = format!("msg=\"Add a peer configuration\" Key={}", peer.address);
    assert!(
        back.log().contains(&loaded),
        "restarted with the peer:\n{}",
        back.log()
    );
    let (_, took) = wait_for(&format!("{what} deleted"), READY_TIMEOUT, || {
        let obj = cp.get::<CellInterconnect>(ns, &cic);
        (
            obj.is_none().then_some(()),
            format!("{:?}", obj.as_ref().and_then(|o| o.condition("Ready"))),
        )
    });
    report(&format!(
        "speaker back -> deletion completed in {:.1} s",
        took.as_secs_f64()
    ));
    assert!(returned.elapsed() < READY_TIMEOUT);
    // Both speakers lost cellnet's peers: gone now, and deleted through the API (GoBGP's log).
    for (speaker, addr) in [(&back, peer.address), (&peer, dead.address)] {
        assert!(
            speaker.neighbor_json(IpAddr::V4(addr)).is_none(),
            "{}: {}",
            speaker.name,
            speaker.neighbors_json()
        );
        let removed = format!("msg=\"Delete a peer configuration\" Key={addr}");
        assert!(
            speaker.log().contains(&removed),
            "{}:\n{}",
            speaker.name,
            speaker.log()
        );
    }
    clean_up(cp, ns);
}
