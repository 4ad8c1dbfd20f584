//! Test support shared by the integration tests: real processes only.
//!
//! Each test binary includes it with `mod support;` and uses the parts it needs.
#![allow(dead_code, unused_imports)]

pub mod cells;
pub mod control_plane;
pub mod controller;
pub mod fabric;
pub mod gobgp;
pub mod hostile;
pub mod kube_helpers;
pub mod manifests;
pub mod netns;
pub mod neutron;
pub mod odl_server;
pub mod packets;
pub mod prometheus;
pub mod segments;

pub use control_plane::{ControlPlane, control_plane, free_port, report};
pub use controller::ControllerProcess;
pub use kube_helpers::{
    EndpointStatusExt, InterconnectStatusExt, Kind, condition, describe, namespace, wait_condition,
    wait_condition_json, wait_for, wait_ready,
};
