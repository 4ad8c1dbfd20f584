//! Pure conversions between the routes model and GoBGP's protobuf messages.
use std::net::IpAddr;

use ipnet::IpNet;
use prost::Message as _;

use super::model::{Member, ObservedStatement, Set, Statement};
use super::names::{Direction, Family};
use crate::sdn::gobgp::proto::{self, family, match_set};

/// The second field of cellnet's large community `<asn>:<TAG>:<mark>` ("cell" in ASCII): a mark
/// for people and for the fabric. Never used to recognise cellnet's paths, since it reaches
/// other speakers (so a received path may carry it) and import policies may strip it from local
/// paths.
pub const COMMUNITY_TAG: u32 = u32::from_be_bytes(*b"cell");

/// GoBGP's AFI/SAFI of a unicast family.
pub fn family(family: Family) -> proto::Family {
    let afi = match family {
        Family::V4 => family::Afi::Ip,
        Family::V6 => family::Afi::Ip6,
    };
    proto::Family {
        afi: afi as i32,
        safi: family::Safi::Unicast as i32,
    }
}

fn defined_type(neighbor: bool) -> i32 {
    if neighbor {
        proto::DefinedType::Neighbor as i32
    } else {
        proto::DefinedType::Prefix as i32
    }
}

/// A defined set carrying `members` (the whole set, or the members to add or remove).
pub fn defined_set(name: &str, neighbor: bool, members: &[Member]) -> proto::DefinedSet {
    let mut set = proto::DefinedSet {
        defined_type: defined_type(neighbor),
        name: name.to_owned(),
        ..Default::default()
    };
    if neighbor {
        // GoBGP wants CIDR here: a bare address is refused ("invalid address or prefix").
        set.list = members.iter().map(|m| m.net.to_string()).collect();
    } else {
        set.prefixes = members
            .iter()
            .map(|m| proto::Prefix {
                ip_prefix: m.net.to_string(),
                mask_length_min: u32::from(m.min),
                mask_length_max: u32::from(m.max),
            })
            .collect();
    }
    set
}

/// A listed set in our terms. Members GoBGP reports twice (an append of an existing member
/// stores it again, policy.go AddDefinedSet) count once; unparsable ones are dropped.
pub fn set_from_proto(set: &proto::DefinedSet) -> Set {
    let neighbor = set.defined_type == proto::DefinedType::Neighbor as i32;
    let members = if neighbor {
        set.list
            .iter()
            .filter_map(|s| s.parse::<IpNet>().ok())
            .map(Member::exact)
            .collect()
    } else {
        set.prefixes.iter().filter_map(prefix_member).collect()
    };
    Set { neighbor, members }
}

fn prefix_member(prefix: &proto::Prefix) -> Option<Member> {
    Some(Member {
        net: prefix.ip_prefix.parse::<IpNet>().ok()?.trunc(),
        min: u8::try_from(prefix.mask_length_min).ok()?,
        max: u8::try_from(prefix.mask_length_max).ok()?,
    })
}

fn match_set(kind: match_set::Type, name: &str) -> proto::MatchSet {
    proto::MatchSet {
        r#type: kind as i32,
        name: name.to_owned(),
    }
}

/// A statement as `AddPolicy` gets it.
pub fn statement(statement: &Statement) -> proto::Statement {
    proto::Statement {
        name: statement.name.clone(),
        conditions: Some(proto::Conditions {
            neighbor_set: Some(match_set(match_set::Type::Any, &statement.peers)),
            prefix_set: statement
                .allowed
                .as_deref()
                .map(|name| match_set(match_set::Type::Invert, name)),
            afi_safi_in: vec![family(statement.family)],
            ..Default::default()
        }),
        actions: Some(proto::Actions {
            route_action: proto::RouteAction::Reject as i32,
            ..Default::default()
        }),
    }
}

/// A listed statement of cellnet's policy: its shape, if it is exactly one cellnet writes.
/// GoBGP lists an absent RPKI condition as `rpki_result: -1`, which is ignored.
pub fn statement_from_proto(direction: Direction, listed: &proto::Statement) -> ObservedStatement {
    ObservedStatement {
        name: listed.name.clone(),
        shape: shape_of(direction, listed),
    }
}

fn shape_of(direction: Direction, listed: &proto::Statement) -> Option<Statement> {
    let mut conditions = listed.conditions.clone()?;
    conditions.rpki_result = 0;
    let neighbor_set = conditions.neighbor_set.take()?;
    let prefix_set = conditions.prefix_set.take();
    let families = std::mem::take(&mut conditions.afi_safi_in);
    let [listed_family] = families.as_slice() else {
        return None;
    };
    let family = Family::BOTH.into_iter().find(|f| family(*f) == *listed_family)?;
    let reject = proto::Actions {
        route_action: proto::RouteAction::Reject as i32,
        ..Default::default()
    };
    let plain = conditions == proto::Conditions::default()
        && listed.actions.as_ref() == Some(&reject)
        && neighbor_set.r#type == match_set::Type::Any as i32
        && prefix_set
            .as_ref()
            .is_none_or(|p| p.r#type == match_set::Type::Invert as i32);
    plain.then(|| Statement {
        name: listed.name.clone(),
        direction,
        family,
        peers: neighbor_set.name,
        allowed: prefix_set.map(|p| p.name),
    })
}

fn any<M: prost::Message>(type_name: &str, message: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/apipb.{type_name}"),
        value: message.encode_to_vec(),
    }
}

fn nlri(net: IpNet) -> prost_types::Any {
    let prefix = proto::IpAddressPrefix {
        prefix_len: u32::from(net.prefix_len()),
        prefix: net.network().to_string(),
    };
    any("IPAddressPrefix", &prefix)
}

/// cellnet's path for `net`: origin IGP, next hop `next_hop`, identifier `mark`, and the large
/// community `<asn>:cell:<mark>`. IPv6 carries its next hop in MP_REACH_NLRI (GoBGP's
/// `api2Path` refuses a path without a next hop).
pub fn origination_path(net: IpNet, next_hop: IpAddr, mark: u32, asn: u32) -> proto::Path {
    let fam = family(Family::of(&net));
    let next_hop_attr = match net {
        IpNet::V4(_) => any(
            "NextHopAttribute",
            &proto::NextHopAttribute {
                next_hop: next_hop.to_string(),
            },
        ),
        IpNet::V6(_) => any(
            "MpReachNLRIAttribute",
            &proto::MpReachNlriAttribute {
                family: Some(fam),
                next_hops: vec![next_hop.to_string()],
                nlris: vec![nlri(net)],
            },
        ),
    };
    let community = proto::LargeCommunity {
        global_admin: asn,
        local_data1: COMMUNITY_TAG,
        local_data2: mark,
    };
    let communities = proto::LargeCommunitiesAttribute {
        communities: vec![community],
    };
    proto::Path {
        nlri: Some(nlri(net)),
        pattrs: vec![
            any("OriginAttribute", &proto::OriginAttribute { origin: 0 }),
            next_hop_attr,
            any("LargeCommunitiesAttribute", &communities),
        ],
        family: Some(fam),
        identifier: mark,
        ..Default::default()
    }
}

/// The path a `DeletePath` names to withdraw cellnet's path for `net`: GoBGP matches it by
/// source and identifier only (destination.go explicitWithdraw), but still wants a next hop to
/// parse it.
pub fn withdrawal_path(net: IpNet, mark: u32) -> proto::Path {
    let unspecified = match net {
        IpNet::V4(_) => IpAddr::from([0, 0, 0, 0]),
        IpNet::V6(_) => IpAddr::from([0u16; 8]),
    };
    origination_path(net, unspecified, mark, 0)
}

/// Whether a listed path was originated on this speaker: GoBGP lists local paths with
/// `neighbor_ip: "<nil>"`, received ones with the neighbour's address.
pub fn is_local(path: &proto::Path) -> bool {
    path.neighbor_ip.parse::<IpAddr>().is_err()
}

/// The neighbour a listed path came from, if it was received.
pub fn source_of(path: &proto::Path) -> Option<IpAddr> {
    path.neighbor_ip.parse().ok()
}

/// The prefix of a listed unicast path.
pub fn prefix_of(path: &proto::Path) -> Option<IpNet> {
    let nlri = path.nlri.as_ref()?;
    let prefix = proto::IpAddressPrefix::decode(nlri.value.as_slice()).ok()?;
    let address: IpAddr = prefix.prefix.parse().ok()?;
    IpNet::new(address, u8::try_from(prefix.prefix_len).ok()?).ok()
}

/// The next hop of a listed path (NEXT_HOP, or the first of MP_REACH_NLRI).
pub fn next_hop_of(path: &proto::Path) -> Option<IpAddr> {
    path.pattrs.iter().find_map(|attr| {
        if attr.type_url.ends_with(".NextHopAttribute") {
            let nh = proto::NextHopAttribute::decode(attr.value.as_slice()).ok()?;
            nh.next_hop.parse().ok()
        } else if attr.type_url.ends_with(".MpReachNLRIAttribute") {
            let mp = proto::MpReachNlriAttribute::decode(attr.value.as_slice()).ok()?;
            mp.next_hops.first()?.parse().ok()
        } else {
            None
        }
    })
}
