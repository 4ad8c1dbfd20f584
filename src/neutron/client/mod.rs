//! The Neutron client: Keystone v3 token (cached, renewed before expiry), then typed Neutron calls.
//!
//! - [`keystone`]: the token request for each kind of credential, the cached token and the
//!   Neutron URL from Keystone's catalog.
//! - [`http`]: one Neutron call (the token renewed once on a 401) and how an answer becomes a
//!   value or a [`NeutronError`].
//! - [`resources`]: the typed calls (networks, subnets, tags, BGP speakers and peers), with the
//!   types of what Neutron returns in [`types`].
use std::time::Duration;

use tokio::sync::Mutex;

use super::clouds::Cloud;

mod error;
mod http;
mod keystone;
mod resources;
mod types;

#[cfg(test)]
mod tests;

pub use error::NeutronError;
pub use keystone::{RENEW_BEFORE, needs_renewal};
pub use types::{BgpPeer, BgpSpeaker, Network, Pool, Subnet};

/// One cloud's client. Cheap to share (`Arc`); holds the cached token.
pub struct NeutronClient {
    http: reqwest::Client,
    cloud: Cloud,
    token: Mutex<Option<keystone::Token>>,
}

impl NeutronClient {
    /// A client for `cloud`; every request is bounded by `timeout`.
    pub fn new(cloud: Cloud, timeout: Duration) -> Result<Self, NeutronError> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect would carry X-Auth-Token (and Keystone's password body) to wherever the
            // answer points: the API's own URL is the only place they go.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NeutronError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            cloud,
            token: Mutex::new(None),
        })
    }

    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// Forgets the cached token (after a 401 from Neutron).
    pub async fn invalidate_token(&self) {
        *self.token.lock().await = None;
    }
}
