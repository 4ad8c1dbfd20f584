//! `cargo fuzz run clouds_yaml`: see `cellnet_fuzz::clouds_yaml` (fuzz/harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cellnet_fuzz::clouds_yaml(data));
