//! Three-broker addressing: a broker that joins after Strait started gets a
//! listener on the fly, and in `leader_endpoints = "rewrite"` mode the KIP-951
//! node endpoints of Produce v10+ / Fetch v16+ point at Strait.
//!
//! Both tests stop or redirect brokers of the shared 3-broker cluster, so they
//! hold one lock and run one at a time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse,
    ProduceResponse,
};
use strait_integration::wire::{api_versions_request, decode, produce_request_to, Wire};
use strait_integration::{
    cluster, cluster_name, create_topic, eventually, harness, java, run, unique, Strait,
};

static CLUSTER: Mutex<()> = Mutex::new(());

/// node id -> (Strait port, upstream address), from the admin `/brokers` view.
fn broker_map(strait: &Strait) -> HashMap<i32, (u16, String)> {
    let (_, body) = strait.admin_get("/brokers");
    body.lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            let id = f.next().unwrap().parse().unwrap();
            let port = f.next().unwrap().parse().unwrap();
            (id, (port, f.next().unwrap().to_string()))
        })
        .collect()
}

fn metadata(addr: &str) -> MetadataResponse {
    Wire::connect(addr).call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    )
}

#[test]
fn a_broker_that_joins_later_gets_a_listener() {
    let _guard = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let upstream = cluster(3);
    let direct = upstream.split(',').next().unwrap().to_string();
    let name = cluster_name(3);
    run(&mut harness(&["kill-node", "--name", &name, "--node", "3"])).assert_ok("kill node 3");
    let restart = scopeguard(|| {
        run(&mut harness(&[
            "start-node",
            "--name",
            &name,
            "--node",
            "3",
        ]))
        .assert_ok("start node 3");
    });
    // The cluster forgets node 3 after its session times out.
    eventually(
        "the cluster to drop node 3",
        Duration::from_secs(60),
        || (metadata(&direct).brokers.len() == 2).then_some(()),
    );
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    assert_eq!(broker_map(&strait).len(), 2, "{:?}", broker_map(&strait));
    drop(restart); // node 3 comes back
    let resp = eventually(
        "node 3 in Metadata through Strait",
        Duration::from_secs(60),
        || {
            let m = metadata(&strait.bootstrap);
            (m.brokers.len() == 3).then_some(m)
        },
    );
    let map = broker_map(&strait);
    let (port, _) = map.get(&3).expect("node 3 has a listener now");
    let b3 = resp.brokers.iter().find(|b| b.node_id.0 == 3).unwrap();
    assert_eq!((b3.host.as_str(), b3.port), ("127.0.0.1", i32::from(*port)));
    let m = metadata(&format!("127.0.0.1:{port}"));
    assert_eq!(m.brokers.len(), 3, "the new listener serves");
}

fn assert_names_only_strait(raw: &[u8], what: &str) {
    assert!(
        !raw.windows(9).any(|x| x == b"localhost"),
        "{what} leaks an upstream address"
    );
}

/// The leader's KIP-951 endpoint is Strait's listener for it.
fn assert_leader_endpoint<'a>(
    mut endpoints: impl Iterator<Item = (i32, &'a str, i32)>,
    leader: i32,
    port: u16,
) {
    let (_, host, got) = endpoints.find(|e| e.0 == leader).expect("leader endpoint");
    assert_eq!((host, got), ("127.0.0.1", i32::from(port)));
}

/// Runs `f` on drop: restarts a stopped broker even if an assertion fails.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

#[test]
fn kip951_leader_endpoints_point_at_strait_in_rewrite_mode() {
    let _guard = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let upstream = cluster(3);
    let toml = format!(
        "[listen]\nbootstrap = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [upstream]\nbootstrap = [{}]\nleader_endpoints = \"rewrite\"\n",
        upstream
            .split(',')
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (strait, _dir) = Strait::with_config(&toml);
    strait.wait_ready();
    let mut w = Wire::connect(&strait.bootstrap);
    let api: ApiVersionsResponse = w.call(ApiKey::ApiVersions, 3, &api_versions_request());
    let max = |k: ApiKey| {
        api.api_keys
            .iter()
            .find(|a| a.api_key == k as i16)
            .unwrap()
            .max_version
    };
    assert!(
        max(ApiKey::Produce) >= 10 && max(ApiKey::Fetch) >= 16,
        "rewrite mode advertises KIP-951 versions"
    );

    let topic = unique("kip951");
    create_topic(&upstream, &topic, 1, 1);
    let meta = eventually("topic metadata", Duration::from_secs(30), || {
        let m = metadata(&strait.bootstrap);
        m.topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic.as_str()))
            .and_then(|t| {
                let p = t.partitions.first()?;
                (p.leader_id.0 >= 0).then_some((t.topic_id, p.leader_id.0))
            })
    });
    let (topic_id, leader) = meta;
    let map = broker_map(&strait);
    let (leader_port, _) = map[&leader];
    let (&other, &(other_port, _)) = map.iter().find(|(id, _)| **id != leader).unwrap();
    let mut wrong = Wire::connect(&format!("127.0.0.1:{other_port}"));

    // Produce to a broker that is not the leader: NOT_LEADER_OR_FOLLOWER with
    // the leader's endpoint, which must be Strait's listener for it.
    let pv = max(ApiKey::Produce).min(12);
    let raw = wrong.call_raw(
        ApiKey::Produce,
        pv,
        &produce_request_to(&topic, 0, -1, b"x"),
    );
    assert_names_only_strait(&raw, &format!("Produce v{pv}"));
    let resp: ProduceResponse = decode(ApiKey::Produce, pv, raw);
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code, 6,
        "NOT_LEADER_OR_FOLLOWER from node {other}"
    );
    let endpoints = resp
        .node_endpoints
        .iter()
        .map(|n| (n.node_id.0, n.host.as_str(), n.port));
    assert_leader_endpoint(endpoints, leader, leader_port);

    let fv = max(ApiKey::Fetch).min(17);
    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic_id)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let raw = wrong.call_raw(ApiKey::Fetch, fv, &fetch);
    assert_names_only_strait(&raw, &format!("Fetch v{fv}"));
    let resp: FetchResponse = decode(ApiKey::Fetch, fv, raw);
    assert_eq!(
        resp.responses[0].partitions[0].error_code, 6,
        "NOT_LEADER_OR_FOLLOWER"
    );
    let endpoints = resp
        .node_endpoints
        .iter()
        .map(|n| (n.node_id.0, n.host.as_str(), n.port));
    assert_leader_endpoint(endpoints, leader, leader_port);

    // A real client on the newest versions works through the rewriting path.
    let out = run(&mut java(
        "GroupRebalance",
        &[
            "--bootstrap",
            &strait.bootstrap,
            "--topic",
            &unique("kip951-group"),
            "--records",
            "1000",
        ],
    ));
    out.assert_ok("GroupRebalance in rewrite mode");
    assert!(
        strait.warnings().is_empty(),
        "unexpected warnings: {:#?}",
        strait.warnings()
    );
}
