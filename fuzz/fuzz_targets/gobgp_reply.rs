//! `cargo fuzz run gobgp_reply`: see `cellnet_fuzz::gobgp_reply` (fuzz/harness.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cellnet_fuzz::gobgp_reply(data));
