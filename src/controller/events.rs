//! Kubernetes Events (`events.k8s.io/v1`), aggregated as client-go's events/v1 recorder does
//! (kubernetes/kubernetes#112365): an Event isomorphic to one sent in the last 6 minutes (same
//! object, type, reason, action, reporter *and note*) becomes a count on that one (a `series`
//! patch), any other Event is created.
//!
//! Why not kube-runtime's `Recorder`: in kube 5 its key leaves the note out (its comment says it
//! is in), so a second note of one reason on one object ("cell cell1: created BGP peer ..." after
//! "cell cell2: created BGP peer ...") was counted on the first and never shown: `kubectl
//! describe` lost half of a link's story (seen in `e2e_gobgp`).
use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};

/// How long an Event may be counted on instead of sent again (client-go's and kube-runtime's).
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);

/// What makes two Events the same, the note included.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    regarding: (Option<String>, Option<String>, Option<String>, Option<String>),
    type_: &'static str,
    reason: String,
    action: String,
    note: Option<String>,
}

impl Key {
    fn of(ev: &Event, regarding: &ObjectReference) -> Self {
        Self {
            regarding: (
                regarding.kind.clone(),
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
            ),
            type_: type_name(ev.type_),
            reason: ev.reason.clone(),
            action: ev.action.clone(),
            note: ev.note.clone(),
        }
    }
}

/// The Event last sent for a key: where it is, how many times it happened, when last.
#[derive(Clone, Debug)]
struct Sent {
    namespace: String,
    name: String,
    count: i32,
    last: Timestamp,
}

/// Sends Events for one reporter; cheap to share (`Arc`), safe to call concurrently.
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    sent: Mutex<HashMap<Key, Sent>>,
}

impl Recorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            sent: Mutex::default(),
        }
    }

    /// Creates the Event, or counts it on the same one sent in the last [`SERIES_TTL`].
    pub async fn publish(&self, ev: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = Key::of(ev, regarding);
        let again = self.again(&key, now);
        let sent = match again {
            Some(mut sent) => {
                sent.count += 1;
                sent.last = now;
                let series = serde_json::json!({"series": EventSeries {
                    count: sent.count,
                    last_observed_time: MicroTime(now),
                }});
                Api::<K8sEvent>::namespaced(self.client.clone(), &sent.namespace)
                    .patch(&sent.name, &PatchParams::default(), &Patch::Merge(&series))
                    .await?;
                sent
            }
            None => {
                let event = self.event(ev, regarding, now);
                let namespace = event.metadata.namespace.clone().unwrap_or_default();
                Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
                    .create(&PostParams::default(), &event)
                    .await?;
                Sent {
                    namespace,
                    name: event.metadata.name.unwrap_or_default(),
                    count: 1,
                    last: now,
                }
            }
        };
        self.sent.lock().unwrap().insert(key, sent);
        Ok(())
    }

    /// The Event to count this one on, if one was sent within the TTL (older ones are forgotten).
    fn again(&self, key: &Key, now: Timestamp) -> Option<Sent> {
        let mut sent = self.sent.lock().unwrap();
        sent.retain(|_, s| s.last + SERIES_TTL > now);
        sent.get(key).cloned()
    }

    fn event(&self, ev: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let object = regarding.name.as_deref().unwrap_or(&self.reporter.controller);
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                namespace: Some(namespace),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(type_name(ev.type_).into()),
            reason: Some(ev.reason.clone()),
            action: Some(ev.action.clone()),
            note: ev.note.clone(),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            ..Default::default()
        }
    }
}

fn type_name(t: EventType) -> &'static str {
    match t {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: "PeerCreated".into(),
            note: Some(note.into()),
            action: "ConfigurePeer".into(),
            secondary: None,
        }
    }

    #[test]
    fn another_note_is_another_event_and_the_same_note_the_same() {
        let link = ObjectReference {
            kind: Some("CellInterconnect".into()),
            namespace: Some("ns".into()),
            name: Some("a-b".into()),
            uid: Some("u1".into()),
            ..Default::default()
        };
        let a = Key::of(&event("cell cell1: created BGP peer"), &link);
        let b = Key::of(&event("cell cell2: created BGP peer"), &link);
        assert_ne!(a, b);
        assert_eq!(a, Key::of(&event("cell cell1: created BGP peer"), &link));
    }
}
