//! The networks between cells on GoBGP: originating a cell's networks and filtering what each
//! interconnect's neighbours send and get (issue #16). Inherent methods on
//! [`GoBgp`](crate::sdn::gobgp::GoBgp), which its [`SdnBackend`](crate::sdn::SdnBackend)
//! methods call.
//!
//! How cellnet tells its objects from the operator's on a shared speaker:
//! - paths: local, with the path identifier set to the origination mark (plus a large
//!   community `<asn>:cell:<mark>` for people). An operator's path for the same prefix has its
//!   own identifier and coexists; GoBGP's uuid is no handle (not listed, not stable).
//! - policy objects: names starting with `cellnet-` ([`names`]). One `cellnet-import` and one
//!   `cellnet-export` policy per speaker, put first in the global assignments (others keep their
//!   order), with one REJECT-only statement per filter, direction and family.
//!
//! Layout: [`model`] + [`plan`] are pure (what is wanted, what was read, which writes); [`wire`]
//! converts to and from protobuf; `calls` are the thin RPCs; `filter`, `origination` and
//! `observe` are the I/O of the public methods; `memo` is what a client remembers so that a
//! steady reconcile reads only what it names (a full read every 15 minutes or after a failure).
mod calls;
mod digest;
pub mod evpn;
mod filter;
mod memo;
pub mod model;
pub mod names;
mod observe;
mod origination;
pub mod plan;
pub mod wire;

pub(crate) use memo::RoutesMemo;

#[cfg(test)]
mod tests;
