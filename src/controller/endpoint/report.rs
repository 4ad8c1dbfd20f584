//! Step 5 (pure): the endpoint's new status from its old status and what the steps found,
//! whether its write may wait (count-only changes), and when to look at the endpoint again.
//!
//! kstatus rules: `Reconciling` and `Stalled` are present only while true; the caller skips the
//! write when the result equals the current status.
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;

use super::super::neutron_sync::{self, NeutronOutcome};
use super::super::problem::Problem;
use super::networks_step::NetworkFacts;
use crate::api::conditions::{remove_condition, set_condition, set_progress};
use crate::api::infra_endpoint::NeutronStatus;
use crate::api::{ConditionType, InfraEndpoint, InfraEndpointStatus, Reason, SdnKind};

/// How the endpoint stands, as its `Ready` condition says it.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Ready: `SpeakerConfigured` or `External`, and what is in place.
    Ready { reason: Reason, message: String },
    /// Not ready, and why.
    NotReady(Problem),
}

impl Verdict {
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready { .. })
    }

    pub fn reason(&self) -> Reason {
        match self {
            Self::Ready { reason, .. } => *reason,
            Self::NotReady(p) => p.reason,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Ready { message, .. } => message,
            Self::NotReady(p) => &p.message,
        }
    }

    /// Only a change can help (kstatus `Stalled`), rather than a retry with backoff.
    pub fn stalled(&self) -> bool {
        matches!(self, Self::NotReady(p) if p.stalled)
    }

    /// The first problem wins: the networks step's counts only when the speaker's part is ready.
    pub fn with_networks(self, networks: Option<&NetworkFacts>) -> Self {
        match networks.map(|n| &n.announced) {
            Some(Err(p)) if self.is_ready() => Self::NotReady(p.clone()),
            _ => self,
        }
    }

    /// The first problem wins: the Neutron step's counts only when the speaker's part is ready.
    pub fn with_neutron(self, neutron: Option<&NeutronOutcome>) -> Self {
        match neutron.and_then(NeutronOutcome::problem) {
            Some(p) if self.is_ready() => Self::NotReady(p.clone()),
            _ => self,
        }
    }
}

/// Which way the reconcile went; it decides when to look again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A cleanup (Neutron's, or withdrawing the networks) failed: its finalizer stays, retried
    /// with backoff.
    CleanupFailed,
    /// Being deleted while CellInterconnects still refer to it: wait for them to go.
    InUse,
    /// Speaker (and Neutron) configured, or not, as the verdict says.
    Live,
}

/// What the steps found.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub phase: Phase,
    /// CellInterconnects that refer to the endpoint.
    pub users: usize,
    pub verdict: Verdict,
    /// Whether the SDN API answered (`None`: not asked).
    pub sdn_reachable: Option<bool>,
    /// The Neutron reconcile's or cleanup's outcome, when one ran.
    pub neutron: Option<NeutronOutcome>,
    /// The note of a `SpeakerStarted` Event, when the speaker was started.
    pub speaker_started: Option<String>,
    /// The networks step, when the endpoint has networks.
    pub networks: Option<NetworkFacts>,
    /// Why the endpoint's API calls expose credentials (the `InsecureTransport` condition).
    pub insecure: Option<String>,
}

impl Facts {
    /// Facts of a reconcile that stopped before the speaker step.
    pub fn stopped(phase: Phase, users: usize, problem: Problem, neutron: Option<NeutronOutcome>) -> Self {
        Self {
            phase,
            users,
            verdict: Verdict::NotReady(problem),
            sdn_reachable: None,
            neutron,
            speaker_started: None,
            networks: None,
            insecure: None,
        }
    }
}

/// The new status. `known_neutron` is `status.neutron` as this process knows it (our own last
/// write when the cache has not shown it yet: older ids are never written back).
pub fn new_status(
    ep: &InfraEndpoint,
    facts: &Facts,
    known_neutron: Option<NeutronStatus>,
    now: &Time,
) -> InfraEndpointStatus {
    let generation = ep.meta().generation;
    let mut status = ep.status.clone().unwrap_or_default();
    status.neutron = known_neutron;
    status.observed_generation = generation;
    status.sdn = Some(SdnKind::from(ep.spec.sdn.as_ref()));
    status.sdn_reachable = facts.sdn_reachable;
    status.interconnects = facts.users as u32;
    let v = &facts.verdict;
    let (ok, reason, message) = (v.is_ready(), v.reason().as_str(), v.message());
    let conds = &mut status.conditions;
    set_condition(conds, ConditionType::Ready, ok, reason, message, generation, now);
    if ep.spec.is_managed() {
        let type_ = ConditionType::SpeakerConfigured;
        set_condition(conds, type_, ok, reason, message, generation, now);
    } else {
        remove_condition(conds, ConditionType::SpeakerConfigured);
    }
    if let Some(o) = &facts.neutron {
        neutron_sync::fold_status(&mut status, o, generation, now);
    }
    fold_networks(&mut status, facts.networks.as_ref(), generation, now);
    fold_insecure(&mut status, facts, generation, now);
    let (stalled, reconciling) = (v.stalled(), !ok && !v.stalled());
    let conds = &mut status.conditions;
    set_progress(conds, stalled, reconciling, reason, message, generation, now);
    status
}

/// `status.networks` and the `NetworksAnnounced` condition; both go when there are no networks.
fn fold_networks(
    status: &mut InfraEndpointStatus,
    networks: Option<&NetworkFacts>,
    generation: Option<i64>,
    now: &Time,
) {
    let conds = &mut status.conditions;
    let Some(n) = networks else {
        status.networks.clear();
        remove_condition(conds, ConditionType::NetworksAnnounced);
        return;
    };
    status.networks = n.statuses.clone();
    let (ok, reason, message) = match &n.announced {
        Ok(message) => (true, Reason::NetworksAnnounced, message.as_str()),
        Err(p) => (false, p.reason, p.message.as_str()),
    };
    let t = ConditionType::NetworksAnnounced;
    set_condition(conds, t, ok, reason.as_str(), message, generation, now);
}

/// The `InsecureTransport` condition, present only while true. A reconcile that stopped before
/// the speaker step keeps what the last one found.
fn fold_insecure(status: &mut InfraEndpointStatus, facts: &Facts, generation: Option<i64>, now: &Time) {
    if facts.phase != Phase::Live {
        return;
    }
    let conds = &mut status.conditions;
    let t = ConditionType::InsecureTransport;
    match &facts.insecure {
        Some(why) => {
            set_condition(
                conds,
                t,
                true,
                Reason::InsecureTransport.as_str(),
                why,
                generation,
                now,
            );
        }
        None => {
            remove_condition(conds, t);
        }
    }
}

/// The note of an `InsecureTransport` Warning: when the condition appears or its text changes.
pub fn insecure_news(old: Option<&InfraEndpointStatus>, facts: &Facts) -> Option<String> {
    let why = facts.insecure.as_ref()?;
    let shown = old
        .into_iter()
        .flat_map(|s| &s.conditions)
        .find(|c| c.type_ == ConditionType::InsecureTransport.as_str());
    (shown.map(|c| &c.message) != Some(why)).then(|| why.clone())
}

/// Whether and how the new status is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Equal to the current status: no write.
    Unchanged,
    /// Only the number of interconnects changed: at most one such write per endpoint every few
    /// seconds. During a bulk apply that number changes with every interconnect added (15 writes
    /// per endpoint for 1,000 interconnects over 50 endpoints); the in-use finalizer, which is
    /// what guards the endpoint, is still set at once.
    CountOnly,
    /// Anything else: written at once.
    Now,
}

pub fn write_kind(old: Option<&InfraEndpointStatus>, new: &InfraEndpointStatus) -> Write {
    match old {
        Some(old) if old == new => Write::Unchanged,
        Some(old) if count_only_change(old, new) => Write::CountOnly,
        _ => Write::Now,
    }
}

/// Whether `new` differs from `old` only in the number of interconnects.
fn count_only_change(old: &InfraEndpointStatus, new: &InfraEndpointStatus) -> bool {
    old.interconnects != new.interconnects
        && *old
            == InfraEndpointStatus {
                interconnects: old.interconnects,
                ..new.clone()
            }
}

/// Re-check of a deleted endpoint that waits for its interconnects to go.
pub const IN_USE_RECHECK: Duration = Duration::from_secs(10);

/// When to look at the endpoint again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// A count-only status write was held back, or a deletion waits for its interconnects:
    /// look again then.
    After(Duration),
    /// A transient failure: retry with the endpoint's backoff.
    Backoff,
    /// Healthy, or stalled until a change: the periodic check (which also notices a speaker
    /// restarted bare, and Neutron drift).
    Resync(Duration),
}

/// `held`: how long a held-back count-only write must wait; `resync`: the periodic check.
pub fn next(facts: &Facts, held: Option<Duration>, resync: Duration) -> Next {
    if let Some(wait) = held {
        return Next::After(wait);
    }
    match facts.phase {
        Phase::CleanupFailed => Next::Backoff,
        // The interconnects' deletions requeue it; the re-check covers one that was missed.
        Phase::InUse => Next::After(IN_USE_RECHECK),
        Phase::Live if !facts.verdict.is_ready() && !facts.verdict.stalled() => Next::Backoff,
        Phase::Live => Next::Resync(resync),
    }
}

#[cfg(test)]
mod tests;
