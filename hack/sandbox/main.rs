//! `make demo`'s sandbox: the test control plane, kept running until SIGTERM or Ctrl-C.
//!
//! Writes `<dir>/kubeconfig` and then `<dir>/ready`; `hack/demo.sh` waits for the latter.
#[path = "../../tests/support/control_plane.rs"]
#[allow(dead_code)]
mod control_plane;

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".sandbox".into()));
    std::fs::create_dir_all(&dir).expect("create sandbox dir");
    let cp = control_plane::control_plane();
    std::fs::copy(&cp.kubeconfig, dir.join("kubeconfig")).expect("copy kubeconfig");
    std::fs::write(dir.join("assets"), cp.assets.display().to_string()).expect("write assets path");
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
    control_plane::report("sandbox stopped");
    // exit(3) runs the harness's atexit hook, which stops etcd and kube-apiserver.
    std::process::exit(0);
}
