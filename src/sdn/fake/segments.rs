//! The fake speaker's EVPN routes (L2 segments), as GoBGP's `observe_segments` reads them: what
//! a neighbour sends arrives only over an Established session carrying `l2vpn-evpn`; the
//! interconnect's EVPN import filter accepts the routes of its route targets and the rest are
//! counted as rejected. What a neighbour sends is, by default, one inclusive-multicast route per
//! VNI the filter accepts, with the neighbour's address as VTEP (the other cell's fabric announces
//! the stretched segments), or what the test says.
use std::collections::HashMap;
use std::net::IpAddr;

use crate::sdn::routes::{EvpnFilter, RouteFilter, RouteTargetMatch, SegmentsSeen};
use crate::sdn::{AddressFamily, SessionState};

use super::FakePeer;

/// One segment a neighbour announces: a type-3 route (its VTEP) and one type-2 route per MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeSegment {
    pub vni: u32,
    pub vtep: IpAddr,
    /// Lowercase `aa:bb:...`.
    pub macs: Vec<String>,
    /// The routes' route target; `None`: `<the neighbour's AS>:<vni>`, as FRR derives it.
    pub route_target: Option<String>,
}

impl FakeSegment {
    /// Segment `vni` with VTEP `vtep`, no MAC, the derived route target.
    pub fn new(vni: u32, vtep: IpAddr) -> Self {
        Self {
            vni,
            vtep,
            macs: Vec::new(),
            route_target: None,
        }
    }

    fn routes(&self) -> u64 {
        1 + self.macs.len() as u64
    }
}

/// What each neighbour sends, when the test set it.
pub type SentSegments = HashMap<IpAddr, Vec<FakeSegment>>;

/// What `peer` sends of EVPN routes, through `filter` (the interconnect's filter towards it).
pub fn seen(peer: Option<&FakePeer>, filter: Option<&RouteFilter>, sent: &SentSegments) -> SegmentsSeen {
    let mut seen = SegmentsSeen::default();
    let Some(peer) = peer.filter(|p| carries_evpn(p)) else {
        return seen;
    };
    let evpn = filter.and_then(|f| f.evpn.as_ref());
    let neighbor = peer.config.neighbor;
    let sent = match sent.get(&neighbor) {
        Some(segments) => segments.clone(),
        None => by_default(evpn, neighbor),
    };
    for segment in &sent {
        let target = segment
            .route_target
            .clone()
            .unwrap_or_else(|| format!("{}:{}", peer.config.peer_asn, segment.vni));
        if !evpn.is_none_or(|e| accepts(e, &target)) {
            seen.rejected += segment.routes();
            continue;
        }
        let found = seen.by_vni.entry(segment.vni).or_default();
        found.vteps.insert(segment.vtep);
        found.macs.extend(segment.macs.iter().cloned());
    }
    seen
}

/// EVPN routes come only over an Established session that negotiated the family.
fn carries_evpn(peer: &FakePeer) -> bool {
    peer.session == SessionState::Established && peer.config.families.contains(&AddressFamily::L2vpnEvpn)
}

fn by_default(evpn: Option<&EvpnFilter>, neighbor: IpAddr) -> Vec<FakeSegment> {
    let import = evpn.map(|e| e.import.as_slice()).unwrap_or_default();
    import
        .iter()
        .filter_map(|m| match m {
            RouteTargetMatch::Vni(vni) => Some(FakeSegment::new(*vni, neighbor)),
            RouteTargetMatch::Exact(_) => None,
        })
        .collect()
}

/// Whether `filter` accepts a route with route target `target` (`<global>:<local>`).
fn accepts(filter: &EvpnFilter, target: &str) -> bool {
    let local = target.rsplit_once(':').map(|(_, l)| l);
    filter.import.iter().any(|m| match m {
        RouteTargetMatch::Vni(vni) => local == Some(vni.to_string().as_str()),
        RouteTargetMatch::Exact(rt) => rt == target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdn::PeerConfig;
    use crate::sdn::routes::{ExportRule, ImportRule};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn peer(families: &[AddressFamily], session: SessionState) -> FakePeer {
        let mut config = PeerConfig::new(ip("192.0.2.2"), 65002, ip("192.0.2.1"), "cellnet:ns/x");
        config.families = families.to_vec();
        FakePeer {
            config,
            owner: None,
            session,
        }
    }

    fn filter(import: Vec<RouteTargetMatch>) -> RouteFilter {
        RouteFilter {
            key: "k".into(),
            neighbors: vec![ip("192.0.2.2")],
            import: ImportRule::Any,
            export: ExportRule::None,
            evpn: Some(EvpnFilter {
                import,
                export: Vec::new(),
            }),
        }
    }

    const EVPN: [AddressFamily; 2] = [AddressFamily::Ipv4Unicast, AddressFamily::L2vpnEvpn];

    #[test]
    fn by_default_the_neighbour_sends_the_stretched_vnis() {
        let p = peer(&EVPN, SessionState::Established);
        let seen = seen(
            Some(&p),
            Some(&filter(vec![RouteTargetMatch::Vni(100)])),
            &HashMap::new(),
        );
        assert_eq!(
            seen.by_vni[&100].vteps.iter().copied().collect::<Vec<_>>(),
            [ip("192.0.2.2")]
        );
        assert_eq!(seen.rejected, 0);
    }

    #[test]
    fn other_route_targets_are_rejected_and_counted() {
        let p = peer(&EVPN, SessionState::Established);
        let mut other = FakeSegment::new(200, ip("203.0.113.2"));
        other.macs = vec!["02:00:00:00:00:01".into()];
        let explicit = FakeSegment {
            route_target: Some("65009:7".into()),
            ..FakeSegment::new(300, ip("203.0.113.2"))
        };
        let sent = HashMap::from([(
            ip("192.0.2.2"),
            vec![FakeSegment::new(100, ip("203.0.113.2")), other, explicit],
        )]);
        let f = filter(vec![
            RouteTargetMatch::Vni(100),
            RouteTargetMatch::Exact("65009:7".into()),
        ]);
        let seen = seen(Some(&p), Some(&f), &sent);
        assert_eq!(seen.by_vni.keys().copied().collect::<Vec<_>>(), [100, 300]);
        assert_eq!(seen.rejected, 2, "one type-3 and one type-2 route of VNI 200");
    }

    #[test]
    fn nothing_arrives_without_the_family_or_the_session() {
        let f = filter(vec![RouteTargetMatch::Vni(100)]);
        let unicast = peer(&[AddressFamily::Ipv4Unicast], SessionState::Established);
        let down = peer(&EVPN, SessionState::Active);
        for p in [unicast, down] {
            assert_eq!(seen(Some(&p), Some(&f), &HashMap::new()), SegmentsSeen::default());
        }
        assert_eq!(seen(None, Some(&f), &HashMap::new()), SegmentsSeen::default());
    }
}
