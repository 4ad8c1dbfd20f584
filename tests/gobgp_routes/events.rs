//! Route events from GoBGP's change stream: a cellnet path deleted by hand on the speaker and a
//! path the neighbour withdraws each give a `SdnEvent::Routes` naming where the path came from.
use std::net::IpAddr;
use std::time::{Duration, Instant};

use cellnet::sdn::routes::{Origination, mark_of};
use cellnet::sdn::{SdnBackend, SdnEvent};
use futures::StreamExt as _;
use futures::stream::BoxStream;

use crate::routes::*;

const A: u8 = 167;
const B: u8 = 168;

/// The next `Routes` event (others are skipped), within `ROUTES_TIMEOUT`.
async fn next_routes(events: &mut BoxStream<'static, SdnEvent>, what: &str) -> Option<IpAddr> {
    let deadline = Instant::now() + ROUTES_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, events.next()).await;
        match event {
            Ok(Some(SdnEvent::Routes { neighbor })) => return neighbor,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("{what}: the change stream ended"),
            Err(_) => panic!("{what}: no Routes event within {ROUTES_TIMEOUT:?}"),
        }
    }
}

/// No `Routes` event within `quiet` (the other events are skipped).
async fn no_routes(events: &mut BoxStream<'static, SdnEvent>, quiet: Duration) -> Option<SdnEvent> {
    let until = tokio::time::sleep(quiet);
    tokio::pin!(until);
    loop {
        tokio::select! {
            _ = &mut until => return None,
            event = events.next() => match event {
                Some(event @ SdnEvent::Routes { .. }) => return Some(event),
                Some(_) => continue,
                None => panic!("the change stream ended"),
            },
        }
    }
}

fn origination(who: &str, next_hop: &str, networks: &[&str]) -> Origination {
    Origination {
        mark: mark_of(who),
        next_hop: next_hop.parse().unwrap(),
        networks: nets(networks),
        owner: format!("cellnet:test/{who}"),
    }
}

#[tokio::test]
async fn a_path_deleted_by_hand_and_a_withdrawal_are_events() {
    let began = Instant::now();
    let (a, b) = (cell(A).await, cell(B).await);
    let ab = IpAddr::V4(addr(B));
    let origin_a = origination("events-a", "192.0.2.67", &["192.0.2.0/28"]);
    let origin_b = origination("events-b", "192.0.2.68", &["203.0.113.0/28", "203.0.113.16/28"]);
    writes(a.client.ensure_origination(&origin_a).await.unwrap());
    writes(b.client.ensure_origination(&origin_b).await.unwrap());
    a.client.ensure_peer(&peer(A, B)).await.unwrap();
    b.client.ensure_peer(&peer(B, A)).await.unwrap();
    let both = || async {
        has_route(&a, "203.0.113.0/28", addr(B), "192.0.2.68").await
            && has_route(&a, "203.0.113.16/28", addr(B), "192.0.2.68").await
    };
    wait_until("B's paths on A", ESTABLISH_TIMEOUT, [&a, &b], both).await;
    println!("B's paths on A after {:?}", began.elapsed());

    let mut events = a
        .client
        .watch()
        .await
        .unwrap()
        .expect("GoBGP has a change stream");
    // Subscribed without the initial dump: nothing about paths that were already there.
    let quiet = no_routes(&mut events, Duration::from_secs(1)).await;
    assert_eq!(quiet, None, "an event for a path that did not change");

    let mark = origin_a.mark.to_string();
    let del = ["global", "rib", "del", "192.0.2.0/28", "identifier", &mark];
    let t = Instant::now();
    a.gobgpd.cli(&del).unwrap();
    assert_eq!(
        next_routes(&mut events, "cellnet path deleted by hand").await,
        None
    );
    println!("event for the local path {:?} after the CLI began", t.elapsed());
    assert!(
        lacks_route(&a, "192.0.2.0/28").await,
        "the hand delete did nothing"
    );

    let t = Instant::now();
    writes(b.client.withdraw_origination(origin_b.mark).await.unwrap());
    assert_eq!(next_routes(&mut events, "B's withdrawal").await, Some(ab));
    println!(
        "event for B's withdrawal {:?} after the withdraw call began",
        t.elapsed()
    );
}
