//! The networks between cells, in pure functions: what an endpoint declares, which declarations
//! conflict across cells, and what each speaker originates and filters for an interconnect. The
//! endpoint reconcile originates ([`origination`]); the interconnect reconcile filters
//! ([`route_filter`]) and reports ([`expected`]).
mod conflicts;
mod declared;
mod sides;

#[cfg(test)]
mod tests;

pub use conflicts::{Conflict, conflicts_of};
pub use declared::{Declared, NEUTRON_SUBNET_NAME, declared};
pub use sides::{Announced, Carried, carried, filter_key, origination, route_filter};
