//! `make demo`'s sandbox: the test control plane, the CRDs, two GoBGP cells, a hand-configured
//! data-centre router, a Neutron (noauth, with neutron-dynamic-routing) and the controller, kept
//! running until SIGTERM or Ctrl-C.
//!
//! The speakers match `examples/`: cell1 127.0.0.11 (API 50061), cell2 127.0.0.12 (API 50062),
//! dc1 127.0.0.13 (external, configured by hand with a neighbour towards cell1). Writes
//! `<dir>/kubeconfig`, `<dir>/speakers`, `<dir>/neutron.url` and then `<dir>/ready`;
//! `hack/demo.sh` waits for the latter.
// Top-level, as in tests/support/mod.rs, so that their `super::` paths resolve the same way.
#[allow(dead_code)]
#[path = "../../tests/support/control_plane.rs"]
mod control_plane;
#[allow(dead_code)]
#[path = "../../tests/support/controller.rs"]
mod controller;
// gobgp.rs and neutron.rs allow dead code themselves.
#[path = "../../tests/support/gobgp.rs"]
mod gobgp;
#[path = "../../tests/support/neutron.rs"]
mod neutron;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use control_plane::report;
use controller::ControllerProcess;
use gobgp::Gobgpd;

const DC1_TOML: &str = r#"[global.config]
  as = 65013
  router-id = "127.0.0.13"
  port = 1790
  local-address-list = ["127.0.0.13"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.11"
    peer-as = 65011
    description = "configured by hand in dc1"
  [neighbors.transport.config]
    local-address = "127.0.0.13"
    remote-port = 1790
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
"#;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".sandbox".into()));
    std::fs::create_dir_all(&dir).expect("create sandbox dir");
    let cp = control_plane::control_plane();
    cp.install_crds();
    std::fs::copy(&cp.kubeconfig, dir.join("kubeconfig")).expect("copy kubeconfig");
    std::fs::write(dir.join("assets"), cp.assets.display().to_string()).expect("write assets path");

    let cell1 = Gobgpd::start_on_port("cell1", Ipv4Addr::new(127, 0, 0, 11), 50061, None);
    let cell2 = Gobgpd::start_on_port("cell2", Ipv4Addr::new(127, 0, 0, 12), 50062, None);
    let dc1 = Gobgpd::start("dc1", Ipv4Addr::new(127, 0, 0, 13), Some(DC1_TOML));
    let speakers: Vec<String> = [&cell1, &cell2, &dc1]
        .iter()
        .map(|g| {
            format!(
                "{} {} {} {}",
                g.name,
                g.address,
                g.api_port,
                g.log_path().display()
            )
        })
        .collect();
    std::fs::write(dir.join("speakers"), speakers.join("\n") + "\n").expect("write speakers");
    report("gobgpd cells started: cell1 (bare), cell2 (bare), dc1 (hand-configured)");

    let neutron = neutron::Neutron::start();
    std::fs::write(dir.join("neutron.url"), neutron.url()).expect("write neutron url");

    let controller = ControllerProcess::start(cp, &[]);
    std::fs::write(
        dir.join("controller.log.path"),
        controller.log_path().display().to_string(),
    )
    .expect("write controller log path");
    std::fs::write(dir.join("ready"), "").expect("write ready marker");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    });
    let _ = std::fs::remove_file(dir.join("ready"));
    drop((controller, neutron, cell1, cell2, dc1));
    report("sandbox stopped");
    // exit(3) runs the harness's atexit hook, which stops etcd and kube-apiserver.
    std::process::exit(0);
}
