//! The Neutron part of the InfraEndpoint reconcile (`spec.neutron`): a provider network and its
//! subnet, and optionally the cell's BGP speaker with this endpoint as its peer and the network
//! as its gateway network, all through Neutron's API ([`crate::neutron`]).
//!
//! Ownership: cellnet changes or deletes only what it created: ids in `status.neutron`, and for
//! networks and subnets the tag `cellnet.io/owner=<uid>`. BGP speakers and peers have no tags;
//! cellnet recognises its own by id in status, or by the names it gives them
//! (`cellnet-<cell>` for the speaker, shared by the cell's endpoints, and
//! `cellnet-<cell>-<endpoint>` for the peer).
//!
//! Drift is repaired at every reconcile (every `--sdn-resync-interval` while `spec.neutron` is
//! set); read-only fields (`local_as`, `remote_as`, `peer_ip`) are changed by replacement.
//! Deletion (finalizer [`FINALIZER`]) removes everything in reverse order; 404 counts as done.
//!
//! Layout: [`plan`] decides (pure), [`network`], [`subnet`] and [`bgp`] call Neutron,
//! [`cleanup`] removes, [`memo`] covers the informer cache's lag behind our own status writes,
//! [`credentials`] reads the Secrets. This file holds the entry points and the client registry.
mod bgp;
mod cleanup;
mod credentials;
mod memo;
mod network;
mod outcome;
mod plan;
mod subnet;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Context;
use super::error::Result;
use super::speakers::health::AuthBackoff;
use crate::api::infra_endpoint::NeutronSpec;
use crate::api::{InfraEndpoint, Reason};
use crate::controller::problem::Problem;
use crate::neutron::{NeutronClient, NeutronError, clouds};
pub use cleanup::cleanup;
pub use outcome::{NeutronOutcome, fold_status};
pub use plan::PeerPassword;

/// Kept on InfraEndpoints with `spec.neutron` until what cellnet created in Neutron is gone.
pub const FINALIZER: &str = "cellnet.io/neutron-cleanup";
/// Tag keys on networks and subnets.
pub const CELL_TAG: &str = "cellnet.io/cell";
pub const OWNER_TAG: &str = "cellnet.io/owner";

/// Refused Keystone credentials of one cloud client back off like an SDN API's
/// (`--auth-failure-backoff`): a 401 is no reason to log in again every minute per endpoint.
pub type AuthGate = Arc<AuthBackoff<Problem>>;

/// One client per cloud (namespace, Secret, key, cloud name), replaced when the file changes.
pub struct NeutronClients {
    clients: Mutex<HashMap<String, (Arc<NeutronClient>, AuthGate)>>,
    auth_backoff: Duration,
    /// `status.neutron` this process wrote last, per endpoint uid, until the cache shows it.
    written: Mutex<HashMap<String, memo::Written>>,
    /// One Neutron reconcile at a time per cell: its endpoints share the cell's BGP speaker, and
    /// two cleanups at once would each see the other's peer and leave the speaker behind.
    cells: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// How often an endpoint with `spec.neutron` is checked for drift.
    pub resync: Duration,
    timeout: Duration,
}

impl NeutronClients {
    pub fn new(resync: Duration, timeout: Duration) -> Self {
        Self {
            clients: Mutex::default(),
            auth_backoff: Duration::from_secs(120),
            written: Mutex::default(),
            cells: Mutex::default(),
            resync,
            timeout,
        }
    }

    /// The first wait after Keystone refused a cloud's credentials (`--auth-failure-backoff`).
    pub fn with_auth_backoff(self, auth_backoff: Duration) -> Self {
        Self { auth_backoff, ..self }
    }

    /// The client of `cloud` under `key` and its gate, made anew (new credentials: no waiting)
    /// when the cloud's settings changed.
    fn get(
        &self,
        key: &str,
        cloud: clouds::Cloud,
    ) -> std::result::Result<(Arc<NeutronClient>, AuthGate), NeutronError> {
        let mut clients = self.clients.lock().expect("neutron clients lock");
        if let Some(c) = clients.get(key).filter(|(c, _)| c.cloud() == &cloud) {
            return Ok(c.clone());
        }
        let client = Arc::new(NeutronClient::new(cloud, self.timeout)?);
        let entry = (client, Arc::new(AuthBackoff::new(self.auth_backoff)));
        clients.insert(key.to_string(), entry.clone());
        Ok(entry)
    }

    async fn lock_cell(&self, cell: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .cells
            .lock()
            .expect("neutron cell locks")
            .entry(cell.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }
}

/// Whether the endpoint should carry [`FINALIZER`] now.
pub fn wants_finalizer(ep: &InfraEndpoint) -> bool {
    ep.spec.neutron.is_some() && ep.metadata.deletion_timestamp.is_none()
}

/// How soon to look again at a healthy endpoint with `spec.neutron`.
pub fn resync(ctx: &Context) -> Duration {
    ctx.neutron.resync
}

/// One endpoint's work against Neutron: the endpoint, its `spec.neutron` and its cloud's client.
struct Job<'a> {
    ep: &'a InfraEndpoint,
    spec: &'a NeutronSpec,
    client: &'a NeutronClient,
    /// The owner tag of this endpoint's networks and subnets.
    owner: String,
}

/// `cell <name>`, the prefix of every message about the endpoint.
fn cell_of(ep: &InfraEndpoint) -> String {
    format!("cell {}", ep.spec.cell)
}

/// Brings Neutron to `spec.neutron`. Never fails for Neutron's sake: problems are outcomes,
/// only a Kubernetes API error (reading a Secret) is an `Err`.
pub async fn reconcile(ep: &InfraEndpoint, ctx: &Context) -> Result<NeutronOutcome> {
    let Some(spec) = ep.spec.neutron.as_ref() else {
        return Ok(NeutronOutcome::removed());
    };
    let _cell = ctx.neutron.lock_cell(&ep.spec.cell).await;
    let mut status = ctx.neutron.known_status(ep).unwrap_or_default();
    status.cloud = Some(spec.cloud.clone());
    status.cloud_secret_ref = Some(spec.cloud_secret_ref.clone());
    let (client, gate) = match credentials::client(ctx, ep, &spec.cloud_secret_ref, &spec.cloud).await? {
        Ok(c) => c,
        Err(p) => return Ok(NeutronOutcome::failed(status, p.within(cell_of(ep)))),
    };
    let insecure = credentials::insecure(client.cloud());
    let outcome = match gate.admit(Instant::now()) {
        Err(last) => NeutronOutcome::failed(status, held_back(last)),
        Ok(()) => {
            let outcome = with_client(ctx, ep, spec, status, &client).await?;
            take_in(&gate, outcome.problem());
            outcome
        }
    };
    Ok(NeutronOutcome { insecure, ..outcome })
}

/// The last refusal, for an endpoint whose call was held back.
fn held_back(last: Problem) -> Problem {
    let message = format!(
        "{} (not retried until the backoff of refused credentials (--auth-failure-backoff) is over, \
         or the Secret changes)",
        last.message
    );
    Problem { message, ..last }
}

/// A refusal makes the gate wait longer; an answer of Neutron past authentication resets it.
fn take_in(gate: &AuthBackoff<Problem>, problem: Option<&Problem>) {
    match problem {
        Some(p) if p.reason == Reason::NeutronAuthFailed => gate.refused(p.clone(), Instant::now()),
        Some(p) if !matches!(p.reason, Reason::NeutronRejected | Reason::NeutronConflict) => {}
        _ => gate.accepted(),
    }
}

/// The Neutron step once the cloud's client is known.
async fn with_client(
    ctx: &Context,
    ep: &InfraEndpoint,
    spec: &NeutronSpec,
    mut status: crate::api::infra_endpoint::NeutronStatus,
    client: &NeutronClient,
) -> Result<NeutronOutcome> {
    // The password is read before touching Neutron, so a missing Secret changes nothing.
    let password = match credentials::peer_password(ctx, ep, spec.bgp.as_ref()).await? {
        Ok(p) => p,
        Err(p) => return Ok(NeutronOutcome::failed(status, p.within(cell_of(ep)))),
    };
    let job = Job {
        ep,
        spec,
        client,
        owner: plan::owner_tag(ep),
    };
    Ok(match job.apply(&mut status, password.as_ref()).await {
        Ok(message) => NeutronOutcome::configured(status, format!("{}: {message}", cell_of(ep))),
        Err(p) => NeutronOutcome::failed(status, p.within(cell_of(ep))),
    })
}

impl Job<'_> {
    /// The steps against Neutron, in order; each records the ids it made in `status` so that a
    /// later failure keeps them. The message says what is in place.
    async fn apply(
        &self,
        status: &mut crate::api::infra_endpoint::NeutronStatus,
        password: Option<&PeerPassword>,
    ) -> std::result::Result<String, Problem> {
        let name = plan::network_name(self.ep, self.spec);
        let net = self.ensure_network(status, &name).await?;
        status.network_id = Some(net.id.clone());
        let subnet = self.ensure_subnet(status, &name, &net.id).await?;
        status.subnet_id = Some(subnet.id);
        let cidr = &self.spec.subnet.cidr;
        let Some(bgp) = self.spec.bgp.as_ref() else {
            bgp::remove(self.client, self.ep, status).await?;
            return Ok(plan::configured_message(&name, &net, cidr, None));
        };
        let (speaker, peer) = self.ensure_bgp(bgp, status, &net.id, password).await?;
        Ok(plan::configured_message(
            &name,
            &net,
            cidr,
            Some((&speaker, &peer)),
        ))
    }
}

#[cfg(test)]
mod auth_tests {
    use super::*;

    #[test]
    fn a_keystone_refusal_holds_back_the_next_login_and_an_answer_clears_it() {
        let gate = AuthBackoff::new(Duration::from_secs(120));
        let refused = Problem::new(Reason::NeutronAuthFailed, "Keystone answered 401");
        take_in(&gate, Some(&refused));
        let held = held_back(gate.admit(Instant::now()).unwrap_err());
        assert_eq!(held.reason, Reason::NeutronAuthFailed);
        assert!(held.message.contains("401") && held.message.contains("--auth-failure-backoff"));
        take_in(&gate, Some(&Problem::new(Reason::SecretNotFound, "no Secret")));
        assert!(
            gate.admit(Instant::now()).is_err(),
            "no answer from Keystone: still waiting"
        );
        take_in(&gate, None);
        assert!(gate.admit(Instant::now()).is_ok());
    }
}
