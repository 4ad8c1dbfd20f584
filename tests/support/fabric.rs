//! A cell's fabric router: FRR's zebra + bgpd from Debian's `frr` package, run inside the cell's
//! network namespace. bgpd peers over iBGP with the cell's gobgpd and zebra installs what it
//! learns into the namespace's kernel table (`proto bgp`): the traffic tests never install a
//! route themselves. GoBGP's own zebra client cannot do this against Debian's FRR (it panics on
//! FRR 8.4's messages), see shared/notes/networks.md.
//!
//! Each daemon runs in the foreground from the keeper thread of `gobgp.rs` (so it dies with the
//! test binary), with its sockets, pid files, config and logs in a temp dir of its own: nothing
//! of a system-wide FRR (`/etc/frr`, `/run/frr`) is read or touched. `hack/prereqs.sh` installs
//! the package.
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::gobgp::spawn_kept;

const FRR_DIR: &str = "/usr/lib/frr";
/// FRR's bgpd listens on this port (gobgpd has 179 in the namespace); it dials gobgpd anyway.
pub const FABRIC_BGP_PORT: u16 = 1179;
/// How long zebra may take to open its zserv socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One running zebra + bgpd pair; both killed on drop.
pub struct FabricRouter {
    pub name: String,
    /// The router's own address (a /32 on the namespace's `lo`): its BGP source and router id.
    pub address: Ipv4Addr,
    netns: String,
    zebra: Option<Child>,
    bgpd: Option<Child>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for FabricRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FabricRouter")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("netns", &self.netns)
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// `None` when FRR's daemons are installed, else what to do.
pub fn unavailable() -> Option<String> {
    let bgpd = Path::new(FRR_DIR).join("bgpd");
    (!bgpd.is_file()).then(|| {
        format!(
            "{} is missing: install Debian's `frr` package (hack/prereqs.sh does)",
            bgpd.display()
        )
    })
}

impl FabricRouter {
    /// Starts zebra, then bgpd with one iBGP neighbour: the cell's speaker at `speaker` (AS
    /// `asn`, port 179), dialled from `address`. Panics with the logs if a daemon does not start.
    /// With `graceful`, bgpd runs graceful restart (RFC 4724) with the speaker (see
    /// [`bgpd_conf`]).
    pub fn start(
        name: &str,
        netns: &str,
        asn: u32,
        address: Ipv4Addr,
        speaker: Ipv4Addr,
        graceful: bool,
    ) -> FabricRouter {
        Self::start_with(name, netns, address, &bgpd_conf(asn, address, speaker, graceful))
    }

    fn start_with(name: &str, netns: &str, address: Ipv4Addr, conf: &str) -> FabricRouter {
        if let Some(why) = unavailable() {
            panic!("{why}");
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("frr-{name}-"))
            .tempdir()
            .expect("temp dir");
        // The daemons drop to user `frr`: they must be able to write their sockets and logs.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        std::fs::write(dir.path().join("zebra.conf"), "").expect("write zebra.conf");
        std::fs::write(dir.path().join("bgpd.conf"), conf).expect("write bgpd.conf");
        let mut router = FabricRouter {
            name: name.to_owned(),
            address,
            netns: netns.to_owned(),
            zebra: None,
            bgpd: None,
            dir,
        };
        router.zebra = Some(router.spawn("zebra", &[]));
        router.wait_for_zserv();
        let listen = address.to_string();
        router.bgpd = Some(router.spawn("bgpd", &["-p", &FABRIC_BGP_PORT.to_string(), "-l", &listen]));
        router
    }

    /// Like [`FabricRouter::start`] without graceful restart, and with EVPN on the session to
    /// the speaker: bgpd advertises every VNI of the namespace's VXLAN devices and installs the
    /// remote VTEPs and MACs it learns into the kernel's forwarding database (FRR's EVPN guide,
    /// "advertise-all-vni").
    pub fn start_evpn(
        name: &str,
        netns: &str,
        asn: u32,
        address: Ipv4Addr,
        speaker: Ipv4Addr,
    ) -> FabricRouter {
        let conf = format!(
            "{}\x20address-family l2vpn evpn\n\x20 neighbor {speaker} activate\n\x20 advertise-all-vni\n\x20exit-address-family\n",
            bgpd_conf(asn, address, speaker, false)
        );
        Self::start_with(name, netns, address, &conf)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// `<daemon> -f <dir>/<daemon>.conf -z <dir>/zserv.api ... <extra>`, in the namespace.
    fn spawn(&self, daemon: &str, extra: &[&str]) -> Child {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns])
            .arg(Path::new(FRR_DIR).join(daemon))
            .arg("-f")
            .arg(self.path(&format!("{daemon}.conf")))
            .arg("-z")
            .arg(self.path("zserv.api"))
            .arg("-i")
            .arg(self.path(&format!("{daemon}.pid")))
            .arg("--vty_socket")
            .arg(self.dir.path())
            // No vty over TCP.
            .args(["-P", "0"])
            .arg("--log")
            .arg(format!("file:{}", self.path(&format!("{daemon}.log")).display()))
            .args(extra)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        spawn_kept(cmd).unwrap_or_else(|e| panic!("{}: spawn {daemon}: {e}", self.name))
    }

    fn wait_for_zserv(&mut self) {
        let began = Instant::now();
        while !self.path("zserv.api").exists() {
            let exited = self.zebra.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || began.elapsed() > START_TIMEOUT {
                panic!(
                    "{}: zebra did not open its socket ({exited:?}, {:?})\n{}",
                    self.name,
                    began.elapsed(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `vtysh -c <command>` against this router's daemons.
    pub fn vtysh(&self, command: &str) -> Result<String, String> {
        let out = Command::new("vtysh")
            .arg("--vty_socket")
            .arg(self.dir.path())
            .args(["-c", command])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("vtysh: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("vtysh -c {command:?}: {} {text}", out.status))
        }
    }

    /// The BGP summary and both daemons' logs, for failure messages.
    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.path(f)).unwrap_or_default();
        format!(
            "--- {} show bgp summary ---\n{}\n--- zebra.log ---\n{}--- bgpd.log ---\n{}",
            self.name,
            self.vtysh("show bgp summary").unwrap_or_else(|e| e),
            read("zebra.log"),
            read("bgpd.log")
        )
    }
}

impl Drop for FabricRouter {
    fn drop(&mut self) {
        // bgpd first: zebra removes the routes of a client that goes away.
        for child in [self.bgpd.take(), self.zebra.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// bgpd's config: one iBGP neighbour (the cell's speaker), fast reconnects, no policy needed;
/// with `graceful`, `bgp graceful-restart` (FRR's "full" mode: it advertises the capability and
/// helps a restarting neighbour, keeping that neighbour's routes, stale, in zebra and the kernel
/// until its End-of-RIB or the stale-path timer, 360 s by default) and `passive`: the speaker
/// dials (see `speaker_toml` in cells.rs for why).
fn bgpd_conf(asn: u32, address: Ipv4Addr, speaker: Ipv4Addr, graceful: bool) -> String {
    let (graceful, passive) = if graceful {
        (
            "\x20bgp graceful-restart\n".to_owned(),
            format!("\x20neighbor {speaker} passive\n"),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        "router bgp {asn}\n\
         \x20bgp router-id {address}\n\
         {graceful}\
         \x20no bgp ebgp-requires-policy\n\
         \x20neighbor {speaker} remote-as {asn}\n\
         \x20neighbor {speaker} update-source {address}\n\
         \x20neighbor {speaker} timers 3 9\n\
         \x20neighbor {speaker} timers connect 2\n\
         {passive}"
    )
}
