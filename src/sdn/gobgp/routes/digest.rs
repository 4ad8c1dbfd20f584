//! A digest of cellnet's policy objects on a speaker, in three reads whatever their number: the
//! global import and export assignments (one call; policies in order, with cellnet's
//! statements) and the `cellnet-*` defined sets of both types. The speaker poll compares it between rounds: GoBGP has no event for
//! a policy or set changed by hand.
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use super::names;
use crate::sdn::SdnError;
use crate::sdn::gobgp::GoBgp;
use crate::sdn::gobgp::proto;

impl GoBgp {
    /// The digest (stable within this process, which is all the poll compares).
    pub async fn routes_digest(&self) -> Result<u64, SdnError> {
        let mut hasher = DefaultHasher::new();
        let mut assignments = self.assignments().await?;
        assignments.sort_by_key(|(direction, _)| *direction);
        for (direction, assignment) in &assignments {
            direction.hash(&mut hasher);
            for policy in &assignment.policies {
                // The order of everyone's policies matters (cellnet's must come first); only
                // cellnet's statements are its business.
                policy.name.hash(&mut hasher);
                if policy.name.starts_with(names::PREFIX) {
                    format!("{:?}", policy.statements).hash(&mut hasher);
                }
            }
        }
        for neighbor in [false, true] {
            let mut sets: Vec<String> = self
                .defined_sets(neighbor)
                .await?
                .into_iter()
                .filter(|s| s.name.starts_with(names::PREFIX))
                .map(|s| format!("{s:?}"))
                .collect();
            sets.sort();
            sets.hash(&mut hasher);
        }
        Ok(hasher.finish())
    }

    /// Every defined set of one type (PREFIX or NEIGHBOR).
    async fn defined_sets(&self, neighbor: bool) -> Result<Vec<proto::DefinedSet>, SdnError> {
        let mut client = self.client.clone();
        let request = proto::ListDefinedSetRequest {
            defined_type: super::wire::defined_set("", neighbor, &[]).defined_type,
            name: String::new(),
        };
        self.call("ListDefinedSet", async move {
            let mut stream = client.list_defined_set(request).await?.into_inner();
            let mut sets = Vec::new();
            while let Some(response) = stream.message().await? {
                sets.extend(response.defined_set);
            }
            Ok(sets)
        })
        .await
    }
}
