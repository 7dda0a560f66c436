//! Response rewriting: the few responses that carry broker addresses (or api
//! version ranges) are decoded, rewritten to point at Strait, and re-encoded.
//! Everything else never reaches this module.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    AlterConfigsResponse, ApiKey, ApiVersionsResponse, CreateTopicsResponse, DeleteTopicsResponse,
    DescribeClusterResponse, FetchResponse, FindCoordinatorResponse,
    IncrementalAlterConfigsResponse, MetadataResponse, ProduceResponse, ResponseHeader,
    ShareAcknowledgeResponse, ShareFetchResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::config::LeaderEndpoints;
use crate::policy::enforce::{Patch, Rejected};

/// Kafka's UNSUPPORTED_VERSION error code.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// A response Strait must decode and rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    ApiVersions,
    Metadata,
    FindCoordinator,
    DescribeCluster,
    Produce,
    Fetch,
    ShareFetch,
    ShareAcknowledge,
    /// Decoded only to merge policy rejections ([`crate::policy::enforce::Patch`]).
    CreateTopics,
    AlterConfigs,
    IncrementalAlterConfigs,
    DeleteTopics,
}

impl Rewrite {
    /// The response Strait decodes to merge a policy patch into, for an api key.
    pub fn for_patch(api_key: i16) -> Option<Rewrite> {
        match ApiKey::try_from(api_key).ok()? {
            ApiKey::Produce => Some(Rewrite::Produce),
            ApiKey::Fetch => Some(Rewrite::Fetch),
            ApiKey::CreateTopics => Some(Rewrite::CreateTopics),
            ApiKey::AlterConfigs => Some(Rewrite::AlterConfigs),
            ApiKey::IncrementalAlterConfigs => Some(Rewrite::IncrementalAlterConfigs),
            ApiKey::DeleteTopics => Some(Rewrite::DeleteTopics),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Rewrite::ApiVersions => "ApiVersions",
            Rewrite::Metadata => "Metadata",
            Rewrite::FindCoordinator => "FindCoordinator",
            Rewrite::DescribeCluster => "DescribeCluster",
            Rewrite::Produce => "Produce",
            Rewrite::Fetch => "Fetch",
            Rewrite::ShareFetch => "ShareFetch",
            Rewrite::ShareAcknowledge => "ShareAcknowledge",
            Rewrite::CreateTopics => "CreateTopics",
            Rewrite::AlterConfigs => "AlterConfigs",
            Rewrite::IncrementalAlterConfigs => "IncrementalAlterConfigs",
            Rewrite::DeleteTopics => "DeleteTopics",
        }
    }
}

/// A request version Strait cannot serve: its response would carry broker
/// addresses in a layout the codec cannot rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported {
    pub api_key: i16,
    pub version: i16,
    pub min: i16,
    pub max: i16,
}

/// The version range Strait advertises for an api key it must decode, or `None`
/// when it forwards the key raw and the broker's range stands.
pub fn proxy_range(api_key: i16, mode: LeaderEndpoints) -> Option<(i16, i16)> {
    let key = ApiKey::try_from(api_key).ok()?;
    let codec = key.valid_versions();
    let (min, max) = (codec.min, codec.max);
    match key {
        ApiKey::ApiVersions
        | ApiKey::Metadata
        | ApiKey::FindCoordinator
        | ApiKey::DescribeCluster
        | ApiKey::ShareFetch
        | ApiKey::ShareAcknowledge
        // Policies decode these requests and their responses.
        | ApiKey::CreateTopics
        | ApiKey::AlterConfigs
        | ApiKey::IncrementalAlterConfigs
        | ApiKey::DeleteTopics => Some((min, max)),
        // KIP-951 node endpoints appear in Produce v10+ and Fetch v16+.
        ApiKey::Produce if mode == LeaderEndpoints::Clamp => Some((min, max.min(9))),
        ApiKey::Fetch if mode == LeaderEndpoints::Clamp => Some((min, max.min(15))),
        ApiKey::Produce | ApiKey::Fetch => Some((min, max)),
        // v2 lists controller listener endpoints (KIP-853); v0-1 carry none.
        ApiKey::DescribeQuorum => Some((min, max.min(1))),
        _ => None,
    }
}

/// Classifies a request: which response rewrite it needs, if any, or whether
/// Strait cannot serve this version at all.
pub fn classify(api_key: i16, version: i16) -> Result<Option<Rewrite>, Unsupported> {
    let Ok(key) = ApiKey::try_from(api_key) else {
        return Ok(None);
    };
    let codec = key.valid_versions();
    let rewrite = match key {
        ApiKey::ApiVersions => return Ok(Some(Rewrite::ApiVersions)),
        ApiKey::Metadata => Rewrite::Metadata,
        ApiKey::FindCoordinator => Rewrite::FindCoordinator,
        ApiKey::DescribeCluster => Rewrite::DescribeCluster,
        ApiKey::ShareFetch => Rewrite::ShareFetch,
        ApiKey::ShareAcknowledge => Rewrite::ShareAcknowledge,
        ApiKey::Produce if version >= 10 => Rewrite::Produce,
        ApiKey::Fetch if version >= 16 => Rewrite::Fetch,
        ApiKey::DescribeQuorum if version >= 2 => {
            return Err(Unsupported {
                api_key,
                version,
                min: codec.min,
                max: 1,
            })
        }
        _ => return Ok(None),
    };
    if version < codec.min || version > codec.max {
        return Err(Unsupported {
            api_key,
            version,
            min: codec.min,
            max: codec.max,
        });
    }
    Ok(Some(rewrite))
}

/// A broker endpoint as the upstream announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// What the proxy advertises in place of an upstream endpoint.
pub trait AddressMap {
    /// Returns the proxy's (host, port) for a node.
    fn advertised(&self, node_id: i32) -> Option<(StrBytes, i32)>;
}

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
}

/// A decoded response, ready for endpoint collection and rewriting.
pub struct Decoded {
    kind: Rewrite,
    version: i16,
    header: ResponseHeader,
    header_version: i16,
    body: Body,
}

enum Body {
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

fn dec<T: Decodable>(buf: &mut Bytes, what: &'static str, version: i16) -> Result<T, RewriteError> {
    T::decode(buf, version).map_err(|source| RewriteError::Decode {
        what,
        version,
        source,
    })
}

impl Decoded {
    /// Decodes a response frame body (after the length prefix).
    pub fn decode(
        kind: Rewrite,
        api_key: i16,
        version: i16,
        frame: Bytes,
    ) -> Result<Decoded, RewriteError> {
        let key = ApiKey::try_from(api_key).expect("classified keys are known");
        let header_version = key.response_header_version(version);
        let mut buf = frame;
        let header: ResponseHeader = dec(&mut buf, "response header", header_version)?;
        let (body, version) = match kind {
            Rewrite::ApiVersions => decode_api_versions(buf, version)?,
            Rewrite::Metadata => (Body::Metadata(dec(&mut buf, "Metadata", version)?), version),
            Rewrite::FindCoordinator => (
                Body::FindCoordinator(dec(&mut buf, "FindCoordinator", version)?),
                version,
            ),
            Rewrite::DescribeCluster => (
                Body::DescribeCluster(dec(&mut buf, "DescribeCluster", version)?),
                version,
            ),
            Rewrite::Produce => (Body::Produce(dec(&mut buf, "Produce", version)?), version),
            Rewrite::Fetch => (Body::Fetch(dec(&mut buf, "Fetch", version)?), version),
            Rewrite::ShareFetch => (
                Body::ShareFetch(dec(&mut buf, "ShareFetch", version)?),
                version,
            ),
            Rewrite::ShareAcknowledge => (
                Body::ShareAcknowledge(dec(&mut buf, "ShareAcknowledge", version)?),
                version,
            ),
            Rewrite::CreateTopics => (
                Body::CreateTopics(dec(&mut buf, "CreateTopics", version)?),
                version,
            ),
            Rewrite::AlterConfigs => (
                Body::AlterConfigs(dec(&mut buf, "AlterConfigs", version)?),
                version,
            ),
            Rewrite::IncrementalAlterConfigs => (
                Body::IncrementalAlterConfigs(dec(&mut buf, "IncrementalAlterConfigs", version)?),
                version,
            ),
            Rewrite::DeleteTopics => (
                Body::DeleteTopics(dec(&mut buf, "DeleteTopics", version)?),
                version,
            ),
        };
        Ok(Decoded {
            kind,
            version,
            header,
            header_version,
            body,
        })
    }

    /// Calls `f` with every broker endpoint the response names (skipping
    /// "no node" placeholders: negative id or empty host); one walk serves
    /// both collecting and rewriting.
    fn for_each_endpoint(
        &mut self,
        f: &mut dyn FnMut(i32, &mut StrBytes, &mut i32) -> Result<(), RewriteError>,
    ) -> Result<(), RewriteError> {
        let mut visit = |id: i32, host: &mut StrBytes, port: &mut i32| {
            if id >= 0 && !host.is_empty() {
                f(id, host, port)?;
            }
            Ok::<(), RewriteError>(())
        };
        // The endpoint structs differ per message; their fields do not.
        macro_rules! each {
            ($list:expr, $id:ident) => {
                for n in $list.iter_mut() {
                    visit(n.$id.0, &mut n.host, &mut n.port)?;
                }
            };
        }
        match &mut self.body {
            Body::Metadata(m) => each!(m.brokers, node_id),
            Body::FindCoordinator(c) => {
                visit(c.node_id.0, &mut c.host, &mut c.port)?;
                each!(c.coordinators, node_id);
            }
            Body::DescribeCluster(d) => each!(d.brokers, broker_id),
            Body::Produce(r) => each!(r.node_endpoints, node_id),
            Body::Fetch(r) => each!(r.node_endpoints, node_id),
            Body::ShareFetch(r) => each!(r.node_endpoints, node_id),
            Body::ShareAcknowledge(r) => each!(r.node_endpoints, node_id),
            Body::ApiVersions(_)
            | Body::CreateTopics(_)
            | Body::AlterConfigs(_)
            | Body::IncrementalAlterConfigs(_)
            | Body::DeleteTopics(_) => {}
        }
        Ok(())
    }

    /// Upstream endpoints named in the response.
    pub fn endpoints(&mut self) -> Vec<Endpoint> {
        let mut out = Vec::new();
        self.for_each_endpoint(&mut |node_id, host, port| {
            out.push(Endpoint {
                node_id,
                host: host.to_string(),
                port: *port,
            });
            Ok(())
        })
        .expect("collecting endpoints cannot fail");
        out
    }

    /// Points every endpoint at the proxy and clamps api versions.
    pub fn rewrite(
        &mut self,
        map: &dyn AddressMap,
        mode: LeaderEndpoints,
    ) -> Result<(), RewriteError> {
        if let Body::ApiVersions(a) = &mut self.body {
            clamp_api_versions(a, mode);
        }
        self.for_each_endpoint(&mut |node_id, host, port| {
            let (h, p) = map
                .advertised(node_id)
                .ok_or(RewriteError::NoListener(node_id))?;
            *host = h;
            *port = p;
            Ok(())
        })
    }

    /// Topic id → name pairs a Metadata response names (for Produce v13 / Fetch v13+).
    pub fn topic_ids(&self) -> Vec<(uuid::Uuid, String)> {
        match &self.body {
            Body::Metadata(m) => m
                .topics
                .iter()
                .filter(|t| !t.topic_id.is_nil())
                .filter_map(|t| Some((t.topic_id, t.name.as_ref()?.0.to_string())))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The base offset the broker gave a produced partition, if it took it.
    pub fn produce_base_offset(
        &self,
        name: Option<&StrBytes>,
        topic_id: &uuid::Uuid,
        partition: i32,
    ) -> Option<i64> {
        let Body::Produce(p) = &self.body else {
            return None;
        };
        p.responses
            .iter()
            .filter(|t| match name {
                Some(n) => t.name.0 == *n,
                None => t.topic_id == *topic_id,
            })
            .flat_map(|t| &t.partition_responses)
            .find(|r| r.index == partition && r.error_code == 0 && r.base_offset >= 0)
            .map(|r| r.base_offset)
    }

    /// Merges policy rejections into the broker's answer, so the client sees
    /// one response naming every part of its request.
    pub fn apply_patch(&mut self, patch: &Patch) {
        use kafka_protocol::messages::produce_response::{
            BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
        };
        let v = self.version;
        let msg = |r: &Rejected| Some(StrBytes::from_string(r.message.clone()));
        // The two AlterConfigs responses share a shape but not a type.
        macro_rules! push_alter_rejections {
            ($resp:expr, $entry:ty) => {
                for r in &patch.rejected {
                    $resp.responses.push(
                        <$entry>::default()
                            .with_error_code(r.error_code)
                            .with_error_message(msg(r))
                            .with_resource_type(r.resource_type)
                            .with_resource_name(r.name.clone().unwrap_or_default()),
                    );
                }
            };
        }
        match &mut self.body {
            Body::Fetch(f) if patch.filter_aborted => {
                for t in &mut f.responses {
                    for p in &mut t.partitions {
                        let (Some(aborted), Some(records)) = (&p.aborted_transactions, &p.records)
                        else {
                            continue;
                        };
                        if aborted.is_empty() {
                            continue;
                        }
                        let list: Vec<(i64, i64)> = aborted
                            .iter()
                            .map(|a| (a.producer_id.0, a.first_offset))
                            .collect();
                        let kept = crate::codec::batch::drop_aborted(records, &list);
                        p.records = Some(kept);
                    }
                }
            }
            Body::Produce(p) => {
                for r in &patch.rejected {
                    let mut part = PartitionProduceResponse::default()
                        .with_index(r.partition)
                        .with_error_code(r.error_code)
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1);
                    if v >= 8 {
                        part.error_message = msg(r);
                        part.record_errors = r
                            .record_errors
                            .iter()
                            .map(|(i, m)| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(*i)
                                    .with_batch_index_error_message(Some(StrBytes::from_string(
                                        m.clone(),
                                    )))
                            })
                            .collect();
                    }
                    let same = |t: &TopicProduceResponse| match &r.name {
                        Some(n) => t.name.0 == *n,
                        None => t.topic_id == r.topic_id,
                    };
                    match p.responses.iter_mut().find(|t| same(t)) {
                        Some(t) => t.partition_responses.push(part),
                        None => {
                            let mut t = TopicProduceResponse::default()
                                .with_partition_responses(vec![part]);
                            match &r.name {
                                Some(n) => t.name = kafka_protocol::messages::TopicName(n.clone()),
                                None => t.topic_id = r.topic_id,
                            }
                            p.responses.push(t);
                        }
                    }
                }
            }
            Body::CreateTopics(c) => {
                use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
                for r in &patch.rejected {
                    let mut t = CreatableTopicResult::default()
                        .with_name(kafka_protocol::messages::TopicName(
                            r.name.clone().unwrap_or_default(),
                        ))
                        .with_error_code(r.error_code)
                        .with_num_partitions(-1)
                        .with_replication_factor(-1);
                    if v >= 1 {
                        t.error_message = msg(r);
                    }
                    c.topics.push(t);
                }
            }
            Body::AlterConfigs(a) => {
                use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
                push_alter_rejections!(a, AlterConfigsResourceResponse);
            }
            Body::IncrementalAlterConfigs(a) => {
                use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
                push_alter_rejections!(a, AlterConfigsResourceResponse);
            }
            Body::DeleteTopics(d) => {
                use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
                for r in &patch.rejected {
                    let mut t = DeletableTopicResult::default().with_error_code(r.error_code);
                    if v >= 6 {
                        t.topic_id = r.topic_id;
                    }
                    t.name = r.name.clone().map(kafka_protocol::messages::TopicName);
                    if v >= 5 {
                        t.error_message = msg(r);
                    }
                    d.responses.push(t);
                }
            }
            _ => {}
        }
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
        match &self.body {
            Body::ApiVersions(b) => b.encode(&mut out, v),
            Body::Metadata(b) => b.encode(&mut out, v),
            Body::FindCoordinator(b) => b.encode(&mut out, v),
            Body::DescribeCluster(b) => b.encode(&mut out, v),
            Body::Produce(b) => b.encode(&mut out, v),
            Body::Fetch(b) => b.encode(&mut out, v),
            Body::ShareFetch(b) => b.encode(&mut out, v),
            Body::ShareAcknowledge(b) => b.encode(&mut out, v),
            Body::CreateTopics(b) => b.encode(&mut out, v),
            Body::AlterConfigs(b) => b.encode(&mut out, v),
            Body::IncrementalAlterConfigs(b) => b.encode(&mut out, v),
            Body::DeleteTopics(b) => b.encode(&mut out, v),
        }
        .map_err(err)?;
        let len = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        Ok(out)
    }
}

/// ApiVersions answers an unsupported request version in v0 layout with
/// UNSUPPORTED_VERSION, so the client can retry lower; accept both.
fn decode_api_versions(buf: Bytes, version: i16) -> Result<(Body, i16), RewriteError> {
    let max = ApiKey::ApiVersions.valid_versions().max;
    if version <= max {
        let mut b = buf.clone();
        if let Ok(r) = ApiVersionsResponse::decode(&mut b, version) {
            if !b.has_remaining() || r.error_code != UNSUPPORTED_VERSION {
                return Ok((Body::ApiVersions(r), version));
            }
        }
    }
    let mut b = buf;
    let r: ApiVersionsResponse = dec(&mut b, "ApiVersions", 0)?;
    Ok((Body::ApiVersions(r), 0))
}

/// Transactions v2 (KIP-890) needs Produce v12+; with Produce clamped below
/// that, clients must keep to v1 (AddPartitionsToTxn) or the broker refuses
/// their transactional batches ("Partition was not added to the transaction").
const TRANSACTION_VERSION: &str = "transaction.version";
const TV2_MIN_PRODUCE: i16 = 12;

fn clamp_api_versions(resp: &mut ApiVersionsResponse, mode: LeaderEndpoints) {
    let produce_max = proxy_range(ApiKey::Produce as i16, mode).map_or(i16::MAX, |r| r.1);
    if produce_max < TV2_MIN_PRODUCE {
        for f in &mut resp.finalized_features {
            if f.name.as_str() == TRANSACTION_VERSION {
                f.max_version_level = f.max_version_level.min(1);
                f.min_version_level = f.min_version_level.min(1);
            }
        }
        for f in &mut resp.supported_features {
            if f.name.as_str() == TRANSACTION_VERSION {
                f.max_version = f.max_version.min(1);
                f.min_version = f.min_version.min(1);
            }
        }
    }
    resp.api_keys
        .retain_mut(|k| match proxy_range(k.api_key, mode) {
            None => true,
            Some((min, max)) => {
                k.min_version = k.min_version.max(min);
                k.max_version = k.max_version.min(max);
                k.min_version <= k.max_version
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use kafka_protocol::messages::BrokerId;

    struct Fixed;
    impl AddressMap for Fixed {
        fn advertised(&self, node_id: i32) -> Option<(StrBytes, i32)> {
            (node_id < 10).then(|| (StrBytes::from_static_str("proxy"), 20000 + node_id))
        }
    }

    fn frame<T: Encodable>(header_version: i16, body: &T, version: i16) -> Bytes {
        let mut b = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(7)
            .encode(&mut b, header_version)
            .unwrap();
        body.encode(&mut b, version).unwrap();
        b.freeze()
    }

    #[test]
    fn metadata_brokers_point_at_the_proxy_in_every_version() {
        for v in 0..=13 {
            let resp =
                MetadataResponse::default().with_brokers(vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("kafka-1.internal"))
                    .with_port(9092)]);
            let hv = ApiKey::Metadata.response_header_version(v);
            let mut d = Decoded::decode(Rewrite::Metadata, 3, v, frame(hv, &resp, v)).unwrap();
            assert_eq!(d.endpoints()[0].host, "kafka-1.internal");
            d.rewrite(&Fixed, LeaderEndpoints::Clamp).unwrap();
            let out = d.encode().unwrap();
            assert!(!out.windows(8).any(|w| w == b"internal"), "v{v} leaked");
            let mut body = out.freeze().slice(4..);
            let _ = ResponseHeader::decode(&mut body, hv).unwrap();
            let back = MetadataResponse::decode(&mut body, v).unwrap();
            assert_eq!(back.brokers[0].host.as_str(), "proxy");
            assert_eq!(back.brokers[0].port, 20001);
        }
    }

    fn endpoint_frame(kind: Rewrite, v: i16) -> (i16, Bytes) {
        use kafka_protocol::messages::{
            fetch_response, produce_response, share_acknowledge_response, share_fetch_response,
        };
        macro_rules! with_endpoint {
            ($resp:ty, $endpoint:ty) => {{
                let r = <$resp>::default().with_node_endpoints(vec![<$endpoint>::default()
                    .with_node_id(BrokerId(3))
                    .with_host(StrBytes::from_static_str("kafka-3.internal"))
                    .with_port(9092)]);
                let mut b = BytesMut::new();
                r.encode(&mut b, v).unwrap();
                b
            }};
        }
        let (key, body) = match kind {
            Rewrite::Produce => (
                ApiKey::Produce,
                with_endpoint!(ProduceResponse, produce_response::NodeEndpoint),
            ),
            Rewrite::Fetch => (
                ApiKey::Fetch,
                with_endpoint!(FetchResponse, fetch_response::NodeEndpoint),
            ),
            Rewrite::ShareFetch => (
                ApiKey::ShareFetch,
                with_endpoint!(ShareFetchResponse, share_fetch_response::NodeEndpoint),
            ),
            Rewrite::ShareAcknowledge => (
                ApiKey::ShareAcknowledge,
                with_endpoint!(
                    ShareAcknowledgeResponse,
                    share_acknowledge_response::NodeEndpoint
                ),
            ),
            _ => unreachable!(),
        };
        let mut f = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(7)
            .encode(&mut f, key.response_header_version(v))
            .unwrap();
        f.extend_from_slice(&body);
        (key as i16, f.freeze())
    }

    #[test]
    fn kip951_node_endpoints_point_at_the_proxy() {
        let cases = [
            (Rewrite::Produce, 10..=13),
            (Rewrite::Fetch, 16..=18),
            (Rewrite::ShareFetch, 1..=1),
            (Rewrite::ShareAcknowledge, 1..=1),
        ];
        for (kind, versions) in cases {
            for v in versions {
                let (key, frame) = endpoint_frame(kind, v);
                assert_eq!(classify(key, v), Ok(Some(kind)));
                let mut d = Decoded::decode(kind, key, v, frame).unwrap();
                assert_eq!(
                    d.endpoints(),
                    vec![Endpoint {
                        node_id: 3,
                        host: "kafka-3.internal".into(),
                        port: 9092
                    }]
                );
                d.rewrite(&Fixed, LeaderEndpoints::Rewrite).unwrap();
                let out = d.encode().unwrap();
                assert!(
                    !out.windows(8).any(|w| w == b"internal"),
                    "{kind:?} v{v} leaked"
                );
                let mut again = Decoded::decode(kind, key, v, out.freeze().slice(4..)).unwrap();
                assert_eq!(
                    again.endpoints(),
                    vec![Endpoint {
                        node_id: 3,
                        host: "proxy".into(),
                        port: 20003
                    }]
                );
            }
        }
    }

    #[test]
    fn unknown_node_is_an_error_not_a_leak() {
        let resp =
            MetadataResponse::default().with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(99))
                .with_host(StrBytes::from_static_str("kafka-99"))
                .with_port(9092)]);
        let mut d = Decoded::decode(Rewrite::Metadata, 3, 12, frame(1, &resp, 12)).unwrap();
        assert!(matches!(
            d.rewrite(&Fixed, LeaderEndpoints::Clamp),
            Err(RewriteError::NoListener(99))
        ));
    }

    #[test]
    fn api_versions_are_clamped_to_the_codec() {
        let resp = ApiVersionsResponse::default().with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(0)
                .with_min_version(0)
                .with_max_version(99),
            ApiVersion::default()
                .with_api_key(1)
                .with_min_version(0)
                .with_max_version(99),
            ApiVersion::default()
                .with_api_key(3)
                .with_min_version(0)
                .with_max_version(99),
            ApiVersion::default()
                .with_api_key(32)
                .with_min_version(0)
                .with_max_version(99),
        ]);
        let mut d = Decoded::decode(Rewrite::ApiVersions, 18, 3, frame(0, &resp, 3)).unwrap();
        d.rewrite(&Fixed, LeaderEndpoints::Clamp).unwrap();
        let Body::ApiVersions(a) = &d.body else {
            panic!()
        };
        let got: Vec<_> = a
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(got, vec![(0, 3, 9), (1, 4, 15), (3, 0, 13), (32, 0, 99)]);
    }

    #[test]
    fn transactions_v2_is_hidden_while_produce_is_clamped() {
        use kafka_protocol::messages::api_versions_response::FinalizedFeatureKey;
        let resp = ApiVersionsResponse::default()
            .with_api_keys(vec![ApiVersion::default()
                .with_api_key(0)
                .with_min_version(3)
                .with_max_version(13)])
            .with_finalized_features(vec![FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str("transaction.version"))
                .with_min_version_level(2)
                .with_max_version_level(2)]);
        for (mode, want) in [(LeaderEndpoints::Clamp, 1), (LeaderEndpoints::Rewrite, 2)] {
            let mut d = Decoded::decode(Rewrite::ApiVersions, 18, 3, frame(0, &resp, 3)).unwrap();
            d.rewrite(&Fixed, mode).unwrap();
            let Body::ApiVersions(a) = &d.body else {
                panic!()
            };
            assert_eq!(a.finalized_features[0].max_version_level, want, "{mode:?}");
        }
    }

    #[test]
    fn api_versions_error_in_v0_layout_is_accepted() {
        let resp = ApiVersionsResponse::default()
            .with_error_code(UNSUPPORTED_VERSION)
            .with_api_keys(vec![ApiVersion::default()
                .with_api_key(18)
                .with_min_version(0)
                .with_max_version(4)]);
        let d = Decoded::decode(Rewrite::ApiVersions, 18, 9, frame(0, &resp, 0)).unwrap();
        assert_eq!(d.version, 0);
    }

    #[test]
    fn classify_versions() {
        assert_eq!(classify(0, 9), Ok(None));
        assert_eq!(classify(0, 10), Ok(Some(Rewrite::Produce)));
        assert_eq!(classify(1, 15), Ok(None));
        assert_eq!(classify(3, 13), Ok(Some(Rewrite::Metadata)));
        assert!(classify(3, 14).is_err());
        assert!(classify(55, 2).is_err());
        assert_eq!(classify(200, 0), Ok(None));
    }
}
