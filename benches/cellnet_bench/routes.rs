//! The networks between cells in the bench: each endpoint declares `--networks` prefixes; the
//! floor writes the same originations and filters straight into GoBGP with cellnet's client;
//! both runs then wait until every allowed prefix is in every peer's table (Loc-RIB).
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use cellnet::sdn::gobgp::GoBgp;
use cellnet::sdn::gobgp::proto::gobgp_api_client::GobgpApiClient;
use cellnet::sdn::gobgp::proto::{self, family};
use cellnet::sdn::gobgp::routes::wire;
use cellnet::sdn::routes::{ExportRule, ImportRule, IpNet, Origination, RouteFilter, mark_of};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};

/// The `k`-th network of endpoint `i`: a /32 of 192.0.2.0/24, then of 203.0.113.0/24
/// (documentation ranges; 512 in all, so at most 128 endpoints with 4 networks each).
fn network(i: u16, k: usize, per_endpoint: usize) -> IpNet {
    let n = usize::from(i) * per_endpoint + k;
    assert!(n < 512, "{n}: the documentation ranges hold 512 /32 networks");
    let third = if n < 256 { [192, 0, 2] } else { [203, 0, 113] };
    let address = Ipv4Addr::new(third[0], third[1], third[2], (n % 256) as u8);
    IpNet::new(IpAddr::V4(address), 32).expect("a /32")
}

/// The networks endpoint `i` declares.
pub fn networks_of(i: u16, per_endpoint: usize) -> Vec<IpNet> {
    (0..per_endpoint).map(|k| network(i, k, per_endpoint)).collect()
}

/// `spec.networks` of endpoint `i`.
pub fn networks_json(i: u16, per_endpoint: usize) -> Value {
    let list: Vec<Value> = networks_of(i, per_endpoint)
        .iter()
        .map(|n| json!({"cidr": n.to_string()}))
        .collect();
    Value::Array(list)
}

/// What each speaker must hold once routes are exchanged: its neighbours' networks.
pub fn wanted(speakers: u16, pairs: &[(u16, u16)], per_endpoint: usize) -> Vec<BTreeSet<IpNet>> {
    let mut want = vec![BTreeSet::new(); usize::from(speakers)];
    for &(i, j) in pairs {
        want[usize::from(i)].extend(networks_of(j, per_endpoint));
        want[usize::from(j)].extend(networks_of(i, per_endpoint));
    }
    want
}

/// The floor's writes for speaker `i` at `address`: its origination, and one filter per
/// interconnect it is on (import the other endpoint's networks, export its own), as the
/// controller would write them.
pub async fn write_floor_routes(
    client: &GoBgp,
    i: u16,
    address: Ipv4Addr,
    peers: &[(usize, u16, Ipv4Addr)],
    per_endpoint: usize,
) {
    let own = networks_of(i, per_endpoint);
    let origination = Origination {
        mark: mark_of(&format!("floor-{i}")),
        next_hop: IpAddr::V4(address),
        networks: own.clone(),
        owner: format!("floor/{i}"),
    };
    client.ensure_origination(&origination).await.expect("originate");
    for &(k, j, neighbor) in peers {
        let filter = RouteFilter {
            key: format!("f{k}"),
            neighbors: vec![IpAddr::V4(neighbor)],
            import: ImportRule::Only(networks_of(j, per_endpoint)),
            export: ExportRule::Only(own.clone()),
            evpn: None,
        };
        client.ensure_route_filter(&filter).await.expect("route filter");
    }
}

/// A raw gRPC client per speaker, for reading Loc-RIBs (cellnet's client has no such read).
pub fn raw_clients(urls: &[String]) -> Vec<GobgpApiClient<Channel>> {
    urls.iter()
        .map(|u| GobgpApiClient::new(Endpoint::from_shared(u.clone()).expect("url").connect_lazy()))
        .collect()
}

/// The IPv4 unicast prefixes in a speaker's Loc-RIB (empty if it cannot be read now).
async fn loc_rib(mut client: GobgpApiClient<Channel>) -> BTreeSet<IpNet> {
    let request = proto::ListPathRequest {
        table_type: proto::TableType::Global as i32,
        family: Some(proto::Family {
            afi: family::Afi::Ip as i32,
            safi: family::Safi::Unicast as i32,
        }),
        ..Default::default()
    };
    let mut prefixes = BTreeSet::new();
    let Ok(response) = client.list_path(request).await else {
        return prefixes;
    };
    let mut stream = response.into_inner();
    while let Ok(Some(response)) = stream.message().await {
        let paths = response.destination.into_iter().flat_map(|d| d.paths);
        prefixes.extend(paths.filter_map(|p| wire::prefix_of(&p)));
    }
    prefixes
}

/// Waits until every speaker holds what `want` says, polling only the speakers still missing
/// some every 250 ms; returns how long after `began` the last one had all.
pub async fn wait_all_routes(
    clients: &[GobgpApiClient<Channel>],
    want: &[BTreeSet<IpNet>],
    began: Instant,
    timeout: Duration,
) -> f64 {
    let mut done = vec![false; clients.len()];
    loop {
        let missing: Vec<usize> = (0..clients.len()).filter(|&i| !done[i]).collect();
        let read: Vec<BTreeSet<IpNet>> = futures::stream::iter(missing.iter().map(|&i| clients[i].clone()))
            .map(loc_rib)
            .buffered(16)
            .collect()
            .await;
        for (&i, rib) in missing.iter().zip(&read) {
            done[i] = want[i].is_subset(rib);
        }
        let left = done.iter().filter(|d| !**d).count();
        if left == 0 {
            return began.elapsed().as_secs_f64();
        }
        assert!(
            began.elapsed() < timeout,
            "{left} speakers still miss routes after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
