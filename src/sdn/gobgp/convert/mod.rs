//! Pure conversions between cellnet's SDN types and GoBGP's protobuf messages.
//!
//! Everything here is side-effect free so that the "what would we write" logic (and so the
//! zero-writes-in-steady-state property) is unit-testable without a speaker.
//!
//! - [`to_proto`]: our desired peer as the `Peer` that `AddPeer`/`UpdatePeer` get, with every
//!   value GoBGP would default made explicit.
//! - [`from_proto`]: what `ListPeer` and `WatchEvent` report, in our terms.
//! - [`diff`]: which of our settings a reported peer does not have (empty: nothing to write).
//! - [`speaker`]: the speaker's global config.
//! - [`errors`]: gRPC failures as [`SdnError`](crate::sdn::SdnError)s.
mod diff;
mod errors;
mod from_proto;
mod speaker;
mod to_proto;

#[cfg(test)]
mod tests;

pub use diff::{peer_diff, prefix_limit_tripped, reenable_after_limit};
pub use errors::status_to_error;
pub use from_proto::{
    admin_down, conflict_owner, description_of, events_from_watch, family_from_proto, neighbor_of,
    observed_peer, owner_of, session_from_proto, session_of,
};
pub use speaker::{global_from_speaker, speaker_conflict};
pub use to_proto::{
    check_supported, effective_families, effective_keepalive, effective_max_prefixes, family_to_proto,
    new_peer, updated_peer,
};

/// BGP's well-known port; GoBGP dials it when a peer's remote port is 0.
pub const BGP_PORT: u16 = 179;
