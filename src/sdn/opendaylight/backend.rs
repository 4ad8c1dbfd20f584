//! The [`SdnBackend`] operations on OpenDaylight: neighbours created, compared and replaced,
//! deleted, observed (see the module documentation of `super` for the documents followed).
use std::collections::BTreeMap;
use std::net::IpAddr;

use futures::stream::BoxStream;
use reqwest::{Method, StatusCode};

use super::{OpenDaylight, model, routes};
use crate::sdn::{
    Ensured, ObservedPeer, Origination, Password, PeerConfig, PeerOutcome, RemoveOutcome, ResetOutcome,
    RouteCounts, RouteFilter, RoutesOutcome, SdnBackend, SdnError, SdnEvent, SegmentsSeen, SpeakerConfig,
    SpeakerOutcome,
};

/// An error answer to a request that carried the TCP MD5 password may quote it back (an
/// RFC 8040 `error-message` naming a bad value): never let it reach a status or a log.
fn redact(err: SdnError, desired: &PeerConfig) -> SdnError {
    let Some(password) = desired.password.as_ref().map(Password::expose) else {
        return err;
    };
    if password.is_empty() {
        return err;
    }
    match err {
        SdnError::Rejected {
            endpoint,
            operation,
            message,
        } => SdnError::Rejected {
            endpoint,
            operation,
            message: message.replace(password, "<redacted>"),
        },
        other => other,
    }
}

fn check_supported(desired: &PeerConfig) -> Result<(), SdnError> {
    if desired.admin_down {
        return Err(SdnError::Unsupported(
            "OpenDaylight has no documented administrative shutdown of a neighbour".into(),
        ));
    }
    if desired.ebgp_multihop.is_some() {
        return Err(SdnError::Unsupported(
            "OpenDaylight's BGP user guide documents no eBGP multihop setting for a neighbour".into(),
        ));
    }
    Ok(())
}

#[async_trait::async_trait]
impl SdnBackend for OpenDaylight {
    /// Reads the instance's global config and compares the AS. cellnet does not create the
    /// instance although the protocol-configuration guide documents how: the guide requires the
    /// RIB policy to be configured first ("RIB policy must already be configured and present
    /// before configuring the protocol"), the instance is shared with everything else that uses
    /// OpenDaylight's BGP, and cellnet could never safely remove it. The operator configures it.
    async fn ensure_speaker(&self, config: &SpeakerConfig) -> Result<SpeakerOutcome, SdnError> {
        let Some((asn, router_id)) = self.global().await? else {
            let reason = format!(
                "no BGP instance at {}{}: configure it in OpenDaylight first (BGP user guide, \
                 \"Protocol Configuration\") with AS {} and router id {}",
                self.endpoint(),
                self.paths.global_config(),
                config.asn,
                config.router_id
            );
            return Ok(SpeakerOutcome::Conflict { reason });
        };
        if asn != config.asn {
            let reason = format!(
                "OpenDaylight BGP instance at {} runs AS {asn}, the endpoint says AS {}; nothing was changed",
                self.endpoint(),
                config.asn
            );
            tracing::warn!(endpoint = %self.endpoint(), %reason, "OpenDaylight speaker config conflicts");
            return Ok(SpeakerOutcome::Conflict { reason });
        }
        if router_id.as_deref() != Some(&config.router_id.to_string()) {
            // Not fatal for sessions; the operator owns the instance: say so only.
            tracing::warn!(endpoint = %self.endpoint(), running = ?router_id, wanted = %config.router_id,
                "OpenDaylight BGP instance runs with another router id");
        }
        // The listen address and port are OpenDaylight's peer acceptor settings
        // (bgp-user-guide-bgp-server.rst), outside this API: not checked.
        Ok(SpeakerOutcome::Unchanged)
    }

    /// `GET .../neighbors` (RFC 8040 `content=all`: configuration and operational state in one
    /// answer, so one request a poll). A missing list (404) is an empty one.
    async fn list_peers(&self) -> Result<Vec<ObservedPeer>, SdnError> {
        let reply = self
            .rest
            .send("list neighbors", Method::GET, &self.paths.neighbors(), None, true)
            .await?;
        Ok(reply
            .map(|r| model::neighbor_entries(&r.body))
            .unwrap_or_default()
            .iter()
            .filter_map(model::observed)
            .collect())
    }

    /// `desired.max_prefixes` is ignored: the guides document no prefix limit for a neighbour
    /// (see `model::neighbor`); the controller reports the limit as not enforced.
    async fn ensure_peer(&self, desired: &PeerConfig) -> Result<Ensured, SdnError> {
        self.ensure_neighbor(desired).await.map(Ensured::from)
    }

    /// `DELETE .../neighbor={address}`; the controller calls it only for neighbours its ledger
    /// says cellnet created, so `owner` cannot be (and is not) checked here, except for a
    /// neighbour whose create this process saw lost to someone else's (`NotOwned`).
    async fn remove_peer(&self, neighbor: IpAddr, owner: &str) -> Result<RemoveOutcome, SdnError> {
        self.delete_neighbor(neighbor, owner).await
    }

    /// `GET .../neighbor={address}`: RFC 8040's default `content=all` answers configuration and
    /// operational state ("BGP Neighbor Operational State") in one request.
    async fn observe_peer(&self, neighbor: IpAddr) -> Result<Option<ObservedPeer>, SdnError> {
        Ok(self
            .get_neighbor(neighbor)
            .await?
            .as_ref()
            .and_then(model::observed))
    }

    /// The `bgp-peer-rpc:reset-session` RPC, only for a neighbour cellnet's ledger records
    /// (`owned_record`) and not lost to someone else's create. bgpcep registers the RPC for a
    /// peer of the RIB, which exists while it has a session: for a neighbour without one the
    /// RPC fails, and that error is the answer (the next try comes with the next reset).
    async fn reset_peer(
        &self,
        neighbor: IpAddr,
        _owner: &str,
        owned_record: bool,
    ) -> Result<ResetOutcome, SdnError> {
        if !owned_record || self.lost_create(neighbor) {
            return Ok(ResetOutcome::NotOwned);
        }
        let input = self.paths.reset_session_input(&neighbor.to_string());
        let reply = self
            .rest
            .send(
                "reset session",
                Method::POST,
                self.paths.reset_session(),
                Some(&input),
                true,
            )
            .await?;
        if reply.is_none() {
            return Ok(ResetOutcome::Absent);
        }
        tracing::info!(endpoint = %self.endpoint(), %neighbor, "reset OpenDaylight neighbor session");
        Ok(ResetOutcome::Reset)
    }

    async fn watch(&self) -> Result<Option<BoxStream<'static, SdnEvent>>, SdnError> {
        Ok(None)
    }

    /// Through the application peer's programmable RIB (see `super::routes`).
    async fn ensure_origination(&self, origination: &Origination) -> Result<RoutesOutcome, SdnError> {
        self.originate(origination).await
    }

    async fn withdraw_origination(&self, mark: u32) -> Result<RoutesOutcome, SdnError> {
        self.withdraw(mark).await
    }

    /// No write: only `import: Any` with `export: Networks` is supported (see `super::routes`).
    async fn ensure_route_filter(&self, filter: &RouteFilter) -> Result<RoutesOutcome, SdnError> {
        routes::check_filter(filter)
    }

    /// Nothing was ever written for a filter.
    async fn remove_route_filter(&self, key: &str) -> Result<RoutesOutcome, SdnError> {
        let _ = key;
        Ok(RoutesOutcome::Unchanged)
    }

    async fn observe_routes(
        &self,
        origination: &Origination,
        filters: &[RouteFilter],
    ) -> Result<BTreeMap<IpAddr, RouteCounts>, SdnError> {
        self.route_counts(origination, filters).await
    }

    /// RESTCONF has no cheap digest of the application RIB: the poll requeues every object.
    async fn routes_digest(&self) -> Result<Option<u64>, SdnError> {
        Ok(None)
    }

    async fn observe_segments(&self, _neighbor: IpAddr) -> Result<SegmentsSeen, SdnError> {
        Err(routes::evpn_unsupported())
    }
}

impl OpenDaylight {
    async fn ensure_neighbor(&self, desired: &PeerConfig) -> Result<PeerOutcome, SdnError> {
        check_supported(desired)?;
        let local_asn = self.local_asn().await?;
        let address = desired.neighbor.to_string();
        let Some(observed) = self.get_neighbor(desired.neighbor).await? else {
            self.set_lost_create(desired.neighbor, false);
            let body = model::create_body(model::neighbor(desired, local_asn));
            let created = self
                .rest
                .send(
                    "create neighbor",
                    Method::POST,
                    &self.paths.neighbors(),
                    Some(&body),
                    false,
                )
                .await
                .map_err(|e| redact(e, desired));
            return match created {
                Ok(_) => {
                    tracing::info!(endpoint = %self.endpoint(), neighbor = %address, owner = %desired.owner,
                        "created OpenDaylight neighbor");
                    Ok(PeerOutcome::Created)
                }
                // RFC 8040 section 4.4.1: 409 when the resource already exists; someone created
                // it between our read and our create.
                Err(SdnError::Rejected { message, .. }) if message.starts_with("HTTP 409") => {
                    self.set_lost_create(desired.neighbor, true);
                    tracing::info!(endpoint = %self.endpoint(), neighbor = %address, %message,
                        "OpenDaylight neighbor appeared before our create; left alone");
                    Ok(PeerOutcome::Conflict { owner: None })
                }
                Err(e) => Err(e),
            };
        };
        if !desired.owned_record || self.lost_create(desired.neighbor) {
            tracing::debug!(endpoint = %self.endpoint(), neighbor = %address,
                "OpenDaylight neighbor not recorded as cellnet's; left alone");
            return Ok(PeerOutcome::Conflict { owner: None });
        }
        let fields = model::diff(desired, local_asn, &observed);
        if fields.is_empty() {
            return Ok(PeerOutcome::Unchanged);
        }
        let body = model::replace_body(model::neighbor(desired, local_asn));
        self.rest
            .send(
                "replace neighbor",
                Method::PUT,
                &self.paths.neighbor(&address),
                Some(&body),
                false,
            )
            .await
            .map_err(|e| redact(e, desired))?;
        tracing::info!(endpoint = %self.endpoint(), neighbor = %address, changed = ?fields,
            "replaced OpenDaylight neighbor");
        Ok(PeerOutcome::Updated { fields })
    }

    async fn delete_neighbor(&self, neighbor: IpAddr, owner: &str) -> Result<RemoveOutcome, SdnError> {
        if self.lost_create(neighbor) {
            tracing::info!(endpoint = %self.endpoint(), %neighbor,
                "OpenDaylight neighbor was created by someone else (our create got 409); left alone");
            return Ok(RemoveOutcome::NotOwned);
        }
        let reply = self
            .rest
            .send(
                "delete neighbor",
                Method::DELETE,
                &self.paths.neighbor(&neighbor.to_string()),
                None,
                true,
            )
            .await?;
        Ok(match reply {
            None => RemoveOutcome::Absent,
            Some(r) => {
                debug_assert!(r.status == StatusCode::NO_CONTENT || r.status.is_success());
                tracing::info!(endpoint = %self.endpoint(), %neighbor, owner, "deleted OpenDaylight neighbor");
                RemoveOutcome::Removed
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_quoting_the_password_is_redacted() {
        let (neighbor, local) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let desired = PeerConfig {
            password: Some(Password::new("s3cret")),
            owned_record: true,
            ..PeerConfig::new(neighbor, 1, local, "cellnet:ns/x")
        };
        let err = SdnError::Rejected {
            endpoint: "http://odl".into(),
            operation: "create neighbor",
            message: "HTTP 400 Bad Request: invalid-value: s3cret is not valid for auth-password".into(),
        };
        let text = redact(err, &desired).to_string();
        assert!(!text.contains("s3cret") && text.contains("<redacted>"), "{text}");
    }
}
