//! Broker addresses in responses: collecting the endpoints a response names
//! (so the cluster view can give new brokers a listener) and pointing each at
//! Strait's listener for that broker (invariant 6).

use kafka_protocol::protocol::StrBytes;

use super::codec::{Body, Decoded, RewriteError};
use crate::cluster::{Endpoint, Routes};

/// What the proxy advertises in place of an upstream endpoint.
pub trait AddressMap {
    /// Returns the proxy's (host, port) for a node.
    fn advertised(&self, node_id: i32) -> Option<(StrBytes, i32)>;
}

impl AddressMap for Routes {
    fn advertised(&self, node_id: i32) -> Option<(StrBytes, i32)> {
        Routes::advertised(self, node_id)
    }
}

impl Decoded {
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

    /// Points every endpoint at the proxy.
    pub fn rewrite_addresses(&mut self, map: &dyn AddressMap) -> Result<(), RewriteError> {
        self.for_each_endpoint(&mut |node_id, host, port| {
            let (h, p) = map
                .advertised(node_id)
                .ok_or(RewriteError::NoListener(node_id))?;
            *host = h;
            *port = p;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::codec::tests::frame;
    use crate::response::codec::Kind;
    use crate::response::versions::classify;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use kafka_protocol::messages::{
        ApiKey, BrokerId, FetchResponse, MetadataResponse, ProduceResponse, ResponseHeader,
        ShareAcknowledgeResponse, ShareFetchResponse,
    };
    use kafka_protocol::protocol::{Decodable, Encodable};

    struct Fixed;
    impl AddressMap for Fixed {
        fn advertised(&self, node_id: i32) -> Option<(StrBytes, i32)> {
            (node_id < 10).then(|| (StrBytes::from_static_str("proxy"), 20000 + node_id))
        }
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
            let mut d = Decoded::decode(Kind::Metadata, 3, v, frame(hv, &resp, v)).unwrap();
            assert_eq!(d.endpoints()[0].host, "kafka-1.internal");
            d.rewrite_addresses(&Fixed).unwrap();
            let out = d.encode().unwrap();
            assert!(!out.windows(8).any(|w| w == b"internal"), "v{v} leaked");
            let mut body = out.freeze().slice(4..);
            let _ = ResponseHeader::decode(&mut body, hv).unwrap();
            let back = MetadataResponse::decode(&mut body, v).unwrap();
            assert_eq!(back.brokers[0].host.as_str(), "proxy");
            assert_eq!(back.brokers[0].port, 20001);
        }
    }

    fn endpoint_frame(kind: Kind, v: i16) -> (i16, Bytes) {
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
            Kind::Produce => (
                ApiKey::Produce,
                with_endpoint!(ProduceResponse, produce_response::NodeEndpoint),
            ),
            Kind::Fetch => (
                ApiKey::Fetch,
                with_endpoint!(FetchResponse, fetch_response::NodeEndpoint),
            ),
            Kind::ShareFetch => (
                ApiKey::ShareFetch,
                with_endpoint!(ShareFetchResponse, share_fetch_response::NodeEndpoint),
            ),
            Kind::ShareAcknowledge => (
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
            (Kind::Produce, 10..=13),
            (Kind::Fetch, 16..=18),
            (Kind::ShareFetch, 1..=1),
            (Kind::ShareAcknowledge, 1..=1),
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
                d.rewrite_addresses(&Fixed).unwrap();
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
        let mut d = Decoded::decode(Kind::Metadata, 3, 12, frame(1, &resp, 12)).unwrap();
        assert!(matches!(
            d.rewrite_addresses(&Fixed),
            Err(RewriteError::NoListener(99))
        ));
    }
}
