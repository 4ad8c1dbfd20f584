//! One task per speaker: follows its change stream where it has one, polls its peers every resync
//! interval, and sends a [`SpeakerChange`] when something concerns the objects on it.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::health::Health;
use super::{
    ChangeSender, MAX_EVENTS_PER_SECOND, MAX_NAMED_CHANGES, MAX_TRACKED_NEIGHBORS, RoutesWritten,
    SpeakerChange, SpeakerKey, Started, changed_neighbors,
};
use crate::controller::backoff::Backoffs;
use crate::metrics::Metrics;
use crate::sdn::{ObservedPeer, SdnBackend, SdnError, SdnEvent, SdnTarget, SessionState};

/// What the poll compares between rounds (session states and ownership, never config details).
fn snapshot(mut peers: Vec<ObservedPeer>) -> Vec<ObservedPeer> {
    peers.sort_by_key(|p| p.neighbor);
    // Message counters move with every retry of a session that is down: not a change worth a
    // requeue (the reconcile's own re-check reads them).
    for p in &mut peers {
        p.diagnostics = Default::default();
    }
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
/// At most [`MAX_TRACKED_NEIGHBORS`] are remembered: events of others are left to the poll.
pub(super) fn worth_a_reconcile(
    established: &mut HashMap<IpAddr, bool>,
    neighbor: IpAddr,
    session: SessionState,
) -> bool {
    if established.len() >= MAX_TRACKED_NEIGHBORS && !established.contains_key(&neighbor) {
        return false;
    }
    let now = session == SessionState::Established;
    let before = established.insert(neighbor, now);
    before != Some(now) && (now || before == Some(true))
}

/// What one speaker's watcher knows between rounds.
struct Watcher {
    key: SpeakerKey,
    started: Started,
    routes_written: RoutesWritten,
    requeue: Vec<ChangeSender>,
    /// Per channel: a change did not fit, so the next one sent is the whole speaker's.
    overflowed: Vec<bool>,
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
    fn new(
        key: SpeakerKey,
        (started, routes_written): (Started, RoutesWritten),
        requeue: Vec<ChangeSender>,
        health: Arc<Health>,
    ) -> Self {
        Self {
            key,
            started,
            routes_written,
            overflowed: vec![false; requeue.len()],
            requeue,
            established: HashMap::new(),
            last: None,
            last_routes: None,
            reachable: true,
            // Capped at 15 s: one cheap call per unreachable speaker, and a link back after a
            // long outage is noticed within seconds rather than a minute.
            backoffs: Backoffs::new(Duration::from_secs(1), Duration::from_secs(15)),
            health,
        }
    }

    /// Sends the change to each controller without waiting: a full channel (the controller is
    /// behind, or a speaker floods changes) turns this and later changes into one change of the
    /// whole speaker, sent as soon as there is room.
    fn notify_peer(&mut self, why: &str, neighbor: Option<IpAddr>) {
        debug!(speaker = %self.key, why, ?neighbor, "speaker changed; requeueing its objects");
        for (tx, overflowed) in self.requeue.iter().zip(self.overflowed.iter_mut()) {
            let neighbor = if *overflowed { None } else { neighbor };
            let change = SpeakerChange {
                key: self.key.clone(),
                neighbor,
            };
            match tx.try_send(change) {
                Ok(()) => *overflowed = false,
                Err(TrySendError::Full(_)) => {
                    if !*overflowed {
                        warn!(speaker = %self.key, "too many speaker changes queued; requeueing the speaker's objects as a whole");
                    }
                    *overflowed = true;
                }
                Err(TrySendError::Closed(_)) => {}
            }
        }
    }

    /// Sends the whole-speaker change a full channel held back, if any.
    fn flush_overflow(&mut self) {
        if self.overflowed.iter().any(|o| *o) {
            self.notify("changes held back");
        }
    }

    fn notify(&mut self, why: &str) {
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
    requeue: Vec<ChangeSender>,
    resync: Duration,
    metrics: Arc<Metrics>,
) {
    let mut w = Watcher::new(key, (started, routes_written), requeue, health);
    loop {
        match backend.watch().await {
            Ok(events) => follow(&mut w, events, &target, backend.as_ref(), resync, &metrics).await,
            Err(err) => {
                w.health.observe(Err(&err));
                w.unreachable(&err);
            }
        }
        // After refused credentials, the poll waits as long as the reconciles do.
        let auth_wait = w.health.auth.wait(std::time::Instant::now());
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
    let mut budget = EventBudget::new(MAX_EVENTS_PER_SECOND);
    loop {
        tokio::select! {
            event = next_event(&mut events) => {
                if !w.on_event(event) {
                    return;
                }
                budget.spend().await;
            },
            _ = poll.tick() => match timed_list(metrics, target, (backend, &w.health)).await {
                Ok(peers) => {
                    w.flush_overflow();
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

/// At most `per_second` events a second: past it, [`EventBudget::spend`] waits for the next second.
pub(super) struct EventBudget {
    per_second: u32,
    spent: u32,
    since: Instant,
}

impl EventBudget {
    pub(super) fn new(per_second: u32) -> Self {
        Self {
            per_second,
            spent: 0,
            since: Instant::now(),
        }
    }

    pub(super) async fn spend(&mut self) {
        let second = Duration::from_secs(1);
        if self.since.elapsed() >= second {
            self.since = Instant::now();
            self.spent = 0;
        }
        self.spent += 1;
        if self.spent >= self.per_second {
            tokio::time::sleep_until(self.since + second).await;
            self.since = Instant::now();
            self.spent = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher(requeue: Vec<ChangeSender>) -> Watcher {
        Watcher::new(
            "gobgp|http://198.51.100.1:50051".into(),
            Default::default(),
            requeue,
            Arc::new(Health::new(Duration::from_secs(60))),
        )
    }

    fn neighbor(i: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)))
    }

    #[test]
    fn a_flood_of_changes_stays_in_the_channel_and_becomes_one_whole_speaker_change() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let mut w = watcher(vec![tx]);
        for i in 0..1000 {
            w.notify_peer("event", Some(neighbor(i)));
        }
        let mut got = Vec::new();
        while let Ok(c) = rx.try_recv() {
            got.push(c.neighbor);
        }
        assert_eq!(got, (0..4).map(|i| Some(neighbor(i))).collect::<Vec<_>>());
        // Room again: the held-back changes arrive as one change of the whole speaker.
        w.notify_peer("event", Some(neighbor(2000)));
        assert_eq!(rx.try_recv().unwrap().neighbor, None);
        assert!(rx.try_recv().is_err());
        w.notify_peer("event", Some(neighbor(2001)));
        assert_eq!(rx.try_recv().unwrap().neighbor, Some(neighbor(2001)));
    }

    #[test]
    fn a_stream_naming_ever_new_neighbours_is_remembered_up_to_the_limit() {
        let mut seen = HashMap::new();
        for i in 0..(MAX_TRACKED_NEIGHBORS as u32 + 500) {
            worth_a_reconcile(&mut seen, neighbor(i), SessionState::Established);
        }
        assert_eq!(seen.len(), MAX_TRACKED_NEIGHBORS);
        // Known neighbours are still followed.
        assert!(worth_a_reconcile(&mut seen, neighbor(0), SessionState::Idle));
    }

    #[tokio::test]
    async fn events_beyond_the_budget_wait_for_the_next_second() {
        let began = Instant::now();
        let mut budget = EventBudget::new(20);
        for _ in 0..19 {
            budget.spend().await;
        }
        assert!(began.elapsed() < Duration::from_millis(500));
        for _ in 0..21 {
            budget.spend().await;
        }
        assert!(began.elapsed() >= Duration::from_secs(2), "{:?}", began.elapsed());
    }
}
