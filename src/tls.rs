//! One TLS stack for every client (kube, reqwest, tonic): rustls with the `ring` provider.
//!
//! reqwest's default provider would pull in aws-lc-sys (a C build of minutes on 2 cores); kube
//! already uses ring, so the process installs ring once and every client finds it.

/// Installs ring as the process-wide rustls provider. Idempotent; call before building clients.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
