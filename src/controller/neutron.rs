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
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::{Value, json};
use tracing::info;

use super::Context;
use super::error::Result;
use super::target;
use crate::api::conditions::{remove_condition, set_condition};
use crate::api::infra_endpoint::{CloudSecretRef, NeutronSpec, NeutronStatus};
use crate::api::{ConditionType, InfraEndpoint, InfraEndpointStatus};
use crate::neutron::{BgpSpeaker, Network, NeutronClient, NeutronError, clouds};

/// Kept on InfraEndpoints with `spec.neutron` until what cellnet created in Neutron is gone.
pub const FINALIZER: &str = "cellnet.io/neutron-cleanup";
/// Tag keys on networks and subnets.
pub const CELL_TAG: &str = "cellnet.io/cell";
pub const OWNER_TAG: &str = "cellnet.io/owner";
/// `cellnet.io/deletion-policy: Orphan` releases the finalizer without touching Neutron.
const DELETION_POLICY: &str = "cellnet.io/deletion-policy";

/// One client per cloud (namespace, Secret, key, cloud name), replaced when the file changes.
pub struct NeutronClients {
    clients: Mutex<HashMap<String, Arc<NeutronClient>>>,
    /// `status.neutron` this process wrote last, per endpoint uid, until the cache shows it.
    written: Mutex<HashMap<String, Written>>,
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
            written: Mutex::default(),
            cells: Mutex::default(),
            resync,
            timeout,
        }
    }

    fn get(&self, key: &str, cloud: clouds::Cloud) -> std::result::Result<Arc<NeutronClient>, NeutronError> {
        let mut clients = self.clients.lock().expect("neutron clients lock");
        if let Some(c) = clients.get(key).filter(|c| c.cloud() == &cloud) {
            return Ok(c.clone());
        }
        let client = Arc::new(NeutronClient::new(cloud, self.timeout)?);
        clients.insert(key.to_string(), client.clone());
        Ok(client)
    }
}

/// Our last write of `status.neutron` and the values the cache may still show instead of it.
struct Written {
    latest: Option<NeutronStatus>,
    stale: Vec<Option<NeutronStatus>>,
}

impl NeutronClients {
    /// `status.neutron` as this process knows it. The informer cache can lag one watch event
    /// behind our own status write; a reconcile that trusted the older ids (or the older applied
    /// password version) would replace the BGP peer it had just made. Someone else's write (a
    /// value we never saw) wins over the memo.
    pub fn known_status(&self, ep: &InfraEndpoint) -> Option<NeutronStatus> {
        let cached = ep.status.as_ref().and_then(|s| s.neutron.clone());
        let Some(uid) = ep.uid() else { return cached };
        let mut written = self.written.lock().expect("neutron status memo lock");
        match written.get(&uid) {
            Some(w) if w.latest != cached && w.stale.contains(&cached) => w.latest.clone(),
            Some(_) => {
                written.remove(&uid);
                cached
            }
            None => cached,
        }
    }

    /// Remembers that `after` was written over what the cache showed.
    pub fn remember_write(&self, ep: &InfraEndpoint, after: Option<NeutronStatus>) {
        let Some(uid) = ep.uid() else { return };
        let cached = ep.status.as_ref().and_then(|s| s.neutron.clone());
        let mut written = self.written.lock().expect("neutron status memo lock");
        let w = written.entry(uid).or_insert_with(|| Written {
            latest: None,
            stale: Vec::new(),
        });
        let previous = std::mem::replace(&mut w.latest, after);
        for old in [cached, previous] {
            if !w.stale.contains(&old) && old != w.latest {
                w.stale.push(old);
            }
        }
        // Bounded: the cache catches up within one watch event; a long chain means it never will.
        if w.stale.len() > 16 {
            w.stale.remove(0);
        }
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

    /// Forgets an endpoint (deleted).
    pub fn forget(&self, ep: &InfraEndpoint) {
        if let Some(uid) = ep.uid() {
            self.written
                .lock()
                .expect("neutron status memo lock")
                .remove(&uid);
        }
    }
}

/// The result of the Neutron step, folded into status by the endpoint reconciler.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
    /// Cannot progress without a change (conflict, bad reference, Neutron refusing the input).
    pub stalled: bool,
    /// `status.neutron` to write (`None`: remove it, after a cleanup).
    pub status: Option<NeutronStatus>,
}

impl Outcome {
    fn failed(reason: &'static str, message: String, stalled: bool, status: NeutronStatus) -> Self {
        Self {
            ok: false,
            reason,
            message,
            stalled,
            status: Some(status),
        }
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

/// Writes the outcome into `status` (`status.neutron` and the `NeutronConfigured` condition).
pub fn fold_status(status: &mut InfraEndpointStatus, outcome: &Outcome, generation: Option<i64>, now: &Time) {
    status.neutron = outcome.status.clone();
    if outcome.status.is_none() {
        remove_condition(&mut status.conditions, ConditionType::NeutronConfigured);
    } else {
        set_condition(
            &mut status.conditions,
            ConditionType::NeutronConfigured,
            outcome.ok,
            outcome.reason,
            &outcome.message,
            generation,
            now,
        );
    }
}

fn network_name(ep: &InfraEndpoint, spec: &NeutronSpec) -> String {
    spec.network
        .name
        .clone()
        .unwrap_or_else(|| format!("cellnet-{}-{}", ep.spec.cell, ep.name_any()))
}

fn speaker_name(ep: &InfraEndpoint) -> String {
    format!("cellnet-{}", ep.spec.cell)
}

fn peer_name(ep: &InfraEndpoint) -> String {
    format!("cellnet-{}-{}", ep.spec.cell, ep.name_any())
}

fn owner_tag(ep: &InfraEndpoint) -> String {
    format!("{OWNER_TAG}={}", ep.uid().unwrap_or_default())
}

fn cell_tag(ep: &InfraEndpoint) -> String {
    format!("{CELL_TAG}={}", ep.spec.cell)
}

/// The client of the cloud in `secret_ref`/`cloud`, or the outcome that says why there is none.
async fn client_for(
    ctx: &Context,
    ep: &InfraEndpoint,
    secret_ref: &CloudSecretRef,
    cloud: &str,
    status: &NeutronStatus,
) -> Result<std::result::Result<Arc<NeutronClient>, Outcome>> {
    let ns = ep.namespace().unwrap_or_default();
    let cell = &ep.spec.cell;
    let yaml = match target::read_secret_key(ctx, &ns, &secret_ref.name, &secret_ref.key).await? {
        Ok(s) => s.value,
        Err(p) => {
            return Ok(Err(Outcome::failed(
                "SecretNotFound",
                format!("cell {cell}: Neutron credentials: {}", p.message),
                true,
                status.clone(),
            )));
        }
    };
    let cloud = match clouds::parse(&yaml, cloud) {
        Ok(c) => c,
        Err(e) => {
            return Ok(Err(Outcome::failed(
                "InvalidCloud",
                format!(
                    "cell {cell}: Secret {ns}/{} key {:?}: {e}",
                    secret_ref.name, secret_ref.key
                ),
                true,
                status.clone(),
            )));
        }
    };
    let key = format!("{ns}/{}/{}/{}", secret_ref.name, secret_ref.key, cloud.name);
    Ok(ctx
        .neutron
        .get(&key, cloud)
        .map_err(|e| neutron_failed(ep, e, status.clone())))
}

fn neutron_failed(ep: &InfraEndpoint, e: NeutronError, mut status: NeutronStatus) -> Outcome {
    status.reachable = Some(!matches!(e, NeutronError::Unreachable(_)));
    let stalled = !e.is_transient();
    Outcome::failed(
        e.reason().as_str(),
        format!("cell {}: {e}", ep.spec.cell),
        stalled,
        status,
    )
}

/// Brings Neutron to `spec.neutron`. Never fails for Neutron's sake: problems are outcomes.
pub async fn reconcile(ep: &InfraEndpoint, ctx: &Context) -> Result<Outcome> {
    let Some(spec) = ep.spec.neutron.as_ref() else {
        return Ok(Outcome {
            ok: true,
            reason: "NotConfigured",
            message: String::new(),
            stalled: false,
            status: None,
        });
    };
    let _cell = ctx.neutron.lock_cell(&ep.spec.cell).await;
    let mut status = ctx.neutron.known_status(ep).unwrap_or_default();
    status.cloud = Some(spec.cloud.clone());
    status.cloud_secret_ref = Some(spec.cloud_secret_ref.clone());
    let client = match client_for(ctx, ep, &spec.cloud_secret_ref, &spec.cloud, &status).await? {
        Ok(c) => c,
        Err(o) => return Ok(o),
    };
    // The password is read before touching Neutron, so a missing Secret changes nothing.
    let password = match spec.bgp.as_ref().and_then(|b| b.password_secret_ref.as_ref()) {
        None => None,
        Some(r) => {
            let ns = ep.namespace().unwrap_or_default();
            match target::read_secret_key(ctx, &ns, &r.name, &r.key).await? {
                Ok(s) => Some((s.value, s.version)),
                Err(p) => {
                    return Ok(Outcome::failed(
                        "SecretNotFound",
                        format!("cell {}: BGP password: {}", ep.spec.cell, p.message),
                        true,
                        status,
                    ));
                }
            }
        }
    };
    match apply(ep, spec, &client, &mut status, password).await {
        Ok(Ok(message)) => {
            status.reachable = Some(true);
            Ok(Outcome {
                ok: true,
                reason: "NeutronConfigured",
                message,
                stalled: false,
                status: Some(status),
            })
        }
        Ok(Err(conflict)) => {
            status.reachable = Some(true);
            Ok(Outcome::failed("NeutronConflict", conflict, true, status))
        }
        Err(e) => Ok(neutron_failed(ep, e, status)),
    }
}

/// The steps against Neutron; `Ok(Err(msg))` for a conflict (nothing changed).
async fn apply(
    ep: &InfraEndpoint,
    spec: &NeutronSpec,
    client: &NeutronClient,
    status: &mut NeutronStatus,
    password: Option<(String, String)>,
) -> std::result::Result<std::result::Result<String, String>, NeutronError> {
    let cell = &ep.spec.cell;
    let owner = owner_tag(ep);
    let name = network_name(ep, spec);
    let net = match ensure_network(ep, spec, client, status, &name, &owner).await? {
        Ok(n) => n,
        Err(conflict) => return Ok(Err(conflict)),
    };
    status.network_id = Some(net.id.clone());

    // Subnet: ours if its id is in status or it carries the owner tag, on our network.
    let mut subnet = match &status.subnet_id {
        Some(id) => client
            .subnet(id)
            .await?
            .filter(|s| s.network_id == net.id && s.tags.contains(&owner)),
        None => None,
    };
    if subnet.is_none() {
        subnet = client
            .subnets_of(&net.id)
            .await?
            .into_iter()
            .find(|s| s.tags.contains(&owner));
    }
    let want_pools: Vec<Value> = spec
        .subnet
        .allocation_pools
        .iter()
        .map(|p| json!({"start": p.start, "end": p.end}))
        .collect();
    if let Some(s) = subnet.as_ref().filter(|s| s.cidr != spec.subnet.cidr) {
        info!(cell = %cell, subnet = %s.id, "Neutron subnet CIDR changed: replacing the subnet");
        client.delete(&format!("/subnets/{}", s.id)).await?;
        subnet = None;
    }
    let subnet = match subnet {
        Some(s) => {
            let mut update = serde_json::Map::new();
            if s.gateway_ip != spec.subnet.gateway_ip {
                update.insert("gateway_ip".into(), json!(spec.subnet.gateway_ip));
            }
            let have_pools: Vec<Value> = s
                .allocation_pools
                .iter()
                .map(|p| json!({"start": p.start, "end": p.end}))
                .collect();
            if !want_pools.is_empty() && have_pools != want_pools {
                update.insert("allocation_pools".into(), json!(want_pools));
            }
            if !update.is_empty() {
                client.update_subnet(&s.id, Value::Object(update)).await?;
            }
            s
        }
        None => {
            let ip_version = if spec.subnet.cidr.contains(':') { 6 } else { 4 };
            let mut body = json!({
                "name": name,
                "network_id": net.id,
                "ip_version": ip_version,
                "cidr": spec.subnet.cidr,
                "gateway_ip": spec.subnet.gateway_ip,
                "enable_dhcp": false,
            });
            if !want_pools.is_empty() {
                body["allocation_pools"] = json!(want_pools);
            }
            let s = client.create_subnet(body).await?;
            info!(cell = %cell, subnet = %s.id, cidr = %s.cidr, "created Neutron subnet");
            s
        }
    };
    ensure_tags(
        client,
        "subnets",
        &subnet.id,
        &subnet.tags,
        [cell_tag(ep), owner.clone()],
    )
    .await?;
    status.subnet_id = Some(subnet.id.clone());

    let Some(bgp) = spec.bgp.as_ref() else {
        remove_bgp(client, status).await?;
        return Ok(Ok(format!(
            "cell {cell}: Neutron network {name} ({}) with subnet {}",
            net.id, spec.subnet.cidr
        )));
    };

    // The cell's speaker: by id, else by name (shared by the cell's endpoints).
    let ip_version: u8 = if ep.spec.address.contains(':') { 6 } else { 4 };
    let mut speaker = match &status.bgp_speaker_id {
        Some(id) => client.bgp_speaker(id).await?,
        None => None,
    };
    if speaker.is_none() {
        speaker = client
            .bgp_speakers_named(&speaker_name(ep))
            .await?
            .into_iter()
            .find(|s| s.ip_version == ip_version);
    }
    if let Some(s) = speaker
        .as_ref()
        .filter(|s| s.local_as != bgp.local_as || s.ip_version != ip_version)
    {
        // The speaker is the cell's, shared by its endpoints: replacing it while another
        // endpoint's peer is on it would cut that peer, and two specs would replace it in turn.
        let others: Vec<&String> = s
            .peers
            .iter()
            .filter(|p| status.bgp_peer_id.as_ref() != Some(*p))
            .collect();
        if !others.is_empty() {
            return Ok(Err(format!(
                "cell {cell}: Neutron BGP speaker {} ({}) runs AS {} with {} other peer(s) on it; \
                 this endpoint asks for AS {}: give the cell's endpoints one bgp.localAs; nothing changed",
                s.name,
                s.id,
                s.local_as,
                others.len(),
                bgp.local_as
            )));
        }
        info!(cell = %cell, speaker = %s.id, from = s.local_as, to = bgp.local_as, "Neutron BGP speaker local_as changed: replacing the speaker");
        client.delete(&format!("/bgp-speakers/{}", s.id)).await?;
        speaker = None;
    }
    let mut speaker: BgpSpeaker = match speaker {
        Some(s) => {
            if s.advertise_tenant_networks != bgp.advertise_tenant_networks
                || s.advertise_floating_ip_host_routes != bgp.advertise_floating_ip_host_routes
            {
                client
                    .update_bgp_speaker(
                        &s.id,
                        json!({
                            "advertise_tenant_networks": bgp.advertise_tenant_networks,
                            "advertise_floating_ip_host_routes": bgp.advertise_floating_ip_host_routes,
                        }),
                    )
                    .await?;
            }
            s
        }
        None => {
            let s = client
                .create_bgp_speaker(json!({
                    "name": speaker_name(ep),
                    "local_as": bgp.local_as,
                    "ip_version": ip_version,
                    "advertise_tenant_networks": bgp.advertise_tenant_networks,
                    "advertise_floating_ip_host_routes": bgp.advertise_floating_ip_host_routes,
                }))
                .await?;
            info!(cell = %cell, speaker = %s.id, local_as = s.local_as, "created Neutron BGP speaker");
            s
        }
    };
    status.bgp_speaker_id = Some(speaker.id.clone());

    // The peer that is this endpoint.
    let mut peer = match &status.bgp_peer_id {
        Some(id) => client.bgp_peer(id).await?,
        None => None,
    };
    if peer.is_none() {
        peer = client.bgp_peers_named(&peer_name(ep)).await?.into_iter().next();
    }
    let want_version = password.as_ref().map(|(_, v)| v.clone());
    let want_auth = if password.is_some() { "md5" } else { "none" };
    if let Some(p) = peer.as_ref().filter(|p| {
        p.remote_as != ep.spec.asn
            || !same_ip(&p.peer_ip, &ep.spec.address)
            || p.auth_type != want_auth
            || status.applied_password_secret_version != want_version
    }) {
        info!(cell = %cell, peer = %p.id, "Neutron BGP peer changed (remote_as, peer_ip or password): replacing the peer");
        if speaker.peers.contains(&p.id) {
            client
                .speaker_action(&speaker.id, "remove_bgp_peer", "bgp_peer_id", &p.id)
                .await?;
            speaker.peers.retain(|id| id != &p.id);
        }
        client.delete(&format!("/bgp-peers/{}", p.id)).await?;
        peer = None;
    }
    let peer = match peer {
        Some(p) => p,
        None => {
            let mut body = json!({
                "name": peer_name(ep),
                "peer_ip": ep.spec.address,
                "remote_as": ep.spec.asn,
                "auth_type": want_auth,
            });
            if let Some((pw, _)) = &password {
                body["password"] = json!(pw);
            }
            let p = client.create_bgp_peer(body).await?;
            info!(cell = %cell, peer = %p.id, peer_ip = %p.peer_ip, remote_as = p.remote_as, "created Neutron BGP peer");
            p
        }
    };
    status.bgp_peer_id = Some(peer.id.clone());
    status.applied_password_secret_version = want_version;
    if !speaker.peers.contains(&peer.id) {
        client
            .speaker_action(&speaker.id, "add_bgp_peer", "bgp_peer_id", &peer.id)
            .await?;
    }
    if !speaker.networks.contains(&net.id) {
        client
            .speaker_action(&speaker.id, "add_gateway_network", "network_id", &net.id)
            .await?;
    }
    Ok(Ok(format!(
        "cell {cell}: Neutron network {name} ({}) with subnet {}; BGP speaker {} (AS {}) peers with {} (AS {})",
        net.id, spec.subnet.cidr, speaker.name, speaker.local_as, peer.peer_ip, peer.remote_as
    )))
}

/// Adds `ours` to the tags of a network or subnet, keeping every other tag.
async fn ensure_tags(
    client: &NeutronClient,
    collection: &str,
    id: &str,
    have: &[String],
    ours: [String; 2],
) -> std::result::Result<(), NeutronError> {
    if ours.iter().all(|t| have.contains(t)) {
        return Ok(());
    }
    let mut tags = have.to_vec();
    tags.extend(ours.into_iter().filter(|t| !have.contains(t)));
    client.set_tags(collection, id, &tags).await
}

fn same_ip(a: &str, b: &str) -> bool {
    match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The provider network: ours by id and owner tag, or by owner tag; a same-named network that is
/// not ours is a conflict (`Ok(Err(message))`), nothing changed.
async fn ensure_network(
    ep: &InfraEndpoint,
    spec: &NeutronSpec,
    client: &NeutronClient,
    status: &NeutronStatus,
    name: &str,
    owner: &str,
) -> std::result::Result<std::result::Result<Network, String>, NeutronError> {
    let cell = &ep.spec.cell;
    let n = &spec.network;
    let mut net = match &status.network_id {
        Some(id) => client
            .network(id)
            .await?
            .filter(|x| x.tags.iter().any(|t| t == owner)),
        None => None,
    };
    if net.is_none() {
        net = client.networks_tagged(owner).await?.into_iter().next();
    }
    if net.is_none()
        && let Some(other) = client.networks_named(name).await?.into_iter().next()
    {
        return Ok(Err(format!(
            "cell {cell}: Neutron already has a network named {name:?} ({}) that cellnet does not own \
             (no tag {owner}); nothing changed",
            other.id
        )));
    }
    // Provider attributes cannot be updated in place: a change replaces the network.
    if let Some(x) = net.as_ref().filter(|x| {
        x.network_type.as_deref() != Some(n.network_type.as_str())
            || x.physical_network.as_deref() != Some(n.physical_network.as_str())
            || x.segmentation_id != n.segmentation_id.map(u32::from)
    }) {
        info!(cell = %cell, network = %x.id, "Neutron provider attributes changed: replacing the network");
        client.delete(&format!("/networks/{}", x.id)).await?;
        net = None;
    }
    let net = match net {
        Some(x) => {
            let mut update = serde_json::Map::new();
            if x.name != name {
                update.insert("name".into(), json!(name));
            }
            if x.external != n.external {
                update.insert("router:external".into(), json!(n.external));
            }
            if let Some(mtu) = n.mtu.filter(|m| x.mtu != Some(*m)) {
                update.insert("mtu".into(), json!(mtu));
            }
            if !update.is_empty() {
                info!(cell = %cell, network = %x.id, "Neutron network drifted: updating it");
                client.update_network(&x.id, Value::Object(update)).await?;
            }
            x
        }
        None => {
            let mut body = json!({
                "name": name,
                "provider:network_type": n.network_type.as_str(),
                "provider:physical_network": n.physical_network,
                "router:external": n.external,
                "description": format!("cellnet: infrastructure network of cell {cell} ({}/{})",
                    ep.namespace().unwrap_or_default(), ep.name_any()),
            });
            if let Some(id) = n.segmentation_id {
                body["provider:segmentation_id"] = json!(id);
            }
            if let Some(mtu) = n.mtu {
                body["mtu"] = json!(mtu);
            }
            if !n.availability_zone_hints.is_empty() {
                body["availability_zone_hints"] = json!(n.availability_zone_hints);
            }
            let x = client.create_network(body).await?;
            info!(cell = %cell, network = %x.id, name = %name, "created Neutron network");
            x
        }
    };
    ensure_tags(
        client,
        "networks",
        &net.id,
        &net.tags,
        [cell_tag(ep), owner.to_string()],
    )
    .await?;
    Ok(Ok(net))
}

/// Takes this endpoint's peer and network off the speaker, deletes the peer, and the speaker
/// when no other peer uses it.
async fn remove_bgp(
    client: &NeutronClient,
    status: &mut NeutronStatus,
) -> std::result::Result<(), NeutronError> {
    if let Some(speaker_id) = status.bgp_speaker_id.clone()
        && let Some(s) = client.bgp_speaker(&speaker_id).await?
    {
        if let Some(net) = status.network_id.as_ref().filter(|n| s.networks.contains(n)) {
            client
                .speaker_action(&s.id, "remove_gateway_network", "network_id", net)
                .await?;
        }
        if let Some(peer) = status.bgp_peer_id.as_ref().filter(|p| s.peers.contains(p)) {
            client
                .speaker_action(&s.id, "remove_bgp_peer", "bgp_peer_id", peer)
                .await?;
        }
    }
    if let Some(peer) = status.bgp_peer_id.clone() {
        client.delete(&format!("/bgp-peers/{peer}")).await?;
        status.bgp_peer_id = None;
    }
    status.applied_password_secret_version = None;
    if let Some(speaker_id) = status.bgp_speaker_id.clone() {
        if let Some(s) = client.bgp_speaker(&speaker_id).await?
            && s.peers.is_empty()
        {
            client.delete(&format!("/bgp-speakers/{}", s.id)).await?;
        }
        status.bgp_speaker_id = None;
    }
    Ok(())
}

/// Deletes what cellnet created for this endpoint, in reverse order. `ok` when all is gone
/// (then `status` is `None`); otherwise the finalizer stays and the outcome says why.
pub async fn cleanup(ep: &InfraEndpoint, ctx: &Context) -> Result<Outcome> {
    let _cell = ctx.neutron.lock_cell(&ep.spec.cell).await;
    let mut status = ctx.neutron.known_status(ep).unwrap_or_default();
    let done = Outcome {
        ok: true,
        reason: "NeutronCleanedUp",
        message: String::new(),
        stalled: false,
        status: None,
    };
    if ep.annotations().get(DELETION_POLICY).map(String::as_str) == Some("Orphan") {
        return Ok(done);
    }
    // The spec when it is still there, else what status remembers.
    let (secret_ref, cloud) = match (&ep.spec.neutron, &status.cloud_secret_ref, &status.cloud) {
        (Some(spec), _, _) => (spec.cloud_secret_ref.clone(), spec.cloud.clone()),
        (None, Some(r), Some(c)) => (r.clone(), c.clone()),
        // Never configured anything.
        _ => return Ok(done),
    };
    let client = match client_for(ctx, ep, &secret_ref, &cloud, &status).await? {
        Ok(c) => c,
        Err(o) => return Ok(o),
    };
    let owner = owner_tag(ep);
    let result: std::result::Result<(), NeutronError> = async {
        remove_bgp(&client, &mut status).await?;
        if let Some(id) = status.subnet_id.clone() {
            if client.subnet(&id).await?.is_some_and(|s| s.tags.contains(&owner)) {
                client.delete(&format!("/subnets/{id}")).await?;
            }
            status.subnet_id = None;
        }
        // By id, and any other network carrying our owner tag (a create whose status was lost).
        let mut nets: Vec<String> = client
            .networks_tagged(&owner)
            .await?
            .into_iter()
            .map(|n| n.id)
            .collect();
        if let Some(id) = status.network_id.clone()
            && client
                .network(&id)
                .await?
                .is_some_and(|n| n.tags.contains(&owner))
            && !nets.contains(&id)
        {
            nets.push(id);
        }
        for id in nets {
            client.delete(&format!("/networks/{id}")).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            info!(cell = %ep.spec.cell, endpoint = %ep.name_any(), "removed what cellnet created in Neutron");
            Ok(done)
        }
        Err(e) => {
            let mut o = neutron_failed(ep, e, status);
            o.message = format!("cleanup: {}", o.message);
            Ok(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(peer: Option<&str>) -> InfraEndpoint {
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
            "metadata": {"name": "ep1", "namespace": "ns", "uid": "u1"},
            "spec": {"cell": "c1", "address": "10.0.0.1", "asn": 65001},
            "status": {"neutron": {"bgpPeerId": peer}},
        }))
        .unwrap()
    }

    fn peer_of(s: Option<NeutronStatus>) -> Option<String> {
        s.and_then(|s| s.bgp_peer_id)
    }

    #[test]
    fn a_cache_behind_our_own_write_is_not_trusted() {
        let clients = NeutronClients::new(Duration::from_secs(1), Duration::from_secs(1));
        // Cache shows no peer; we wrote peer "a", then "b" before the cache caught up.
        let mut written = ep(None).status.unwrap().neutron;
        written.as_mut().unwrap().bgp_peer_id = Some("a".into());
        clients.remember_write(&ep(None), written.clone());
        assert_eq!(peer_of(clients.known_status(&ep(None))), Some("a".into()));
        written.as_mut().unwrap().bgp_peer_id = Some("b".into());
        clients.remember_write(&ep(None), written);
        for stale in [None, Some("a")] {
            assert_eq!(peer_of(clients.known_status(&ep(stale))), Some("b".into()));
        }
        // The cache caught up: the memo is dropped.
        assert_eq!(peer_of(clients.known_status(&ep(Some("b")))), Some("b".into()));
        assert!(clients.written.lock().unwrap().is_empty());
    }

    #[test]
    fn someone_elses_write_wins_over_the_memo() {
        let clients = NeutronClients::new(Duration::from_secs(1), Duration::from_secs(1));
        let mut written = ep(None).status.unwrap().neutron;
        written.as_mut().unwrap().bgp_peer_id = Some("a".into());
        clients.remember_write(&ep(None), written);
        assert_eq!(peer_of(clients.known_status(&ep(Some("x")))), Some("x".into()));
        // And the memo is gone: the older value is trusted again from now on.
        assert_eq!(peer_of(clients.known_status(&ep(None))), None);
    }
}
