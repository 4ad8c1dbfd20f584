//! TCP between test cells, from the test process itself (no `nc` or `socat` needed): a socket
//! belongs to the network namespace of the thread that created it, so a short-lived thread
//! enters the cell's namespace (`setns`), makes the socket, and the rest is ordinary I/O.
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, SocketAddrV4, TcpListener};
use std::os::fd::AsRawFd as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long one connection attempt may take: a cell that has no route answers at once
/// (unreachable); one whose packets vanish would hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `f` on a new thread that has entered network namespace `netns` (made by `ip netns add`).
pub fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let ns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a descriptor we own; it changes only this thread's network namespace
        // (the thread ends with `f`).
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("netns thread panicked")
}

/// A TCP server in a cell: every connection gets `greeting` and is closed. Stops on drop.
pub struct Listener {
    pub address: SocketAddrV4,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Listens on `address` (an address of the namespace `netns`).
    pub fn start(netns: &str, address: SocketAddrV4, greeting: &str) -> Listener {
        let listener = in_netns(netns, move || TcpListener::bind(address))
            .unwrap_or_else(|e| panic!("listen on {address} in {netns}: {e}"));
        // Non-blocking accepts, so that drop can stop the loop.
        listener.set_nonblocking(true).expect("non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, greeting) = (stop.clone(), greeting.to_owned());
        let thread = std::thread::spawn(move || serve(&listener, &flag, &greeting));
        Listener {
            address,
            stop,
            thread: Some(thread),
        }
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool, greeting: &str) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut conn, _)) => {
                let _ = conn.set_nonblocking(false);
                let _ = conn.write_all(greeting.as_bytes());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from `source` (an address of namespace `netns`, bound before connecting) to `to` and
/// reads what the server says until it closes. `Err` says why not (refused, unreachable, timed
/// out).
pub fn exchange(netns: &str, source: std::net::Ipv4Addr, to: SocketAddrV4) -> Result<String, String> {
    in_netns(netns, move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
            socket
                .bind(SocketAddr::from((source, 0)))
                .map_err(|e| format!("bind {source}: {e}"))?;
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(SocketAddr::V4(to)))
                .await
                .map_err(|_| format!("{source} -> {to}: no answer within {CONNECT_TIMEOUT:?}"))?
                .map_err(|e| format!("{source} -> {to}: {e}"))?;
            let mut stream = stream.into_std().map_err(|e| e.to_string())?;
            stream.set_nonblocking(false).map_err(|e| e.to_string())?;
            stream
                .set_read_timeout(Some(CONNECT_TIMEOUT))
                .map_err(|e| e.to_string())?;
            let mut text = String::new();
            stream
                .read_to_string(&mut text)
                .map_err(|e| format!("{source} -> {to}: read: {e}"))?;
            Ok(text)
        })
    })
}

/// What a [`Probe`] saw: how many exchanges went through and which failed, with when (since
/// the probe started) and why.
#[derive(Debug, Default, Clone)]
pub struct ProbeCounts {
    pub ok: usize,
    pub failed: Vec<(Duration, String)>,
}

/// New TCP exchanges from `source` in a namespace to a server, one after the other with a pause
/// between them, on a thread of its own until [`Probe::stop`]: whether connections between the
/// cells keep working while something happens. Each exchange is a fresh connection (a SYN, an
/// answer, a close), so a missing route on either side of the path counts as a failure.
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<ProbeCounts>>,
}

impl Probe {
    pub fn start(netns: &str, source: std::net::Ipv4Addr, to: SocketAddrV4, pause: Duration) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, netns) = (stop.clone(), netns.to_owned());
        let thread = std::thread::spawn(move || {
            let began = std::time::Instant::now();
            let mut counts = ProbeCounts::default();
            while !flag.load(Ordering::Relaxed) {
                match exchange(&netns, source, to) {
                    Ok(_) => counts.ok += 1,
                    Err(why) => counts.failed.push((began.elapsed(), why)),
                }
                std::thread::sleep(pause);
            }
            counts
        });
        Probe {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops probing (after the exchange under way) and returns the counts.
    pub fn stop(mut self) -> ProbeCounts {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("probe thread panicked"))
            .unwrap_or_default()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
