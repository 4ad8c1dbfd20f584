//! `cargo fuzz run restconf_errors`: see `cellnet_fuzz::restconf_errors` (fuzz/harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cellnet_fuzz::restconf_errors(data));
