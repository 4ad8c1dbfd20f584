//! An in-memory speaker for tests of the reconcile pipeline: [`FakeConnector`] hands the
//! controller a [`FakeSpeaker`] per API URL instead of a client of a real SDN API. It keeps the
//! contract of [`SdnBackend`] as the real backends do: a GoBGP-kind speaker checks the owner
//! marker, an OpenDaylight-kind speaker trusts `PeerConfig::owned_record`; adding an existing
//! peer is refused; a peer's session is what the test sets. The real-process tests stay the
//! proof that the backends keep this contract; this only makes the pipeline fast to test.
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;

mod routes;
mod segments;

pub use segments::FakeSegment;

use super::routes::{Origination, RouteCounts, RouteFilter, RoutesOutcome, SegmentsSeen};
use super::{
    AddressFamily, BackendKind, Connector, Ensured, ObservedPeer, PeerConfig, PeerOutcome, RemoveOutcome,
    ResetOutcome, SdnBackend, SdnError, SdnEvent, SdnTarget, SessionState, SpeakerConfig, SpeakerOutcome,
};

/// One peer as the fake speaker holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct FakePeer {
    pub config: PeerConfig,
    /// The owner marker as stored (`None` for a peer someone else made without one).
    pub owner: Option<String>,
    pub session: SessionState,
}

#[derive(Debug, Default)]
struct State {
    global: Option<SpeakerConfig>,
    peers: BTreeMap<IpAddr, FakePeer>,
    /// Session state given to new peers.
    new_session: Option<SessionState>,
    unreachable: bool,
    writes: usize,
    routes: routes::Routes,
    segments_sent: segments::SentSegments,
}

/// An in-memory speaker; clones share their state.
#[derive(Clone, Debug)]
pub struct FakeSpeaker {
    kind: BackendKind,
    url: String,
    state: Arc<Mutex<State>>,
}

impl FakeSpeaker {
    fn new(kind: BackendKind, url: &str) -> Self {
        Self {
            kind,
            url: url.to_string(),
            state: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The peers it holds now.
    pub fn peers(&self) -> BTreeMap<IpAddr, FakePeer> {
        self.lock().peers.clone()
    }

    /// The global config it runs with, if started.
    pub fn global(&self) -> Option<SpeakerConfig> {
        self.lock().global.clone()
    }

    /// Writes (start, add, update, delete) it has received.
    pub fn writes(&self) -> usize {
        self.lock().writes
    }

    /// Sets one peer's session state (as the speaker would report it).
    pub fn set_session(&self, neighbor: IpAddr, session: SessionState) {
        if let Some(p) = self.lock().peers.get_mut(&neighbor) {
            p.session = session;
        }
    }

    /// The session state new peers get (default `Idle`).
    pub fn set_new_session(&self, session: SessionState) {
        self.lock().new_session = Some(session);
    }

    /// Every call fails as if the API could not be reached.
    pub fn set_unreachable(&self, down: bool) {
        self.lock().unreachable = down;
    }

    /// A peer made by someone else, behind cellnet's back.
    pub fn insert_foreign(&self, config: PeerConfig, owner: Option<String>) {
        let peer = FakePeer {
            config: config.clone(),
            owner,
            session: SessionState::Established,
        };
        self.lock().peers.insert(config.neighbor, peer);
    }

    /// What `neighbor` sends from now on (default: exactly what the import rule allows).
    pub fn set_sent_by(&self, neighbor: IpAddr, networks: Vec<ipnet::IpNet>) {
        self.lock().routes.sent_by.insert(neighbor, networks);
    }

    /// The EVPN segments `neighbor` sends from now on (default: the VNIs the interconnect's EVPN
    /// filter accepts, with the neighbour's address as VTEP).
    pub fn set_segments_sent_by(&self, neighbor: IpAddr, segments: Vec<FakeSegment>) {
        self.lock().segments_sent.insert(neighbor, segments);
    }

    /// Changes a peer's address families behind cellnet's back.
    pub fn set_families(&self, neighbor: IpAddr, families: Vec<AddressFamily>) {
        if let Some(p) = self.lock().peers.get_mut(&neighbor) {
            p.config.families = families;
        }
    }

    /// Trips (or clears) the prefix limit of `neighbor`.
    pub fn set_prefix_limit_hit(&self, neighbor: IpAddr, hit: bool) {
        let mut state = self.lock();
        match hit {
            true => state.routes.limit_hit.insert(neighbor),
            false => state.routes.limit_hit.remove(&neighbor),
        };
    }

    /// The networks originated under each mark.
    pub fn originations(&self) -> BTreeMap<u32, Origination> {
        self.lock().routes.originations.clone()
    }

    /// The route filters, by key.
    pub fn filters(&self) -> BTreeMap<String, RouteFilter> {
        self.lock().routes.filters.clone()
    }

    /// Removes an origination behind cellnet's back.
    pub fn drop_origination(&self, mark: u32) {
        self.lock().routes.originations.remove(&mark);
    }

    /// Removes a peer behind cellnet's back.
    pub fn remove(&self, neighbor: IpAddr) -> bool {
        self.lock().peers.remove(&neighbor).is_some()
    }

    fn reachable(&self) -> Result<std::sync::MutexGuard<'_, State>, SdnError> {
        let state = self.lock();
        if state.unreachable {
            return Err(SdnError::Unreachable {
                endpoint: self.url.clone(),
                message: "fake speaker set unreachable".into(),
            });
        }
        Ok(state)
    }

    fn observed(p: &FakePeer) -> ObservedPeer {
        ObservedPeer {
            neighbor: p.config.neighbor,
            owner: p.owner.clone(),
            session: p.session,
            admin_down: p.config.admin_down,
            last_error: None,
            diagnostics: Default::default(),
            graceful_restart: None,
        }
    }

    /// Whether cellnet may change this existing peer.
    fn ours(&self, existing: &FakePeer, desired: &PeerConfig) -> bool {
        match self.kind {
            BackendKind::GoBgp => existing.owner.as_deref() == Some(desired.owner.as_str()),
            BackendKind::OpenDaylight => desired.owned_record,
        }
    }
}

/// The fields of `desired` that differ from `have` (never a secret value, only its name).
fn diff(desired: &PeerConfig, have: &PeerConfig) -> Vec<&'static str> {
    let checks = [
        ("peer_asn", desired.peer_asn != have.peer_asn),
        ("remote_port", desired.remote_port != have.remote_port),
        ("local_address", desired.local_address != have.local_address),
        ("hold_time", desired.hold_time != have.hold_time),
        (
            "keepalive_interval",
            desired.keepalive_interval != have.keepalive_interval,
        ),
        ("ebgp_multihop", desired.ebgp_multihop != have.ebgp_multihop),
        ("families", desired.families != have.families),
        ("password", desired.password != have.password),
        ("admin_down", desired.admin_down != have.admin_down),
        (
            "graceful_restart",
            desired.graceful_restart != have.graceful_restart,
        ),
    ];
    checks.iter().filter(|(_, d)| *d).map(|(f, _)| *f).collect()
}

#[async_trait::async_trait]
impl SdnBackend for FakeSpeaker {
    async fn ensure_speaker(&self, config: &SpeakerConfig) -> Result<SpeakerOutcome, SdnError> {
        let mut state = self.reachable()?;
        match &state.global {
            None => {
                state.global = Some(config.clone());
                state.writes += 1;
                Ok(SpeakerOutcome::Started)
            }
            Some(running) if running.asn != config.asn => Ok(SpeakerOutcome::Conflict {
                reason: format!(
                    "speaker runs AS {}, the endpoint says AS {}",
                    running.asn, config.asn
                ),
            }),
            Some(_) => Ok(SpeakerOutcome::Unchanged),
        }
    }

    async fn list_peers(&self) -> Result<Vec<ObservedPeer>, SdnError> {
        Ok(self.reachable()?.peers.values().map(Self::observed).collect())
    }

    async fn ensure_peer(&self, desired: &PeerConfig) -> Result<Ensured, SdnError> {
        let mut state = self.reachable()?;
        let new_session = state.new_session.unwrap_or(SessionState::Idle);
        let Some(existing) = state.peers.get(&desired.neighbor).cloned() else {
            let owner = (self.kind == BackendKind::GoBgp).then(|| desired.owner.clone());
            let peer = FakePeer {
                config: desired.clone(),
                owner,
                session: new_session,
            };
            state.peers.insert(desired.neighbor, peer);
            state.writes += 1;
            return Ok(PeerOutcome::Created.into());
        };
        if !self.ours(&existing, desired) {
            return Ok(PeerOutcome::Conflict {
                owner: existing.owner,
            }
            .into());
        }
        let fields = diff(desired, &existing.config);
        if fields.is_empty() {
            return Ok(Ensured {
                outcome: PeerOutcome::Unchanged,
                observed: Some(Self::observed(&existing)),
            });
        }
        let peer = state.peers.get_mut(&desired.neighbor).expect("checked above");
        peer.config = desired.clone();
        state.writes += 1;
        Ok(PeerOutcome::Updated { fields }.into())
    }

    async fn remove_peer(&self, neighbor: IpAddr, owner: &str) -> Result<RemoveOutcome, SdnError> {
        let mut state = self.reachable()?;
        let Some(existing) = state.peers.get(&neighbor) else {
            return Ok(RemoveOutcome::Absent);
        };
        if self.kind == BackendKind::GoBgp && existing.owner.as_deref() != Some(owner) {
            return Ok(RemoveOutcome::NotOwned);
        }
        state.peers.remove(&neighbor);
        state.writes += 1;
        Ok(RemoveOutcome::Removed)
    }

    async fn observe_peer(&self, neighbor: IpAddr) -> Result<Option<ObservedPeer>, SdnError> {
        Ok(self.reachable()?.peers.get(&neighbor).map(Self::observed))
    }

    /// Drops the session to Idle, as a hard reset does.
    async fn reset_peer(
        &self,
        neighbor: IpAddr,
        owner: &str,
        owned_record: bool,
    ) -> Result<ResetOutcome, SdnError> {
        let mut state = self.reachable()?;
        let Some(existing) = state.peers.get_mut(&neighbor) else {
            return Ok(ResetOutcome::Absent);
        };
        let ours = match self.kind {
            BackendKind::GoBgp => existing.owner.as_deref() == Some(owner),
            BackendKind::OpenDaylight => owned_record,
        };
        if !ours {
            return Ok(ResetOutcome::NotOwned);
        }
        existing.session = SessionState::Idle;
        Ok(ResetOutcome::Reset)
    }

    /// No change stream: the controller polls, as it does OpenDaylight.
    async fn watch(&self) -> Result<Option<BoxStream<'static, SdnEvent>>, SdnError> {
        drop(self.reachable()?);
        Ok(None)
    }

    async fn ensure_origination(&self, origination: &Origination) -> Result<RoutesOutcome, SdnError> {
        let mut state = self.reachable()?;
        let outcome = state.routes.ensure_origination(origination);
        state.writes += usize::from(outcome != RoutesOutcome::Unchanged);
        Ok(outcome)
    }

    async fn withdraw_origination(&self, mark: u32) -> Result<RoutesOutcome, SdnError> {
        let mut state = self.reachable()?;
        let outcome = state.routes.withdraw(mark);
        state.writes += usize::from(outcome != RoutesOutcome::Unchanged);
        Ok(outcome)
    }

    async fn ensure_route_filter(&self, filter: &RouteFilter) -> Result<RoutesOutcome, SdnError> {
        let mut state = self.reachable()?;
        let outcome = state.routes.ensure_filter(filter);
        state.writes += usize::from(outcome != RoutesOutcome::Unchanged);
        Ok(outcome)
    }

    async fn remove_route_filter(&self, key: &str) -> Result<RoutesOutcome, SdnError> {
        let mut state = self.reachable()?;
        let outcome = state.routes.remove_filter(key);
        state.writes += usize::from(outcome != RoutesOutcome::Unchanged);
        Ok(outcome)
    }

    /// What `neighbor` sends of EVPN routes through the filter that names it, as GoBGP reads
    /// its Adj-RIB-In with the import policy applied.
    async fn observe_segments(&self, neighbor: IpAddr) -> Result<SegmentsSeen, SdnError> {
        let state = self.reachable()?;
        let filter = state
            .routes
            .filters
            .values()
            .find(|f| f.neighbors.contains(&neighbor));
        Ok(segments::seen(
            state.peers.get(&neighbor),
            filter,
            &state.segments_sent,
        ))
    }

    /// The fake has no digest: its poll requeues every object, as OpenDaylight's does.
    async fn routes_digest(&self) -> Result<Option<u64>, SdnError> {
        Ok(None)
    }

    async fn observe_routes(
        &self,
        origination: &Origination,
        filters: &[RouteFilter],
    ) -> Result<BTreeMap<IpAddr, RouteCounts>, SdnError> {
        let state = self.reachable()?;
        let mut counts = BTreeMap::new();
        for filter in filters {
            for &neighbor in &filter.neighbors {
                counts.insert(neighbor, state.routes.counts(origination, filter, neighbor));
            }
        }
        Ok(counts)
    }
}

/// Hands out one [`FakeSpeaker`] per API URL (the same one for every connect), and records the
/// credentials each connect handed over: what a real client would send to that URL.
#[derive(Debug, Default)]
pub struct FakeConnector {
    speakers: Mutex<HashMap<String, FakeSpeaker>>,
    connects: Mutex<Vec<(String, Option<UserPassword>)>>,
}

/// A username and password as a connect handed them over.
type UserPassword = (String, String);

impl FakeConnector {
    /// The speaker behind `url` (created on first use, as if it ran bare).
    pub fn speaker(&self, kind: BackendKind, url: &str) -> FakeSpeaker {
        let url = url.trim_end_matches('/');
        self.speakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(url.to_string())
            .or_insert_with(|| FakeSpeaker::new(kind, url))
            .clone()
    }

    /// The credentials (username, password) of every connect to `url` so far, in order.
    pub fn credentials_sent(&self, url: &str) -> Vec<Option<UserPassword>> {
        let connects = self.connects.lock().unwrap_or_else(|p| p.into_inner());
        connects
            .iter()
            .filter(|(u, _)| u == url.trim_end_matches('/'))
            .map(|(_, c)| c.clone())
            .collect()
    }
}

impl Connector for FakeConnector {
    fn connect(&self, target: &SdnTarget, _timeout: Duration) -> Result<Arc<dyn SdnBackend>, SdnError> {
        let credentials = target
            .credentials
            .as_ref()
            .map(|c| (c.username.clone(), c.password.expose().to_string()));
        let url = target.url.trim_end_matches('/').to_string();
        self.connects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((url, credentials));
        Ok(Arc::new(self.speaker(target.kind, &target.url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(neighbor: &str, owner: &str) -> PeerConfig {
        let local = "192.0.2.1".parse().unwrap();
        PeerConfig::new(neighbor.parse().unwrap(), 65002, local, owner)
    }

    #[tokio::test]
    async fn keeps_the_backend_contract_on_ownership() {
        let connector = FakeConnector::default();
        let gobgp = connector.speaker(BackendKind::GoBgp, "http://a/");
        let mine = peer("192.0.2.2", "cellnet:ns/x");
        assert_eq!(
            gobgp.ensure_peer(&mine).await.unwrap().outcome,
            PeerOutcome::Created
        );
        assert_eq!(
            gobgp.ensure_peer(&mine).await.unwrap().outcome,
            PeerOutcome::Unchanged
        );
        let theirs = peer("192.0.2.2", "cellnet:ns/other");
        assert!(matches!(
            gobgp.ensure_peer(&theirs).await.unwrap().outcome,
            PeerOutcome::Conflict { .. }
        ));
        assert_eq!(
            gobgp
                .remove_peer(mine.neighbor, "cellnet:ns/other")
                .await
                .unwrap(),
            RemoveOutcome::NotOwned
        );
        let odl = connector.speaker(BackendKind::OpenDaylight, "http://b");
        odl.insert_foreign(peer("192.0.2.3", ""), None);
        let unrecorded = peer("192.0.2.3", "cellnet:ns/x");
        assert!(matches!(
            odl.ensure_peer(&unrecorded).await.unwrap().outcome,
            PeerOutcome::Conflict { .. }
        ));
        assert_eq!(
            connector.speaker(BackendKind::GoBgp, "http://a").peers().len(),
            1,
            "one speaker per URL"
        );
    }

    #[tokio::test]
    async fn an_unreachable_speaker_fails_every_call() {
        let speaker = FakeConnector::default().speaker(BackendKind::GoBgp, "http://a");
        speaker.set_unreachable(true);
        assert!(matches!(
            speaker.list_peers().await,
            Err(SdnError::Unreachable { .. })
        ));
    }
}
