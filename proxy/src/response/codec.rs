//! The response envelope: the few responses Strait decodes (address-bearing
//! ones, and those a policy merges rejections into), decoded whole with
//! kafka-protocol and encoded back with a fresh length prefix.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    AlterConfigsResponse, ApiKey, ApiVersionsResponse, CreateTopicsResponse, DeleteTopicsResponse,
    DescribeClusterResponse, FetchResponse, FindCoordinatorResponse,
    IncrementalAlterConfigsResponse, MetadataResponse, ProduceResponse, ResponseHeader,
    ShareAcknowledgeResponse, ShareFetchResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::codec::guard;

/// Kafka's UNSUPPORTED_VERSION error code.
pub const UNSUPPORTED_VERSION: i16 = 35;

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("cannot decode {what} response v{version}: {source}")]
    Decode {
        what: &'static str,
        version: i16,
        source: anyhow::Error,
    },
    #[error("cannot encode {what} response v{version}: {source}")]
    Encode {
        what: &'static str,
        version: i16,
        source: anyhow::Error,
    },
    #[error("no proxy listener for broker node {0}")]
    NoListener(i32),
    #[error("a response step failed: {0}")]
    Step(String),
}

impl From<crate::cluster::NoListener> for RewriteError {
    fn from(e: crate::cluster::NoListener) -> Self {
        RewriteError::NoListener(e.0)
    }
}

/// Generates [`Kind`], [`Body`] and the decode/encode dispatch from one list,
/// so a new response kind is one line.
macro_rules! kinds {
    ($($kind:ident($resp:ty)),* $(,)?) => {
        /// A response Strait decodes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Kind {
            $($kind,)*
        }

        impl Kind {
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$kind => stringify!($kind),)*
                }
            }

            /// The api key whose response this is (each kind is named
            /// after its key).
            pub fn api(self) -> ApiKey {
                match self {
                    $(Kind::$kind => ApiKey::$kind,)*
                }
            }
        }

        pub(super) enum Body {
            $($kind($resp),)*
        }

        fn decode_body(kind: Kind, buf: &mut Bytes, version: i16) -> Result<Body, RewriteError> {
            Ok(match kind {
                $(Kind::$kind => Body::$kind(dec(buf, stringify!($kind), version)?),)*
            })
        }

        fn encode_body(body: &Body, out: &mut BytesMut, version: i16) -> anyhow::Result<()> {
            match body {
                $(Body::$kind(b) => b.encode(out, version),)*
            }
        }
    };
}

kinds! {
    ApiVersions(ApiVersionsResponse),
    Metadata(MetadataResponse),
    FindCoordinator(FindCoordinatorResponse),
    DescribeCluster(DescribeClusterResponse),
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ShareFetch(ShareFetchResponse),
    ShareAcknowledge(ShareAcknowledgeResponse),
    CreateTopics(CreateTopicsResponse),
    AlterConfigs(AlterConfigsResponse),
    IncrementalAlterConfigs(IncrementalAlterConfigsResponse),
    DeleteTopics(DeleteTopicsResponse),
}

impl Kind {
    /// The response a policy's rejections are merged into, for an api key.
    pub fn for_patch(api_key: i16) -> Option<Kind> {
        match ApiKey::try_from(api_key).ok()? {
            ApiKey::Produce => Some(Kind::Produce),
            ApiKey::Fetch => Some(Kind::Fetch),
            ApiKey::CreateTopics => Some(Kind::CreateTopics),
            ApiKey::AlterConfigs => Some(Kind::AlterConfigs),
            ApiKey::IncrementalAlterConfigs => Some(Kind::IncrementalAlterConfigs),
            ApiKey::DeleteTopics => Some(Kind::DeleteTopics),
            _ => None,
        }
    }
}

/// A decoded response, ready for the plan's steps.
pub struct Decoded {
    kind: Kind,
    pub(super) version: i16,
    header: ResponseHeader,
    header_version: i16,
    pub(super) body: Body,
    /// Memory a step took for this response, given back when it is dropped.
    pub(super) held: Vec<crate::large::Held>,
}

fn dec<T: Decodable>(buf: &mut Bytes, what: &'static str, version: i16) -> Result<T, RewriteError> {
    T::decode(buf, version).map_err(|source| RewriteError::Decode {
        what,
        version,
        source,
    })
}

/// The body walked before it is decoded ([`guard`]).
fn walk(kind: Kind, version: i16, body: &[u8]) -> Result<(), RewriteError> {
    guard::response(kind.api(), version, body).map_err(|e| RewriteError::Decode {
        what: kind.name(),
        version,
        source: anyhow::anyhow!("malformed body: {e}"),
    })
}

impl Decoded {
    /// Decodes a response frame body (after the length prefix).
    pub fn decode(
        kind: Kind,
        api_key: i16,
        version: i16,
        frame: Bytes,
    ) -> Result<Decoded, RewriteError> {
        let key = ApiKey::try_from(api_key).expect("classified keys are known");
        let header_version = key.response_header_version(version);
        guard::response_header(header_version, &frame).map_err(|e| RewriteError::Decode {
            what: kind.name(),
            version,
            source: anyhow::anyhow!("malformed header: {e}"),
        })?;
        let mut buf = frame;
        let header: ResponseHeader = dec(&mut buf, "response header", header_version)?;
        let (body, version) = match kind {
            Kind::ApiVersions => decode_api_versions(buf, version)?,
            _ => {
                walk(kind, version, &buf)?;
                (decode_body(kind, &mut buf, version)?, version)
            }
        };
        Ok(Decoded {
            kind,
            version,
            header,
            header_version,
            body,
            held: Vec::new(),
        })
    }

    /// Encodes the frame, length prefix included.
    pub fn encode(&self) -> Result<BytesMut, RewriteError> {
        let what = self.kind.name();
        let v = self.version;
        let err = |source| RewriteError::Encode {
            what,
            version: v,
            source,
        };
        let mut out = BytesMut::new();
        out.put_i32(0);
        self.header
            .encode(&mut out, self.header_version)
            .map_err(err)?;
        encode_body(&self.body, &mut out, v).map_err(err)?;
        let len = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        Ok(out)
    }
}

/// ApiVersions answers an unsupported request version in v0 layout with
/// UNSUPPORTED_VERSION, so the client can retry lower; accept both.
fn decode_api_versions(buf: Bytes, version: i16) -> Result<(Body, i16), RewriteError> {
    let max = ApiKey::ApiVersions.valid_versions().max;
    if version <= max && guard::response(ApiKey::ApiVersions, version, &buf).is_ok() {
        let mut b = buf.clone();
        if let Ok(r) = ApiVersionsResponse::decode(&mut b, version) {
            if !b.has_remaining() || r.error_code != UNSUPPORTED_VERSION {
                return Ok((Body::ApiVersions(r), version));
            }
        }
    }
    walk(Kind::ApiVersions, 0, &buf)?;
    let mut b = buf;
    let r: ApiVersionsResponse = dec(&mut b, "ApiVersions", 0)?;
    Ok((Body::ApiVersions(r), 0))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    /// A response frame body (header + message) as a broker sends it.
    pub(crate) fn frame<T: Encodable>(header_version: i16, body: &T, version: i16) -> Bytes {
        let mut b = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(7)
            .encode(&mut b, header_version)
            .unwrap();
        body.encode(&mut b, version).unwrap();
        b.freeze()
    }

    #[test]
    fn api_versions_error_in_v0_layout_is_accepted() {
        let resp = ApiVersionsResponse::default()
            .with_error_code(UNSUPPORTED_VERSION)
            .with_api_keys(vec![ApiVersion::default()
                .with_api_key(18)
                .with_min_version(0)
                .with_max_version(4)]);
        let d = Decoded::decode(Kind::ApiVersions, 18, 9, frame(0, &resp, 0)).unwrap();
        assert_eq!(d.version, 0);
    }
}
