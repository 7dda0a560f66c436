//! Broker routes: which upstream broker each proxy listener stands for, and
//! the address Strait advertises for it (port-per-broker).

use std::collections::HashMap;
use std::sync::RwLock;

use kafka_protocol::protocol::StrBytes;

use crate::config::BrokerPorts;

use super::NoListener;

/// A broker endpoint as the upstream announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// One broker as Strait knows it.
#[derive(Debug, Clone)]
pub struct Node {
    /// The broker's own `host:port`, as the cluster announced it.
    pub upstream: String,
    /// The proxy port clients use for this broker (0 until a listener is bound).
    pub port: u16,
}

/// The node map shared by all connections.
pub struct Routes {
    advertised_host: StrBytes,
    ports: BrokerPorts,
    nodes: RwLock<HashMap<i32, Node>>,
}

/// What [`Routes::learn`] found: brokers that need a listener.
#[derive(Debug, Default)]
pub struct Learned {
    pub need_listener: Vec<(i32, u16)>,
}

impl Routes {
    pub fn new(advertised_host: &str, ports: BrokerPorts) -> Routes {
        Routes {
            advertised_host: StrBytes::from_string(advertised_host.to_string()),
            ports,
            nodes: RwLock::new(HashMap::new()),
        }
    }

    /// The upstream address for a node id.
    pub fn upstream_of(&self, node_id: i32) -> Option<String> {
        self.nodes
            .read()
            .expect("routes lock")
            .get(&node_id)
            .map(|n| n.upstream.clone())
    }

    /// Records the upstream address of every endpoint and returns the nodes
    /// that have no proxy listener yet, with the port to bind (0 = any).
    pub fn learn(&self, endpoints: &[Endpoint]) -> Result<Learned, NoListener> {
        let mut nodes = self.nodes.write().expect("routes lock");
        let mut learned = Learned::default();
        for ep in endpoints {
            let upstream = format!("{}:{}", bracket_v6(&ep.host), ep.port);
            match nodes.get_mut(&ep.node_id) {
                Some(n) => {
                    if n.upstream != upstream {
                        tracing::info!(node_id = ep.node_id, old = %n.upstream, new = %upstream, "broker address changed");
                        n.upstream = upstream;
                    }
                }
                None => {
                    let port = self
                        .ports
                        .port_for(ep.node_id)
                        .ok_or(NoListener(ep.node_id))?;
                    nodes.insert(ep.node_id, Node { upstream, port: 0 });
                    learned.need_listener.push((ep.node_id, port));
                }
            }
        }
        Ok(learned)
    }

    /// Records the port a node's listener is bound to.
    pub fn bound(&self, node_id: i32, port: u16) {
        if let Some(n) = self.nodes.write().expect("routes lock").get_mut(&node_id) {
            n.port = port;
        }
    }

    /// Forgets a node whose listener could not be bound, so a later response retries.
    pub fn forget(&self, node_id: i32) {
        self.nodes.write().expect("routes lock").remove(&node_id);
    }

    /// All known nodes, for the admin view and tests.
    pub fn snapshot(&self) -> Vec<(i32, Node)> {
        let mut v: Vec<_> = self
            .nodes
            .read()
            .expect("routes lock")
            .iter()
            .map(|(k, n)| (*k, n.clone()))
            .collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }
}

impl Routes {
    /// The proxy's (host, port) for a node, once its listener is bound.
    pub fn advertised(&self, node_id: i32) -> Option<(StrBytes, i32)> {
        let nodes = self.nodes.read().expect("routes lock");
        let n = nodes.get(&node_id)?;
        (n.port != 0).then(|| (self.advertised_host.clone(), i32::from(n.port)))
    }
}

fn bracket_v6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_and_maps_nodes() {
        let r = Routes::new(
            "127.0.0.1",
            BrokerPorts::Range {
                start: 20000,
                end: 20010,
            },
        );
        let eps = [Endpoint {
            node_id: 2,
            host: "kafka".into(),
            port: 9092,
        }];
        let l = r.learn(&eps).unwrap();
        assert_eq!(l.need_listener, vec![(2, 20002)]);
        assert_eq!(r.advertised(2), None, "no listener bound yet");
        r.bound(2, 20002);
        assert_eq!(r.advertised(2).unwrap().1, 20002);
        assert_eq!(r.upstream_of(2).as_deref(), Some("kafka:9092"));
        assert!(r.learn(&eps).unwrap().need_listener.is_empty());
        let far = [Endpoint {
            node_id: 50,
            host: "kafka".into(),
            port: 9092,
        }];
        assert!(r.learn(&far).is_err());
    }
}
