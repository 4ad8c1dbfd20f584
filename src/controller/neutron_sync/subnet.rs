//! The subnet on the endpoint's network: found (by id in status, else by owner tag on that
//! network), then created, updated, replaced or kept as [`plan::subnet_change`] decides, and
//! tagged.
use tracing::info;

use super::Job;
use super::plan::{self, Change};
use crate::api::infra_endpoint::NeutronStatus;
use crate::controller::problem::Problem;
use crate::neutron::Subnet;

impl Job<'_> {
    /// The subnet of `network_id` as the spec wants it.
    pub(super) async fn ensure_subnet(
        &self,
        status: &NeutronStatus,
        name: &str,
        network_id: &str,
    ) -> Result<Subnet, Problem> {
        let found = self.find_subnet(status, network_id).await?;
        let cell = &self.ep.spec.cell;
        let subnet = match (plan::subnet_change(&self.spec.subnet, found.as_ref()), found) {
            (Change::Keep, Some(s)) => s,
            (Change::Update(fields), Some(s)) => {
                self.client.update_subnet(&s.id, fields).await?;
                s
            }
            (Change::Replace, Some(s)) => {
                info!(cell = %cell, subnet = %s.id, "Neutron subnet CIDR changed: replacing the subnet");
                self.client.delete(&format!("/subnets/{}", s.id)).await?;
                self.create_subnet(name, network_id).await?
            }
            _ => self.create_subnet(name, network_id).await?,
        };
        self.tag("subnets", &subnet.id, &subnet.tags).await?;
        Ok(subnet)
    }

    /// Ours: the subnet in status if it is on `network_id` with our owner tag, else one on
    /// `network_id` with that tag.
    async fn find_subnet(&self, status: &NeutronStatus, network_id: &str) -> Result<Option<Subnet>, Problem> {
        if let Some(id) = &status.subnet_id
            && let Some(s) = self.client.subnet(id).await?
            && s.network_id == network_id
            && s.tags.contains(&self.owner)
        {
            return Ok(Some(s));
        }
        let on_network = self.client.subnets_of(network_id).await?;
        Ok(on_network.into_iter().find(|s| s.tags.contains(&self.owner)))
    }

    async fn create_subnet(&self, name: &str, network_id: &str) -> Result<Subnet, Problem> {
        let body = plan::subnet_body(name, network_id, &self.spec.subnet);
        let s = self.client.create_subnet(body).await?;
        info!(cell = %self.ep.spec.cell, subnet = %s.id, cidr = %s.cidr, "created Neutron subnet");
        Ok(s)
    }
}
