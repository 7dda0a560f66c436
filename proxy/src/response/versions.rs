//! Version policy: which request versions Strait can serve (their responses
//! must be decodable where they carry broker addresses), and the ApiVersions
//! clamp that keeps clients within that range.

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

use super::codec::{Body, Decoded, Kind};
use crate::config::LeaderEndpoints;

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
pub fn classify(api_key: i16, version: i16) -> Result<Option<Kind>, Unsupported> {
    let Ok(key) = ApiKey::try_from(api_key) else {
        return Ok(None);
    };
    let codec = key.valid_versions();
    let rewrite = match key {
        ApiKey::ApiVersions => return Ok(Some(Kind::ApiVersions)),
        ApiKey::Metadata => Kind::Metadata,
        ApiKey::FindCoordinator => Kind::FindCoordinator,
        ApiKey::DescribeCluster => Kind::DescribeCluster,
        ApiKey::ShareFetch => Kind::ShareFetch,
        ApiKey::ShareAcknowledge => Kind::ShareAcknowledge,
        ApiKey::Produce if version >= 10 => Kind::Produce,
        ApiKey::Fetch if version >= 16 => Kind::Fetch,
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

impl Decoded {
    /// Clamps an ApiVersions response to what Strait serves (no-op for other kinds).
    pub fn clamp_versions(&mut self, mode: LeaderEndpoints) {
        if let Body::ApiVersions(a) = &mut self.body {
            clamp_api_versions(a, mode);
        }
    }
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
    use crate::response::codec::tests::frame;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::protocol::StrBytes;

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
        let mut d = Decoded::decode(Kind::ApiVersions, 18, 3, frame(0, &resp, 3)).unwrap();
        d.clamp_versions(LeaderEndpoints::Clamp);
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
            let mut d = Decoded::decode(Kind::ApiVersions, 18, 3, frame(0, &resp, 3)).unwrap();
            d.clamp_versions(mode);
            let Body::ApiVersions(a) = &d.body else {
                panic!()
            };
            assert_eq!(a.finalized_features[0].max_version_level, want, "{mode:?}");
        }
    }

    #[test]
    fn classify_versions() {
        assert_eq!(classify(0, 9), Ok(None));
        assert_eq!(classify(0, 10), Ok(Some(Kind::Produce)));
        assert_eq!(classify(1, 15), Ok(None));
        assert_eq!(classify(3, 13), Ok(Some(Kind::Metadata)));
        assert!(classify(3, 14).is_err());
        assert!(classify(55, 2).is_err());
        assert_eq!(classify(200, 0), Ok(None));
    }
}
