//! A walk over a Kafka message body before kafka-protocol decodes it.
//! kafka-protocol's array decoder reserves an array's declared length up
//! front, so a peer that sends a malformed length (up to 2^31 elements, in
//! a few bytes) would make the allocator fail, and Rust aborts the whole
//! process on that. Every element of a Kafka array takes at least one byte,
//! so the walk refuses a length above the bytes left, and walks every
//! element, so the decoder only ever reserves room for elements that are
//! really there. Tagged fields must ascend and fit an int32 (the decoder
//! keeps unknown tags in a map by signed tag: a repeated tag or one past
//! 2^31 - 1 would not encode back as it came).
//!
//! The walk is driven by a `Layout` per message: its fields per version,
//! as the Kafka message schemas (and kafka-protocol's decoders) lay them
//! out. `requests` holds the client requests Strait decodes and
//! `responses` the broker responses; every kafka-protocol decode of bytes
//! from a client or a broker goes through [`request`], [`response`] or the
//! header checks first. The tests check each layout against
//! kafka-protocol's own encoder and decoder at every version.

use kafka_protocol::messages::ApiKey;

mod requests;
mod responses;
mod walk;

pub use walk::Malformed;
use walk::Walk;

/// One field of a struct: the versions that carry it, its tag when it is
/// a tagged field, and its type.
#[derive(Debug)]
pub(crate) struct F {
    lo: i16,
    hi: i16,
    tag: Option<u32>,
    ty: T,
}

/// A field's wire type, as far as the walk needs it. Strings and bytes
/// follow the message's flexible versions (compact lengths) unless
/// `classic` (a header's client id); `null` is only for the tests, which
/// build messages from layouts.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))] // `null` is read by the tests only
pub(crate) enum T {
    /// A fixed-width field of this many bytes.
    N(u8),
    Str {
        null: bool,
        classic: bool,
    },
    Bytes {
        null: bool,
        classic: bool,
    },
    /// An array of this element type.
    A(&'static T),
    /// A nullable array.
    NA(&'static T),
    /// A struct.
    S(&'static [F]),
}

/// A message: the versions kafka-protocol decodes, the first flexible one
/// ([`NEVER`] when none) and its top-level fields.
#[derive(Debug)]
pub(crate) struct Layout {
    lo: i16,
    hi: i16,
    flex: i16,
    fields: &'static [F],
}

const NEVER: i16 = i16::MAX;

impl Layout {
    const fn new(lo: i16, hi: i16, flex: i16, fields: &'static [F]) -> Layout {
        Layout {
            lo,
            hi,
            flex,
            fields,
        }
    }

    /// Walks `body` at `version`; returns how many bytes the message took.
    /// A version outside the layout's range is left to the decoder, which
    /// refuses it without reserving anything.
    fn walk(&self, version: i16, body: &[u8]) -> Result<usize, Malformed> {
        if version < self.lo || version > self.hi {
            return Ok(0);
        }
        let mut w = Walk::new(body, version >= self.flex, version);
        w.fields(self.fields)?;
        Ok(w.at())
    }
}

/// Field helpers for the layout tables: in every version, in `lo..=hi`,
/// and a tagged field.
const fn f(ty: T) -> F {
    F {
        lo: 0,
        hi: i16::MAX,
        tag: None,
        ty,
    }
}
const fn v(lo: i16, hi: i16, ty: T) -> F {
    F {
        lo,
        hi,
        tag: None,
        ty,
    }
}
const fn t(tag: u32, lo: i16, hi: i16, ty: T) -> F {
    F {
        lo,
        hi,
        tag: Some(tag),
        ty,
    }
}
const STR: T = T::Str {
    null: false,
    classic: false,
};
const NSTR: T = T::Str {
    null: true,
    classic: false,
};
const NCSTR: T = T::Str {
    null: true,
    classic: true,
};
const BYTES: T = T::Bytes {
    null: false,
    classic: false,
};
const NBYTES: T = T::Bytes {
    null: true,
    classic: false,
};

/// The request layout for an api key, when Strait decodes that request.
fn request_layout(api: ApiKey) -> Option<&'static Layout> {
    use requests::*;
    Some(match api {
        ApiKey::Produce => &produce::LAYOUT,
        ApiKey::Fetch => &fetch::LAYOUT,
        ApiKey::Metadata => &metadata::LAYOUT,
        ApiKey::CreateTopics => &create_topics::LAYOUT,
        ApiKey::AlterConfigs => &alter_configs::LAYOUT,
        ApiKey::IncrementalAlterConfigs => &incremental_alter_configs::LAYOUT,
        ApiKey::DeleteTopics => &delete_topics::LAYOUT,
        ApiKey::SaslHandshake => &sasl_handshake::LAYOUT,
        _ => return None,
    })
}

/// The response layout for an api key, when Strait decodes that response.
fn response_layout(api: ApiKey) -> Option<&'static Layout> {
    use responses::*;
    Some(match api {
        ApiKey::ApiVersions => &api_versions::LAYOUT,
        ApiKey::Metadata => &metadata::LAYOUT,
        ApiKey::FindCoordinator => &find_coordinator::LAYOUT,
        ApiKey::DescribeCluster => &describe_cluster::LAYOUT,
        ApiKey::Produce => &produce::LAYOUT,
        ApiKey::Fetch => &fetch::LAYOUT,
        ApiKey::ShareFetch => &share_fetch::LAYOUT,
        ApiKey::ShareAcknowledge => &share_acknowledge::LAYOUT,
        ApiKey::CreateTopics => &create_topics::LAYOUT,
        ApiKey::AlterConfigs => &alter_configs::LAYOUT,
        ApiKey::IncrementalAlterConfigs => &incremental_alter_configs::LAYOUT,
        ApiKey::DeleteTopics => &delete_topics::LAYOUT,
        ApiKey::ListOffsets => &list_offsets::LAYOUT,
        ApiKey::DescribeConfigs => &describe_configs::LAYOUT,
        ApiKey::SaslHandshake => &sasl_handshake::LAYOUT,
        ApiKey::SaslAuthenticate => &sasl_authenticate::LAYOUT,
        ApiKey::ListGroups => &list_groups::LAYOUT,
        ApiKey::DescribeGroups => &describe_groups::LAYOUT,
        ApiKey::ConsumerGroupDescribe => &consumer_group_describe::LAYOUT,
        ApiKey::OffsetFetch => &offset_fetch::LAYOUT,
        _ => return None,
    })
}

/// Whether the guard knows the request layout of `api` (a decode of any
/// other request body is a bug the tests look for).
pub fn guards_request(api: ApiKey) -> bool {
    request_layout(api).is_some()
}

/// Whether the guard knows the response layout of `api`.
pub fn guards_response(api: ApiKey) -> bool {
    response_layout(api).is_some()
}

/// Walks a request body (after the request header) of `api` at `version`.
/// `Ok` when kafka-protocol can decode it without reserving room for
/// elements that are not there. A request Strait never decodes is refused
/// (`Unguarded`) so a new decode cannot skip the walk unnoticed.
pub fn request(api: ApiKey, version: i16, body: &[u8]) -> Result<(), Malformed> {
    let layout = request_layout(api).ok_or(Malformed::Unguarded)?;
    layout.walk(version, body).map(drop)
}

/// Walks a response body (after the response header) of `api` at `version`.
pub fn response(api: ApiKey, version: i16, body: &[u8]) -> Result<(), Malformed> {
    let layout = response_layout(api).ok_or(Malformed::Unguarded)?;
    layout.walk(version, body).map(drop)
}

/// Walks a request header at `header_version`; returns its length.
pub fn request_header(header_version: i16, frame: &[u8]) -> Result<usize, Malformed> {
    requests::request_header::LAYOUT.walk(header_version, frame)
}

/// Walks a response header at `header_version`; returns its length.
pub fn response_header(header_version: i16, frame: &[u8]) -> Result<usize, Malformed> {
    responses::response_header::LAYOUT.walk(header_version, frame)
}

#[cfg(test)]
mod tests;
