//! The endpoint's provider network: found (by id in status, else by owner tag), then created,
//! updated, replaced or kept as [`plan::network_change`] decides, and tagged.
use tracing::info;

use super::Job;
use super::plan::{self, Change};
use crate::api::infra_endpoint::NeutronStatus;
use crate::controller::problem::Problem;
use crate::neutron::Network;

impl Job<'_> {
    /// The network named `name` as the spec wants it. A same-named network that is not ours is
    /// a conflict: nothing is changed.
    pub(super) async fn ensure_network(
        &self,
        status: &NeutronStatus,
        name: &str,
    ) -> Result<Network, Problem> {
        let provider = plan::provider(self.ep, &self.spec.network)?;
        let found = self.find_network(status).await?;
        if found.is_none()
            && let Some(other) = self.client.networks_named(name).await?.into_iter().next()
        {
            return Err(plan::network_not_ours(name, &other.id, &self.owner));
        }
        let cell = &self.ep.spec.cell;
        let net = match (
            plan::network_change(&self.spec.network, &provider, name, found.as_ref()),
            found,
        ) {
            (Change::Keep, Some(x)) => x,
            (Change::Update(fields), Some(x)) => {
                info!(cell = %cell, network = %x.id, "Neutron network drifted: updating it");
                self.client.update_network(&x.id, fields).await?;
                x
            }
            (Change::Replace, Some(x)) => {
                info!(cell = %cell, network = %x.id, "Neutron provider attributes changed: replacing the network");
                self.client.delete(&format!("/networks/{}", x.id)).await?;
                self.create_network(&provider, name).await?
            }
            _ => self.create_network(&provider, name).await?,
        };
        self.tag("networks", &net.id, &net.tags).await?;
        Ok(net)
    }

    /// Ours: the network in status if it still carries our owner tag, else one that does.
    async fn find_network(&self, status: &NeutronStatus) -> Result<Option<Network>, Problem> {
        if let Some(id) = &status.network_id
            && let Some(net) = self.client.network(id).await?
            && net.tags.contains(&self.owner)
        {
            return Ok(Some(net));
        }
        Ok(self.client.networks_tagged(&self.owner).await?.into_iter().next())
    }

    async fn create_network(&self, provider: &plan::Provider<'_>, name: &str) -> Result<Network, Problem> {
        let body = plan::network_body(self.ep, &self.spec.network, provider, name);
        let net = self.client.create_network(body).await?;
        info!(cell = %self.ep.spec.cell, network = %net.id, name = %name, "created Neutron network");
        Ok(net)
    }

    /// Puts the cell and owner tags on a network or subnet, keeping every other tag.
    pub(super) async fn tag(&self, collection: &str, id: &str, have: &[String]) -> Result<(), Problem> {
        let ours = [plan::cell_tag(self.ep), self.owner.clone()];
        if let Some(tags) = plan::tags_to_set(have, ours) {
            self.client.set_tags(collection, id, &tags).await?;
        }
        Ok(())
    }
}
