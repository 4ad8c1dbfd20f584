//! Test cells with their own network: one Linux network namespace per cell, made by the test.
//!
//! A [`CellPair`] is two cells `a` and `b`. Each has a *management* veth to the root namespace
//! (where the controller runs and reaches the cell's SDN API) and the two share an *underlay*
//! veth between their namespaces (their BGP session):
//!
//! ```text
//!   root ns                cell a ns                      cell b ns
//!   .1/30 ---- mgmt ---- .2/30 (API)                      (API) .6/30 ---- mgmt ---- .5/30
//!                              .9/30 ---- underlay ---- .10/30
//! ```
//!
//! (offsets inside the pair's /28). Addresses come only from 198.51.100.0/24 (TEST-NET-2,
//! documentation). Several test binaries may run at once on one machine, and the root-side
//! addresses live in the shared root namespace, so each process takes one of four /26 *slots*
//! with `flock` on `/tmp/cellnet-netns-slot-<n>.lock` (released by the kernel when the process
//! dies); a slot holds four pairs. Names are `cn-<pid>-<slot><pair><cell>[<end>]` (links at most
//! 15 characters). Whoever holds a slot owns every `cn-*` namespace and link of that slot: on
//! taking it, leftovers of earlier runs (dead or killed before their `Drop` ran) are removed,
//! and so is everything of processes that no longer exist.
//!
//! Needs root and iproute2; [`unavailable`] says why not, and tests then skip themselves.
#![allow(dead_code)]

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

const PREFIX: &str = "cn-";
const SLOTS: u8 = 4;
const PAIRS_PER_SLOT: u8 = 4;
/// How long to wait for a free slot (other test runs on the machine) before giving up.
const SLOT_WAIT: Duration = Duration::from_secs(60);

/// Runs `ip <args>`; `Err` with its stderr on failure.
pub fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {} {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

/// This process's slot (0..4), taken once: `Err` says why namespaces cannot be used here.
fn slot() -> Result<u8, String> {
    static SLOT: OnceLock<Result<(u8, File), String>> = OnceLock::new();
    SLOT.get_or_init(take_slot)
        .as_ref()
        .map(|(n, _)| *n)
        .map_err(Clone::clone)
}

/// `None` when this process can make network namespaces, else why not (tests skip then).
pub fn unavailable() -> Option<String> {
    slot().err()
}

fn take_slot() -> Result<(u8, File), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root: network namespaces need CAP_NET_ADMIN".into());
    }
    ip(&["netns", "list"]).map_err(|e| format!("iproute2 with netns support is needed: {e}"))?;
    let began = Instant::now();
    let (n, file) = 'found: loop {
        for n in 0..SLOTS {
            let path = format!("/tmp/cellnet-netns-slot-{n}.lock");
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| format!("{path}: {e}"))?;
            // SAFETY: flock on a descriptor we own; released when the process exits.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                break 'found (n, file);
            }
        }
        if began.elapsed() > SLOT_WAIT {
            panic!("all {SLOTS} network-namespace slots stayed taken for {SLOT_WAIT:?} (other test runs)");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    remove_leftovers(n);
    // A probe: the kernel or the container may refuse namespaces even to root.
    let probe = format!("{PREFIX}{}-{n}probe", std::process::id());
    ip(&["netns", "add", &probe]).map_err(|e| format!("cannot create a network namespace: {e}"))?;
    let _ = ip(&["netns", "del", &probe]);
    Ok((n, file))
}

/// Whether `cn-<pid>-<slot>...` is garbage for the holder of `my_slot`.
fn is_leftover(name: &str, my_slot: u8) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let Some((pid, tail)) = rest.split_once('-') else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    let dead = !std::path::Path::new(&format!("/proc/{pid}")).exists();
    dead || tail.starts_with(char::from(b'0' + my_slot))
}

fn remove_leftovers(my_slot: u8) {
    if let Ok(list) = ip(&["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if is_leftover(name, my_slot) {
                let _ = ip(&["netns", "del", name]);
                eprintln!("netns: removed leftover namespace {name}");
            }
        }
    }
    if let Ok(list) = ip(&["-o", "link", "show"]) {
        // "7: cn-123-00ar@if6: <...>"
        for name in list
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n))
        {
            if is_leftover(name, my_slot) {
                let _ = ip(&["link", "del", name]);
                eprintln!("netns: removed leftover link {name}");
            }
        }
    }
}

/// One cell of a [`CellPair`]: its namespace and addresses.
#[derive(Debug)]
pub struct NetCell {
    /// Network namespace name (`ip netns exec <netns> ...`).
    pub netns: String,
    /// The root namespace's end of the management link.
    pub mgmt_root: Ipv4Addr,
    /// The cell's end of the management link: where its SDN API listens.
    pub api_host: Ipv4Addr,
    /// The cell's underlay address (its BGP speaker's address).
    pub underlay: Ipv4Addr,
    /// Name of the management veth's root-side end.
    pub mgmt_link: String,
    /// Name of the management veth's end inside the cell.
    pub mgmt_inner: String,
    /// Name of the underlay veth's end inside this cell's namespace.
    pub underlay_link: String,
}

impl NetCell {
    /// Cuts (`false`) or restores (`true`) the management link, at its root-side end: the
    /// root namespace loses its route to the cell's API; inside the cell nothing changes.
    pub fn set_management(&self, up: bool) {
        must(&["link", "set", &self.mgmt_link, if up { "up" } else { "down" }]);
    }

    /// A command run inside this cell's namespace.
    pub fn exec(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns, program]);
        cmd
    }
}

/// Two cells with their own namespaces, management links and one underlay link between them.
/// Dropping it removes both namespaces and every link (stop the processes inside first).
#[derive(Debug)]
pub struct CellPair {
    pub a: NetCell,
    pub b: NetCell,
}

impl CellPair {
    /// Makes the namespaces and links; panics if that fails (check [`unavailable`] first).
    pub fn create() -> CellPair {
        static NEXT: AtomicU8 = AtomicU8::new(0);
        let slot = slot().unwrap_or_else(|why| panic!("network namespaces unavailable: {why}"));
        let index = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(
            index < PAIRS_PER_SLOT,
            "at most {PAIRS_PER_SLOT} cell pairs per test binary"
        );
        let base = 64 * slot + 16 * index;
        let addr = |offset: u8| Ipv4Addr::new(198, 51, 100, base + offset);
        let name = |cell: char, end: &str| format!("{PREFIX}{}-{slot}{index}{cell}{end}", std::process::id());
        let cell = |c: char, mgmt: u8, underlay: u8| NetCell {
            netns: name(c, ""),
            mgmt_root: addr(mgmt + 1),
            api_host: addr(mgmt + 2),
            underlay: addr(underlay),
            mgmt_link: name(c, "r"),
            mgmt_inner: name(c, "m"),
            underlay_link: name(c, "u"),
        };
        let pair = CellPair {
            a: cell('a', 0, 9),
            b: cell('b', 4, 10),
        };
        let began = Instant::now();
        for c in [&pair.a, &pair.b] {
            let inner = &c.mgmt_inner;
            must(&["netns", "add", &c.netns]);
            must(&["-n", &c.netns, "link", "set", "lo", "up"]);
            must(&[
                "link",
                "add",
                &c.mgmt_link,
                "type",
                "veth",
                "peer",
                "name",
                inner,
                "netns",
                &c.netns,
            ]);
            must(&["addr", "add", &format!("{}/30", c.mgmt_root), "dev", &c.mgmt_link]);
            must(&["link", "set", &c.mgmt_link, "up"]);
            must(&[
                "-n",
                &c.netns,
                "addr",
                "add",
                &format!("{}/30", c.api_host),
                "dev",
                inner,
            ]);
            must(&["-n", &c.netns, "link", "set", inner, "up"]);
        }
        let (a, b) = (&pair.a, &pair.b);
        must(&[
            "-n",
            &a.netns,
            "link",
            "add",
            &a.underlay_link,
            "type",
            "veth",
            "peer",
            "name",
            &b.underlay_link,
            "netns",
            &b.netns,
        ]);
        for c in [a, b] {
            must(&[
                "-n",
                &c.netns,
                "addr",
                "add",
                &format!("{}/30", c.underlay),
                "dev",
                &c.underlay_link,
            ]);
            must(&["-n", &c.netns, "link", "set", &c.underlay_link, "up"]);
        }
        super::report(&format!(
            "netns: cells {} and {} made in {:.2} s",
            a.netns,
            b.netns,
            began.elapsed().as_secs_f64()
        ));
        pair
    }

    /// Cuts (`false`) or restores (`true`) the underlay link, at cell `a`'s end.
    pub fn set_underlay(&self, up: bool) {
        must(&[
            "-n",
            &self.a.netns,
            "link",
            "set",
            &self.a.underlay_link,
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for CellPair {
    fn drop(&mut self) {
        for c in [&self.a, &self.b] {
            // Deleting one end of a veth deletes both; the namespace takes the others with it
            // once no process is left in it.
            let _ = ip(&["link", "del", &c.mgmt_link]);
            let _ = ip(&["netns", "del", &c.netns]);
        }
    }
}

/// One namespace for many speakers (the bench): a management link to the root namespace like a
/// cell's, and the speakers' addresses as /32s on its `lo`. Takes one pair's /28 of the slot
/// (only its management /30 appears in the root namespace). Speaker addresses are TEST-NET-2 too:
/// GoBGP drops paths whose next hop is a 127/8 address, so sessions on loopback carry no routes.
#[derive(Debug)]
pub struct SpeakerNet {
    pub netns: String,
    /// Where the speakers' APIs listen, reachable from the root namespace.
    pub api_host: Ipv4Addr,
    mgmt_link: String,
    /// The management /30's first address: speaker addresses skip it.
    mgmt_base: u8,
}

impl SpeakerNet {
    /// Makes the namespace and its management link; panics if that fails.
    pub fn create() -> SpeakerNet {
        static NEXT: AtomicU8 = AtomicU8::new(PAIRS_PER_SLOT);
        let slot = slot().unwrap_or_else(|why| panic!("network namespaces unavailable: {why}"));
        // Counts down from the last pair index, so that CellPairs of the same binary keep theirs.
        let index = NEXT.fetch_sub(1, Ordering::SeqCst) - 1;
        let mgmt_base = 64 * slot + 16 * index;
        let name = |end: &str| format!("{PREFIX}{}-{slot}{index}n{end}", std::process::id());
        let net = SpeakerNet {
            netns: name(""),
            api_host: Ipv4Addr::new(198, 51, 100, mgmt_base + 2),
            mgmt_link: name("r"),
            mgmt_base,
        };
        let (inner, root) = (name("m"), Ipv4Addr::new(198, 51, 100, mgmt_base + 1));
        must(&["netns", "add", &net.netns]);
        must(&["-n", &net.netns, "link", "set", "lo", "up"]);
        let veth = [
            "link",
            "add",
            &net.mgmt_link,
            "type",
            "veth",
            "peer",
            "name",
            &inner,
        ];
        must(&[&veth[..], &["netns", &net.netns]].concat());
        must(&["addr", "add", &format!("{root}/30"), "dev", &net.mgmt_link]);
        must(&["link", "set", &net.mgmt_link, "up"]);
        let api = format!("{}/30", net.api_host);
        must(&["-n", &net.netns, "addr", "add", &api, "dev", &inner]);
        must(&["-n", &net.netns, "link", "set", &inner, "up"]);
        net
    }

    /// The `i`-th speaker address (0..250): 198.51.100.0/24 without the management /30.
    pub fn speaker_addr(&self, i: u16) -> Ipv4Addr {
        let mut last = u8::try_from(i + 1).expect("at most 250 speakers");
        if last >= self.mgmt_base {
            last = last.checked_add(4).expect("at most 250 speakers");
        }
        Ipv4Addr::new(198, 51, 100, last)
    }

    /// Puts the first `n` speaker addresses on the namespace's `lo` (one `ip -batch`).
    pub fn add_speakers(&self, n: u16) {
        let batch: String = (0..n)
            .map(|i| format!("addr add {}/32 dev lo\n", self.speaker_addr(i)))
            .collect();
        let path = std::env::temp_dir().join(format!("{}-addrs", self.netns));
        std::fs::write(&path, batch).expect("write ip batch");
        must(&["-n", &self.netns, "-batch", &path.to_string_lossy()]);
        let _ = std::fs::remove_file(path);
    }

    /// Removes the link and the namespace (stop the processes inside first); also on drop.
    pub fn remove(&self) {
        let _ = ip(&["link", "del", &self.mgmt_link]);
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

impl Drop for SpeakerNet {
    fn drop(&mut self) {
        self.remove();
    }
}
