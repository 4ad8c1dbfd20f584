//! `cargo fuzz run restconf_json`: see `cellnet_fuzz::restconf_json` (fuzz/harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cellnet_fuzz::restconf_json(data));
