//! Which objects a change concerns: pure functions from a changed object (or a window of speaker
//! changes) and the cached objects to the references to requeue. [`super::wiring`] hands them the
//! caches; the tests hand them a few objects.
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::speakers::{SpeakerChange, SpeakerKey};
use super::{endpoint, networks, target};
use crate::api::{CellInterconnect, ConditionType, InfraEndpoint, Reason};

/// The interconnects that refer to the endpoint `namespace/name` (on either side).
pub fn interconnects_referring_to(
    cics: &[Arc<CellInterconnect>],
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<CellInterconnect>> {
    cics.iter()
        .filter(|c| endpoint::refers_to(c, namespace, name))
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The other endpoints whose networks a change of `changed` may concern: in its namespace, of
/// another cell, declaring an overlapping network now, or reporting a conflict (which may be the
/// one this change resolves).
pub fn network_neighbours(eps: &[Arc<InfraEndpoint>], changed: &InfraEndpoint) -> Vec<Arc<InfraEndpoint>> {
    let mine = networks::declared(changed);
    let overlaps = |ep: &InfraEndpoint| {
        ep.spec.cell != changed.spec.cell
            && networks::declared(ep).iter().any(|t| {
                mine.iter()
                    .any(|m| m.net.contains(&t.net) || t.net.contains(&m.net))
            })
    };
    let reports_conflict = |ep: &InfraEndpoint| {
        ep.status.as_ref().is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == ConditionType::NetworksAnnounced.as_str()
                    && c.reason == Reason::NetworkConflict.as_str()
            })
        })
    };
    eps.iter()
        .filter(|ep| ep.namespace() == changed.namespace() && ep.name_any() != changed.name_any())
        .filter(|ep| overlaps(ep) || reports_conflict(ep))
        .cloned()
        .collect()
}

/// The interconnects an endpoint change concerns: those that refer to it, and those of the
/// endpoints whose network conflicts it may start or end.
pub fn interconnects_of_endpoint_change(
    cics: &[Arc<CellInterconnect>],
    eps: &[Arc<InfraEndpoint>],
    changed: &InfraEndpoint,
) -> Vec<ObjectRef<CellInterconnect>> {
    let ns = changed.namespace().unwrap_or_default();
    let mut refs = interconnects_referring_to(cics, &ns, &changed.name_any());
    for other in network_neighbours(eps, changed) {
        refs.extend(interconnects_referring_to(cics, &ns, &other.name_any()));
    }
    let mut seen = HashSet::new();
    refs.retain(|r| seen.insert(r.clone()));
    refs
}

/// The interconnects in `namespace` that use the Secret `name`: as their BGP password, or as the
/// SDN credentials or CA of one of their endpoints (`endpoints` finds an endpoint: the cache, or
/// a few objects in tests).
pub fn interconnects_using_secret(
    cics: &[Arc<CellInterconnect>],
    endpoints: impl Fn(&ObjectRef<InfraEndpoint>) -> Option<Arc<InfraEndpoint>>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<CellInterconnect>> {
    cics.iter()
        .filter(|c| c.namespace().as_deref() == Some(namespace))
        .filter(|c| {
            c.spec
                .bgp
                .password_secret_ref
                .as_ref()
                .is_some_and(|r| r.name == name)
                || [&c.spec.local_endpoint.name, &c.spec.remote_endpoint.name]
                    .iter()
                    .any(|ep| {
                        endpoints(&ObjectRef::new(ep).within(namespace))
                            .is_some_and(|ep| uses_secret(&ep, name))
                    })
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The endpoints in `namespace` that use the Secret `name` (SDN credentials, CA, Neutron's
/// clouds.yaml or BGP password).
pub fn endpoints_using_secret(
    eps: &[Arc<InfraEndpoint>],
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<InfraEndpoint>> {
    eps.iter()
        .filter(|ep| ep.namespace().as_deref() == Some(namespace))
        .filter(|ep| uses_secret(ep, name) || neutron_uses_secret(ep, name))
        .map(|ep| ObjectRef::from_obj(ep.as_ref()))
        .collect()
}

/// Whether the endpoint's SDN settings use the Secret `name` (credentials or CA).
pub fn uses_secret(ep: &InfraEndpoint, name: &str) -> bool {
    ep.spec.sdn.as_ref().is_some_and(|sdn| {
        sdn.credentials_secret_ref
            .as_ref()
            .is_some_and(|r| r.name == name)
            || sdn
                .tls
                .as_ref()
                .and_then(|t| t.ca_secret_ref.as_ref())
                .is_some_and(|r| r.name == name)
    })
}

/// Whether the endpoint's Neutron settings use the Secret `name` (clouds.yaml or BGP password).
pub fn neutron_uses_secret(ep: &InfraEndpoint, name: &str) -> bool {
    ep.spec.neutron.as_ref().is_some_and(|n| {
        n.cloud_secret_ref.name == name
            || n.bgp
                .as_ref()
                .and_then(|b| b.password_secret_ref.as_ref())
                .is_some_and(|r| r.name == name)
    })
}

/// The two endpoints of an interconnect (in its namespace).
pub fn endpoints_of(cic: &CellInterconnect) -> Vec<ObjectRef<InfraEndpoint>> {
    let ns = cic.namespace().unwrap_or_default();
    [&cic.spec.local_endpoint.name, &cic.spec.remote_endpoint.name]
        .into_iter()
        .map(|n| ObjectRef::<InfraEndpoint>::new(n).within(&ns))
        .collect()
}

/// The speakers that changed as a whole (not one of their peers) in `changes`.
pub fn whole_speakers(changes: &[SpeakerChange]) -> HashSet<&SpeakerKey> {
    changes
        .iter()
        .filter(|c| c.neighbor.is_none())
        .map(|c| &c.key)
        .collect()
}

/// The CellInterconnects that use a changed speaker (on either side) and, for a change of one
/// peer, have that neighbour: the other endpoint's address. One pass over the interconnects for
/// a whole window of changes: a pass per change (endpoint lookups, speaker keys and addresses
/// rebuilt each time) was the controller's largest CPU cost while 2,000 sessions came up.
pub fn interconnects_on(
    endpoints: impl Fn(&ObjectRef<InfraEndpoint>) -> Option<Arc<InfraEndpoint>>,
    cics: &[Arc<CellInterconnect>],
    changes: &[SpeakerChange],
) -> Vec<ObjectRef<CellInterconnect>> {
    let whole = whole_speakers(changes);
    let peers: HashSet<(&SpeakerKey, IpAddr)> = changes
        .iter()
        .filter_map(|c| Some((&c.key, c.neighbor?)))
        .collect();
    cics.iter()
        .filter(|cic| {
            let ns = cic.namespace().unwrap_or_default();
            let ep = |name: &String| endpoints(&ObjectRef::new(name).within(&ns));
            let (local, remote) = (
                ep(&cic.spec.local_endpoint.name),
                ep(&cic.spec.remote_endpoint.name),
            );
            [(&local, &remote), (&remote, &local)]
                .iter()
                .any(|(this, other)| {
                    let Some(key) = this.as_ref().and_then(|e| target::endpoint_speaker_key(e)) else {
                        return false;
                    };
                    whole.contains(&key)
                        || other
                            .as_ref()
                            .and_then(|o| o.spec.address.parse().ok())
                            .is_some_and(|n| peers.contains(&(&key, n)))
                })
        })
        .map(|cic| ObjectRef::from_obj(cic.as_ref()))
        .collect()
}

/// The endpoints on a speaker that changed as a whole: endpoints care about the speaker, not
/// about one of its peers.
pub fn endpoints_on(eps: &[Arc<InfraEndpoint>], changes: &[SpeakerChange]) -> Vec<ObjectRef<InfraEndpoint>> {
    let whole = whole_speakers(changes);
    eps.iter()
        .filter(|ep| target::endpoint_speaker_key(ep).is_some_and(|k| whole.contains(&k)))
        .map(|ep| ObjectRef::from_obj(ep.as_ref()))
        .collect()
}

/// The objects a window of `changes` concerns, each once.
pub fn coalesce<K>(
    changes: &[SpeakerChange],
    objects_on: &impl Fn(&[SpeakerChange]) -> Vec<ObjectRef<K>>,
) -> Vec<ObjectRef<K>>
where
    K: kube::Resource,
    K::DynamicType: Clone + Eq + std::hash::Hash,
{
    let mut seen_changes = HashSet::new();
    let unique: Vec<SpeakerChange> = changes
        .iter()
        .filter(|c| seen_changes.insert((c.key.clone(), c.neighbor)))
        .cloned()
        .collect();
    let mut seen = HashSet::new();
    objects_on(&unique)
        .into_iter()
        .filter(|o| seen.insert(o.clone()))
        .collect()
}

#[cfg(test)]
mod tests;
