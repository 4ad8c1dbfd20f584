//! Step 6 (Kubernetes writes): the Events of what the steps did, then the status when it
//! changed, a count-only change at most every [`COUNT_ONLY_INTERVAL`] per endpoint.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::events::EventType;
use kube::{Resource as _, ResourceExt};
use tokio::time::Instant;

use super::super::context::EVENT_NOTE_LIMIT;
use super::super::{Context, error::Result, status_write};
use super::report::{self, Facts, Write};
use crate::api::{InfraEndpoint, Reason};

/// A status whose only change is the number of interconnects is written at most this often per
/// endpoint ([`Write::CountOnly`]).
pub const COUNT_ONLY_INTERVAL: Duration = Duration::from_secs(5);

/// When each endpoint's status was last written (by uid), to space out count-only writes.
#[derive(Default)]
pub struct StatusWrites(Mutex<HashMap<String, Instant>>);

impl StatusWrites {
    /// How long a count-only write of `uid` must still wait (`None`: it may go now).
    fn wait(&self, uid: &str) -> Option<Duration> {
        let last = *self.0.lock().unwrap().get(uid)?;
        COUNT_ONLY_INTERVAL
            .checked_sub(last.elapsed())
            .filter(|d| !d.is_zero())
    }

    fn wrote(&self, uid: &str) {
        self.0.lock().unwrap().insert(uid.into(), Instant::now());
    }

    pub(super) fn forget(&self, uid: &str) {
        self.0.lock().unwrap().remove(uid);
    }
}

/// Sends the Events of `facts` and writes the status they give. `Some(wait)`: a count-only
/// change was held back; it may be written after `wait`.
pub async fn publish(ctx: &Context, ep: &InfraEndpoint, facts: &Facts) -> Result<Option<Duration>> {
    let changed = facts
        .networks
        .as_ref()
        .and_then(|n| Some((n.changed.clone()?, n.drift)));
    for (type_, reason, action, note) in step_events(facts.speaker_started.clone(), changed) {
        ctx.publish(ep, type_, reason, action, note).await;
    }
    if let Some(note) = report::insecure_news(ep.status.as_ref(), facts) {
        ctx.publish(
            ep,
            EventType::Warning,
            Reason::InsecureTransport,
            "CheckTransport",
            note,
        )
        .await;
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let new = report::new_status(ep, facts, ctx.neutron.known_status(ep), &now);
    // A deleting endpoint has no reachability alert (its SDN may be going away with it).
    let reachable = new
        .sdn_reachable
        .filter(|_| ep.meta().deletion_timestamp.is_none());
    ctx.metrics.objects.set_endpoint(
        &crate::metrics::objects::object_label(ep),
        &ep.spec.cell,
        reachable,
    );
    let uid = ep.uid().unwrap_or_default();
    let cached_rv = ep.resource_version();
    let unchanged = |new| {
        ctx.status_memo
            .unchanged(&uid, cached_rv.as_deref(), ep.status.as_ref(), new)
    };
    match report::write_kind(ep.status.as_ref(), &new) {
        Write::Unchanged if unchanged(&new) => return Ok(None),
        Write::Unchanged => {}
        Write::CountOnly => {
            if let Some(wait) = ctx.endpoint_writes.wait(&uid) {
                return Ok(Some(wait));
            }
        }
        Write::Now => {}
    }
    let api: Api<InfraEndpoint> = Api::namespaced(ctx.client.clone(), &ep.namespace().unwrap_or_default());
    let written = status_write::replace_status(&api, &ep.name_any(), &new).await?;
    ctx.status_memo
        .wrote(&uid, written.resource_version().as_deref(), &new);
    ctx.endpoint_writes.wrote(&uid);
    ctx.metrics.status_write("InfraEndpoint");
    if ep.status.as_ref().and_then(|s| s.neutron.as_ref()) != new.neutron.as_ref() {
        ctx.neutron.remember_write(ep, new.neutron.clone());
    }
    Ok(None)
}

/// The Events of the speaker and networks steps (pure): a new speaker's first announcement is
/// one Event saying both (one write, not two); a drift repair stays a warning of its own.
fn step_events(
    started: Option<String>,
    networks: Option<(String, bool)>,
) -> Vec<(EventType, Reason, &'static str, String)> {
    let started = started.map(|s| (EventType::Normal, Reason::SpeakerStarted, "StartSpeaker", s));
    match (started, networks) {
        (Some(start), Some((note, false))) if start.3.len() + 2 + note.len() <= EVENT_NOTE_LIMIT => vec![(
            EventType::Normal,
            Reason::RoutesUpdated,
            "AnnounceNetworks",
            format!("{}; {note}", start.3),
        )],
        (start, networks) => {
            let networks = networks.map(|(note, drift)| match drift {
                true => (
                    EventType::Warning,
                    Reason::DriftRepaired,
                    "AnnounceNetworks",
                    note,
                ),
                false => (EventType::Normal, Reason::RoutesUpdated, "AnnounceNetworks", note),
            });
            start.into_iter().chain(networks).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_speakers_first_announcement_is_one_event_a_drift_repair_its_own() {
        let reasons = |events: Vec<(EventType, Reason, &str, String)>| {
            events.into_iter().map(|e| (e.1, e.3)).collect::<Vec<_>>()
        };
        let both = step_events(Some("started".into()), Some(("announced".into(), false)));
        assert_eq!(
            reasons(both),
            [(Reason::RoutesUpdated, "started; announced".into())]
        );
        let drift = step_events(Some("started".into()), Some(("restored".into(), true)));
        assert_eq!(
            reasons(drift),
            [
                (Reason::SpeakerStarted, "started".into()),
                (Reason::DriftRepaired, "restored".into())
            ]
        );
        assert_eq!(
            reasons(step_events(Some("started".into()), None)),
            [(Reason::SpeakerStarted, "started".into())]
        );
        let long = "n".repeat(1020);
        let apart = step_events(Some("started".into()), Some((long.clone(), false)));
        assert_eq!(
            reasons(apart),
            [
                (Reason::SpeakerStarted, "started".into()),
                (Reason::RoutesUpdated, long)
            ],
            "together past the API server's 1 KiB"
        );
    }

    #[test]
    fn a_count_only_write_waits_only_after_a_recent_write() {
        let writes = StatusWrites::default();
        assert_eq!(writes.wait("uid"), None, "never written: may go now");
        writes.wrote("uid");
        let wait = writes.wait("uid").expect("just written: must wait");
        assert!(wait <= COUNT_ONLY_INTERVAL);
        writes.forget("uid");
        assert_eq!(writes.wait("uid"), None);
    }
}
