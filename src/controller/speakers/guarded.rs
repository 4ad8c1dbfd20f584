//! The backend the reconciles get: every call passes the speaker's [`Health`] first (refused
//! credentials backing off, the circuit breaker), and its answer is taken in afterwards.
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use futures::stream::BoxStream;

use super::health::Health;
use crate::sdn::{
    Ensured, ObservedPeer, Origination, PeerConfig, RemoveOutcome, ResetOutcome, RouteCounts, RouteFilter,
    RoutesOutcome, SdnBackend, SdnError, SdnEvent, SegmentsSeen, SpeakerConfig, SpeakerOutcome,
};

pub struct Guarded {
    pub inner: Arc<dyn SdnBackend>,
    pub health: Arc<Health>,
}

#[async_trait::async_trait]
impl SdnBackend for Guarded {
    async fn ensure_speaker(&self, config: &SpeakerConfig) -> Result<SpeakerOutcome, SdnError> {
        self.health.call(self.inner.ensure_speaker(config)).await
    }
    async fn list_peers(&self) -> Result<Vec<ObservedPeer>, SdnError> {
        self.health.call(self.inner.list_peers()).await
    }
    async fn ensure_peer(&self, desired: &PeerConfig) -> Result<Ensured, SdnError> {
        self.health.call(self.inner.ensure_peer(desired)).await
    }
    async fn remove_peer(&self, neighbor: IpAddr, owner: &str) -> Result<RemoveOutcome, SdnError> {
        self.health.call(self.inner.remove_peer(neighbor, owner)).await
    }
    async fn observe_peer(&self, neighbor: IpAddr) -> Result<Option<ObservedPeer>, SdnError> {
        self.health.call(self.inner.observe_peer(neighbor)).await
    }
    async fn reset_peer(
        &self,
        neighbor: IpAddr,
        owner: &str,
        owned_record: bool,
    ) -> Result<ResetOutcome, SdnError> {
        self.health
            .call(self.inner.reset_peer(neighbor, owner, owned_record))
            .await
    }
    /// Only the watcher follows the change stream, on the inner backend.
    async fn watch(&self) -> Result<Option<BoxStream<'static, SdnEvent>>, SdnError> {
        self.inner.watch().await
    }
    async fn ensure_origination(&self, origination: &Origination) -> Result<RoutesOutcome, SdnError> {
        self.health.call(self.inner.ensure_origination(origination)).await
    }
    async fn withdraw_origination(&self, mark: u32) -> Result<RoutesOutcome, SdnError> {
        self.health.call(self.inner.withdraw_origination(mark)).await
    }
    async fn ensure_route_filter(&self, filter: &RouteFilter) -> Result<RoutesOutcome, SdnError> {
        self.health.call(self.inner.ensure_route_filter(filter)).await
    }
    async fn remove_route_filter(&self, key: &str) -> Result<RoutesOutcome, SdnError> {
        self.health.call(self.inner.remove_route_filter(key)).await
    }
    async fn routes_digest(&self) -> Result<Option<u64>, SdnError> {
        self.health.call(self.inner.routes_digest()).await
    }
    async fn observe_segments(&self, neighbor: IpAddr) -> Result<SegmentsSeen, SdnError> {
        self.health.call(self.inner.observe_segments(neighbor)).await
    }
    async fn observe_routes(
        &self,
        origination: &Origination,
        filters: &[RouteFilter],
    ) -> Result<BTreeMap<IpAddr, RouteCounts>, SdnError> {
        self.health
            .call(self.inner.observe_routes(origination, filters))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sdn::BackendKind;
    use crate::sdn::fake::FakeConnector;

    /// A trait method with a default body that the wrapper forgets answers `Unsupported` for
    /// every backend (seen: the stuck-session reset never reached the speaker).
    #[tokio::test]
    async fn calls_with_a_default_body_reach_the_backend() {
        let connector = FakeConnector::default();
        let fake = connector.speaker(BackendKind::GoBgp, "http://a");
        let guarded = Guarded {
            inner: Arc::new(fake.clone()),
            health: Arc::new(Health::new(Duration::from_secs(60))),
        };
        let local: IpAddr = "192.0.2.1".parse().unwrap();
        let peer = PeerConfig::new("192.0.2.2".parse().unwrap(), 65002, local, "cellnet:ns/x");
        guarded.ensure_peer(&peer).await.unwrap();
        let reset = guarded.reset_peer(peer.neighbor, &peer.owner, false).await;
        assert_eq!(
            reset.unwrap(),
            fake.reset_peer(peer.neighbor, &peer.owner, false).await.unwrap()
        );
        let origination = Origination {
            mark: 7,
            next_hop: local,
            networks: vec![],
            owner: "cellnet:ns/a".into(),
        };
        assert!(guarded.ensure_origination(&origination).await.is_ok());
        assert!(guarded.routes_digest().await.is_ok());
    }
}
