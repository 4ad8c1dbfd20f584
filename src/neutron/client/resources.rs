//! The typed Neutron calls: networks, subnets, tags, BGP speakers and peers
//! (neutron-dynamic-routing).
use reqwest::Method;
use serde_json::{Value, json};

use super::http::enc;
use super::{BgpPeer, BgpSpeaker, Network, NeutronClient, NeutronError, Subnet};

impl NeutronClient {
    // Networks.
    pub async fn network(&self, id: &str) -> Result<Option<Network>, NeutronError> {
        self.get_one(&format!("/networks/{}", enc(id)), "network").await
    }
    pub async fn networks_named(&self, name: &str) -> Result<Vec<Network>, NeutronError> {
        self.list(&format!("/networks?name={}", enc(name)), "networks")
            .await
    }
    pub async fn networks_tagged(&self, tag: &str) -> Result<Vec<Network>, NeutronError> {
        self.list(&format!("/networks?tags={}", enc(tag)), "networks")
            .await
    }
    pub async fn create_network(&self, body: Value) -> Result<Network, NeutronError> {
        self.create("/networks", "network", body).await
    }
    pub async fn update_network(&self, id: &str, body: Value) -> Result<(), NeutronError> {
        self.update(&format!("/networks/{}", enc(id)), "network", body)
            .await
    }
    /// Sets the tags of a network or subnet (`PUT /{collection}/{id}/tags`). Tags with `/` cannot
    /// go through the one-tag URL, so callers pass the whole set (theirs and everyone else's).
    pub async fn set_tags(&self, collection: &str, id: &str, tags: &[String]) -> Result<(), NeutronError> {
        let path = format!("/{collection}/{}/tags", enc(id));
        match self
            .call(Method::PUT, &path, Some(json!({ "tags": tags })))
            .await?
        {
            Some(_) => Ok(()),
            None => Err(NeutronError::Api {
                status: 404,
                what: format!("PUT {path}"),
                message: format!("{collection} {id} not found"),
            }),
        }
    }

    // Subnets.
    pub async fn subnet(&self, id: &str) -> Result<Option<Subnet>, NeutronError> {
        self.get_one(&format!("/subnets/{}", enc(id)), "subnet").await
    }
    pub async fn subnets_of(&self, network_id: &str) -> Result<Vec<Subnet>, NeutronError> {
        self.list(&format!("/subnets?network_id={}", enc(network_id)), "subnets")
            .await
    }
    pub async fn create_subnet(&self, body: Value) -> Result<Subnet, NeutronError> {
        self.create("/subnets", "subnet", body).await
    }
    pub async fn update_subnet(&self, id: &str, body: Value) -> Result<(), NeutronError> {
        self.update(&format!("/subnets/{}", enc(id)), "subnet", body)
            .await
    }

    // BGP speakers and peers (neutron-dynamic-routing).
    pub async fn bgp_speaker(&self, id: &str) -> Result<Option<BgpSpeaker>, NeutronError> {
        self.get_one(&format!("/bgp-speakers/{}", enc(id)), "bgp_speaker")
            .await
    }
    pub async fn bgp_speakers_named(&self, name: &str) -> Result<Vec<BgpSpeaker>, NeutronError> {
        let all: Vec<BgpSpeaker> = self.list("/bgp-speakers", "bgp_speakers").await?;
        Ok(all.into_iter().filter(|s| s.name == name).collect())
    }
    pub async fn create_bgp_speaker(&self, body: Value) -> Result<BgpSpeaker, NeutronError> {
        self.create("/bgp-speakers", "bgp_speaker", body).await
    }
    pub async fn update_bgp_speaker(&self, id: &str, body: Value) -> Result<(), NeutronError> {
        self.update(&format!("/bgp-speakers/{}", enc(id)), "bgp_speaker", body)
            .await
    }
    /// `PUT /bgp-speakers/{id}/{action}` with `{key: value}` (add/remove peer or gateway network).
    pub async fn speaker_action(
        &self,
        id: &str,
        action: &str,
        key: &str,
        value: &str,
    ) -> Result<(), NeutronError> {
        self.call(
            Method::PUT,
            &format!("/bgp-speakers/{}/{action}", enc(id)),
            Some(json!({ key: value })),
        )
        .await
        .map(|_| ())
    }
    pub async fn bgp_peer(&self, id: &str) -> Result<Option<BgpPeer>, NeutronError> {
        self.get_one(&format!("/bgp-peers/{}", enc(id)), "bgp_peer").await
    }
    pub async fn bgp_peers_named(&self, name: &str) -> Result<Vec<BgpPeer>, NeutronError> {
        let all: Vec<BgpPeer> = self.list("/bgp-peers", "bgp_peers").await?;
        Ok(all.into_iter().filter(|p| p.name == name).collect())
    }
    pub async fn create_bgp_peer(&self, body: Value) -> Result<BgpPeer, NeutronError> {
        self.create("/bgp-peers", "bgp_peer", body).await
    }
}
