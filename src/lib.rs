//! cellnet: a Kubernetes controller for the underlay network between OpenStack cells.
#![forbid(unsafe_code)]

pub mod api;
pub mod body;
pub mod build_info;
pub mod controller;
pub mod http;
pub mod leader;
pub mod liveness;
pub mod metrics;
pub mod neutron;
pub mod plugin;
pub mod sdn;
pub mod telemetry;
pub mod tls;
