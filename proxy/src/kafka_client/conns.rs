//! One connection per broker, reused: opened on first use through the
//! [`Dialer`] (same TLS as client traffic, authenticated with
//! `[upstream.sasl]` when configured), its api versions read once
//! (ApiVersions), then one request at a time. A connection that fails, times
//! out or is abandoned mid-request (the caller's deadline) is dropped, never
//! reused: its next answer could belong to the abandoned request. One whose
//! SASL session is nearly over (KIP-368) is replaced by a new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::ApiVersionsRequest;
use kafka_protocol::protocol::{Request, StrBytes};

use super::KafkaError;
use crate::upstream::{BrokerConn, Dialer};

/// The slot of "any broker": a bootstrap broker, for metadata and configs.
pub(super) const ANY: i32 = -1;

/// The ApiVersions version asked (Kafka 2.4+, the oldest broker Strait
/// supports, answers it).
const API_VERSIONS_VERSION: i16 = 3;

type Slot = Arc<tokio::sync::Mutex<Option<Conn>>>;

struct Conn {
    inner: BrokerConn,
    addr: String,
    /// api key → (min, max) version the broker speaks.
    versions: HashMap<i16, (i16, i16)>,
}

pub(super) struct Pool {
    dialer: Arc<Dialer>,
    client_id: &'static str,
    timeout: Duration,
    max_frame_bytes: usize,
    slots: Mutex<HashMap<i32, Slot>>,
}

/// How a broker is named in messages.
pub(super) fn describe(node: i32, addr: &str) -> String {
    if node == ANY {
        format!("bootstrap broker {addr}")
    } else {
        format!("broker {node} ({addr})")
    }
}

impl Pool {
    pub(super) fn new(
        dialer: Arc<Dialer>,
        client_id: &'static str,
        timeout: Duration,
        max_frame_bytes: usize,
    ) -> Pool {
        Pool {
            dialer,
            client_id,
            timeout,
            max_frame_bytes,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, node: i32) -> Slot {
        let mut slots = self.slots.lock().expect("pool lock");
        slots.entry(node).or_default().clone()
    }

    /// Drops the connection to `node` (its broker moved or left).
    pub(super) fn forget(&self, node: i32) {
        self.slots.lock().expect("pool lock").remove(&node);
    }

    /// Sends `request` to broker `node` at `addr` (`ANY` and `None`: a
    /// bootstrap broker) at the highest version in `versions` the broker
    /// speaks; returns the answer and the broker's name for messages.
    pub(super) async fn call<R: Request>(
        &self,
        op: &'static str,
        node: i32,
        addr: Option<&str>,
        versions: (i16, i16),
        request: &R,
    ) -> Result<(R::Response, String), KafkaError> {
        let slot = self.slot(node);
        let mut held = slot.lock().await;
        // Taken out while in use: if this future is dropped mid-request, the
        // connection goes with it and the slot stays empty.
        let mut conn = match held.take() {
            Some(c) if addr.is_none_or(|a| a == c.addr) && !c.inner.expired() => c,
            _ => self.open(op, node, addr).await?,
        };
        let broker = describe(node, &conn.addr);
        let version = match conn.version(R::KEY, versions) {
            Ok(v) => v,
            Err((broker_min, broker_max)) => {
                *held = Some(conn);
                return Err(KafkaError::Unsupported {
                    op,
                    broker,
                    api_key: R::KEY,
                    broker_min,
                    broker_max,
                    min: versions.0,
                    max: versions.1,
                });
            }
        };
        match conn.inner.call(version, request).await {
            Ok(answer) => {
                *held = Some(conn);
                Ok((answer, broker))
            }
            Err(e) => Err(KafkaError::Connection {
                op,
                broker,
                reason: format!("{e:#}"),
            }),
        }
    }

    async fn open(
        &self,
        op: &'static str,
        node: i32,
        addr: Option<&str>,
    ) -> Result<Conn, KafkaError> {
        let connected = match addr {
            Some(a) => self.dialer.connect(a).await.map(|io| (io, a.to_string())),
            None => self.dialer.connect_bootstrap().await,
        };
        let (io, addr) = connected.map_err(|e| KafkaError::Connection {
            op,
            broker: match addr {
                Some(a) => describe(node, a),
                None => "bootstrap".into(),
            },
            reason: format!("{e:#}"),
        })?;
        let broker = describe(node, &addr);
        let mut inner = self
            .dialer
            .own(
                io,
                addr.clone(),
                self.client_id,
                self.timeout,
                self.max_frame_bytes,
            )
            .await
            .map_err(|e| KafkaError::Connection {
                op,
                broker: broker.clone(),
                reason: format!("{e:#}"),
            })?;
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strait"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let answer = inner
            .call(API_VERSIONS_VERSION, &request)
            .await
            .map_err(|e| KafkaError::Connection {
                op,
                broker: broker.clone(),
                reason: format!("{e:#}"),
            })?;
        if answer.error_code != 0 {
            return Err(KafkaError::Connection {
                op,
                broker,
                reason: format!(
                    "ApiVersions answered {} ({})",
                    super::error_name(answer.error_code),
                    answer.error_code
                ),
            });
        }
        let versions = answer
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(Conn {
            inner,
            addr,
            versions,
        })
    }
}

impl Conn {
    /// The highest version in `(min, max)` the broker speaks, or the
    /// broker's range when none.
    fn version(&self, api_key: i16, (min, max): (i16, i16)) -> Result<i16, (i16, i16)> {
        let (bmin, bmax) = self.versions.get(&api_key).copied().unwrap_or((-1, -1));
        let v = max.min(bmax);
        if v >= min.max(bmin) {
            Ok(v)
        } else {
            Err((bmin, bmax))
        }
    }
}
