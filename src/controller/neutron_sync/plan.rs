//! Pure decisions of the Neutron reconcile: the names and tags cellnet gives its objects, and
//! what to do with each object given the spec and what Neutron holds. The calls that carry
//! these decisions out live in `network.rs`, `subnet.rs` and `bgp.rs`.
use kube::ResourceExt;
use serde_json::{Map, Value, json};

use super::{CELL_TAG, OWNER_TAG};
use crate::api::infra_endpoint::{
    NeutronBgpSpec, NeutronNetworkSpec, NeutronNetworkType, NeutronSpec, NeutronSubnetSpec,
};
use crate::api::{InfraEndpoint, Reason};
use crate::controller::problem::Problem;
use crate::neutron::{BgpPeer, BgpSpeaker, Network, Subnet};

/// What to do with one Neutron object.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Change {
    /// Not there: create it.
    Create,
    /// There and as the spec wants it.
    Keep,
    /// There; these fields change in place (the body of the update).
    Update(Value),
    /// There, but a field Neutron cannot change in place differs: delete it and create it anew.
    Replace,
}

/// The update of the fields that differ; `Keep` when none does.
fn update_or_keep(fields: Map<String, Value>) -> Change {
    if fields.is_empty() {
        Change::Keep
    } else {
        Change::Update(Value::Object(fields))
    }
}

pub(super) fn network_name(ep: &InfraEndpoint, spec: &NeutronSpec) -> String {
    spec.network
        .name
        .clone()
        .unwrap_or_else(|| format!("cellnet-{}-{}", ep.spec.cell, ep.name_any()))
}

/// The cell's BGP speaker, shared by its endpoints.
pub(super) fn speaker_name(ep: &InfraEndpoint) -> String {
    format!("cellnet-{}", ep.spec.cell)
}

/// The BGP peer that is this endpoint. BGP peers take no tags and have no description, so the
/// name is cellnet's owner mark: it ends in the endpoint's uid, which no other endpoint (another
/// namespace with the same cell and endpoint name) and no hand-made peer has.
pub(super) fn peer_name(ep: &InfraEndpoint) -> String {
    format!("{}-{}", legacy_peer_name(ep), ep.uid().unwrap_or_default())
}

/// The peer name of controllers before the uid was in it.
fn legacy_peer_name(ep: &InfraEndpoint) -> String {
    format!("cellnet-{}-{}", ep.spec.cell, ep.name_any())
}

/// Whether cellnet made `p` for `ep` and may replace or delete it: it carries the endpoint's
/// uid in its name. A peer of an older controller (name without uid) is only accepted when
/// reached through the id in status (`via_status`) and it is this endpoint's address and AS.
pub(super) fn is_our_peer(ep: &InfraEndpoint, p: &BgpPeer, via_status: bool) -> bool {
    p.name == peer_name(ep)
        || (via_status
            && p.name == legacy_peer_name(ep)
            && same_ip(&p.peer_ip, &ep.spec.address)
            && p.remote_as == ep.spec.asn)
}

/// Whether `s` is the cell's speaker cellnet makes (shared by the cell's endpoints, so named by
/// the cell); a speaker of another name, whatever id status holds, is never changed or deleted.
pub(super) fn is_cells_speaker(ep: &InfraEndpoint, s: &BgpSpeaker) -> bool {
    s.name == speaker_name(ep)
}

pub(super) fn owner_tag(ep: &InfraEndpoint) -> String {
    format!("{OWNER_TAG}={}", ep.uid().unwrap_or_default())
}

pub(super) fn cell_tag(ep: &InfraEndpoint) -> String {
    format!("{CELL_TAG}={}", ep.spec.cell)
}

/// The whole tag set to write so that `ours` are on an object (every other tag kept); `None`
/// when they already are.
pub(super) fn tags_to_set(have: &[String], ours: [String; 2]) -> Option<Vec<String>> {
    if ours.iter().all(|t| have.contains(t)) {
        return None;
    }
    let mut tags = have.to_vec();
    tags.extend(ours.into_iter().filter(|t| !have.contains(t)));
    Some(tags)
}

/// A network or subnet found by name that does not carry our owner tag: someone else's.
pub(super) fn network_not_ours(name: &str, id: &str, owner: &str) -> Problem {
    Problem::new(
        Reason::NeutronConflict,
        format!(
            "Neutron already has a network named {name:?} ({id}) that cellnet does not own \
             (no tag {owner}); nothing changed"
        ),
    )
}

/// The provider attributes the spec asks for: what Neutron cannot change in place.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Provider<'a> {
    network_type: &'static str,
    physical_network: Option<&'a str>,
    segmentation_id: Option<u32>,
}

/// The provider attributes of `want`; a `vxlan` network takes the VNI of the endpoint's segment
/// it names (`SegmentNotDeclared` when the endpoint has none of that name: the API server refuses
/// it, but not in objects from before that rule).
pub(super) fn provider<'a>(
    ep: &'a InfraEndpoint,
    want: &'a NeutronNetworkSpec,
) -> Result<Provider<'a>, Problem> {
    let segmentation_id = match (want.network_type, want.segment.as_deref()) {
        (NeutronNetworkType::Vxlan, Some(name)) => {
            let segment = ep.spec.l2_segments.iter().find(|s| s.name == name);
            Some(segment.ok_or_else(|| segment_not_declared(name))?.vni)
        }
        _ => want.segmentation_id.map(u32::from),
    };
    Ok(Provider {
        network_type: want.network_type.as_str(),
        physical_network: want.physical_network.as_deref(),
        segmentation_id,
    })
}

fn segment_not_declared(name: &str) -> Problem {
    Problem::new(
        Reason::SegmentNotDeclared,
        format!(
            "spec.neutron.network.segment names {name:?}, which spec.l2Segments does not declare; \
             nothing changed in Neutron"
        ),
    )
}

/// The provider network. Provider attributes cannot be updated in place: a change replaces it.
pub(super) fn network_change(
    want: &NeutronNetworkSpec,
    provider: &Provider,
    name: &str,
    have: Option<&Network>,
) -> Change {
    let Some(x) = have else { return Change::Create };
    if x.network_type.as_deref() != Some(provider.network_type)
        || x.physical_network.as_deref() != provider.physical_network
        || x.segmentation_id != provider.segmentation_id
    {
        return Change::Replace;
    }
    let mut update = Map::new();
    if x.name != name {
        update.insert("name".into(), json!(name));
    }
    if x.external != want.external {
        update.insert("router:external".into(), json!(want.external));
    }
    if let Some(mtu) = want.mtu.filter(|m| x.mtu != Some(*m)) {
        update.insert("mtu".into(), json!(mtu));
    }
    update_or_keep(update)
}

/// The body that creates the provider network.
pub(super) fn network_body(
    ep: &InfraEndpoint,
    want: &NeutronNetworkSpec,
    provider: &Provider,
    name: &str,
) -> Value {
    let mut body = json!({
        "name": name,
        "provider:network_type": provider.network_type,
        "router:external": want.external,
        "description": format!("cellnet: infrastructure network of cell {} ({}/{})",
            ep.spec.cell, ep.namespace().unwrap_or_default(), ep.name_any()),
    });
    if let Some(physnet) = provider.physical_network {
        body["provider:physical_network"] = json!(physnet);
    }
    if let Some(id) = provider.segmentation_id {
        body["provider:segmentation_id"] = json!(id);
    }
    if let Some(mtu) = want.mtu {
        body["mtu"] = json!(mtu);
    }
    if !want.availability_zone_hints.is_empty() {
        body["availability_zone_hints"] = json!(want.availability_zone_hints);
    }
    body
}

/// The allocation pools of the spec, as Neutron writes them.
fn wanted_pools(want: &NeutronSubnetSpec) -> Vec<Value> {
    want.allocation_pools
        .iter()
        .map(|p| json!({"start": p.start, "end": p.end}))
        .collect()
}

/// The subnet. The CIDR cannot be updated in place: a change replaces it. No pools in the spec
/// leaves Neutron's.
pub(super) fn subnet_change(want: &NeutronSubnetSpec, have: Option<&Subnet>) -> Change {
    let Some(s) = have else { return Change::Create };
    if s.cidr != want.cidr {
        return Change::Replace;
    }
    let mut update = Map::new();
    if s.gateway_ip != want.gateway_ip {
        update.insert("gateway_ip".into(), json!(want.gateway_ip));
    }
    let want_pools = wanted_pools(want);
    let have_pools: Vec<Value> = s
        .allocation_pools
        .iter()
        .map(|p| json!({"start": p.start, "end": p.end}))
        .collect();
    if !want_pools.is_empty() && have_pools != want_pools {
        update.insert("allocation_pools".into(), json!(want_pools));
    }
    update_or_keep(update)
}

/// The body that creates the subnet (no DHCP: an infrastructure network).
pub(super) fn subnet_body(name: &str, network_id: &str, want: &NeutronSubnetSpec) -> Value {
    let mut body = json!({
        "name": name,
        "network_id": network_id,
        "ip_version": ip_version(&want.cidr),
        "cidr": want.cidr,
        "gateway_ip": want.gateway_ip,
        "enable_dhcp": false,
    });
    let pools = wanted_pools(want);
    if !pools.is_empty() {
        body["allocation_pools"] = json!(pools);
    }
    body
}

/// 6 for an IPv6 address or CIDR, else 4.
pub(super) fn ip_version(address_or_cidr: &str) -> u8 {
    if address_or_cidr.contains(':') { 6 } else { 4 }
}

/// The cell's speaker. `local_as` and the IP version are read-only in Neutron, so a change
/// replaces the speaker, unless another endpoint's peer is on it (`own_peer` is ours): replacing
/// it would cut that peer, and two specs would replace it in turn, so that is a conflict.
pub(super) fn speaker_change(
    want: &NeutronBgpSpec,
    ip_version: u8,
    own_peer: Option<&str>,
    have: Option<&BgpSpeaker>,
) -> Result<Change, Problem> {
    let Some(s) = have else { return Ok(Change::Create) };
    if s.local_as != want.local_as || s.ip_version != ip_version {
        let others = s.peers.iter().filter(|p| own_peer != Some(p.as_str())).count();
        if others > 0 {
            let message = format!(
                "Neutron BGP speaker {} ({}) runs AS {} with {others} other peer(s) on it; \
                 this endpoint asks for AS {}: give the cell's endpoints one bgp.localAs; nothing changed",
                s.name, s.id, s.local_as, want.local_as
            );
            return Err(Problem::new(Reason::NeutronConflict, message));
        }
        return Ok(Change::Replace);
    }
    if s.advertise_tenant_networks != want.advertise_tenant_networks
        || s.advertise_floating_ip_host_routes != want.advertise_floating_ip_host_routes
    {
        return Ok(Change::Update(advertise_flags(want)));
    }
    Ok(Change::Keep)
}

fn advertise_flags(want: &NeutronBgpSpec) -> Value {
    json!({
        "advertise_tenant_networks": want.advertise_tenant_networks,
        "advertise_floating_ip_host_routes": want.advertise_floating_ip_host_routes,
    })
}

/// The body that creates the cell's speaker.
pub(super) fn speaker_body(ep: &InfraEndpoint, want: &NeutronBgpSpec, ip_version: u8) -> Value {
    let mut body = advertise_flags(want);
    body["name"] = json!(speaker_name(ep));
    body["local_as"] = json!(want.local_as);
    body["ip_version"] = json!(ip_version);
    body
}

/// The MD5 password of the peer and the `resourceVersion` of its Secret (a rotation replaces
/// the peer: Neutron never shows the password it has).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerPassword {
    pub value: String,
    pub secret_version: String,
}

fn auth_type(password: Option<&PeerPassword>) -> &'static str {
    if password.is_some() { "md5" } else { "none" }
}

/// The peer that is this endpoint. Neutron cannot change a peer's `remote_as`, `peer_ip` or
/// password in place: any change (or a password Secret of another version than the one
/// applied) replaces it.
pub(super) fn peer_change(
    ep: &InfraEndpoint,
    password: Option<&PeerPassword>,
    applied_version: Option<&str>,
    have: Option<&BgpPeer>,
) -> Change {
    let Some(p) = have else { return Change::Create };
    let want_version = password.map(|p| p.secret_version.as_str());
    if p.remote_as != ep.spec.asn
        || !same_ip(&p.peer_ip, &ep.spec.address)
        || p.auth_type != auth_type(password)
        || applied_version != want_version
    {
        return Change::Replace;
    }
    Change::Keep
}

/// The body that creates the peer.
pub(super) fn peer_body(ep: &InfraEndpoint, password: Option<&PeerPassword>) -> Value {
    let mut body = json!({
        "name": peer_name(ep),
        "peer_ip": ep.spec.address,
        "remote_as": ep.spec.asn,
        "auth_type": auth_type(password),
    });
    if let Some(pw) = password {
        body["password"] = json!(pw.value);
    }
    body
}

/// Equal addresses, however written (`2001:db8::1` and `2001:db8:0::1`).
pub(super) fn same_ip(a: &str, b: &str) -> bool {
    match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The Ready message of an endpoint whose Neutron objects are in place (without the cell).
pub(super) fn configured_message(
    network: &str,
    net: &Network,
    cidr: &str,
    bgp: Option<(&BgpSpeaker, &BgpPeer)>,
) -> String {
    let mut message = format!("Neutron network {network} ({}) with subnet {cidr}", net.id);
    if let Some((speaker, peer)) = bgp {
        message.push_str(&format!(
            "; BGP speaker {} (AS {}) peers with {} (AS {})",
            speaker.name, speaker.local_as, peer.peer_ip, peer.remote_as
        ));
    }
    message
}

#[cfg(test)]
mod tests;
