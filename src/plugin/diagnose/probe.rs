//! `--probe`: a TCP connection from here to each endpoint's BGP port, with its round-trip time.
use std::time::{Duration, Instant};

use super::{Endpoints, Layer, Step, Verdict, step};

/// A probe step per endpoint that could be read.
pub async fn steps(endpoints: &Endpoints, timeout: Duration) -> Vec<Step> {
    let mut out = vec![];
    for (which, ep) in endpoints {
        let Some(ep) = ep else { continue };
        let (verdict, evidence) = probe(&ep.spec.address, ep.spec.port, timeout).await;
        out.push(
            step(
                format!(
                    "probe: {which} BGP port {}:{} (cell {}) from here",
                    ep.spec.address, ep.spec.port, ep.spec.cell
                ),
                verdict,
                vec![evidence],
            )
            .at(Layer::Transport),
        );
    }
    out
}

async fn probe(addr: &str, port: u16, timeout: Duration) -> (Verdict, String) {
    let target = if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    };
    let began = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&target)).await {
        Ok(Ok(_)) => (
            Verdict::Ok,
            format!(
                "TCP connect to {target} succeeded in {:.1} ms",
                began.elapsed().as_secs_f64() * 1000.0
            ),
        ),
        Ok(Err(e)) => (
            Verdict::Failed,
            format!(
                "TCP connect to {target} failed after {:.1} ms: {e}",
                began.elapsed().as_secs_f64() * 1000.0
            ),
        ),
        Err(_) => (
            Verdict::Failed,
            format!("TCP connect to {target}: no answer in {timeout:?}"),
        ),
    }
}
