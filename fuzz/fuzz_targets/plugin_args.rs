//! `cargo fuzz run plugin_args`: see `cellnet_fuzz::plugin_args` (fuzz/harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cellnet_fuzz::plugin_args(data));
