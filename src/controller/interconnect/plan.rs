//! Step 2 (pure): what each managed side's speaker must have: its global config, the peer
//! towards the other side, the stale peer to remove when the neighbour address changed, and the
//! routes it carries.
use std::net::IpAddr;

use kube::{Resource, ResourceExt};

use super::super::networks::{self, Carried, Conflict};
use super::super::problem::Problem;
use super::super::segments;
use super::super::speakers::{SpeakerKey, speaker_key};
use super::super::target::{self, Checked};
use crate::api::{self, AdminState, CellInterconnect, InfraEndpoint, PassiveSide, Reason, SdnKind};
use crate::sdn::{
    AddressFamily, OWNER_PREFIX, Origination, Password, PeerConfig, RouteFilter, SdnTarget, SpeakerConfig,
};

/// The marker cellnet writes on every peer it creates for `cic`: `cellnet:<namespace>/<name>`.
pub fn owner_marker(namespace: &str, name: &str) -> String {
    format!("{OWNER_PREFIX}{namespace}/{name}")
}

/// Who a side is, whatever happens to it.
#[derive(Clone, Debug, PartialEq)]
pub struct SideId {
    pub cell: String,
    pub sdn: SdnKind,
    /// The neighbour address this side's speaker peers with (the other endpoint's address).
    pub peer_address: String,
}

impl SideId {
    pub fn of(this: &InfraEndpoint, other: &InfraEndpoint) -> Self {
        Self {
            cell: this.spec.cell.clone(),
            sdn: SdnKind::from(this.spec.sdn.as_ref()),
            peer_address: other.spec.address.clone(),
        }
    }
}

/// What one managed side's speaker must have.
#[derive(Clone, Debug, PartialEq)]
pub struct SidePlan {
    pub target: SdnTarget,
    pub speaker: SpeakerKey,
    pub speaker_config: SpeakerConfig,
    pub peer: PeerConfig,
    /// The neighbour this side had before (status says so) when it differs from `peer.neighbor`.
    pub stale_peer: Option<IpAddr>,
    /// The spec did not change since status said the peer was configured: a create or update
    /// now repairs drift (the speaker lost or changed it).
    pub write_repairs_drift: bool,
    /// The networks this side carries.
    pub routes: RoutesPlan,
}

/// The routes of one managed side: its filter for this interconnect, its endpoint's origination
/// (originated by the endpoint's reconcile; read here to count what is sent) and what it should
/// receive.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoutesPlan {
    /// `None` when the other endpoint's address is not an IP (the peer step reports that).
    pub filter: Option<RouteFilter>,
    pub origination: Option<Origination>,
    pub carried: Carried,
    /// The L2 segments `spec.l2` stretches, or why none is; `None` without `spec.l2`.
    pub segments: Option<Result<Vec<segments::Stretched>, segments::SegmentProblem>>,
}

/// One endpoint and the conflicts of its networks.
pub type WithConflicts<'a> = (&'a InfraEndpoint, &'a [Conflict]);

fn routes_plan(cic: &CellInterconnect, this: WithConflicts, other: WithConflicts) -> RoutesPlan {
    RoutesPlan {
        filter: networks::route_filter(cic, this, other),
        origination: networks::origination(this.0, this.1).map(|a| a.origination),
        carried: networks::carried(cic, this, other),
        segments: cic
            .spec
            .l2
            .as_ref()
            .map(|l2| segments::stretched(Some(l2), this.0, other.0)),
    }
}

/// A side of the interconnect as planned.
#[derive(Clone, Debug, PartialEq)]
pub enum Side<T> {
    /// cellnet configures this side (or could not plan it: the problem says why).
    Managed(SideId, Checked<T>),
    /// An external endpoint: cellnet does not configure it.
    External(SideId),
}

fn family(af: api::AddressFamily) -> AddressFamily {
    match af {
        api::AddressFamily::Ipv4Unicast => AddressFamily::Ipv4Unicast,
        api::AddressFamily::Ipv6Unicast => AddressFamily::Ipv6Unicast,
        api::AddressFamily::L2vpnEvpn => AddressFamily::L2vpnEvpn,
    }
}

fn ip(ep: &InfraEndpoint) -> Checked<IpAddr> {
    ep.spec.address.parse().map_err(|_| {
        let message = format!(
            "InfraEndpoint {}: spec.address {:?} is not an IP address",
            ep.metadata.name.as_deref().unwrap_or_default(),
            ep.spec.address
        );
        Problem::new(Reason::InvalidEndpoint, message)
    })
}

/// The peer on `this` side's speaker towards `other`.
pub fn peer_config(
    cic: &CellInterconnect,
    this: &InfraEndpoint,
    other: &InfraEndpoint,
    password: Option<&Password>,
) -> Checked<PeerConfig> {
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
        owner: owner_marker(&cic.namespace().unwrap_or_default(), &cic.name_any()),
        admin_down: cic.spec.admin_state == AdminState::Disabled,
        admin_message: cic.spec.admin_message.clone(),
        owned_record: false,
        max_prefixes: Some(cic.spec.routes.max_prefixes),
        // Set by [`plan`], which knows which side this is and whether both are managed.
        passive: false,
        graceful_restart: bgp
            .graceful_restart
            .filter(|gr| gr.enabled)
            .map(|gr| gr.restart_time),
    })
}

/// The side status of `this` endpoint in the current status (local or remote).
fn recorded_side<'a>(cic: &'a CellInterconnect, this: &InfraEndpoint) -> Option<&'a api::SideStatus> {
    let status = cic.status.as_ref()?;
    let is_local = Some(&this.spec.cell) == status.local_cell.as_ref()
        && cic.spec.local_endpoint.name == this.name_any();
    if is_local {
        status.local.as_ref()
    } else {
        status.remote.as_ref()
    }
}

/// The neighbour address status says this side had configured (for removing stale peers).
pub fn recorded_peer(cic: &CellInterconnect, this: &InfraEndpoint) -> Option<String> {
    recorded_side(cic, this)?.peer_address.clone()
}

/// Whether a write on `this` side repairs drift: the spec did not change since the status that
/// says the peer was configured, so the speaker must have lost or changed it.
fn write_repairs_drift(cic: &CellInterconnect, this: &InfraEndpoint) -> bool {
    let Some(status) = cic.status.as_ref() else {
        return false;
    };
    let side = if cic.spec.local_endpoint.name == this.name_any() {
        &status.local
    } else {
        &status.remote
    };
    status.observed_generation == cic.meta().generation && side.as_ref().is_some_and(|s| s.configured)
}

/// Plans `this` managed side towards `other`.
pub fn plan_side(
    cic: &CellInterconnect,
    (this, this_conflicts): WithConflicts,
    (other, other_conflicts): WithConflicts,
    target: Checked<SdnTarget>,
    password: Option<&Password>,
) -> Checked<SidePlan> {
    let target = target?;
    let routes = routes_plan(cic, (this, this_conflicts), (other, other_conflicts));
    let speaker_config = target::speaker_config(this)?;
    let mut peer = peer_config(cic, this, other, password)?;
    // Stretched L2 segments travel as EVPN routes, beside the families the user asked for.
    if routes.filter.as_ref().is_some_and(|f| f.evpn.is_some())
        && !peer.families.contains(&AddressFamily::L2vpnEvpn)
    {
        peer.families.push(AddressFamily::L2vpnEvpn);
        peer.families.sort();
    }
    // Two endpoints on one address (a test set-up) would make the peer look stale to itself.
    let stale_peer = (this.spec.address != other.spec.address)
        .then(|| recorded_peer(cic, this))
        .flatten()
        .and_then(|a| a.parse().ok())
        .filter(|a| *a != peer.neighbor);
    Ok(SidePlan {
        speaker: speaker_key(target.kind, &target.url),
        target,
        speaker_config,
        peer,
        stale_peer,
        write_repairs_drift: write_repairs_drift(cic, this),
        routes,
    })
}

/// Whether a side only listens: only when cellnet manages both sides (an external peer may be
/// passive itself, so the local side then always dials), and then the side `passiveSide` names.
pub fn listens(passive_side: PassiveSide, is_local: bool, both_managed: bool) -> bool {
    both_managed
        && match passive_side {
            PassiveSide::Local => is_local,
            PassiveSide::Remote => !is_local,
            PassiveSide::None => false,
        }
}

fn with_passive(side: Checked<SidePlan>, passive: bool) -> Checked<SidePlan> {
    side.map(|mut plan| {
        plan.peer.passive = passive;
        plan
    })
}

/// Both sides: the local one always managed, the remote one managed unless it is external.
pub fn plan(cic: &CellInterconnect, inputs: super::dereference::Inputs) -> [Side<SidePlan>; 2] {
    let password = inputs.password.as_ref().map(|s| Password::new(s.value.clone()));
    let (local, remote) = (&inputs.local, &inputs.remote);
    let l: WithConflicts = (local, &inputs.local_conflicts);
    let r: WithConflicts = (remote, &inputs.remote_conflicts);
    let both_managed = inputs.remote_target.is_some();
    let passive_side = cic.spec.bgp.passive_side;
    let local_side = Side::Managed(
        SideId::of(local, remote),
        with_passive(
            plan_side(cic, l, r, inputs.local_target, password.as_ref()),
            listens(passive_side, true, both_managed),
        ),
    );
    let remote_side = match inputs.remote_target {
        Some(target) => Side::Managed(
            SideId::of(remote, local),
            with_passive(
                plan_side(cic, r, l, target, password.as_ref()),
                listens(passive_side, false, both_managed),
            ),
        ),
        None => Side::External(SideId::of(remote, local)),
    };
    [local_side, remote_side]
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
