//! Pure: the peer each managed side of a CellInterconnect must have.
use std::net::IpAddr;

use crate::api::{self, AdminState, CellInterconnect, InfraEndpoint};
use crate::sdn::{AddressFamily, OWNER_PREFIX, Password, PeerConfig};

/// The marker cellnet writes on every peer it creates for `cic`: `cellnet:<namespace>/<name>`.
pub fn owner_marker(namespace: &str, name: &str) -> String {
    format!("{OWNER_PREFIX}{namespace}/{name}")
}

fn family(af: api::AddressFamily) -> AddressFamily {
    match af {
        api::AddressFamily::Ipv4Unicast => AddressFamily::Ipv4Unicast,
        api::AddressFamily::Ipv6Unicast => AddressFamily::Ipv6Unicast,
        api::AddressFamily::L2vpnEvpn => AddressFamily::L2vpnEvpn,
    }
}

fn ip(ep: &InfraEndpoint) -> Result<IpAddr, String> {
    ep.spec.address.parse().map_err(|_| {
        format!(
            "InfraEndpoint {}: spec.address {:?} is not an IP address",
            ep.metadata.name.as_deref().unwrap_or_default(),
            ep.spec.address
        )
    })
}

/// The peer on `this` side's speaker towards `other`.
pub fn peer_config(
    cic: &CellInterconnect,
    owner: &str,
    this: &InfraEndpoint,
    other: &InfraEndpoint,
    password: Option<&Password>,
) -> Result<PeerConfig, String> {
    let bgp = &cic.spec.bgp;
    let mut families: Vec<AddressFamily> = bgp.address_families.iter().copied().map(family).collect();
    families.sort();
    families.dedup();
    Ok(PeerConfig {
        neighbor: ip(other)?,
        peer_asn: other.spec.asn,
        remote_port: other.spec.port,
        local_address: ip(this)?,
        hold_time: bgp.hold_time,
        keepalive_interval: bgp.keepalive_interval,
        ebgp_multihop: bgp.ebgp_multihop,
        families,
        password: password.cloned(),
        owner: owner.to_string(),
        admin_down: cic.spec.admin_state == AdminState::Disabled,
        admin_message: cic.spec.admin_message.clone(),
        owned_record: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoint(name: &str, address: &str, asn: u32, port: u16) -> InfraEndpoint {
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"cell": name, "address": address, "asn": asn, "port": port,
                     "sdn": {"type": "GoBGP", "url": "http://127.0.0.1:50051"}}
        }))
        .unwrap()
    }

    fn interconnect(extra_bgp: serde_json::Value) -> CellInterconnect {
        let mut bgp = json!({"holdTime": 9, "keepaliveInterval": 3});
        bgp.as_object_mut()
            .unwrap()
            .extend(extra_bgp.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
            "metadata": {"name": "a-b", "namespace": "ns"},
            "spec": {"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}, "bgp": bgp}
        }))
        .unwrap()
    }

    #[test]
    fn local_and_mirror_peers() {
        let (a, b) = (
            endpoint("a", "127.0.0.11", 65011, 1790),
            endpoint("b", "127.0.0.12", 65012, 1791),
        );
        let cic = interconnect(json!({"ebgpMultihop": 2}));
        let local = peer_config(&cic, "cellnet:ns/a-b", &a, &b, None).unwrap();
        assert_eq!(local.neighbor, "127.0.0.12".parse::<IpAddr>().unwrap());
        assert_eq!((local.peer_asn, local.remote_port), (65012, 1791));
        assert_eq!(local.local_address, "127.0.0.11".parse::<IpAddr>().unwrap());
        assert_eq!(
            (local.hold_time, local.keepalive_interval, local.ebgp_multihop),
            (9, 3, Some(2))
        );
        assert_eq!(local.families, [AddressFamily::Ipv4Unicast]);
        assert!(!local.admin_down);
        let mirror = peer_config(&cic, "cellnet:ns/a-b", &b, &a, None).unwrap();
        assert_eq!(
            (mirror.neighbor, mirror.peer_asn, mirror.remote_port),
            (local.local_address, 65011, 1790)
        );
    }

    #[test]
    fn families_sorted_and_password_carried() {
        let (a, b) = (endpoint("a", "fd00::1", 1, 179), endpoint("b", "fd00::2", 2, 179));
        let cic = interconnect(json!({"addressFamilies": ["l2vpn-evpn", "ipv6-unicast"]}));
        let pw = Password::new("s3cret");
        let peer = peer_config(&cic, "cellnet:ns/a-b", &a, &b, Some(&pw)).unwrap();
        assert_eq!(
            peer.families,
            [AddressFamily::Ipv6Unicast, AddressFamily::L2vpnEvpn]
        );
        assert_eq!(peer.password.as_ref().map(Password::expose), Some("s3cret"));
        assert!(!format!("{peer:?}").contains("s3cret"));
    }

    #[test]
    fn owner_marker_names_namespace_and_object() {
        assert_eq!(owner_marker("ns", "a-b"), "cellnet:ns/a-b");
    }
}
