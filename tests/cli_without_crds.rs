//! The controller against a server without cellnet's CRDs: one clear line, exit 1.
//! Its own test binary, so that its control plane never gets the CRDs.
mod support;

use std::process::Command;

#[test]
fn missing_crds_are_named_in_one_line() {
    let cp = support::control_plane();
    let out = Command::new(env!("CARGO_BIN_EXE_cellnet-controller"))
        .env("KUBECONFIG", &cp.kubeconfig)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.lines().last().unwrap_or_default(),
        "cellnet-controller: error: the cellnet.io/v1alpha1 CRDs are not installed (kubectl apply -f crds/)"
    );
}
