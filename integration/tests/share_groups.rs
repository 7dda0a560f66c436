//! Share groups (KIP-932, served by Kafka 4.1.1) and fetch policies: a
//! share fetch gets neither the restore step nor the forced read_committed,
//! so while a fetch policy applies Strait leaves the share-group apis out of
//! ApiVersions and answers a share fetch UNSUPPORTED_VERSION with no records
//! (a client that ignores ApiVersions included). Without a fetch policy the
//! broker's share-group apis pass through as advertised.

use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, GroupId, ShareFetchRequest, ShareFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use strait_integration::tempdir::Dir;
use strait_integration::wire::{api_versions_request, Wire};
use strait_integration::{cluster, Strait};

const SHARE_GROUP_APIS: [i16; 4] = [76, 77, 78, 79];

fn share_apis(addr: &str) -> Vec<i16> {
    let mut w = Wire::connect(addr);
    let r: ApiVersionsResponse = w.call(ApiKey::ApiVersions, 3, &api_versions_request());
    assert_eq!(r.error_code, 0);
    r.api_keys
        .iter()
        .map(|k| k.api_key)
        .filter(|k| SHARE_GROUP_APIS.contains(k))
        .collect()
}

#[test]
fn share_groups_are_hidden_and_share_fetches_refused_while_a_fetch_policy_applies() {
    let upstream = cluster(1);
    assert_eq!(
        share_apis(&upstream),
        SHARE_GROUP_APIS.to_vec(),
        "the broker serves share groups"
    );
    let plain = Strait::quick(&upstream);
    assert_eq!(
        share_apis(&plain.bootstrap),
        SHARE_GROUP_APIS.to_vec(),
        "no fetch policy: advertised as the broker does"
    );
    let dir = Dir::new("share-groups");
    std::fs::write(
        dir.path().join("rc.toml"),
        "[[policy]]\nname = \"rc\"\ntopics = { prefix = \"rc.\" }\n\
         [policy.fetch]\nread_committed = true\n",
    )
    .unwrap();
    let strait = Strait::with_policies(&upstream, dir.path());
    assert_eq!(share_apis(&strait.bootstrap), Vec::<i16>::new());
    // A client that ignores ApiVersions and share-fetches anyway.
    let mut w = Wire::connect(&strait.bootstrap);
    let req = ShareFetchRequest::default()
        .with_group_id(Some(GroupId(StrBytes::from_static_str("g"))))
        .with_member_id(Some(StrBytes::from_static_str("m")))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20);
    let r: ShareFetchResponse = w.call(ApiKey::ShareFetch, 1, &req);
    assert_eq!(r.error_code, 35, "UNSUPPORTED_VERSION: {r:?}");
    assert!(r.responses.is_empty(), "no records: {r:?}");
    assert!(
        r.error_message
            .as_deref()
            .is_some_and(|m| m.contains("fetch policy")),
        "{r:?}"
    );
}
