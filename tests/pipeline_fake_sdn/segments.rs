//! L2 segments (issue 22) through the pipeline: the EVPN filter and family on both sides, status
//! segments and `SegmentsStretched` from what each side's speaker receives, a segment missing on
//! one side, the family removed by hand, and the spec's own problems (`SegmentNotDeclared`,
//! `SegmentConflict`, `NoSegments`) end to end through status. Frames between hosts are
//! tests/segments_traffic.rs's part.
use cellnet::api::{InfraEndpoint, Reason, SideStatus};
use cellnet::sdn::AddressFamily;
use cellnet::sdn::fake::FakeSegment;
use cellnet::sdn::routes::{EvpnFilter, RouteTargetMatch};
use kube::api::{Patch, PatchParams};

use super::networks::{condition, is};
use super::*;

const MAC: &str = "02:00:5e:00:53:01";

async fn patch<K>(client: &kube::Client, ns: &str, name: &str, spec: serde_json::Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .expect("patch");
}

/// Both sides' status of an interconnect.
async fn sides(client: &kube::Client, ns: &str, name: &str) -> (Option<SideStatus>, Option<SideStatus>) {
    let cic = Api::<CellInterconnect>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("interconnect");
    let status = cic.status.unwrap_or_default();
    (status.local, status.remote)
}

fn segments_json(list: &[(&str, u32)]) -> serde_json::Value {
    json!({ "l2Segments": list.iter().map(|(n, v)| json!({"name": n, "vni": v})).collect::<Vec<_>>() })
}

/// Per speaker (a towards b, b towards a): the EVPN part of its one filter, and whether its peer
/// carries l2vpn-evpn.
fn evpn_on(a: &FakeSpeaker, b: &FakeSpeaker) -> [(Option<EvpnFilter>, bool); 2] {
    [(a, "192.0.2.22"), (b, "192.0.2.21")].map(|(s, n)| {
        let evpn = s.filters().into_values().next().and_then(|f| f.evpn);
        (evpn, families(s, n).contains(&AddressFamily::L2vpnEvpn))
    })
}

fn families(speaker: &FakeSpeaker, neighbor: &str) -> Vec<AddressFamily> {
    speaker
        .peers()
        .get(&ip(neighbor))
        .map(|p| p.config.families.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_are_stretched_reported_and_withdrawn() {
    let (cp, fakes) = env();
    let client = cp.client().await;
    let ns = "pipeline-segments";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let (a, b) = (
        gobgp(&fakes, "http://fake-sa:50051"),
        gobgp(&fakes, "http://fake-sb:50051"),
    );
    let declared = [("vip", 100), ("other", 200)];
    let a_ep = endpoint("sa", "192.0.2.21", 65021)
        .gobgp("http://fake-sa:50051")
        .vtep("203.0.113.21")
        .l2_segments(&declared);
    let b_ep = endpoint("sb", "192.0.2.22", 65022)
        .gobgp("http://fake-sb:50051")
        .vtep("203.0.113.22")
        .l2_segments(&declared);
    // What cell sb's fabric announces to sa: the stretched VNI with a host's MAC, and VNI 200,
    // which the interconnect does not stretch. sb hears sa's default: its VNI 100 only.
    let mut vip = FakeSegment::new(100, ip("203.0.113.22"));
    vip.macs = vec![MAC.into()];
    let announced = vec![vip, FakeSegment::new(200, ip("203.0.113.22"))];
    a.set_segments_sent_by(ip("192.0.2.22"), announced.clone());
    create(&client, ns, &a_ep.typed()).await;
    create(&client, ns, &b_ep.typed()).await;
    let cic = interconnect("s-ab", "sa", "sb").l2(json!({"segments": ["vip"]}));
    create(&client, ns, &cic.typed()).await;

    // Stretched: l2vpn-evpn on both peers, a filter for VNI 100, status from what arrives.
    let stretched = wait_until(
        "SegmentsStretched",
        async || condition(&client, ns, "s-ab", "SegmentsStretched").await,
        is("True", Reason::SegmentsStretched),
    )
    .await;
    assert!(
        stretched.unwrap().2.contains("vip (VNI 100)"),
        "names the segment"
    );
    wait_until(
        "Ready",
        async || ready(&client, ns, "s-ab").await,
        |r| r.as_ref().is_some_and(|(s, _)| s == "True"),
    )
    .await;
    for (speaker, neighbor) in [(&a, "192.0.2.22"), (&b, "192.0.2.21")] {
        assert!(families(speaker, neighbor).contains(&AddressFamily::L2vpnEvpn));
        let filter = speaker.filters().into_values().next().expect("a filter");
        assert_eq!(filter.evpn.unwrap().import, [RouteTargetMatch::Vni(100)]);
    }
    let (local, remote) = sides(&client, ns, "s-ab").await;
    let (local, remote) = (local.unwrap(), remote.unwrap());
    assert_eq!(local.segments.len(), 1, "{local:?}");
    let seg = &local.segments[0];
    assert_eq!((seg.vni, seg.name.as_str()), (100, "vip"));
    assert_eq!(seg.remote_vteps, ["203.0.113.22"]);
    assert_eq!((seg.macs.as_slice(), seg.mac_count), (&[MAC.to_string()][..], 1));
    assert_eq!(local.segment_routes_rejected, 1, "VNI 200's route, counted");
    assert_eq!(remote.segments[0].remote_vteps, ["192.0.2.21"]);
    assert_eq!(remote.segment_routes_rejected, 0);

    // The other cell stops announcing the segment to sa: missing, naming cell and VNI.
    a.set_segments_sent_by(ip("192.0.2.22"), vec![]);
    let missing = wait_until(
        "SegmentMissing",
        async || condition(&client, ns, "s-ab", "SegmentsStretched").await,
        is("False", Reason::SegmentMissing),
    )
    .await;
    let message = missing.unwrap().2;
    assert_eq!(
        message, "cell sa has no VTEP of cell sb for segment vip (VNI 100)",
        "only sa misses it"
    );
    assert_eq!(
        ready(&client, ns, "s-ab").await.unwrap(),
        ("False".into(), Reason::SegmentMissing.as_str().into())
    );
    a.set_segments_sent_by(ip("192.0.2.22"), announced);
    wait_until(
        "SegmentsStretched again",
        async || condition(&client, ns, "s-ab", "SegmentsStretched").await,
        is("True", Reason::SegmentsStretched),
    )
    .await;

    // Drift: the family removed from sa's peer by hand comes back with the speaker poll.
    a.set_families(ip("192.0.2.22"), vec![AddressFamily::Ipv4Unicast]);
    wait_until(
        "l2vpn-evpn restored",
        async || families(&a, "192.0.2.22"),
        |f| f.contains(&AddressFamily::L2vpnEvpn),
    )
    .await;

    // Un-declared by sb: stretched nowhere, the EVPN filter and family gone on both sides.
    patch::<InfraEndpoint>(&client, ns, "sb", segments_json(&[("other", 200)])).await;
    let undeclared = wait_until(
        "SegmentNotDeclared",
        async || condition(&client, ns, "s-ab", "SegmentsStretched").await,
        is("False", Reason::SegmentNotDeclared),
    )
    .await;
    assert!(
        undeclared
            .unwrap()
            .2
            .contains("\"vip\", which InfraEndpoint sb (cell sb) does not declare"),
        "names the segment and the endpoint"
    );
    assert_eq!(
        ready(&client, ns, "s-ab").await.unwrap(),
        ("False".into(), Reason::SegmentNotDeclared.as_str().into())
    );
    // Both speakers accept no EVPN route any more, and keep the family (spec.l2 is still there:
    // dropping the family would reset the session and cut the cells' routes too).
    wait_until(
        "EVPN accepted from neither speaker",
        async || evpn_on(&a, &b),
        |sides| {
            sides
                .iter()
                .all(|(evpn, family)| evpn.as_ref().is_some_and(|e| e.import.is_empty()) && *family)
        },
    )
    .await;
    let (local, remote) = sides(&client, ns, "s-ab").await;
    assert!(local.unwrap().segments.is_empty() && remote.unwrap().segments.is_empty());

    // One name, two VNIs in the two cells.
    patch::<InfraEndpoint>(&client, ns, "sb", segments_json(&[("vip", 101)])).await;
    let conflict = wait_until(
        "SegmentConflict",
        async || condition(&client, ns, "s-ab", "SegmentsStretched").await,
        is("False", Reason::SegmentConflict),
    )
    .await;
    assert!(conflict.unwrap().2.contains(
        "segment \"vip\" is VNI 100 on InfraEndpoint sa (cell sa) but VNI 101 on InfraEndpoint sb (cell sb)"
    ));

    // Nothing in common and no name asked for: nothing to stretch, and Ready.
    patch::<InfraEndpoint>(&client, ns, "sb", segments_json(&[])).await;
    patch::<CellInterconnect>(&client, ns, "s-ab", json!({"l2": {"segments": null}})).await;
    wait_until(
        "NoSegments",
        async || condition(&client, ns, "s-ab", "SegmentsStretched").await,
        is("True", Reason::NoSegments),
    )
    .await;
    wait_until(
        "Ready without segments",
        async || ready(&client, ns, "s-ab").await,
        |r| r.as_ref().is_some_and(|(s, _)| s == "True"),
    )
    .await;

    // spec.l2 removed: the EVPN filter and the family go.
    patch::<CellInterconnect>(&client, ns, "s-ab", json!({"l2": null})).await;
    wait_until(
        "EVPN gone from both speakers",
        async || evpn_on(&a, &b),
        |sides| sides.iter().all(|(evpn, family)| evpn.is_none() && !family),
    )
    .await;

    Api::<CellInterconnect>::namespaced(client.clone(), ns)
        .delete("s-ab", &DeleteParams::default())
        .await
        .expect("delete s-ab");
    wait_until(
        "the filters removed",
        async || (a.filters().len(), b.filters().len()),
        |n| *n == (0, 0),
    )
    .await;
}
