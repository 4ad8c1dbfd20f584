//! One entry per speaker (SDN API), shared by every object that uses it: the backend client
//! (one pooled connection) and one watcher task that turns changes on the speaker into requeues.
//!
//! The watcher follows the backend's change stream where it has one and polls `list_peers` every
//! resync interval; when what it sees changes (a peer vanished, a session moved, the API went away
//! or came back), it sends the speaker's key, and the controllers requeue the objects that use it.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tracing::info;

mod guarded;
pub mod health;
mod watcher;

use crate::metrics::Metrics;
use crate::sdn::{
    BackendKind, Connector, ObservedPeer, SdnBackend, SdnError, SdnTarget, SessionState, SpeakerConfig,
};

/// Identifies one speaker: its SDN type and API URL.
pub type SpeakerKey = String;

/// What changed on a speaker: one peer (only the objects with that neighbour are requeued), or
/// everything (`neighbor: None`: unreachable, back, restarted, too many changes to name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeakerChange {
    pub key: SpeakerKey,
    pub neighbor: Option<IpAddr>,
}

/// Above this many changed peers in one poll, requeue the whole speaker instead.
const MAX_NAMED_CHANGES: usize = 64;

/// Most neighbours a watcher remembers the session of between polls (a change stream naming more
/// is hostile or broken; the poll, itself capped, covers the rest).
const MAX_TRACKED_NEIGHBORS: usize = 10_000;

/// Most change-stream events one watcher takes in per second; beyond it the watcher stops
/// reading for the rest of the second, which holds the stream back on the speaker (HTTP/2 flow
/// control) instead of spending the controller's CPU and memory on one speaker's flood.
const MAX_EVENTS_PER_SECOND: u32 = 5_000;

/// Where a speaker's changes go: one bounded channel per controller.
pub type ChangeSender = Sender<SpeakerChange>;

/// What of a peer concerns its objects between two polls: its owner, admin state, whether the
/// session is up, and its last error. The steps of a session coming up (Idle, Connect, Active,
/// OpenSent, OpenConfirm) are left out, as in [`worth_a_reconcile`]: each poll during a bulk
/// apply or an outage would requeue most objects for them. Status shows them at the object's
/// next check.
fn significant(p: &ObservedPeer) -> (&Option<String>, bool, bool, &Option<String>) {
    (
        &p.owner,
        p.admin_down,
        p.session == SessionState::Established,
        &p.last_error,
    )
}

/// The neighbours that changed in a way that concerns their objects between two snapshots:
/// removed (drift), appeared already Established, or changed in [`significant`]. A peer that
/// merely appeared is the one a reconcile just created.
fn changed_neighbors(before: &[ObservedPeer], after: &[ObservedPeer]) -> Vec<IpAddr> {
    let index = |peers: &[ObservedPeer]| -> HashMap<IpAddr, ObservedPeer> {
        peers.iter().map(|p| (p.neighbor, p.clone())).collect()
    };
    let (b, a) = (index(before), index(after));
    let mut out: Vec<IpAddr> = b
        .keys()
        .chain(a.keys())
        .filter(|n| match (b.get(n), a.get(n)) {
            (Some(old), Some(new)) => significant(old) != significant(new),
            (Some(_), None) => true,
            (None, Some(new)) => new.session == SessionState::Established,
            (None, None) => false,
        })
        .copied()
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn speaker_key(kind: BackendKind, url: &str) -> SpeakerKey {
    format!("{kind:?}|{url}")
}

struct Entry {
    target: SdnTarget,
    /// The client behind its [`health::Health`] gates (what reconciles call).
    backend: Arc<dyn SdnBackend>,
    watcher: tokio::task::AbortHandle,
}

/// Speakers known to run with a global config, so reconciles need not ask again (one GetBgp per
/// side per reconcile was a third of all SDN calls during a bulk apply). Forgotten whenever the
/// speaker may have restarted: its change stream ended, it became unreachable, or a call failed.
type Started = Arc<Mutex<HashMap<SpeakerKey, SpeakerConfig>>>;

/// Speakers whose route objects cellnet itself changed since their last poll: the digest the
/// poll reads next is cellnet's own doing, not drift, and requeueing every object of the speaker
/// for it (every 10 s during a bulk apply) would be a storm. A hand change in the same interval
/// is then seen at the next poll after the next change, or at the hourly resync.
type RoutesWritten = Arc<Mutex<std::collections::HashSet<SpeakerKey>>>;

/// The registry of speakers in use.
pub struct Speakers {
    entries: Mutex<HashMap<SpeakerKey, Entry>>,
    started: Started,
    routes_written: RoutesWritten,
    requeue: Vec<ChangeSender>,
    resync: Duration,
    sdn_timeout: Duration,
    /// The first wait after refused credentials (`--auth-failure-backoff`).
    auth_backoff: Duration,
    metrics: Arc<Metrics>,
    connector: Arc<dyn Connector>,
}

impl Speakers {
    /// `requeue` receives a speaker key whenever something changed on that speaker.
    pub fn new(
        requeue: Vec<ChangeSender>,
        resync: Duration,
        (sdn_timeout, auth_backoff): (Duration, Duration),
        metrics: Arc<Metrics>,
        connector: Arc<dyn Connector>,
    ) -> Self {
        Self {
            connector,
            auth_backoff,
            entries: Mutex::default(),
            started: Started::default(),
            routes_written: RoutesWritten::default(),
            requeue,
            resync,
            sdn_timeout,
            metrics,
        }
    }

    /// The backend for `target`, connecting (lazily) and starting its watcher on first use.
    /// A changed target (new CA, credentials...) replaces the old client.
    pub fn backend(self: &Arc<Self>, target: &SdnTarget) -> Result<Arc<dyn SdnBackend>, SdnError> {
        let key = speaker_key(target.kind, &target.url);
        let mut entries = self.entries.lock().expect("speakers lock");
        if let Some(entry) = entries.get(&key) {
            if entry.target == *target {
                return Ok(entry.backend.clone());
            }
            entry.watcher.abort();
        }
        let inner = self.connector.connect(target, self.sdn_timeout)?;
        // New credentials or CA: a new client with fresh gates, so a fixed Secret is tried at once.
        let health = Arc::new(health::Health::new(self.auth_backoff));
        let backend: Arc<dyn SdnBackend> = Arc::new(guarded::Guarded {
            inner: inner.clone(),
            health: health.clone(),
        });
        self.forget_started(&key);
        let watcher = tokio::spawn(watcher::watch_speaker(
            (self.started.clone(), self.routes_written.clone()),
            key.clone(),
            target.clone(),
            (inner, health),
            self.requeue.clone(),
            self.resync,
            self.metrics.clone(),
        ))
        .abort_handle();
        entries.insert(
            key,
            Entry {
                target: target.clone(),
                backend: backend.clone(),
                watcher,
            },
        );
        Ok(backend)
    }

    /// Whether the speaker is known to run with exactly `config`.
    pub fn known_started(&self, key: &SpeakerKey, config: &SpeakerConfig) -> bool {
        self.started.lock().expect("started lock").get(key) == Some(config)
    }

    /// Records that the speaker runs with `config` (after `ensure_speaker` said so).
    pub fn mark_started(&self, key: &SpeakerKey, config: &SpeakerConfig) {
        self.started
            .lock()
            .expect("started lock")
            .insert(key.clone(), config.clone());
    }

    /// The next reconcile asks the speaker again.
    pub fn forget_started(&self, key: &SpeakerKey) {
        self.started.lock().expect("started lock").remove(key);
    }

    /// cellnet changed route objects on the speaker: its next poll takes the new digest as is.
    pub fn wrote_routes(&self, key: &SpeakerKey) {
        self.routes_written
            .lock()
            .expect("routes lock")
            .insert(key.clone());
    }

    /// Stops the clients and watchers of speakers no longer referenced by any endpoint.
    pub fn retain(&self, in_use: impl Fn(&SpeakerKey) -> bool) {
        self.entries.lock().expect("speakers lock").retain(|key, entry| {
            let keep = in_use(key);
            if !keep {
                info!(speaker = %key, "speaker no longer used; closing its client and watcher");
                entry.watcher.abort();
                self.started.lock().expect("started lock").remove(key);
            }
            keep
        });
    }

    /// Stops every watcher (shutdown).
    pub fn shutdown(&self) {
        for entry in self.entries.lock().expect("speakers lock").values() {
            entry.watcher.abort();
        }
    }
}

#[cfg(test)]
mod tests;
