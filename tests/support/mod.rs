//! Test support shared by the integration tests: real processes only.
//!
//! Each test binary includes it with `mod support;` and uses the parts it needs.
#![allow(dead_code, unused_imports)]

pub mod control_plane;

pub use control_plane::{ControlPlane, control_plane, free_port, report};
