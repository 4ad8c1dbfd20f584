//! A small typed client for the parts of OpenStack cellnet uses: Keystone v3 tokens and the
//! Neutron networking API with neutron-dynamic-routing (BGP speakers and peers).
//!
//! Why not the `openstack_sdk` crate: it is built on reqwest 0.12 (cellnet uses 0.13, so a second
//! HTTP and TLS stack) and brings interactive-auth dependencies a controller does not want, while
//! cellnet needs about twenty calls. This client is plain reqwest + serde, with bounded timeouts.
//!
//! - [`clouds`]: the standard `clouds.yaml` (password, application credential, `auth_type: none`
//!   with `endpoint_override`).
//! - [`client`]: one [`NeutronClient`] per cloud, with its Keystone token cached and renewed
//!   before it expires; typed calls for networks, subnets, tags, BGP speakers and peers.
//!
//! Secrets (passwords, application-credential secrets, tokens) are held in [`Sensitive`], whose
//! `Debug` and `Display` print `<redacted>`, and never appear in errors.
pub mod client;
pub mod clouds;

pub use client::{BgpPeer, BgpSpeaker, Network, NeutronClient, NeutronError, Subnet};
pub use clouds::{Auth, Cloud, CloudError};

/// A secret value: never printed.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Sensitive(String);

impl Sensitive {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}
