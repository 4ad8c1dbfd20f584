//! OpenDaylight backend: BGP neighbours through OpenDaylight's RFC 8040 RESTCONF northbound.
//!
//! Follows the OpenDaylight BGP user guide (bgpcep, `docs/bgp/`), in the RFC 8040 form the
//! bgpcep 0.21.x guide gives (`/rests/data/...`; the draft `/restconf` API is not used):
//! - bgp-user-guide-bgp-peering.rst, "BGP Peering": `POST .../bgp-openconfig-extensions:bgp/neighbors`
//!   creates a neighbour ([`model::neighbor`] lists the fields and the sections they come from);
//!   "Existing neighbor configuration can be reconfigured ... established connection is dropped":
//!   so a neighbour is rewritten (`PUT .../neighbor={address}`, RFC 8040 section 4.5) only when a
//!   compared field really differs;
//! - bgp-user-guide-operational-state.rst, "BGP Neighbors Operational State" and "BGP Neighbor
//!   Operational State" (`.../neighbor={address}/state`, `session-state`);
//! - bgp-user-guide-protocol-configuration.rst, "Protocol Configuration" (the BGP instance with
//!   its global `router-id` and `as`).
//!
//! Reads and deletes of one neighbour are the RFC 8040 section 4.3 / 4.7 operations on the list
//! entry `.../neighbors/neighbor={address}` (`200`/`404`, `204`/`404`).
//!
//! Ownership: the BGP user guide documents no free-text field on a neighbour that could carry
//! cellnet's marker. (The openconfig-bgp model OpenDaylight ships has a `description` leaf in
//! the neighbour `config`, but the guide never mentions it, so whether every release keeps and
//! returns it is undocumented; ownership must not rest on it.) So
//! its ownership is `crate::sdn::Ownership::Ledger`: the controller records on the
//! CellInterconnect (its ledger, written before the create, so it survives controller restarts
//! and status loss) which neighbours cellnet created, and tells this backend through
//! `PeerConfig::owned_record`. A neighbour that exists without that record
//! is reported as a conflict and never changed; [`crate::sdn::SdnBackend::remove_peer`] trusts the caller's
//! record.
//!
//! Not supported, because the guide documents no way to do it: administrative shutdown of a
//! neighbour (`admin_down`) and eBGP multihop; both are refused with [`SdnError::Unsupported`]
//! rather than approximated (deleting the neighbour to "shut it down" would lose it; the
//! model's undocumented `ebgp-multihop` container may be ignored by the peer implementation
//! without any error). The keepalive interval is not sent:
//! OpenDaylight derives it from the hold time (see [`model::neighbor`]).
//!
//! There is no change stream: [`crate::sdn::SdnBackend::watch`] returns `None` and the controller polls
//! [`crate::sdn::SdnBackend::list_peers`] every `--sdn-resync-interval`.
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Method;

mod backend;
pub mod client;
pub mod errors;
pub mod model;
mod routes;

use self::client::{Paths, Restconf};
use crate::sdn::{BackendKind, Credentials, OpenDaylightTarget, Password, SdnError, SdnTarget};

/// Default RIB id and network instance, the names the user guide's samples use.
pub const DEFAULT_RIB_ID: &str = "bgp-example";
pub const DEFAULT_NETWORK_INSTANCE: &str = "global-bgp";

/// An OpenDaylight target (for tests and tools): RESTCONF root, basic-auth credentials,
/// default RIB id and network instance.
pub fn target(url: impl Into<String>, username: &str, password: &str) -> SdnTarget {
    SdnTarget {
        kind: BackendKind::OpenDaylight,
        url: url.into(),
        ca_pem: None,
        insecure_skip_verify: false,
        credentials: Some(Credentials {
            username: username.to_owned(),
            password: Password::new(password),
        }),
        open_daylight: Some(OpenDaylightTarget {
            rib_id: DEFAULT_RIB_ID.to_owned(),
            network_instance: DEFAULT_NETWORK_INSTANCE.to_owned(),
            application_peer: None,
        }),
    }
}

/// A client for one OpenDaylight BGP instance (one RIB in one network instance).
#[derive(Debug)]
pub struct OpenDaylight {
    rest: Restconf,
    paths: Paths,
    /// `spec.sdn.openDaylight.applicationPeer`: whose programmable RIB carries the originated
    /// networks ([`routes`]).
    application_peer: Option<Ipv4Addr>,
    /// The instance's AS as last read (to choose `peer-type`); read again when unknown.
    local_asn: Mutex<Option<u32>>,
    /// Neighbours whose create was answered `409 data-exists`: someone else created them
    /// between our read and our create. The controller records a neighbour as cellnet's
    /// *before* creating it, so its record claims these too; until it forgets such records,
    /// this guard keeps cellnet from rewriting or deleting them for the life of the process.
    /// An address leaves the set when it is seen absent.
    lost_creates: Mutex<HashSet<IpAddr>>,
    /// This process created the application peer (`201`): [`routes`] may remove it once its
    /// RIB is empty after a withdrawal. Lost with the process (the peer then stays, empty).
    created_application_peer: Mutex<bool>,
}

impl OpenDaylight {
    /// Builds the client (no I/O). Every request times out after `timeout`.
    pub fn connect(target: &SdnTarget, timeout: Duration) -> Result<Self, SdnError> {
        if target.kind != BackendKind::OpenDaylight {
            return Err(SdnError::InvalidConfig(format!(
                "{} is not an OpenDaylight target",
                target.url
            )));
        }
        let settings = target
            .open_daylight
            .clone()
            .unwrap_or_else(|| OpenDaylightTarget {
                rib_id: DEFAULT_RIB_ID.to_owned(),
                network_instance: DEFAULT_NETWORK_INSTANCE.to_owned(),
                application_peer: None,
            });
        Ok(Self {
            rest: Restconf::new(target, timeout)?,
            paths: Paths::new(&settings.rib_id, &settings.network_instance),
            application_peer: settings.application_peer,
            local_asn: Mutex::new(None),
            lost_creates: Mutex::default(),
            created_application_peer: Mutex::default(),
        })
    }

    /// The RESTCONF root this client talks to.
    pub fn endpoint(&self) -> &str {
        self.rest.endpoint()
    }

    fn endpoint_owned(&self) -> String {
        self.rest.endpoint().to_owned()
    }

    /// The instance's global config (AS, router id); `None` when there is no such instance.
    async fn global(&self) -> Result<Option<(u32, Option<String>)>, SdnError> {
        let reply = self
            .rest
            .send(
                "read BGP global config",
                Method::GET,
                &self.paths.global_config(),
                None,
                true,
            )
            .await?;
        let Some(reply) = reply else { return Ok(None) };
        let global = model::global_config(&reply.body).ok_or_else(|| SdnError::Rejected {
            endpoint: self.endpoint_owned(),
            operation: "read BGP global config",
            message: "the answer has no `as`".into(),
        })?;
        *self.local_asn.lock().expect("asn lock") = Some(global.0);
        Ok(Some(global))
    }

    async fn local_asn(&self) -> Result<u32, SdnError> {
        if let Some(asn) = *self.local_asn.lock().expect("asn lock") {
            return Ok(asn);
        }
        match self.global().await? {
            Some((asn, _)) => Ok(asn),
            None => Err(self.no_instance()),
        }
    }

    fn lost_create(&self, neighbor: IpAddr) -> bool {
        self.lost_creates
            .lock()
            .expect("lost creates lock")
            .contains(&neighbor)
    }

    fn set_lost_create(&self, neighbor: IpAddr, lost: bool) {
        let mut set = self.lost_creates.lock().expect("lost creates lock");
        if lost {
            set.insert(neighbor);
        } else {
            set.remove(&neighbor);
        }
    }

    fn no_instance(&self) -> SdnError {
        SdnError::Rejected {
            endpoint: self.endpoint_owned(),
            operation: "read BGP global config",
            message: "no BGP instance configured".into(),
        }
    }

    /// The configured neighbour at `neighbor` (RFC 8040 GET of the list entry), if any.
    async fn get_neighbor(&self, neighbor: IpAddr) -> Result<Option<serde_json::Value>, SdnError> {
        let reply = self
            .rest
            .send(
                "read neighbor",
                Method::GET,
                &self.paths.neighbor(&neighbor.to_string()),
                None,
                true,
            )
            .await?;
        Ok(reply.and_then(|r| {
            model::neighbor_entries(&r.body)
                .into_iter()
                .find(|e| model::address_of(e) == Some(neighbor))
        }))
    }
}
