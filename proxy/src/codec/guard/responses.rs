//! The broker responses Strait decodes (the response path's rewrites and
//! merges, and its own connections: discovery, SASL, the internal client),
//! and the response header, in the same form as [`super::requests`].

use super::T::{A, N, NA, S};
use super::{f, t, v, Layout, BYTES, F, NBYTES, NEVER, NSTR, STR};

/// ResponseHeader
#[rustfmt::skip]
pub(crate) mod response_header {
    use super::*;
    pub(crate) const LAYOUT: Layout = Layout::new(0, 1, 1, &[f(N(4))]);
}
/// ApiVersionsResponse
#[rustfmt::skip]
pub(crate) mod api_versions {
    use super::*;
    const API_VERSION: &[F] = &[f(N(2)), f(N(2)), f(N(2))];
    const SUPPORTED_FEATURE_KEY: &[F] = &[v(3, 4, STR), v(3, 4, N(2)), v(3, 4, N(2))];
    const FINALIZED_FEATURE_KEY: &[F] = &[v(3, 4, STR), v(3, 4, N(2)), v(3, 4, N(2))];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 4, 3, &[
        f(N(2)), f(A(&S(API_VERSION))), v(1, 4, N(4)), t(0, 0, 4, A(&S(SUPPORTED_FEATURE_KEY))),
        t(1, 0, 4, N(8)), t(2, 0, 4, A(&S(FINALIZED_FEATURE_KEY))), t(3, 0, 4, N(1)),
    ]);
}
/// MetadataResponse
#[rustfmt::skip]
pub(crate) mod metadata {
    use super::*;
    const METADATA_RESPONSE_BROKER: &[F] = &[f(N(4)), f(STR), f(N(4)), v(1, 13, NSTR)];
    const METADATA_RESPONSE_PARTITION: &[F] = &[
        f(N(2)), f(N(4)), f(N(4)), v(7, 13, N(4)), f(A(&N(4))), f(A(&N(4))), v(5, 13, A(&N(4))),
    ];
    const METADATA_RESPONSE_TOPIC: &[F] = &[
        f(N(2)), f(NSTR), v(10, 13, N(16)), v(1, 13, N(1)), f(A(&S(METADATA_RESPONSE_PARTITION))),
        v(8, 13, N(4)),
    ];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 13, 9, &[
        v(3, 13, N(4)), f(A(&S(METADATA_RESPONSE_BROKER))), v(2, 13, NSTR), v(1, 13, N(4)),
        f(A(&S(METADATA_RESPONSE_TOPIC))), v(8, 10, N(4)), v(13, 13, N(2)),
    ]);
}
/// FindCoordinatorResponse
#[rustfmt::skip]
pub(crate) mod find_coordinator {
    use super::*;
    const COORDINATOR: &[F] = &[
        v(4, 6, STR), v(4, 6, N(4)), v(4, 6, STR), v(4, 6, N(4)), v(4, 6, N(2)), v(4, 6, NSTR),
    ];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 6, 3, &[
        v(1, 6, N(4)), v(0, 3, N(2)), v(1, 3, NSTR), v(0, 3, N(4)), v(0, 3, STR), v(0, 3, N(4)),
        v(4, 6, A(&S(COORDINATOR))),
    ]);
}
/// DescribeClusterResponse
#[rustfmt::skip]
pub(crate) mod describe_cluster {
    use super::*;
    const DESCRIBE_CLUSTER_BROKER: &[F] = &[f(N(4)), f(STR), f(N(4)), f(NSTR), v(2, 2, N(1))];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 2, 0, &[
        f(N(4)), f(N(2)), f(NSTR), v(1, 2, N(1)), f(STR), f(N(4)),
        f(A(&S(DESCRIBE_CLUSTER_BROKER))), f(N(4)),
    ]);
}
/// ProduceResponse
#[rustfmt::skip]
pub(crate) mod produce {
    use super::*;
    const BATCH_INDEX_AND_ERROR_MESSAGE: &[F] = &[v(8, 13, N(4)), v(8, 13, NSTR)];
    const LEADER_ID_AND_EPOCH: &[F] = &[v(10, 13, N(4)), v(10, 13, N(4))];
    const PARTITION_PRODUCE_RESPONSE: &[F] = &[
        f(N(4)), f(N(2)), f(N(8)), f(N(8)), v(5, 13, N(8)),
        v(8, 13, A(&S(BATCH_INDEX_AND_ERROR_MESSAGE))), v(8, 13, NSTR),
        t(0, 10, 13, S(LEADER_ID_AND_EPOCH)),
    ];
    const TOPIC_PRODUCE_RESPONSE: &[F] = &[
        v(3, 12, STR), v(13, 13, N(16)), f(A(&S(PARTITION_PRODUCE_RESPONSE))),
    ];
    const NODE_ENDPOINT: &[F] = &[
        v(10, 13, N(4)), v(10, 13, STR), v(10, 13, N(4)), v(10, 13, NSTR),
    ];
    pub(crate) const LAYOUT: Layout = Layout::new(3, 13, 9, &[
        f(A(&S(TOPIC_PRODUCE_RESPONSE))), f(N(4)), t(0, 10, 13, A(&S(NODE_ENDPOINT))),
    ]);
}
/// FetchResponse
#[rustfmt::skip]
pub(crate) mod fetch {
    use super::*;
    const ABORTED_TRANSACTION: &[F] = &[f(N(8)), f(N(8))];
    const EPOCH_END_OFFSET: &[F] = &[v(12, 18, N(4)), v(12, 18, N(8))];
    const LEADER_ID_AND_EPOCH: &[F] = &[v(12, 18, N(4)), v(12, 18, N(4))];
    const SNAPSHOT_ID: &[F] = &[f(N(8)), f(N(4))];
    const PARTITION_DATA: &[F] = &[
        f(N(4)), f(N(2)), f(N(8)), f(N(8)), v(5, 18, N(8)), f(NA(&S(ABORTED_TRANSACTION))),
        v(11, 18, N(4)), f(NBYTES), t(0, 4, 18, S(EPOCH_END_OFFSET)),
        t(1, 4, 18, S(LEADER_ID_AND_EPOCH)), t(2, 4, 18, S(SNAPSHOT_ID)),
    ];
    const FETCHABLE_TOPIC_RESPONSE: &[F] = &[
        v(4, 12, STR), v(13, 18, N(16)), f(A(&S(PARTITION_DATA))),
    ];
    const NODE_ENDPOINT: &[F] = &[
        v(16, 18, N(4)), v(16, 18, STR), v(16, 18, N(4)), v(16, 18, NSTR),
    ];
    pub(crate) const LAYOUT: Layout = Layout::new(4, 18, 12, &[
        f(N(4)), v(7, 18, N(2)), v(7, 18, N(4)), f(A(&S(FETCHABLE_TOPIC_RESPONSE))),
        t(0, 16, 18, A(&S(NODE_ENDPOINT))),
    ]);
}
/// ShareFetchResponse
#[rustfmt::skip]
pub(crate) mod share_fetch {
    use super::*;
    const LEADER_ID_AND_EPOCH: &[F] = &[f(N(4)), f(N(4))];
    const ACQUIRED_RECORDS: &[F] = &[f(N(8)), f(N(8)), f(N(2))];
    const PARTITION_DATA: &[F] = &[
        f(N(4)), f(N(2)), f(NSTR), f(N(2)), f(NSTR), f(S(LEADER_ID_AND_EPOCH)), f(NBYTES),
        f(A(&S(ACQUIRED_RECORDS))),
    ];
    const SHARE_FETCHABLE_TOPIC_RESPONSE: &[F] = &[f(N(16)), f(A(&S(PARTITION_DATA)))];
    const NODE_ENDPOINT: &[F] = &[f(N(4)), f(STR), f(N(4)), f(NSTR)];
    pub(crate) const LAYOUT: Layout = Layout::new(1, 1, 0, &[
        f(N(4)), f(N(2)), f(NSTR), f(N(4)), f(A(&S(SHARE_FETCHABLE_TOPIC_RESPONSE))),
        f(A(&S(NODE_ENDPOINT))),
    ]);
}
/// ShareAcknowledgeResponse
#[rustfmt::skip]
pub(crate) mod share_acknowledge {
    use super::*;
    const LEADER_ID_AND_EPOCH: &[F] = &[f(N(4)), f(N(4))];
    const PARTITION_DATA: &[F] = &[f(N(4)), f(N(2)), f(NSTR), f(S(LEADER_ID_AND_EPOCH))];
    const SHARE_ACKNOWLEDGE_TOPIC_RESPONSE: &[F] = &[f(N(16)), f(A(&S(PARTITION_DATA)))];
    const NODE_ENDPOINT: &[F] = &[f(N(4)), f(STR), f(N(4)), f(NSTR)];
    pub(crate) const LAYOUT: Layout = Layout::new(1, 1, 0, &[
        f(N(4)), f(N(2)), f(NSTR), f(A(&S(SHARE_ACKNOWLEDGE_TOPIC_RESPONSE))),
        f(A(&S(NODE_ENDPOINT))),
    ]);
}
/// CreateTopicsResponse
#[rustfmt::skip]
pub(crate) mod create_topics {
    use super::*;
    const CREATABLE_TOPIC_CONFIGS: &[F] = &[
        v(5, 7, STR), v(5, 7, NSTR), v(5, 7, N(1)), v(5, 7, N(1)), v(5, 7, N(1)),
    ];
    const CREATABLE_TOPIC_RESULT: &[F] = &[
        f(STR), v(7, 7, N(16)), f(N(2)), f(NSTR), v(5, 7, N(4)), v(5, 7, N(2)),
        v(5, 7, NA(&S(CREATABLE_TOPIC_CONFIGS))), t(0, 2, 7, N(2)),
    ];
    pub(crate) const LAYOUT: Layout = Layout::new(2, 7, 5, &[
        f(N(4)), f(A(&S(CREATABLE_TOPIC_RESULT))),
    ]);
}
/// AlterConfigsResponse
#[rustfmt::skip]
pub(crate) mod alter_configs {
    use super::*;
    const ALTER_CONFIGS_RESOURCE_RESPONSE: &[F] = &[f(N(2)), f(NSTR), f(N(1)), f(STR)];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 2, 2, &[
        f(N(4)), f(A(&S(ALTER_CONFIGS_RESOURCE_RESPONSE))),
    ]);
}
/// IncrementalAlterConfigsResponse
#[rustfmt::skip]
pub(crate) mod incremental_alter_configs {
    use super::*;
    const ALTER_CONFIGS_RESOURCE_RESPONSE: &[F] = &[f(N(2)), f(NSTR), f(N(1)), f(STR)];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 1, 1, &[
        f(N(4)), f(A(&S(ALTER_CONFIGS_RESOURCE_RESPONSE))),
    ]);
}
/// DeleteTopicsResponse
#[rustfmt::skip]
pub(crate) mod delete_topics {
    use super::*;
    const DELETABLE_TOPIC_RESULT: &[F] = &[f(NSTR), v(6, 6, N(16)), f(N(2)), v(5, 6, NSTR)];
    pub(crate) const LAYOUT: Layout = Layout::new(1, 6, 4, &[
        f(N(4)), f(A(&S(DELETABLE_TOPIC_RESULT))),
    ]);
}
/// ListOffsetsResponse
#[rustfmt::skip]
pub(crate) mod list_offsets {
    use super::*;
    const LIST_OFFSETS_PARTITION_RESPONSE: &[F] = &[
        f(N(4)), f(N(2)), f(N(8)), f(N(8)), v(4, 10, N(4)),
    ];
    const LIST_OFFSETS_TOPIC_RESPONSE: &[F] = &[f(STR), f(A(&S(LIST_OFFSETS_PARTITION_RESPONSE)))];
    pub(crate) const LAYOUT: Layout = Layout::new(1, 10, 6, &[
        v(2, 10, N(4)), f(A(&S(LIST_OFFSETS_TOPIC_RESPONSE))),
    ]);
}
/// DescribeConfigsResponse
#[rustfmt::skip]
pub(crate) mod describe_configs {
    use super::*;
    const DESCRIBE_CONFIGS_SYNONYM: &[F] = &[f(STR), f(NSTR), f(N(1))];
    const DESCRIBE_CONFIGS_RESOURCE_RESULT: &[F] = &[
        f(STR), f(NSTR), f(N(1)), f(N(1)), f(N(1)), f(A(&S(DESCRIBE_CONFIGS_SYNONYM))),
        v(3, 4, N(1)), v(3, 4, NSTR),
    ];
    const DESCRIBE_CONFIGS_RESULT: &[F] = &[
        f(N(2)), f(NSTR), f(N(1)), f(STR), f(A(&S(DESCRIBE_CONFIGS_RESOURCE_RESULT))),
    ];
    pub(crate) const LAYOUT: Layout = Layout::new(1, 4, 4, &[
        f(N(4)), f(A(&S(DESCRIBE_CONFIGS_RESULT))),
    ]);
}
/// SaslHandshakeResponse
#[rustfmt::skip]
pub(crate) mod sasl_handshake {
    use super::*;
    pub(crate) const LAYOUT: Layout = Layout::new(0, 1, NEVER, &[f(N(2)), f(A(&STR))]);
}
/// SaslAuthenticateResponse
#[rustfmt::skip]
pub(crate) mod sasl_authenticate {
    use super::*;
    pub(crate) const LAYOUT: Layout = Layout::new(0, 2, 2, &[
        f(N(2)), f(NSTR), f(BYTES), v(1, 2, N(8)),
    ]);
}
/// ListGroupsResponse
#[rustfmt::skip]
pub(crate) mod list_groups {
    use super::*;
    const LISTED_GROUP: &[F] = &[f(STR), f(STR), v(4, 5, STR), v(5, 5, STR)];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 5, 3, &[
        v(1, 5, N(4)), f(N(2)), f(A(&S(LISTED_GROUP))),
    ]);
}
/// DescribeGroupsResponse
#[rustfmt::skip]
pub(crate) mod describe_groups {
    use super::*;
    const DESCRIBED_GROUP_MEMBER: &[F] = &[
        f(STR), v(4, 6, NSTR), f(STR), f(STR), f(BYTES), f(BYTES),
    ];
    const DESCRIBED_GROUP: &[F] = &[
        f(N(2)), v(6, 6, NSTR), f(STR), f(STR), f(STR), f(STR),
        f(A(&S(DESCRIBED_GROUP_MEMBER))), v(3, 6, N(4)),
    ];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 6, 5, &[
        v(1, 6, N(4)), f(A(&S(DESCRIBED_GROUP))),
    ]);
}
/// ConsumerGroupDescribeResponse (KIP-848)
#[rustfmt::skip]
pub(crate) mod consumer_group_describe {
    use super::*;
    const TOPIC_PARTITIONS: &[F] = &[f(N(16)), f(STR), f(A(&N(4)))];
    const ASSIGNMENT: &[F] = &[f(A(&S(TOPIC_PARTITIONS)))];
    const MEMBER: &[F] = &[
        f(STR), f(NSTR), f(NSTR), f(N(4)), f(STR), f(STR), f(A(&STR)), f(NSTR),
        f(S(ASSIGNMENT)), f(S(ASSIGNMENT)), v(1, 1, N(1)),
    ];
    const DESCRIBED_GROUP: &[F] = &[
        f(N(2)), f(NSTR), f(STR), f(STR), f(N(4)), f(N(4)), f(STR), f(A(&S(MEMBER))), f(N(4)),
    ];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 1, 0, &[
        f(N(4)), f(A(&S(DESCRIBED_GROUP))),
    ]);
}
/// OffsetFetchResponse
#[rustfmt::skip]
pub(crate) mod offset_fetch {
    use super::*;
    const PARTITION: &[F] = &[f(N(4)), f(N(8)), v(5, 7, N(4)), f(NSTR), f(N(2))];
    const TOPIC: &[F] = &[f(STR), f(A(&S(PARTITION)))];
    const PARTITIONS: &[F] = &[f(N(4)), f(N(8)), f(N(4)), f(NSTR), f(N(2))];
    const TOPICS: &[F] = &[v(8, 9, STR), v(10, 10, N(16)), f(A(&S(PARTITIONS)))];
    const GROUP: &[F] = &[f(STR), f(A(&S(TOPICS))), f(N(2))];
    pub(crate) const LAYOUT: Layout = Layout::new(1, 10, 6, &[
        v(3, 10, N(4)), v(1, 7, A(&S(TOPIC))), v(2, 7, N(2)), v(8, 10, A(&S(GROUP))),
    ]);
}
