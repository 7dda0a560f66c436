//! Invariant 6: broker addresses never leak. The upstream cluster advertises
//! the host name `localhost`; Strait advertises `127.0.0.1`, so any upstream
//! address in a response is visible as the string "localhost".

use std::collections::BTreeSet;

use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, DescribeClusterRequest, DescribeClusterResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;
use strait_integration::wire::{decode, Wire};
use strait_integration::{cluster, create_topic, java, run, unique, Strait};

const UPSTREAM_HOST: &[u8] = b"localhost";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn range(api: &ApiVersionsResponse, key: ApiKey) -> (i16, i16) {
    let k = api
        .api_keys
        .iter()
        .find(|k| k.api_key == key as i16)
        .unwrap_or_else(|| panic!("{key:?} advertised"));
    (k.min_version, k.max_version)
}

#[test]
fn raw_responses_name_only_strait_in_every_version() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let ports: BTreeSet<i32> = strait.broker_ports().into_iter().map(i32::from).collect();
    assert!(!ports.is_empty());
    let upstream_ports: BTreeSet<i32> = upstream
        .split(',')
        .map(|a| a.rsplit_once(':').unwrap().1.parse().unwrap())
        .collect();
    assert!(ports.is_disjoint(&upstream_ports));

    let mut w = Wire::connect(&strait.bootstrap);
    let api: ApiVersionsResponse = w.call(
        ApiKey::ApiVersions,
        3,
        &strait_integration::wire::api_versions_request(),
    );
    assert_eq!(api.error_code, 0);
    // KIP-951 endpoints are clamped away by default, so fetches stream.
    assert!(
        range(&api, ApiKey::Produce).1 <= 9,
        "{:?}",
        range(&api, ApiKey::Produce)
    );
    assert!(
        range(&api, ApiKey::Fetch).1 <= 15,
        "{:?}",
        range(&api, ApiKey::Fetch)
    );
    assert!(range(&api, ApiKey::Metadata).1 <= 13);

    let topic = unique("addr");
    create_topic(&upstream, &topic, 2, 1);
    let (lo, hi) = range(&api, ApiKey::Metadata);
    for v in lo..=hi {
        let req = MetadataRequest::default().with_topics(if v == 0 { Some(vec![]) } else { None });
        let raw = w.call_raw(ApiKey::Metadata, v, &req);
        assert!(
            !contains(&raw, UPSTREAM_HOST),
            "Metadata v{v} leaks an upstream host"
        );
        let resp: MetadataResponse = decode(ApiKey::Metadata, v, raw);
        assert!(!resp.brokers.is_empty());
        for b in &resp.brokers {
            assert_eq!(b.host.as_str(), "127.0.0.1", "Metadata v{v}");
            assert!(
                ports.contains(&b.port),
                "Metadata v{v}: port {} is not Strait's",
                b.port
            );
        }
    }
    let (lo, hi) = range(&api, ApiKey::FindCoordinator);
    for v in lo..=hi {
        let group = StrBytes::from_string(unique("g"));
        let req = if v >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![group])
        } else {
            FindCoordinatorRequest::default().with_key(group)
        };
        // The group coordinator may need a moment to load; retry on error codes.
        let resp: FindCoordinatorResponse = strait_integration::eventually(
            &format!("FindCoordinator v{v} without error"),
            std::time::Duration::from_secs(30),
            || {
                let raw = w.call_raw(ApiKey::FindCoordinator, v, &req);
                assert!(
                    !contains(&raw, UPSTREAM_HOST),
                    "FindCoordinator v{v} leaks an upstream host"
                );
                let r: FindCoordinatorResponse = decode(ApiKey::FindCoordinator, v, raw);
                let ok = if v >= 4 {
                    r.coordinators.iter().all(|c| c.error_code == 0)
                } else {
                    r.error_code == 0
                };
                ok.then_some(r)
            },
        );
        let found: Vec<(String, i32)> = if v >= 4 {
            resp.coordinators
                .iter()
                .map(|c| (c.host.to_string(), c.port))
                .collect()
        } else {
            vec![(resp.host.to_string(), resp.port)]
        };
        for (h, p) in found {
            assert_eq!(h, "127.0.0.1", "FindCoordinator v{v}");
            assert!(ports.contains(&p), "FindCoordinator v{v}: port {p}");
        }
    }
    let (lo, hi) = range(&api, ApiKey::DescribeCluster);
    for v in lo..=hi {
        let req = DescribeClusterRequest::default().with_endpoint_type(1);
        let raw = w.call_raw(ApiKey::DescribeCluster, v, &req);
        assert!(!contains(&raw, UPSTREAM_HOST), "DescribeCluster v{v} leaks");
        let resp: DescribeClusterResponse = decode(ApiKey::DescribeCluster, v, raw);
        for b in &resp.brokers {
            assert_eq!(b.host.as_str(), "127.0.0.1");
            assert!(ports.contains(&b.port));
        }
    }
    // The per-broker listeners serve too.
    for p in &ports {
        let mut b = Wire::connect(&format!("127.0.0.1:{p}"));
        let resp: MetadataResponse = b.call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        );
        assert!(resp.brokers.iter().all(|b| b.host.as_str() == "127.0.0.1"));
    }
    assert!(
        strait.warnings().is_empty(),
        "unexpected warnings: {:#?}",
        strait.warnings()
    );
}

/// `kcat -L` (librdkafka) lists brokers and topics through Strait.
#[test]
fn kcat_metadata_lists_only_strait() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("kcat");
    create_topic(&upstream, &topic, 3, 1);
    // A topic just created reaches every broker's metadata cache shortly after.
    let text = strait_integration::eventually(
        "kcat -L to list the new topic",
        std::time::Duration::from_secs(30),
        || {
            let out = run(std::process::Command::new("kcat").args([
                "-L",
                "-b",
                &strait.bootstrap,
                "-m",
                "20",
            ]));
            out.assert_ok("kcat -L");
            let text = format!("{}{}", out.stdout, out.stderr);
            text.contains(&topic).then_some(text)
        },
    );
    assert!(
        !text.contains("localhost"),
        "kcat saw an upstream address:\n{text}"
    );
    for p in upstream.split(',').map(|a| a.rsplit_once(':').unwrap().1) {
        assert!(
            !text.contains(&format!(":{p}")),
            "kcat saw upstream port {p}:\n{text}"
        );
    }
    let brokers: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("broker "))
        .collect();
    assert!(!brokers.is_empty(), "{text}");
    let ports = strait.broker_ports();
    for line in brokers {
        let addr = line
            .split(" at ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let (host, port) = addr.rsplit_once(':').unwrap();
        assert_eq!(host, "127.0.0.1", "{line}");
        assert!(ports.contains(&port.parse().unwrap()), "{line}");
    }
}

/// The Java AdminClient sees Strait's addresses in describeCluster,
/// describeTopics and the group coordinator.
#[test]
fn java_admin_sees_only_strait() {
    let upstream = cluster(1);
    let strait = Strait::quick(&upstream);
    strait.wait_ready();
    let topic = unique("admin");
    let out = run(&mut java(
        "AdminAddresses",
        &["--bootstrap", &strait.bootstrap, "--topic", &topic],
    ));
    out.assert_ok("AdminAddresses");
    assert!(!out.stdout.contains("localhost"), "{}", out.stdout);
    let ports = strait.broker_ports();
    let nodes: Vec<_> = out
        .json_lines()
        .into_iter()
        .filter(|l| l.get("host").is_some())
        .collect();
    assert!(
        nodes.len() >= 3,
        "describeCluster, topic leaders and the coordinator: {:?}",
        out.stdout
    );
    for n in nodes {
        assert_eq!(n["host"], "127.0.0.1", "{n}");
        let port = n["port"].as_u64().unwrap() as u16;
        assert!(ports.contains(&port), "{n} not a Strait port {ports:?}");
    }
}
