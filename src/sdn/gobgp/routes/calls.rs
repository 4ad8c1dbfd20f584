//! The GoBGP policy and RIB calls of the routes API, one thin method each (timeout and error
//! mapping come from [`GoBgp::call`]).
use crate::sdn::SdnError;
use crate::sdn::gobgp::GoBgp;
use crate::sdn::gobgp::proto;

use super::names::Direction;

/// The name of the global (not per-neighbour) policy assignment: per-neighbour policies are
/// refused ("non-rs-client peer ... doesn't have per peer policy") or, in `Peer.apply_policy`,
/// silently ignored for the non-route-server peers cellnet makes (seen on gobgpd 3.10).
const GLOBAL: &str = "global";

fn direction_proto(direction: Direction) -> i32 {
    match direction {
        Direction::Import => proto::PolicyDirection::Import as i32,
        Direction::Export => proto::PolicyDirection::Export as i32,
    }
}

impl GoBgp {
    /// The defined set `name` of that type, if it exists (GoBGP answers an empty stream for a
    /// missing name).
    pub(super) async fn defined_set(
        &self,
        name: &str,
        neighbor: bool,
    ) -> Result<Option<proto::DefinedSet>, SdnError> {
        let defined_type = super::wire::defined_set(name, neighbor, &[]).defined_type;
        self.defined_set_of_type(name, defined_type).await
    }

    /// The defined set `name` of GoBGP's `defined_type`, if it exists.
    pub(super) async fn defined_set_of_type(
        &self,
        name: &str,
        defined_type: i32,
    ) -> Result<Option<proto::DefinedSet>, SdnError> {
        let mut client = self.client.clone();
        let request = proto::ListDefinedSetRequest {
            defined_type,
            name: name.to_owned(),
        };
        let wanted = name.to_owned();
        self.call("ListDefinedSet", async move {
            let mut stream = client.list_defined_set(request).await?.into_inner();
            let mut found = None;
            while let Some(response) = stream.message().await? {
                if let Some(set) = response.defined_set.filter(|s| s.name == wanted) {
                    found = Some(set);
                }
            }
            Ok(found)
        })
        .await
    }

    /// cellnet's policy `name` with its statements, `None` if it does not exist (the server
    /// streams nothing then; the "not found" of `gobgp policy NAME` is the CLI's own).
    pub(super) async fn policy(&self, name: &str) -> Result<Option<proto::Policy>, SdnError> {
        let mut client = self.client.clone();
        let request = proto::ListPolicyRequest {
            name: name.to_owned(),
        };
        let wanted = name.to_owned();
        self.call("ListPolicy", async move {
            let mut stream = client.list_policy(request).await?.into_inner();
            let mut found = None;
            while let Some(response) = stream.message().await? {
                if let Some(policy) = response.policy.filter(|p| p.name == wanted) {
                    found = Some(policy);
                }
            }
            Ok(found)
        })
        .await
    }

    /// The global assignment of one direction: its policies in evaluation order and default.
    pub(super) async fn assignment(&self, direction: Direction) -> Result<proto::PolicyAssignment, SdnError> {
        let mut client = self.client.clone();
        let request = proto::ListPolicyAssignmentRequest {
            name: GLOBAL.to_owned(),
            direction: direction_proto(direction),
        };
        self.call("ListPolicyAssignment", async move {
            let mut stream = client.list_policy_assignment(request).await?.into_inner();
            let mut found = None;
            while let Some(response) = stream.message().await? {
                found = found.or(response.assignment);
            }
            Ok(found.unwrap_or_default())
        })
        .await
    }

    /// The global assignments of both directions, in one call (direction `UNKNOWN` lists both,
    /// server.go ListPolicyAssignment).
    pub(super) async fn assignments(&self) -> Result<Vec<(Direction, proto::PolicyAssignment)>, SdnError> {
        let mut client = self.client.clone();
        let request = proto::ListPolicyAssignmentRequest {
            name: GLOBAL.to_owned(),
            direction: proto::PolicyDirection::Unknown as i32,
        };
        let listed = self
            .call("ListPolicyAssignment", async move {
                let mut stream = client.list_policy_assignment(request).await?.into_inner();
                let mut listed = Vec::new();
                while let Some(response) = stream.message().await? {
                    listed.extend(response.assignment);
                }
                Ok(listed)
            })
            .await?;
        let of = |a: &proto::PolicyAssignment| {
            Direction::BOTH
                .into_iter()
                .find(|d| direction_proto(*d) == a.direction)
        };
        Ok(listed.into_iter().filter_map(|a| Some((of(&a)?, a))).collect())
    }

    pub(super) async fn add_defined_set(&self, set: proto::DefinedSet) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        let request = proto::AddDefinedSetRequest {
            defined_set: Some(set),
        };
        self.call(
            "AddDefinedSet",
            async move { client.add_defined_set(request).await },
        )
        .await
        .map(drop)
    }

    pub(super) async fn delete_defined_set(&self, set: proto::DefinedSet, all: bool) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        let request = proto::DeleteDefinedSetRequest {
            defined_set: Some(set),
            all,
        };
        self.call("DeleteDefinedSet", async move {
            client.delete_defined_set(request).await
        })
        .await
        .map(drop)
    }

    /// `AddPolicy` with one statement: creates the policy, or appends the statement to it.
    pub(super) async fn add_policy(&self, policy: &str, statement: proto::Statement) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        let request = proto::AddPolicyRequest {
            policy: Some(proto::Policy {
                name: policy.to_owned(),
                statements: vec![statement],
            }),
            refer_existing_statements: false,
        };
        self.call("AddPolicy", async move { client.add_policy(request).await })
            .await
            .map(drop)
    }

    /// Removes one statement from a policy, and the statement itself.
    pub(super) async fn delete_policy_statement(
        &self,
        policy: &str,
        statement: &str,
    ) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        let request = proto::DeletePolicyRequest {
            policy: Some(proto::Policy {
                name: policy.to_owned(),
                statements: vec![proto::Statement {
                    name: statement.to_owned(),
                    ..Default::default()
                }],
            }),
            preserve_statements: true,
            all: false,
        };
        self.call("DeletePolicy", async move { client.delete_policy(request).await })
            .await
            .map(drop)
    }

    /// Whether a statement of that name is defined (in a policy or not).
    pub(super) async fn statement_exists(&self, name: &str) -> Result<bool, SdnError> {
        let mut client = self.client.clone();
        let request = proto::ListStatementRequest {
            name: name.to_owned(),
        };
        let wanted = name.to_owned();
        self.call("ListStatement", async move {
            let mut stream = client.list_statement(request).await?.into_inner();
            let mut found = false;
            while let Some(response) = stream.message().await? {
                found |= response.statement.is_some_and(|s| s.name == wanted);
            }
            Ok(found)
        })
        .await
    }

    /// Deletes a statement that no policy uses (GoBGP refuses one in use).
    pub(super) async fn delete_statement(&self, name: &str) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        let request = proto::DeleteStatementRequest {
            statement: Some(proto::Statement {
                name: name.to_owned(),
                ..Default::default()
            }),
            all: true,
        };
        self.call("DeleteStatement", async move {
            client.delete_statement(request).await
        })
        .await
        .map(drop)
    }

    /// Deletes a whole policy and its statements.
    pub(super) async fn delete_policy(&self, policy: &str) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        let request = proto::DeletePolicyRequest {
            policy: Some(proto::Policy {
                name: policy.to_owned(),
                statements: Vec::new(),
            }),
            preserve_statements: false,
            all: true,
        };
        self.call("DeletePolicy", async move { client.delete_policy(request).await })
            .await
            .map(drop)
    }

    /// Replaces the global assignment's policy list, with the default action read before.
    pub(super) async fn set_assignment(
        &self,
        direction: Direction,
        policies: &[String],
        default_action: i32,
    ) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        let request = proto::SetPolicyAssignmentRequest {
            assignment: Some(proto::PolicyAssignment {
                name: GLOBAL.to_owned(),
                direction: direction_proto(direction),
                policies: policies.iter().map(|p| named_policy(p)).collect(),
                default_action,
            }),
        };
        self.call("SetPolicyAssignment", async move {
            client.set_policy_assignment(request).await
        })
        .await
        .map(drop)
    }

    /// Removes one policy from the global assignment (`all: false`: only the named one).
    pub(super) async fn delete_assignment(&self, direction: Direction, policy: &str) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        let request = proto::DeletePolicyAssignmentRequest {
            assignment: Some(proto::PolicyAssignment {
                name: GLOBAL.to_owned(),
                direction: direction_proto(direction),
                policies: vec![named_policy(policy)],
                default_action: 0,
            }),
            all: false,
        };
        self.call("DeletePolicyAssignment", async move {
            client.delete_policy_assignment(request).await
        })
        .await
        .map(drop)
    }

    pub(super) async fn reset_peer(&self, request: proto::ResetPeerRequest) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        self.call("ResetPeer", async move { client.reset_peer(request).await })
            .await
            .map(drop)
    }

    /// `ListPath`, stream drained under the timeout.
    pub(super) async fn list_paths(
        &self,
        request: proto::ListPathRequest,
    ) -> Result<Vec<proto::Destination>, SdnError> {
        let mut client = self.client.clone();
        let destinations = self
            .call("ListPath", async move {
                let mut stream = client.list_path(request).await?.into_inner();
                let mut destinations = Vec::new();
                while let Some(response) = stream.message().await? {
                    destinations.extend(response.destination);
                }
                Ok(destinations)
            })
            .await?;
        self.calls.listed(destinations.len());
        Ok(destinations)
    }

    pub(super) async fn add_path(&self, path: proto::Path) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        let request = proto::AddPathRequest {
            table_type: proto::TableType::Global as i32,
            vrf_id: String::new(),
            path: Some(path),
        };
        self.call("AddPath", async move { client.add_path(request).await })
            .await
            .map(drop)
    }

    /// `DeletePath` of one path. Takes the path itself, not an option: a request without one
    /// deletes every local path of the family, the operator's too (server.go DeletePath).
    pub(super) async fn delete_path(&self, path: proto::Path) -> Result<(), SdnError> {
        let mut client = self.client.clone();
        let request = proto::DeletePathRequest {
            table_type: proto::TableType::Global as i32,
            vrf_id: String::new(),
            family: path.family,
            path: Some(path),
            uuid: Vec::new(),
        };
        self.call("DeletePath", async move { client.delete_path(request).await })
            .await
            .map(drop)
    }
}

fn named_policy(name: &str) -> proto::Policy {
    proto::Policy {
        name: name.to_owned(),
        statements: Vec::new(),
    }
}
