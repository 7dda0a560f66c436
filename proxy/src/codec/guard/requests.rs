//! The client requests Strait decodes (policies, SASL), and the request
//! header: per struct, its fields in wire order, each with the versions
//! that carry it (`v(lo, hi, ..)`, or `f(..)` for all) and the tagged ones
//! (`t(tag, lo, hi, ..)`), as the Kafka message schemas define them and
//! kafka-protocol 0.18 decodes them. The tests check every table against
//! kafka-protocol's encoder and decoder at every version.

use super::T::{A, N, NA, S};
use super::{f, t, v, Layout, F, NBYTES, NCSTR, NEVER, NSTR, STR};

/// RequestHeader
#[rustfmt::skip]
pub(crate) mod request_header {
    use super::*;
    pub(crate) const LAYOUT: Layout = Layout::new(1, 2, 2, &[f(N(2)), f(N(2)), f(N(4)), f(NCSTR)]);
}
/// ProduceRequest
#[rustfmt::skip]
pub(crate) mod produce {
    use super::*;
    const PARTITION_PRODUCE_DATA: &[F] = &[f(N(4)), f(NBYTES)];
    const TOPIC_PRODUCE_DATA: &[F] = &[
        v(3, 12, STR), v(13, 13, N(16)), f(A(&S(PARTITION_PRODUCE_DATA))),
    ];
    pub(crate) const LAYOUT: Layout = Layout::new(3, 13, 9, &[
        f(NSTR), f(N(2)), f(N(4)), f(A(&S(TOPIC_PRODUCE_DATA))),
    ]);
}
/// FetchRequest
#[rustfmt::skip]
pub(crate) mod fetch {
    use super::*;
    const FETCH_PARTITION: &[F] = &[
        f(N(4)), v(9, 18, N(4)), f(N(8)), v(12, 18, N(4)), v(5, 18, N(8)), f(N(4)),
        t(0, 17, 18, N(16)), t(1, 18, 18, N(8)),
    ];
    const FETCH_TOPIC: &[F] = &[v(4, 12, STR), v(13, 18, N(16)), f(A(&S(FETCH_PARTITION)))];
    const FORGOTTEN_TOPIC: &[F] = &[v(7, 12, STR), v(13, 18, N(16)), v(7, 18, A(&N(4)))];
    const REPLICA_STATE: &[F] = &[v(15, 18, N(4)), v(15, 18, N(8))];
    pub(crate) const LAYOUT: Layout = Layout::new(4, 18, 12, &[
        v(4, 14, N(4)), f(N(4)), f(N(4)), f(N(4)), f(N(1)), v(7, 18, N(4)), v(7, 18, N(4)),
        f(A(&S(FETCH_TOPIC))), v(7, 18, A(&S(FORGOTTEN_TOPIC))), v(11, 18, STR),
        t(0, 4, 18, NSTR), t(1, 15, 18, S(REPLICA_STATE)),
    ]);
}
/// MetadataRequest
#[rustfmt::skip]
pub(crate) mod metadata {
    use super::*;
    const METADATA_REQUEST_TOPIC: &[F] = &[v(10, 13, N(16)), f(NSTR)];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 13, 9, &[
        f(NA(&S(METADATA_REQUEST_TOPIC))), v(4, 13, N(1)), v(8, 10, N(1)), v(8, 13, N(1)),
    ]);
}
/// CreateTopicsRequest
#[rustfmt::skip]
pub(crate) mod create_topics {
    use super::*;
    const CREATABLE_REPLICA_ASSIGNMENT: &[F] = &[f(N(4)), f(A(&N(4)))];
    const CREATABLE_TOPIC_CONFIG: &[F] = &[f(STR), f(NSTR)];
    const CREATABLE_TOPIC: &[F] = &[
        f(STR), f(N(4)), f(N(2)), f(A(&S(CREATABLE_REPLICA_ASSIGNMENT))),
        f(A(&S(CREATABLE_TOPIC_CONFIG))),
    ];
    pub(crate) const LAYOUT: Layout = Layout::new(2, 7, 5, &[
        f(A(&S(CREATABLE_TOPIC))), f(N(4)), f(N(1)),
    ]);
}
/// AlterConfigsRequest
#[rustfmt::skip]
pub(crate) mod alter_configs {
    use super::*;
    const ALTERABLE_CONFIG: &[F] = &[f(STR), f(NSTR)];
    const ALTER_CONFIGS_RESOURCE: &[F] = &[f(N(1)), f(STR), f(A(&S(ALTERABLE_CONFIG)))];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 2, 2, &[
        f(A(&S(ALTER_CONFIGS_RESOURCE))), f(N(1)),
    ]);
}
/// IncrementalAlterConfigsRequest
#[rustfmt::skip]
pub(crate) mod incremental_alter_configs {
    use super::*;
    const ALTERABLE_CONFIG: &[F] = &[f(STR), f(N(1)), f(NSTR)];
    const ALTER_CONFIGS_RESOURCE: &[F] = &[f(N(1)), f(STR), f(A(&S(ALTERABLE_CONFIG)))];
    pub(crate) const LAYOUT: Layout = Layout::new(0, 1, 1, &[
        f(A(&S(ALTER_CONFIGS_RESOURCE))), f(N(1)),
    ]);
}
/// DeleteTopicsRequest
#[rustfmt::skip]
pub(crate) mod delete_topics {
    use super::*;
    const DELETE_TOPIC_STATE: &[F] = &[v(6, 6, NSTR), v(6, 6, N(16))];
    pub(crate) const LAYOUT: Layout = Layout::new(1, 6, 4, &[
        v(6, 6, A(&S(DELETE_TOPIC_STATE))), v(1, 5, A(&STR)), f(N(4)),
    ]);
}
/// SaslHandshakeRequest
#[rustfmt::skip]
pub(crate) mod sasl_handshake {
    use super::*;
    pub(crate) const LAYOUT: Layout = Layout::new(0, 1, NEVER, &[f(STR)]);
}
