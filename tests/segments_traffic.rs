//! Issue 22, "Proof with frames": an L2 segment stretched between two cells by cellnet, shown
//! with a TCP exchange between hosts of the two cells on one subnet.
//!
//! Each cell is a network namespace (tests/support/cells.rs) with its gobgpd (configured by
//! cellnet) and FRR as its fabric router doing EVPN for the cell's VXLAN device
//! (tests/support/segments.rs): FRR announces the VNI to the cell's speaker, cellnet carries
//! the EVPN routes of the stretched segments between the speakers, and FRR programs the other
//! cell's VTEP and MACs into the kernel. The test never writes a forwarding entry. Each cell's
//! VTEP is an address of its own on `lo`, not the peering address (the next-hop case of the
//! issue), routed between the cells by cellnet as a declared network.
mod support;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use cellnet::api::{CellInterconnect, SegmentStatus};
use support::cells::{self, TrafficCell, TrafficCells};
use support::manifests;
use support::packets::{Listener, exchange};
use support::segments::{Host, add_segment, carries_evpn, drop_evpn_family, fdb_destinations};
use support::{ControlPlane, InterconnectStatusExt as _, Kind as _, namespace, report, wait_for};

const VIP: u32 = 100;
/// A VNI both cells have and announce, which the interconnect does not stretch.
const OTHER: u32 = 200;
const PORT: u16 = 8080;
const READY_TIMEOUT: Duration = Duration::from_secs(90);
const FRAMES_TIMEOUT: Duration = Duration::from_secs(30);
const DETECT_TIMEOUT: Duration = Duration::from_secs(30);
const HEAL_TIMEOUT: Duration = Duration::from_secs(90);

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn control_plane() -> &'static ControlPlane {
    support::controller::shared(&[]).0
}

fn endpoint(cell: &TrafficCell, vtep: &str) -> String {
    endpoint_declaring(cell, vtep, &[("vip", VIP), ("other", OTHER)])
}

fn endpoint_declaring(cell: &TrafficCell, vtep: &str, segments: &[(&str, u32)]) -> String {
    manifests::endpoint(&format!("ep-{}", cell.name))
        .cell(&cell.name)
        .address(cell.underlay)
        .asn(cell.asn)
        .port(cells::BGP_PORT)
        .networks(&[&format!("{vtep}/32")])
        .vtep(vtep)
        .l2_segments(segments)
        .gobgp(&cell.speaker.api_url())
        .yaml()
}

fn interconnect(a: &TrafficCell, b: &TrafficCell) -> String {
    manifests::interconnect("l2-a-b", &format!("ep-{}", a.name), &format!("ep-{}", b.name))
        .l2(serde_json::json!({"segments": ["vip"]}))
        .yaml()
}

fn segment(obj: &CellInterconnect, local: bool) -> Option<SegmentStatus> {
    let side = if local { obj.local() } else { obj.remote() }?;
    side.segments.iter().find(|s| s.vni == VIP).cloned()
}

/// `kubectl cellnet <args>` against the test cluster: exit status and stdout.
fn plugin(cp: &ControlPlane, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-cellnet"))
        .args(args)
        .env("KUBECONFIG", &cp.kubeconfig)
        .output()
        .expect("run kubectl-cellnet");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Neither cell's forwarding database has the other cell's VTEP for the stretched VNI; else
/// what is left.
fn withdrawn(cells: &TrafficCells, (vtep_a, vtep_b): (&str, &str)) -> (Option<()>, String) {
    let left_a = fdb_destinations(&cells.a, VIP);
    let left_b = fdb_destinations(&cells.b, VIP);
    let clean = !left_a.iter().any(|d| d == vtep_b) && !left_b.iter().any(|d| d == vtep_a);
    (clean.then_some(()), format!("a: {left_a:?}, b: {left_b:?}"))
}

/// Connects from `from` to `to`'s server; `Err` says why not.
fn frames(from: &Host, to: &Listener) -> Result<String, String> {
    exchange(&from.netns, from.address, to.address)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stretched_segment_carries_frames_between_hosts_of_two_cells() {
    if let Some(why) = cells::unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let cp = control_plane();
    let ns = "segments";
    namespace(cp, ns).await;
    let (vtep_a, vtep_b) = ("203.0.113.1", "203.0.113.2");
    let cells = TrafficCells::create_evpn("l2", &[&format!("{vtep_a}/32")], &[&format!("{vtep_b}/32")]);
    let (a, b) = (&cells.a, &cells.b);
    for (cell, vtep) in [(a, vtep_a), (b, vtep_b)] {
        add_segment(cell, VIP, v4(vtep));
        add_segment(cell, OTHER, v4(vtep));
    }
    let host_a = Host::start(a, VIP, v4("192.0.2.1"), 24);
    let host_b = Host::start(b, VIP, v4("192.0.2.2"), 24);
    let on_b = Listener::start(&host_b.netns, SocketAddrV4::new(host_b.address, PORT), "host-b");

    // 1. Apply: the hosts exchange frames; status shows the other cell's VTEP and the host's MAC.
    let applied = Instant::now();
    cp.apply(
        ns,
        &[endpoint(a, vtep_a), endpoint(b, vtep_b), interconnect(a, b)].join("---\n"),
    );
    let (_, ready) = support::wait_condition::<CellInterconnect>(
        cp,
        ns,
        "l2-a-b",
        "SegmentsStretched",
        "True",
        None,
        READY_TIMEOUT,
    );
    wait_for("a TCP exchange host a -> host b", FRAMES_TIMEOUT, || {
        let answer = frames(&host_a, &on_b);
        let done = answer.as_deref().is_ok_and(|a| a == "host-b").then_some(());
        (done, format!("{answer:?}; fdb a: {:?}", fdb_destinations(a, VIP)))
    });
    report(&format!(
        "segments: SegmentsStretched {:.1} s after apply, first exchange {:.1} s after apply",
        ready.as_secs_f64(),
        applied.elapsed().as_secs_f64()
    ));
    let (obj, _) = wait_for(
        "status with the other cell's VTEP and MAC",
        FRAMES_TIMEOUT,
        || {
            let obj = cp.get::<CellInterconnect>(ns, "l2-a-b").expect("interconnect");
            let (local, remote) = (segment(&obj, true), segment(&obj, false));
            let ok = local
                .as_ref()
                .is_some_and(|s| s.remote_vteps == [vtep_b] && s.macs.contains(&host_b.mac))
                && remote
                    .as_ref()
                    .is_some_and(|s| s.remote_vteps == [vtep_a] && s.macs.contains(&host_a.mac));
            (ok.then_some(obj), format!("local {local:?}, remote {remote:?}"))
        },
    );

    // What an operator sees: the plugin's segments document and a healthy diagnose step.
    let (code, json) = plugin(cp, &["segments", "-n", ns, "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(code, 0);
    assert_eq!(
        doc["interconnects"][0]["segments"][0]["remoteVteps"],
        serde_json::json!([vtep_b]),
        "{doc}"
    );
    let (_, walk) = plugin(cp, &["diagnose", "l2-a-b", "-n", ns]);
    assert!(walk.contains("L2 segment vip (VNI 100) stretched"), "{walk}");

    // 2. VNI 200: both cells announce it, the interconnect does not stretch it: rejected, counted,
    // and no forwarding entry towards the other cell for it.
    assert!(
        obj.local().unwrap().segment_routes_rejected > 0,
        "{:?}",
        obj.local()
    );
    assert!(
        obj.remote().unwrap().segment_routes_rejected > 0,
        "{:?}",
        obj.remote()
    );
    assert!(
        !fdb_destinations(a, OTHER).contains(&vtep_b.to_string()),
        "{:?}",
        fdb_destinations(a, OTHER)
    );
    assert!(fdb_destinations(a, VIP).contains(&vtep_b.to_string()));

    // 3. Underlay cut: no frames, status names the segment and the cell; restored: frames again,
    // no object changed.
    let generation = obj.metadata.generation;
    cells.set_underlay(false);
    let (cut, _) = support::wait_condition::<CellInterconnect>(
        cp,
        ns,
        "l2-a-b",
        "SegmentsStretched",
        "False",
        Some("SegmentMissing"),
        DETECT_TIMEOUT,
    );
    let message = cut
        .condition("SegmentsStretched")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("VNI 100") && message.contains("vip"),
        "{message}"
    );
    assert!(frames(&host_a, &on_b).is_err(), "frames crossed a cut underlay");
    let (code, walk) = plugin(cp, &["diagnose", "l2-a-b", "-n", ns]);
    assert_eq!(code, 3, "diagnose of a cut link: {walk}");
    cells.set_underlay(true);
    let (_, healed) = wait_for("frames again after the underlay is back", HEAL_TIMEOUT, || {
        (frames(&host_a, &on_b).ok().map(|_| ()), String::new())
    });
    report(&format!(
        "segments: frames again {:.1} s after the underlay came back",
        healed.as_secs_f64()
    ));
    let now = cp.get::<CellInterconnect>(ns, "l2-a-b").unwrap();
    assert_eq!(now.metadata.generation, generation, "no object changed");

    // 4. Un-declared by cell b: withdrawn. Neither cell's fdb keeps the other cell's VTEP for
    // the VNI, the hosts no longer reach each other, and status says what is not declared.
    let vteps = (vtep_a, vtep_b);
    assert!(
        withdrawn(&cells, vteps).0.is_none(),
        "both fdbs had the other VTEP"
    );
    // The EVPN family stays while spec.l2 does: the session (and the cells' routes) are not reset.
    let up_since = |obj: &CellInterconnect| {
        let since = |side: Option<&cellnet::api::SideStatus>| side.and_then(|s| s.established_since.clone());
        (since(obj.local()), since(obj.remote()))
    };
    let sessions_before = up_since(&cp.get::<CellInterconnect>(ns, "l2-a-b").unwrap());
    assert!(
        sessions_before.0.is_some() && sessions_before.1.is_some(),
        "{sessions_before:?}"
    );
    let undeclared = Instant::now();
    cp.apply(ns, &endpoint_declaring(b, vtep_b, &[("other", OTHER)]));
    wait_for("no fdb entry after un-declaring", FRAMES_TIMEOUT, || {
        withdrawn(&cells, vteps)
    });
    let gone = undeclared.elapsed();
    assert!(
        frames(&host_a, &on_b).is_err(),
        "frames crossed an un-declared segment"
    );
    let (obj, _) = support::wait_condition::<CellInterconnect>(
        cp,
        ns,
        "l2-a-b",
        "SegmentsStretched",
        "False",
        Some("SegmentNotDeclared"),
        DETECT_TIMEOUT,
    );
    let message = obj.condition("SegmentsStretched").map(|c| c.message.clone());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("\"vip\"") && m.contains("ep-l2-b")),
        "{message:?}"
    );
    let ready = obj
        .condition("Ready")
        .map(|c| (c.status.clone(), c.reason.clone()));
    assert_eq!(
        ready,
        Some(("False".into(), "SegmentNotDeclared".into())),
        "not Ready for the segment alone: the sessions stay up"
    );
    let empty = |side: Option<&cellnet::api::SideStatus>| side.is_some_and(|s| s.segments.is_empty());
    assert!(empty(obj.local()) && empty(obj.remote()), "{:?}", obj.status);

    // 5. Declared again: frames again, with no other change.
    let redeclared = Instant::now();
    cp.apply(ns, &endpoint(b, vtep_b));
    wait_for("frames again after re-declaring", HEAL_TIMEOUT, || {
        (frames(&host_a, &on_b).ok().map(|_| ()), String::new())
    });
    report(&format!(
        "segments: un-declared -> no fdb entry in {:.1} s; re-declared -> frames in {:.1} s",
        gone.as_secs_f64(),
        redeclared.elapsed().as_secs_f64()
    ));
    support::wait_condition::<CellInterconnect>(
        cp,
        ns,
        "l2-a-b",
        "SegmentsStretched",
        "True",
        None,
        DETECT_TIMEOUT,
    );
    let sessions_after = up_since(&cp.get::<CellInterconnect>(ns, "l2-a-b").unwrap());
    assert_eq!(
        sessions_after, sessions_before,
        "un-declaring and declaring a segment reset no session"
    );

    // 6. Drift: l2vpn-evpn removed from cell a's peer by hand; cellnet puts it back and the
    // frames pass again.
    drop_evpn_family(&a.speaker, b.underlay).await;
    let drifted = Instant::now();
    loop {
        let answer = frames(&host_a, &on_b);
        if carries_evpn(&a.speaker, b.underlay).await && answer.is_ok() {
            break;
        }
        assert!(
            drifted.elapsed() < HEAL_TIMEOUT,
            "family not restored or no frames: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report(&format!(
        "segments: family removed by hand -> restored, frames again in {:.1} s",
        drifted.elapsed().as_secs_f64()
    ));

    // 7. Deletion: no forwarding entry towards the other cell is left in either cell.
    let (ok, _, err) = cp.kubectl_run(&["delete", "-n", ns, "cellinterconnect", "l2-a-b"]);
    assert!(ok, "{err}");
    wait_for("no forwarding entry for the other cell", FRAMES_TIMEOUT, || {
        withdrawn(&cells, vteps)
    });
    assert!(frames(&host_a, &on_b).is_err(), "frames crossed after deletion");
}
