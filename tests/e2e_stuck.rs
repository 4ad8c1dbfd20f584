//! Stuck sessions on real gobgpd (issue 19 item 2): a managed side that stays configured but
//! not Established for longer than the threshold gets `SessionStuck` with the state and the
//! likely cause, and cellnet resets its own peer (counted in `status.<side>.resets`, Event
//! `SessionReset`); a peer cellnet does not own is never reset.
//!
//! The controller runs with `--session-stuck-minimum=3s` and the interconnects with hold time 3 s,
//! so the threshold is 9 s (3 × holdTime). Speakers on 127.0.13.x, BGP port 1790; one side on
//! the OpenDaylight test server (bgpcep's operational state and reset RPC, see odl_server.rs).
mod support;

use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use cellnet::api::CellInterconnect;
use cellnet::sdn::{ResetOutcome, SdnBackend as _};
use support::gobgp::Gobgpd;
use support::manifests::{self, BGP_PORT, endpoint, interconnect};
use support::odl_server::{OdlConfig, OdlServer};
use support::{
    ControlPlane, ControllerProcess, InterconnectStatusExt as _, Kind as _, namespace, report,
    wait_condition, wait_for, wait_ready,
};

/// Detection (9 s) plus a reconcile's re-check and GoBGP's connect retry, with room to spare.
const STUCK_TIMEOUT: Duration = Duration::from_secs(60);
const READY_TIMEOUT: Duration = Duration::from_secs(90);

fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 13, last)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(addr(last))
}

fn asn(last: u8) -> u32 {
    65300 + u32::from(last)
}

fn env() -> (&'static ControlPlane, &'static ControllerProcess) {
    support::controller::shared(&["--session-stuck-minimum=3s"])
}

fn endpoint_at(name: &str, cell: &str, last: u8, asn: u32) -> manifests::Endpoint {
    endpoint(name)
        .cell(cell)
        .address(addr(last))
        .asn(asn)
        .port(BGP_PORT)
}

/// A hand-configured router at `last` peering with the managed speaker at `peer` (AS `peer_as`).
fn router_toml(last: u8, peer: u8, peer_as: u32, passive: bool) -> String {
    format!(
        "[global.config]\n  as = {}\n  router-id = \"{a}\"\n  port = {BGP_PORT}\n  local-address-list = [\"{a}\"]\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {peer_as}\n  \
         [neighbors.transport.config]\n    local-address = \"{a}\"\n    remote-port = {BGP_PORT}\n    passive-mode = {passive}\n  \
         [neighbors.timers.config]\n    hold-time = 3\n    keepalive-interval = 1\n",
        asn(last),
        addr(peer),
        a = addr(last)
    )
}

/// Applies a managed endpoint on `local`, an external one at `remote` declared with `remote_as`,
/// and the interconnect `link` between them (hold time 3 s).
fn apply_link(cp: &ControlPlane, ns: &str, local: &Gobgpd, remote: u8, remote_as: u32) {
    let local_last = local.address.octets()[3];
    cp.apply(
        ns,
        &[
            endpoint_at("ep-local", &local.name, local_last, asn(local_last))
                .gobgp(&local.api_url())
                .yaml(),
            endpoint_at("ep-dc", "dc", remote, remote_as).yaml(),
            interconnect("link", "ep-local", "ep-dc").timers(3, 1).yaml(),
        ]
        .join("---\n"),
    );
}

/// Waits until interconnect `link` is `Ready=False SessionStuck`; the object and its message.
fn wait_stuck(cp: &ControlPlane, ns: &str) -> (CellInterconnect, String) {
    let (obj, _) = wait_condition::<CellInterconnect>(
        cp,
        ns,
        "link",
        "Ready",
        "False",
        Some("SessionStuck"),
        STUCK_TIMEOUT,
    );
    let message = ready_message(&obj);
    (obj, message)
}

fn ready_message(obj: &CellInterconnect) -> String {
    obj.condition("Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// Waits until the local side counts at least one reset; returns the object then.
fn wait_reset(cp: &ControlPlane, ns: &str) -> CellInterconnect {
    wait_for("status.local.resets >= 1", STUCK_TIMEOUT, || {
        let obj = cp.get::<CellInterconnect>(ns, "link");
        let resets = obj.as_ref().and_then(|o| o.local()).map_or(0, |l| l.resets);
        (obj.filter(|_| resets >= 1), format!("resets {resets}"))
    })
    .0
}

fn events(cp: &ControlPlane, ns: &str) -> String {
    cp.kubectl_run(&["get", "events", "-n", ns, "-o", "json"]).1
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_remote_as_is_stuck_with_the_cause_and_reset() {
    let (cp, _) = env();
    let ns = "stuck-wrong-as";
    namespace(cp, ns).await;
    let local = Gobgpd::start("cell1", addr(1), None);
    let _dc = Gobgpd::start("dc-1", addr(2), Some(&router_toml(2, 1, asn(1), false)));
    // The DC router runs AS 65302; its endpoint declares 65098.
    let applied = Instant::now();
    apply_link(cp, ns, &local, 2, 65098);
    wait_stuck(cp, ns);
    report(&format!(
        "wrong AS: apply -> SessionStuck {:.1} s",
        applied.elapsed().as_secs_f64()
    ));
    // At the threshold GoBGP may not have dialled yet (its first connect comes 5-10 s after the
    // peer is added), and the cause then reads "no OPEN ever received"; once the OPENs were
    // exchanged and refused, the cause names the declared AS.
    let (obj, _) = wait_for("the stuck cause naming the declared AS", STUCK_TIMEOUT, || {
        let obj = cp.get::<CellInterconnect>(ns, "link");
        let message = obj.as_ref().map(ready_message).unwrap_or_default();
        let named = message.contains("rejected the peer's OPEN") && message.contains("declared AS 65098");
        (obj.filter(|_| named), message)
    });
    let side = obj.local().expect("status.local");
    assert!(side.not_established_since.is_some(), "{side:?}");
    let obj = wait_reset(cp, ns);
    assert!(obj.local().unwrap().last_reset_time.is_some());
    assert!(events(cp, ns).contains("SessionReset"));

    // The right AS: the session comes up and the outage ends in status.
    let fixed = Instant::now();
    cp.apply(ns, &endpoint_at("ep-dc", "dc", 2, asn(2)).yaml());
    let (obj, _) = wait_ready::<CellInterconnect>(cp, ns, "link", READY_TIMEOUT);
    report(&format!(
        "wrong AS: fixed -> Ready {:.1} s",
        fixed.elapsed().as_secs_f64()
    ));
    let side = obj.local().unwrap();
    assert!(side.not_established_since.is_none(), "{side:?}");
    assert_eq!(side.negotiated_hold_time, Some(3), "{side:?}");
    assert!(side.resets >= 1);
}

/// Accepts one connection on `at` and keeps it open without a word: the dialling speaker sends
/// its OPEN and waits in OpenSent (GoBGP's OpenSent timer is 240 s).
fn silent_peer(at: Ipv4Addr) -> std::sync::mpsc::Receiver<TcpStream> {
    let listener = TcpListener::bind((at, BGP_PORT)).expect("bind the silent peer");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            // Read the OPEN so that the connection stays healthy; answer nothing.
            let mut open = [0u8; 64];
            let _ = stream.read(&mut open);
            let _ = tx.send(stream);
        }
        // The listener goes here: the real router can take the port.
    });
    rx
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_peer_wedges_open_sent_and_the_reset_recovers() {
    let (cp, _) = env();
    let ns = "stuck-open-sent";
    namespace(cp, ns).await;
    let local = Gobgpd::start("cell3", addr(3), None);
    let accepted = silent_peer(addr(4));
    let applied = Instant::now();
    apply_link(cp, ns, &local, 4, asn(4));
    let wedge = accepted
        .recv_timeout(Duration::from_secs(60))
        .expect("cellnet's speaker dialled the silent peer");
    let wedged = Instant::now();
    // The real router takes over the address; it only listens, so only a new dial reaches it.
    let _dc = Gobgpd::start("dc-4", addr(4), Some(&router_toml(4, 3, asn(3), true)));
    wait_stuck(cp, ns);
    report(&format!(
        "OpenSent wedge: apply -> SessionStuck {:.1} s (wedged {:.1} s after apply)",
        applied.elapsed().as_secs_f64(),
        (wedged - applied).as_secs_f64()
    ));
    // The threshold counts from the apply, so the first SessionStuck may still carry the state
    // seen before the wedge (Active); the wedge itself is named once a reconcile reads it, unless
    // cellnet's reset already ended it (then the session is up, checked below).
    wait_for(
        "the stuck cause naming OpenSent, or the link up again",
        READY_TIMEOUT,
        || {
            let obj = cp.get::<CellInterconnect>(ns, "link");
            let message = obj.as_ref().map(ready_message).unwrap_or_default();
            let up = obj
                .as_ref()
                .is_some_and(|o| o.condition("Ready").is_some_and(|c| c.status == "True"));
            (
                (message.contains("stuck in OpenSent") || up).then_some(()),
                message,
            )
        },
    );
    let (obj, _) = wait_ready::<CellInterconnect>(cp, ns, "link", READY_TIMEOUT);
    let side = obj.local().unwrap();
    assert!(side.resets >= 1, "{side:?}");
    let reset = side.last_reset_time.as_ref().expect("lastResetTime").0;
    let ready_at = obj.condition("Ready").unwrap().last_transition_time.0;
    // Both times in whole seconds (the API server's precision).
    let since_reset = ready_at.duration_since(reset);
    report(&format!(
        "OpenSent wedge: Ready {:.1} s after the wedge, {:.1} s after cellnet's last reset ({} reset(s); GoBGP alone waits 240 s)",
        wedged.elapsed().as_secs_f64(),
        since_reset.as_secs_f64(),
        side.resets
    ));
    assert!(events(cp, ns).contains("SessionReset"));
    drop(wedge);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_cellnet_does_not_own_is_never_reset() {
    let (cp, controller) = env();
    let ns = "stuck-not-ours";
    namespace(cp, ns).await;
    let local = Gobgpd::start("cell5", addr(5), None);
    apply_link(cp, ns, &local, 6, asn(6));
    wait_stuck_nobody_listening(cp, ns);
    // cellnet resets its own stuck peer ...
    wait_reset(cp, ns);
    // A hand-made peer nobody answers: cellnet's backend refuses to reset it.
    local.neighbor_add_by_hand(ip(7), asn(7));
    let backend = cellnet::sdn::gobgp::GoBgp::connect(
        &cellnet::sdn::gobgp::target(local.api_url()),
        Duration::from_secs(5),
    )
    .unwrap();
    let owner = "cellnet:stuck-not-ours/link";
    assert_eq!(
        backend.reset_peer(ip(7), owner, false).await.unwrap(),
        ResetOutcome::NotOwned
    );
    assert_eq!(
        backend.reset_peer(ip(8), owner, false).await.unwrap(),
        ResetOutcome::Absent
    );
    assert_eq!(
        backend.reset_peer(ip(6), owner, false).await.unwrap(),
        ResetOutcome::Reset
    );
    // The hand-made peer still has no description and the controller never touched it.
    let hand = local.neighbor_json(ip(7)).expect("hand-made peer");
    assert!(hand["conf"]["description"].as_str().unwrap_or("").is_empty());
    let log = controller.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("reset GoBGP peer") && l.contains(&ip(7).to_string())),
        "the controller reset the hand-made peer"
    );
}

/// The link to a port nobody listens on is stuck with "no OPEN ever received".
fn wait_stuck_nobody_listening(cp: &ControlPlane, ns: &str) {
    let began = Instant::now();
    let (_, message) = wait_stuck(cp, ns);
    report(&format!(
        "nobody listening: -> SessionStuck {:.1} s",
        began.elapsed().as_secs_f64()
    ));
    assert!(message.contains("no OPEN ever received"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_opendaylight_side_is_stuck_and_the_release_asked_for() {
    let (cp, _) = env();
    let ns = "stuck-odl";
    namespace(cp, ns).await;
    let server = OdlServer::start(OdlConfig::new(asn(10), &addr(10).to_string()));
    // OpenDaylight's operational state says Active: the session never comes up.
    server.set_default_session(Some("ACTIVE"));
    let applied = Instant::now();
    cp.apply(
        ns,
        &[
            manifests::secret("odl-admin", &[("username", "admin"), ("password", "admin")]),
            endpoint_at("ep-local", "cell10", 10, asn(10))
                .opendaylight(&server.url(), "odl-admin")
                .yaml(),
            endpoint_at("ep-dc", "dc", 11, asn(11)).yaml(),
            interconnect("link", "ep-local", "ep-dc").timers(3, 1).yaml(),
        ]
        .join("---\n"),
    );
    let (_, message) = wait_stuck(cp, ns);
    report(&format!(
        "OpenDaylight Active: apply -> SessionStuck {:.1} s",
        applied.elapsed().as_secs_f64()
    ));
    // The test server reports no message counts: nothing to name a cause from.
    assert!(
        message.contains("stuck in Active") && message.contains("reports nothing that explains it"),
        "{message}"
    );
    // cellnet asks bgpcep to release the session; without a session there is no RIB peer to
    // release (404), so no reset is counted.
    wait_for("a reset-session RPC", STUCK_TIMEOUT, || {
        let asked = server
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path == "/rests/operations/bgp-peer-rpc:reset-session");
        (
            asked.then_some(()),
            format!("{} requests", server.requests().len()),
        )
    });
    assert!(server.resets().is_empty());
    let obj = cp.get::<CellInterconnect>(ns, "link").unwrap();
    assert_eq!(obj.local().unwrap().resets, 0, "{:?}", obj.local());
    // The session comes up: Ready, the outage over.
    server.set_default_session(Some("ESTABLISHED"));
    let (obj, _) = wait_ready::<CellInterconnect>(cp, ns, "link", READY_TIMEOUT);
    assert!(obj.local().unwrap().not_established_since.is_none());
}
