//! What a neighbour sends of EVPN routes, read from its Adj-RIB-In with the import policy run
//! at read time (`enable_filtered`: GoBGP marks the paths cellnet's filter rejects).
use std::net::IpAddr;

use prost::Message as _;

use super::wire::evpn_family;
use crate::sdn::SdnError;
use crate::sdn::gobgp::GoBgp;
use crate::sdn::gobgp::proto;
use crate::sdn::routes::SegmentsSeen;

/// One EVPN route in the terms status needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Type 3: the VTEP of a VNI.
    Flood { vni: u32, vtep: IpAddr },
    /// Type 2: a MAC on a VNI.
    Mac { vni: u32, mac: String },
}

impl GoBgp {
    pub(in crate::sdn::gobgp) async fn observe_segments(
        &self,
        neighbor: IpAddr,
    ) -> Result<SegmentsSeen, SdnError> {
        let request = proto::ListPathRequest {
            table_type: proto::TableType::AdjIn as i32,
            name: neighbor.to_string(),
            family: Some(evpn_family()),
            enable_filtered: true,
            ..Default::default()
        };
        let destinations = self.list_paths(request).await?;
        Ok(seen(destinations.iter().flat_map(|d| d.paths.iter())))
    }
}

/// Groups `paths` by VNI; rejected ones are only counted.
pub fn seen<'a>(paths: impl Iterator<Item = &'a proto::Path>) -> SegmentsSeen {
    let mut seen = SegmentsSeen::default();
    for path in paths {
        if path.is_withdraw {
            continue;
        }
        if path.filtered {
            seen.rejected += 1;
            continue;
        }
        match route_of(path) {
            Some(Route::Flood { vni, vtep }) => {
                seen.by_vni.entry(vni).or_default().vteps.insert(vtep);
            }
            Some(Route::Mac { vni, mac }) => {
                seen.by_vni.entry(vni).or_default().macs.insert(mac);
            }
            None => {}
        }
    }
    seen
}

/// The route of an EVPN path, if it is a type 2 or 3 route with a VNI: type 2 carries it as its
/// first label, type 3 in its PMSI tunnel attribute (RFC 8365 section 5.1.3); both fall back to
/// the local administrator of the first route target (FRR's auto-derived `<AS>:<VNI>`).
pub fn route_of(path: &proto::Path) -> Option<Route> {
    let nlri = path.nlri.as_ref()?;
    if nlri.type_url.ends_with(".EVPNInclusiveMulticastEthernetTagRoute") {
        let r = proto::EvpnInclusiveMulticastEthernetTagRoute::decode(nlri.value.as_slice()).ok()?;
        let vni = pmsi_label(path).or_else(|| first_target(path))?;
        Some(Route::Flood {
            vni,
            vtep: r.ip_address.parse().ok()?,
        })
    } else if nlri.type_url.ends_with(".EVPNMACIPAdvertisementRoute") {
        let r = proto::EvpnmacipAdvertisementRoute::decode(nlri.value.as_slice()).ok()?;
        let vni = r
            .labels
            .first()
            .copied()
            .filter(|v| *v != 0)
            .or_else(|| first_target(path))?;
        Some(Route::Mac {
            vni,
            mac: r.mac_address.to_lowercase(),
        })
    } else {
        None
    }
}

fn attribute<M: prost::Message + Default>(path: &proto::Path, suffix: &str) -> Option<M> {
    let any = path.pattrs.iter().find(|a| a.type_url.ends_with(suffix))?;
    M::decode(any.value.as_slice()).ok()
}

fn pmsi_label(path: &proto::Path) -> Option<u32> {
    attribute::<proto::PmsiTunnelAttribute>(path, ".PmsiTunnelAttribute")
        .map(|p| p.label)
        .filter(|l| *l != 0)
}

fn first_target(path: &proto::Path) -> Option<u32> {
    let communities =
        attribute::<proto::ExtendedCommunitiesAttribute>(path, ".ExtendedCommunitiesAttribute")?;
    communities.communities.iter().find_map(|c| {
        if c.type_url.ends_with(".TwoOctetAsSpecificExtended") {
            let rt = proto::TwoOctetAsSpecificExtended::decode(c.value.as_slice()).ok()?;
            (rt.sub_type == 0x02).then_some(rt.local_admin)
        } else if c.type_url.ends_with(".FourOctetAsSpecificExtended") {
            let rt = proto::FourOctetAsSpecificExtended::decode(c.value.as_slice()).ok()?;
            (rt.sub_type == 0x02).then_some(rt.local_admin)
        } else if c.type_url.ends_with(".IPv4AddressSpecificExtended") {
            let rt = proto::IPv4AddressSpecificExtended::decode(c.value.as_slice()).ok()?;
            (rt.sub_type == 0x02).then_some(rt.local_admin)
        } else {
            None
        }
    })
}
