//! Generates the GoBGP v3 gRPC client from the vendored protos in `proto/gobgp/`.
//!
//! `protox` parses the protos in pure Rust, so building needs no system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/gobgp");
    let fds = protox::compile(
        ["gobgp.proto", "attribute.proto", "capability.proto"],
        ["proto/gobgp"],
    )?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        // These carry `auth_password`; src/sdn/gobgp/proto.rs gives them a redacting `Debug`.
        .skip_debug([
            "apipb.PeerConf",
            "apipb.PeerState",
            "apipb.PeerGroupConf",
            "apipb.PeerGroupState",
        ])
        .compile_fds(fds)?;
    Ok(())
}
