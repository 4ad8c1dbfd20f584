//! GoBGP backend: drives a `gobgpd` through its v3 gRPC API (`apipb.GobgpApi`).
//!
//! GoBGP's API has sharp edges this module designs around:
//! - `AddPeer` on an existing address and `DeletePeer` of a missing one fail, so every write is
//!   preceded by a `ListPeer` of that address (which returns nothing for a missing peer).
//! - `UpdatePeer` resets the session when the config, transport or families change, and applies
//!   no defaults, so we diff first ([`convert::peer_diff`]) and update only on a real change,
//!   starting from what GoBGP reported ([`convert::updated_peer`]).
//! - `ListPeer` echoes the TCP MD5 password: it never leaves this module (and the protobuf
//!   types' `Debug` redacts it).
//! - Shutting a peer down is `DisablePeer` (with an RFC 8203 message) / `EnablePeer`, not a
//!   config change.
//! - A peer that received more prefixes than its limit stays down (admin state `PFX_CT`) until
//!   `EnablePeer`; `UpdatePeer` changes the limit in place. `ensure_peer` enables it only when
//!   the limit was raised ([`convert::reenable_after_limit`]), never at the same limit.
//!
//! Peers cellnet creates carry the owner marker in their description; others are never touched.
use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use tonic::transport::Channel;

use self::proto::gobgp_api_client::GobgpApiClient;
use crate::sdn::{
    BackendKind, Ensured, ObservedPeer, Origination, PeerConfig, PeerOutcome, RemoveOutcome, ResetOutcome,
    RouteCounts, RouteFilter, RoutesOutcome, SdnBackend, SdnError, SdnEvent, SdnTarget, SpeakerConfig,
    SpeakerOutcome,
};

pub mod convert;
mod counter;
pub mod limits;
mod pool;
pub mod proto;
pub mod routes;

pub use counter::{CallCounter, CallCounts};
pub use pool::{DEFAULT_TIMEOUT, GoBgpPool};

/// A GoBGP target for a plain `http://host:port` API, without TLS or credentials.
pub fn target(url: impl Into<String>) -> SdnTarget {
    SdnTarget {
        kind: BackendKind::GoBgp,
        url: url.into(),
        ca_pem: None,
        insecure_skip_verify: false,
        credentials: None,
        open_daylight: None,
    }
}

/// A client for one GoBGP speaker. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct GoBgp {
    client: GobgpApiClient<Channel>,
    /// The API URL, named in every error and log line.
    endpoint: Arc<str>,
    timeout: Duration,
    calls: Arc<CallCounter>,
    /// What the routes methods know from their last reads (see `routes::memo`).
    memo: Arc<routes::RoutesMemo>,
}

impl std::fmt::Debug for GoBgp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoBgp")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl GoBgp {
    /// A client with its own channel (prefer [`GoBgpPool::backend`] to share one per speaker).
    /// Does no I/O; must run inside a Tokio runtime.
    pub fn connect(target: &SdnTarget, timeout: Duration) -> Result<Self, SdnError> {
        let channel = pool::channel(target, timeout)?;
        Ok(Self::from_channel(
            channel,
            pool::normalized_url(&target.url),
            timeout,
        ))
    }

    fn from_channel(channel: Channel, endpoint: String, timeout: Duration) -> Self {
        Self {
            client: GobgpApiClient::new(channel),
            endpoint: endpoint.into(),
            timeout,
            calls: Arc::default(),
            memo: Arc::default(),
        }
    }

    /// The API URL this client talks to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The calls this client and its clones made so far, by operation.
    pub fn calls(&self) -> CallCounts {
        self.calls.snapshot()
    }

    /// Runs one API operation under the timeout and maps its failure.
    async fn call<T>(
        &self,
        operation: &'static str,
        fut: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, SdnError> {
        self.calls.add(operation);
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(status)) => {
                let err = pool::status_to_error(&self.endpoint, operation, &status);
                tracing::debug!(endpoint = %self.endpoint, operation, error = %err, "GoBGP call failed");
                Err(err)
            }
            Err(_) => {
                tracing::debug!(endpoint = %self.endpoint, operation, "GoBGP call timed out");
                Err(SdnError::Timeout {
                    endpoint: self.endpoint.to_string(),
                    seconds: self.timeout.as_secs_f64().ceil() as u64,
                })
            }
        }
    }

    /// `ListPeer` for one address (`""`: all), stream drained under the same timeout and cut at
    /// the [`limits`] (dropping the stream cancels it on the server).
    async fn list(&self, address: String) -> Result<Vec<proto::Peer>, SdnError> {
        use prost::Message as _;
        let mut client = self.client.clone();
        let max = if address.is_empty() {
            limits::MAX_LISTED_PEERS
        } else {
            limits::MAX_PEERS_OF_ONE_ADDRESS
        };
        self.call("ListPeer", async move {
            let request = proto::ListPeerRequest {
                address,
                enable_advertised: false,
            };
            let mut stream = client.list_peer(request).await?.into_inner();
            let mut peers = limits::Capped::new(max, limits::MAX_LISTED_BYTES);
            while let Some(response) = stream.message().await? {
                let encoded = response.encoded_len();
                peers
                    .extend(response.peer, encoded)
                    .map_err(tonic::Status::resource_exhausted)?;
            }
            Ok(peers.into_items())
        })
        .await
    }

    /// The peer configured at `neighbor`, if any.
    async fn get_peer(&self, neighbor: IpAddr) -> Result<Option<proto::Peer>, SdnError> {
        let peers = self.list(neighbor.to_string()).await?;
        Ok(peers
            .into_iter()
            .find(|p| convert::neighbor_of(p) == Some(neighbor)))
    }

    async fn global(&self) -> Result<proto::Global, SdnError> {
        let mut client = self.client.clone();
        let response = self
            .call(
                "GetBgp",
                async move { client.get_bgp(proto::GetBgpRequest {}).await },
            )
            .await?
            .into_inner();
        Ok(response.global.unwrap_or_default())
    }

    /// `DisablePeer` (with the RFC 8203 message) or `EnablePeer`.
    async fn set_admin_down(&self, desired: &PeerConfig) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        let address = desired.neighbor.to_string();
        if desired.admin_down {
            let communication = desired.admin_message.clone().unwrap_or_default();
            self.call("DisablePeer", async move {
                client
                    .disable_peer(proto::DisablePeerRequest {
                        address,
                        communication,
                    })
                    .await
            })
            .await?;
        } else {
            self.call("EnablePeer", async move {
                client.enable_peer(proto::EnablePeerRequest { address }).await
            })
            .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl SdnBackend for GoBgp {
    async fn ensure_speaker(&self, config: &SpeakerConfig) -> Result<SpeakerOutcome, SdnError> {
        let running = self.global().await?;
        if running.asn == 0 {
            let global = convert::global_from_speaker(config);
            let mut client = self.client.clone();
            self.call("StartBgp", async move {
                client
                    .start_bgp(proto::StartBgpRequest { global: Some(global) })
                    .await
            })
            .await?;
            tracing::info!(endpoint = %self.endpoint, asn = config.asn, router_id = %config.router_id,
                listen = %config.listen_address, port = config.listen_port, "started GoBGP speaker");
            return Ok(SpeakerOutcome::Started);
        }
        if let Some(reason) = convert::speaker_conflict(&running, config) {
            tracing::warn!(endpoint = %self.endpoint, %reason, "GoBGP speaker config conflicts");
            return Ok(SpeakerOutcome::Conflict { reason });
        }
        if running.router_id != config.router_id.to_string() {
            // Not fatal for sessions, and GoBGP cannot change it without a restart: say so only.
            tracing::warn!(endpoint = %self.endpoint, running = %running.router_id, wanted = %config.router_id,
                "GoBGP speaker runs with another router id");
        }
        Ok(SpeakerOutcome::Unchanged)
    }

    async fn list_peers(&self) -> Result<Vec<ObservedPeer>, SdnError> {
        Ok(self
            .list(String::new())
            .await?
            .iter()
            .filter_map(convert::observed_peer)
            .collect())
    }

    async fn ensure_peer(&self, desired: &PeerConfig) -> Result<Ensured, SdnError> {
        convert::check_supported(desired)?;
        let Some(observed) = self.get_peer(desired.neighbor).await? else {
            let peer = convert::new_peer(desired);
            let mut client = self.client.clone();
            self.call("AddPeer", async move {
                client.add_peer(proto::AddPeerRequest { peer: Some(peer) }).await
            })
            .await?;
            tracing::info!(endpoint = %self.endpoint, neighbor = %desired.neighbor, owner = %desired.owner,
                "added GoBGP peer");
            return Ok(PeerOutcome::Created.into());
        };
        let description = convert::description_of(&observed);
        if description != desired.owner {
            tracing::debug!(endpoint = %self.endpoint, neighbor = %desired.neighbor, found = %description,
                "GoBGP peer not ours; left alone");
            let owner = convert::conflict_owner(description);
            return Ok(PeerOutcome::Conflict { owner }.into());
        }

        let mut fields = convert::peer_diff(desired, &observed);
        // Read before the update: whether a raised limit should bring a tripped peer back.
        let reenable = convert::reenable_after_limit(desired, &observed);
        let mut observed = observed;
        if !fields.is_empty() {
            let peer = convert::updated_peer(desired, &observed);
            let mut client = self.client.clone();
            self.call("UpdatePeer", async move {
                client
                    .update_peer(proto::UpdatePeerRequest {
                        peer: Some(peer),
                        do_soft_reset_in: false,
                    })
                    .await
            })
            .await?;
            tracing::info!(endpoint = %self.endpoint, neighbor = %desired.neighbor, changed = ?fields,
                "updated GoBGP peer");
            // An update that recreated the peer also set its admin state: look again.
            observed = self
                .get_peer(desired.neighbor)
                .await?
                .ok_or_else(|| SdnError::Rejected {
                    endpoint: self.endpoint.to_string(),
                    operation: "UpdatePeer",
                    message: format!("peer {} vanished during the update", desired.neighbor),
                })?;
        }
        if convert::admin_down(&observed) != desired.admin_down {
            self.set_admin_down(desired).await?;
            tracing::info!(endpoint = %self.endpoint, neighbor = %desired.neighbor,
                admin_down = desired.admin_down, "changed GoBGP peer admin state");
            fields.push("admin_down");
            // The admin change moved the session: what was read before it is stale.
            return Ok(PeerOutcome::Updated { fields }.into());
        }
        if reenable {
            self.set_admin_down(desired).await?;
            tracing::info!(endpoint = %self.endpoint, neighbor = %desired.neighbor,
                max_prefixes = ?desired.max_prefixes, "enabled GoBGP peer shut down by its prefix limit, now raised");
            return Ok(PeerOutcome::Updated { fields }.into());
        }
        let outcome = if fields.is_empty() {
            PeerOutcome::Unchanged
        } else {
            PeerOutcome::Updated { fields }
        };
        Ok(Ensured {
            outcome,
            observed: convert::observed_peer(&observed),
        })
    }

    async fn remove_peer(&self, neighbor: IpAddr, owner: &str) -> Result<RemoveOutcome, SdnError> {
        let Some(observed) = self.get_peer(neighbor).await? else {
            return Ok(RemoveOutcome::Absent);
        };
        if convert::description_of(&observed) != owner {
            return Ok(RemoveOutcome::NotOwned);
        }
        let mut client = self.client.clone();
        let address = neighbor.to_string();
        let deleted = self
            .call("DeletePeer", async move {
                client
                    .delete_peer(proto::DeletePeerRequest {
                        address,
                        interface: String::new(),
                    })
                    .await
            })
            .await;
        if let Err(err) = deleted {
            // Gone in between (GoBGP refuses to delete a missing peer): that is what we wanted.
            if matches!(err, SdnError::Rejected { .. }) && self.get_peer(neighbor).await?.is_none() {
                return Ok(RemoveOutcome::Absent);
            }
            return Err(err);
        }
        tracing::info!(endpoint = %self.endpoint, %neighbor, owner, "deleted GoBGP peer");
        Ok(RemoveOutcome::Removed)
    }

    async fn observe_peer(&self, neighbor: IpAddr) -> Result<Option<ObservedPeer>, SdnError> {
        Ok(self
            .get_peer(neighbor)
            .await?
            .as_ref()
            .and_then(convert::observed_peer))
    }

    /// `DisablePeer` then `EnablePeer`, only on a peer carrying `owner`'s marker. Not
    /// `ResetPeer`: GoBGP 3 hands its Cease to the session only in Established, so a reset of a
    /// session stuck in OpenSent changes nothing (measured in tests/e2e_stuck.rs) and the queued
    /// Cease would end the session once it came up. An admin change is handled in every state.
    async fn reset_peer(
        &self,
        neighbor: IpAddr,
        owner: &str,
        _owned_record: bool,
    ) -> Result<ResetOutcome, SdnError> {
        let Some(observed) = self.get_peer(neighbor).await? else {
            return Ok(ResetOutcome::Absent);
        };
        if convert::description_of(&observed) != owner {
            return Ok(ResetOutcome::NotOwned);
        }
        if convert::admin_down(&observed) {
            // Shut down on purpose (spec.adminState, or a prefix limit): not for a reset to undo.
            return Ok(ResetOutcome::ShutDown);
        }
        let (mut client, address) = (self.client.clone(), neighbor.to_string());
        let request = proto::DisablePeerRequest {
            address: address.clone(),
            communication: "cellnet: session stuck, reset".into(),
        };
        self.call("DisablePeer", async move { client.disable_peer(request).await })
            .await?;
        let mut client = self.client.clone();
        self.call("EnablePeer", async move {
            client.enable_peer(proto::EnablePeerRequest { address }).await
        })
        .await?;
        tracing::info!(endpoint = %self.endpoint, %neighbor, owner, "reset GoBGP peer (disable, enable)");
        Ok(ResetOutcome::Reset)
    }

    /// Peer events and changes of best paths from `WatchEvent`: the table filter `BEST` without
    /// the initial dump, mapped to one [`SdnEvent::Routes`] per source and stream item. A path
    /// that is not best (another path of the same prefix wins) changes without an event: the
    /// poll finds that. The stream ends when the connection breaks; events from before the
    /// subscription are not replayed, so callers re-check after (re)subscribing.
    async fn watch(&self) -> Result<Option<BoxStream<'static, SdnEvent>>, SdnError> {
        // gobgpd sends the stream's headers only with its first event, so the subscription itself
        // cannot be awaited under a timeout: check reachability first, then subscribe lazily.
        self.global().await?;
        let mut client = self.client.clone();
        let endpoint = self.endpoint.clone();
        let request = proto::WatchEventRequest {
            peer: Some(Default::default()),
            table: Some(best_paths()),
        };
        let subscribe = async move { client.watch_event(request).await.map(|r| r.into_inner()) };
        let events = futures::stream::once(subscribe)
            .map(|subscribed| match subscribed {
                Ok(stream) => stream.boxed(),
                Err(status) => futures::stream::once(futures::future::ready(Err(status))).boxed(),
            })
            .flatten()
            .map(move |item| match item {
                Ok(response) => Some(response),
                Err(status) => {
                    let err = convert::status_to_error(&endpoint, "WatchEvent", &status);
                    tracing::info!(endpoint = %endpoint, error = %err, "GoBGP watch stream ended");
                    None
                }
            })
            .take_while(|item| futures::future::ready(item.is_some()))
            .flat_map(|item| futures::stream::iter(item.map(convert::events_from_watch).unwrap_or_default()));
        Ok(Some(events.boxed()))
    }

    // Routes: the inherent methods of `routes/` (inherent methods win in method calls).
    async fn ensure_origination(&self, origination: &Origination) -> Result<RoutesOutcome, SdnError> {
        GoBgp::ensure_origination(self, origination).await
    }

    async fn withdraw_origination(&self, mark: u32) -> Result<RoutesOutcome, SdnError> {
        GoBgp::withdraw_origination(self, mark).await
    }

    async fn ensure_route_filter(&self, filter: &RouteFilter) -> Result<RoutesOutcome, SdnError> {
        GoBgp::ensure_route_filter(self, filter).await
    }

    async fn remove_route_filter(&self, key: &str) -> Result<RoutesOutcome, SdnError> {
        GoBgp::remove_route_filter(self, key).await
    }

    async fn observe_segments(&self, neighbor: IpAddr) -> Result<crate::sdn::SegmentsSeen, SdnError> {
        GoBgp::observe_segments(self, neighbor).await
    }

    async fn observe_routes(
        &self,
        origination: &Origination,
        filters: &[RouteFilter],
    ) -> Result<BTreeMap<IpAddr, RouteCounts>, SdnError> {
        GoBgp::observe_routes(self, origination, filters).await
    }

    async fn routes_digest(&self) -> Result<Option<u64>, SdnError> {
        GoBgp::routes_digest(self).await.map(Some)
    }
}

/// The table part of the watch: best-path changes from now on (no initial dump).
fn best_paths() -> proto::watch_event_request::Table {
    use proto::watch_event_request::table::{Filter, filter::Type};
    proto::watch_event_request::Table {
        filters: vec![Filter {
            r#type: Type::Best as i32,
            init: false,
        }],
    }
}
