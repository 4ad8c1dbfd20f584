//! The controller image of `make image` (hack/image.sh: buildah, FROM scratch) run with podman as
//! the chart runs it (host network, read-only root, uid 65532, no capabilities) against the test
//! control plane and two gobgpd cells, until an interconnect is Ready.
//!
//! Ignored: it needs a release build and a machine where containers run. This project's machines
//! cannot (crun: `setrlimit RLIMIT_NOFILE: Operation not permitted`, then `cgroups in hybrid mode
//! not supported`; docs/operations.md#image). Run it with `cargo test --test image -- --ignored`.
mod support;

use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cellnet::api::CellInterconnect;
use support::gobgp::{Gobgpd, spawn_kept};
use support::manifests::{BGP_PORT, endpoint, interconnect};
use support::{namespace, report, wait_ready};

const READY_TIMEOUT: Duration = Duration::from_secs(120);

fn managed(name: &str, speaker: &Gobgpd, last: u8) -> String {
    endpoint(name)
        .cell(&speaker.name)
        .address(Ipv4Addr::new(127, 0, 21, last))
        .asn(65300 + u32::from(last))
        .port(BGP_PORT)
        .gobgp(&speaker.api_url())
        .yaml()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a release build and a machine where podman can run containers"]
async fn the_image_runs_read_only_as_non_root_until_an_interconnect_is_ready() {
    let cp = support::control_plane();
    cp.install_crds();
    let ns = "image";
    namespace(cp, ns).await;
    let a = Gobgpd::start("image-a", Ipv4Addr::new(127, 0, 21, 1), None);
    let b = Gobgpd::start("image-b", Ipv4Addr::new(127, 0, 21, 2), None);
    let began = Instant::now();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/image.sh"))
        .arg("--run")
        .arg(&cp.kubeconfig)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap());
    let mut image = spawn_kept(cmd).expect("run hack/image.sh");
    cp.apply(
        ns,
        &[
            managed("ep-a", &a, 1),
            managed("ep-b", &b, 2),
            interconnect("a-b", "ep-a", "ep-b").yaml(),
        ]
        .join("---\n"),
    );
    // Fails with the object's conditions; the image's log tells why it did not run.
    let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_ready::<CellInterconnect>(cp, ns, "a-b", READY_TIMEOUT)
    }));
    // SIGTERM to the script's process group: podman passes it on to the controller (--rm).
    // SAFETY: kill(2) on the process group of our own child.
    unsafe { libc::kill(-(image.id() as i32), libc::SIGTERM) };
    let _ = image.wait();
    let output = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(
        ready.is_ok(),
        "no Ready interconnect from the image; hack/image.sh said:\n{output}"
    );
    report(&format!(
        "image built and run to Ready in {:.1} s",
        began.elapsed().as_secs_f64()
    ));
}
