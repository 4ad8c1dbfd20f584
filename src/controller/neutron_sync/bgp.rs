//! neutron-dynamic-routing for the endpoint: the cell's BGP speaker (shared by the cell's
//! endpoints), the peer that is this endpoint, and the endpoint's network as a gateway network
//! of the speaker. Speakers and peers carry no tags (nor a description): a peer is ours when its
//! name ends in the endpoint's uid, the speaker when it has the cell's name; an id in status is
//! only a hint, checked like that before anything is changed or deleted.
use tracing::{info, warn};

use super::Job;
use super::plan::{self, Change, PeerPassword};
use kube::ResourceExt;

use crate::api::InfraEndpoint;
use crate::api::infra_endpoint::{NeutronBgpSpec, NeutronStatus};
use crate::controller::problem::Problem;
use crate::neutron::{BgpPeer, BgpSpeaker, NeutronClient, NeutronError};

impl Job<'_> {
    /// The speaker and peer as `bgp` wants them, the peer and `network_id` on the speaker.
    pub(super) async fn ensure_bgp(
        &self,
        bgp: &NeutronBgpSpec,
        status: &mut NeutronStatus,
        network_id: &str,
        password: Option<&PeerPassword>,
    ) -> Result<(BgpSpeaker, BgpPeer), Problem> {
        let mut speaker = self.ensure_bgp_speaker(bgp, status).await?;
        status.bgp_speaker_id = Some(speaker.id.clone());
        let peer = self.ensure_peer(status, &mut speaker, password).await?;
        status.bgp_peer_id = Some(peer.id.clone());
        status.applied_password_secret_version = password.map(|p| p.secret_version.clone());
        if !speaker.peers.contains(&peer.id) {
            let id = &speaker.id;
            self.client
                .speaker_action(id, "add_bgp_peer", "bgp_peer_id", &peer.id)
                .await?;
        }
        if !speaker.networks.iter().any(|n| n == network_id) {
            let id = &speaker.id;
            self.client
                .speaker_action(id, "add_gateway_network", "network_id", network_id)
                .await?;
        }
        Ok((speaker, peer))
    }

    /// The cell's speaker: by id in status, else by name and IP version.
    async fn ensure_bgp_speaker(
        &self,
        bgp: &NeutronBgpSpec,
        status: &NeutronStatus,
    ) -> Result<BgpSpeaker, Problem> {
        let ip_version = plan::ip_version(&self.ep.spec.address);
        let found = self.find_speaker(status, ip_version).await?;
        // Only a checked peer counts as ours: a replace must never cut someone else's.
        let own_peer = match found.is_some() {
            true => self.find_peer(status).await?.map(|p| p.id),
            false => None,
        };
        let change = plan::speaker_change(bgp, ip_version, own_peer.as_deref(), found.as_ref())?;
        let cell = &self.ep.spec.cell;
        Ok(match (change, found) {
            (Change::Keep, Some(s)) => s,
            (Change::Update(flags), Some(s)) => {
                self.client.update_bgp_speaker(&s.id, flags).await?;
                s
            }
            (Change::Replace, Some(s)) => {
                info!(cell = %cell, speaker = %s.id, from = s.local_as, to = bgp.local_as, "Neutron BGP speaker local_as changed: replacing the speaker");
                self.client.delete(&format!("/bgp-speakers/{}", s.id)).await?;
                self.create_speaker(bgp, ip_version).await?
            }
            _ => self.create_speaker(bgp, ip_version).await?,
        })
    }

    async fn find_speaker(
        &self,
        status: &NeutronStatus,
        ip_version: u8,
    ) -> Result<Option<BgpSpeaker>, Problem> {
        if let Some(id) = &status.bgp_speaker_id
            && let Some(s) = self.client.bgp_speaker(id).await?
            && plan::is_cells_speaker(self.ep, &s)
        {
            return Ok(Some(s));
        }
        let named = self
            .client
            .bgp_speakers_named(&plan::speaker_name(self.ep))
            .await?;
        Ok(named.into_iter().find(|s| s.ip_version == ip_version))
    }

    async fn create_speaker(&self, bgp: &NeutronBgpSpec, ip_version: u8) -> Result<BgpSpeaker, Problem> {
        let body = plan::speaker_body(self.ep, bgp, ip_version);
        let s = self.client.create_bgp_speaker(body).await?;
        info!(cell = %self.ep.spec.cell, speaker = %s.id, local_as = s.local_as, "created Neutron BGP speaker");
        Ok(s)
    }

    /// The peer that is this endpoint: by id in status, else by name. A replaced peer is first
    /// taken off `speaker`.
    async fn ensure_peer(
        &self,
        status: &NeutronStatus,
        speaker: &mut BgpSpeaker,
        password: Option<&PeerPassword>,
    ) -> Result<BgpPeer, Problem> {
        let Some(p) = self.find_peer(status).await? else {
            return self.create_peer(password).await;
        };
        let applied = status.applied_password_secret_version.as_deref();
        if plan::peer_change(self.ep, password, applied, Some(&p)) != Change::Replace {
            return Ok(p);
        }
        info!(cell = %self.ep.spec.cell, peer = %p.id, "Neutron BGP peer changed (remote_as, peer_ip or password): replacing the peer");
        if speaker.peers.contains(&p.id) {
            self.client
                .speaker_action(&speaker.id, "remove_bgp_peer", "bgp_peer_id", &p.id)
                .await?;
            speaker.peers.retain(|id| id != &p.id);
        }
        self.client.delete(&format!("/bgp-peers/{}", p.id)).await?;
        self.create_peer(password).await
    }

    async fn find_peer(&self, status: &NeutronStatus) -> Result<Option<BgpPeer>, Problem> {
        if let Some(id) = &status.bgp_peer_id
            && let Some(p) = self.client.bgp_peer(id).await?
            && plan::is_our_peer(self.ep, &p, true)
        {
            return Ok(Some(p));
        }
        let named = self.client.bgp_peers_named(&plan::peer_name(self.ep)).await?;
        Ok(named.into_iter().find(|p| plan::is_our_peer(self.ep, p, false)))
    }

    async fn create_peer(&self, password: Option<&PeerPassword>) -> Result<BgpPeer, Problem> {
        let p = self
            .client
            .create_bgp_peer(plan::peer_body(self.ep, password))
            .await?;
        info!(cell = %self.ep.spec.cell, peer = %p.id, peer_ip = %p.peer_ip, remote_as = p.remote_as, "created Neutron BGP peer");
        Ok(p)
    }
}

/// Takes this endpoint's peer and network off the speaker, deletes the peer, and the speaker
/// when no other peer uses it. Clears their ids in `status` as they go. Only what passes the
/// ownership checks is touched: an id in status that names someone else's object is dropped
/// from status with a warning, the object left as it is.
pub(super) async fn remove(
    client: &NeutronClient,
    ep: &InfraEndpoint,
    status: &mut NeutronStatus,
) -> Result<(), NeutronError> {
    let speaker = match status.bgp_speaker_id.clone() {
        Some(id) => client.bgp_speaker(&id).await?,
        None => None,
    };
    let speaker = speaker.filter(|s| owned_or_warn(ep, "BGP speaker", &s.id, plan::is_cells_speaker(ep, s)));
    let peer = match status.bgp_peer_id.clone() {
        Some(id) => client.bgp_peer(&id).await?,
        None => None,
    };
    let peer = peer.filter(|p| owned_or_warn(ep, "BGP peer", &p.id, plan::is_our_peer(ep, p, true)));
    if let Some(s) = &speaker {
        if let Some(net) = status.network_id.as_ref().filter(|n| s.networks.contains(n)) {
            client
                .speaker_action(&s.id, "remove_gateway_network", "network_id", net)
                .await?;
        }
        if let Some(p) = peer.as_ref().filter(|p| s.peers.contains(&p.id)) {
            client
                .speaker_action(&s.id, "remove_bgp_peer", "bgp_peer_id", &p.id)
                .await?;
        }
    }
    if let Some(p) = peer {
        client.delete(&format!("/bgp-peers/{}", p.id)).await?;
    }
    status.bgp_peer_id = None;
    status.applied_password_secret_version = None;
    if let Some(s) = speaker
        && let Some(s) = client.bgp_speaker(&s.id).await?
        && s.peers.is_empty()
    {
        client.delete(&format!("/bgp-speakers/{}", s.id)).await?;
    }
    status.bgp_speaker_id = None;
    Ok(())
}

/// `owned`, with a warning when it is not: status named an object cellnet did not create.
fn owned_or_warn(ep: &InfraEndpoint, what: &str, id: &str, owned: bool) -> bool {
    if !owned {
        let endpoint = ep.name_any();
        warn!(cell = %ep.spec.cell, %endpoint, %id, "status names a Neutron {what} that is not cellnet's: left untouched");
    }
    owned
}
