//! Cluster discovery: one Metadata request (no topics) to a bootstrap
//! broker over a [`crate::upstream::BrokerConn`], whose brokers become
//! routes with listeners. The proxy is ready once it has succeeded.

use kafka_protocol::messages::MetadataRequest;

use super::{ClusterView, Endpoint};

/// The Metadata version discovery asks for (brokers with host and port;
/// every broker Strait supports speaks it).
const VERSION: i16 = 9;

/// Reads the cluster's brokers from a bootstrap broker and binds their
/// listeners; returns how many brokers the cluster has.
pub async fn discover(cluster: &ClusterView) -> anyhow::Result<usize> {
    let mut conn = cluster.dialer().open_bootstrap("strait-discovery").await?;
    let metadata = conn
        .call(
            VERSION,
            &MetadataRequest::default().with_topics(Some(vec![])),
        )
        .await?;
    let endpoints: Vec<Endpoint> = metadata
        .brokers
        .iter()
        .filter(|b| b.node_id.0 >= 0 && !b.host.is_empty())
        .map(|b| Endpoint {
            node_id: b.node_id.0,
            host: b.host.to_string(),
            port: b.port,
        })
        .collect();
    cluster.learn(&endpoints).await?;
    cluster.set_ready();
    Ok(endpoints.len())
}
