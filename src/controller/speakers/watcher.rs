//! One task per speaker: follows its change stream where it has one, polls its peers every resync
//! interval, and sends a [`SpeakerChange`] when something concerns the objects on it.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::BoxStream;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

use super::health::Health;
use super::{MAX_NAMED_CHANGES, RoutesWritten, SpeakerChange, SpeakerKey, Started, changed_neighbors};
use crate::controller::backoff::Backoffs;
use crate::metrics::Metrics;
use crate::sdn::{ObservedPeer, SdnBackend, SdnError, SdnEvent, SdnTarget, SessionState};

/// What the poll compares between rounds (session states and ownership, never config details).
fn snapshot(mut peers: Vec<ObservedPeer>) -> Vec<ObservedPeer> {
    peers.sort_by_key(|p| p.neighbor);
    peers
}

/// One read per speaker per interval, whatever the number of objects on it; counted and timed.
/// Held back while refused credentials back off; its answer feeds the speaker's [`Health`].
async fn timed_list(
    metrics: &Metrics,
    target: &SdnTarget,
    (backend, health): (&dyn SdnBackend, &Health),
) -> Result<Vec<ObservedPeer>, SdnError> {
    health.admit_poll()?;
    let _timer = metrics.sdn_timer(target, "watch_list_peers");
    let result = backend.list_peers().await;
    health.observe(result.as_ref().map(|_| ()));
    result
}

/// Whether a peer event is worth a reconcile: a session that reached or left Established. The
/// steps in between (Idle, Connect, Active, OpenSent, OpenConfirm) would each requeue the object
/// while thousands of sessions come up, and status shows them anyway at the next check. Peers
/// not seen Established yet are left to that check and to the poll.
pub(super) fn worth_a_reconcile(
    established: &mut HashMap<IpAddr, bool>,
    neighbor: IpAddr,
    session: SessionState,
) -> bool {
    let now = session == SessionState::Established;
    let before = established.insert(neighbor, now);
    before != Some(now) && (now || before == Some(true))
}

/// What one speaker's watcher knows between rounds.
struct Watcher {
    key: SpeakerKey,
    started: Started,
    routes_written: RoutesWritten,
    requeue: Vec<UnboundedSender<SpeakerChange>>,
    /// Whether each peer was last seen Established (for [`worth_a_reconcile`]).
    established: HashMap<IpAddr, bool>,
    /// The last poll's peers (`None` after the speaker was unreachable).
    last: Option<Vec<ObservedPeer>>,
    /// The last poll's digest of cellnet's route objects.
    last_routes: Option<u64>,
    reachable: bool,
    backoffs: Backoffs,
    health: Arc<Health>,
}

impl Watcher {
    fn notify_peer(&self, why: &str, neighbor: Option<IpAddr>) {
        debug!(speaker = %self.key, why, ?neighbor, "speaker changed; requeueing its objects");
        for tx in &self.requeue {
            let _ = tx.send(SpeakerChange {
                key: self.key.clone(),
                neighbor,
            });
        }
    }

    fn notify(&self, why: &str) {
        self.notify_peer(why, None);
    }

    /// The speaker may have restarted bare: reconciles ask it again.
    fn forget_started(&self) {
        self.started.lock().expect("started lock").remove(&self.key);
    }

    fn unreachable(&mut self, err: &SdnError) {
        self.forget_started();
        if self.reachable {
            warn!(speaker = %self.key, error = %err, "speaker unreachable");
            self.reachable = false;
            self.last = None;
            self.notify("unreachable");
        }
    }

    /// A change-stream item; `false` when the stream ended and must be re-opened.
    fn on_event(&mut self, event: Option<SdnEvent>) -> bool {
        match event {
            Some(SdnEvent::Peer { neighbor, session }) => {
                if worth_a_reconcile(&mut self.established, neighbor, session) {
                    self.notify_peer("event", Some(neighbor));
                }
                true
            }
            Some(SdnEvent::Routes { neighbor }) => {
                // Routes from one neighbour concern its objects; the speaker's own paths, all.
                self.notify_peer("routes changed", neighbor);
                true
            }
            Some(SdnEvent::Resync) => {
                self.notify("event");
                true
            }
            None => {
                // The stream ended (connection broken or speaker restarted): requeue, then
                // re-open it, which also tells whether the speaker is still there.
                self.forget_started();
                self.established.clear();
                self.notify("change stream ended");
                false
            }
        }
    }

    /// A successful poll: what changed since the last one.
    fn on_poll(&mut self, peers: Vec<ObservedPeer>, has_stream: bool) {
        self.backoffs.reset(&self.key);
        // Reconciles held back by the circuit breaker try again now.
        let breaker_was_open = self.health.breaker.close();
        let peers = snapshot(peers);
        self.established = peers
            .iter()
            .map(|p| (p.neighbor, p.session == SessionState::Established))
            .collect();
        if !self.reachable {
            info!(speaker = %self.key, "speaker reachable again");
            self.reachable = true;
            self.notify("reachable again");
        } else if breaker_was_open {
            self.notify("reachable again (circuit breaker closed)");
        } else if let Some(before) = self.last.as_ref().filter(|l| **l != peers) {
            let changed = changed_neighbors(before, &peers);
            if changed.len() > MAX_NAMED_CHANGES {
                self.notify("peers changed");
            } else {
                for neighbor in changed {
                    self.notify_peer("peer changed", Some(neighbor));
                }
            }
        } else if !has_stream {
            // Without a change stream, a peer created and removed between two polls looks
            // unchanged: let the objects check themselves.
            self.notify("poll");
        }
        self.last = Some(peers);
    }
}

/// Compares the digest of cellnet's route objects with the last poll's: a change that no event
/// reports (a policy statement or set member removed by hand) requeues the speaker's objects.
async fn poll_routes(
    w: &mut Watcher,
    target: &SdnTarget,
    backend: &dyn SdnBackend,
    metrics: &Metrics,
) -> Result<(), SdnError> {
    let digest = {
        let _timer = metrics.sdn_timer(target, "watch_routes_digest");
        let result = backend.routes_digest().await;
        w.health.observe(result.as_ref().map(|_| ()));
        result?
    };
    let ours = w.routes_written.lock().expect("routes lock").remove(&w.key);
    if !ours && digest.is_some() && w.last_routes.is_some() && digest != w.last_routes {
        w.notify("routes changed");
    }
    w.last_routes = digest;
    Ok(())
}

/// The next item of the change stream, or never when the backend has none.
async fn next_event(events: &mut Option<BoxStream<'static, SdnEvent>>) -> Option<SdnEvent> {
    match events.as_mut() {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

pub(super) async fn watch_speaker(
    (started, routes_written): (Started, RoutesWritten),
    key: SpeakerKey,
    target: SdnTarget,
    (backend, health): (Arc<dyn SdnBackend>, Arc<Health>),
    requeue: Vec<UnboundedSender<SpeakerChange>>,
    resync: Duration,
    metrics: Arc<Metrics>,
) {
    let mut w = Watcher {
        key,
        started,
        routes_written,
        requeue,
        established: HashMap::new(),
        last: None,
        last_routes: None,
        reachable: true,
        // Capped at 15 s: one cheap call per unreachable speaker, and a link back after a long
        // outage is noticed within seconds rather than a minute.
        backoffs: Backoffs::new(Duration::from_secs(1), Duration::from_secs(15)),
        health,
    };
    loop {
        match backend.watch().await {
            Ok(events) => follow(&mut w, events, &target, backend.as_ref(), resync, &metrics).await,
            Err(err) => {
                w.health.observe(Err(&err));
                w.unreachable(&err);
            }
        }
        // After refused credentials, the poll waits as long as the reconciles do.
        let auth_wait = w.health.auth.wait(Instant::now());
        tokio::time::sleep(w.backoffs.next_delay(&w.key).max(auth_wait)).await;
    }
}

/// Follows one subscription: events as they come, a poll every `resync`, until the stream ends
/// or a poll fails.
async fn follow(
    w: &mut Watcher,
    mut events: Option<BoxStream<'static, SdnEvent>>,
    target: &SdnTarget,
    backend: &dyn SdnBackend,
    resync: Duration,
    metrics: &Metrics,
) {
    let mut poll = tokio::time::interval(resync);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = next_event(&mut events) => if !w.on_event(event) {
                return;
            },
            _ = poll.tick() => match timed_list(metrics, target, (backend, &w.health)).await {
                Ok(peers) => {
                    w.on_poll(peers, events.is_some());
                    if let Err(err) = poll_routes(w, target, backend, metrics).await {
                        w.unreachable(&err);
                        return;
                    }
                }
                Err(err) => {
                    w.unreachable(&err);
                    return;
                }
            },
        }
    }
}
