//! A client's own SASL exchange, watched but not touched: the request side
//! notes the mechanism of its SaslHandshake, the response side reads the
//! error code of each SaslAuthenticate answer and logs and counts a refusal.
//! Only those two (small, rare) frames are decoded; everything else on the
//! connection stays a byte stream.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};

use bytes::Bytes;
use kafka_protocol::messages::{
    RequestHeader, ResponseHeader, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion};
use tracing::{debug, warn};

use crate::metrics;

pub const SASL_HANDSHAKE: i16 = 17;
pub const SASL_AUTHENTICATE: i16 = 36;

/// Mechanism names as metric labels: a fixed set, so a client cannot grow
/// the label space.
const MECHANISMS: [&str; 7] = [
    "unknown",
    "PLAIN",
    "SCRAM-SHA-256",
    "SCRAM-SHA-512",
    "OAUTHBEARER",
    "GSSAPI",
    "other",
];

/// One client connection's SASL state.
pub struct ClientSasl {
    peer: Option<SocketAddr>,
    /// Index into [`MECHANISMS`].
    mechanism: AtomicU8,
}

impl ClientSasl {
    pub fn new(peer: Option<SocketAddr>) -> ClientSasl {
        ClientSasl {
            peer,
            mechanism: AtomicU8::new(0),
        }
    }

    /// Notes the mechanism a SaslHandshake request (`frame`: after the
    /// length prefix) names. An undecodable one is left to the broker.
    pub fn handshake(&self, frame: &[u8], version: i16) {
        let mut b = Bytes::copy_from_slice(frame);
        let Ok(_) = RequestHeader::decode(&mut b, SaslHandshakeRequest::header_version(version))
        else {
            return;
        };
        let Ok(req) = SaslHandshakeRequest::decode(&mut b, version) else {
            return;
        };
        let i = MECHANISMS[1..MECHANISMS.len() - 1]
            .iter()
            .position(|m| *m == req.mechanism.as_str())
            .map_or(MECHANISMS.len() - 1, |i| i + 1);
        self.mechanism.store(i as u8, Ordering::Relaxed);
        // One per authentication, the first on the connection or a KIP-368
        // re-authentication.
        debug!(
            client = self.client(),
            mechanism = MECHANISMS[i],
            "client SASL handshake"
        );
    }

    fn client(&self) -> String {
        self.peer.map_or("unknown".to_string(), |p| p.to_string())
    }

    /// Reads a SaslAuthenticate answer (`frame`: after the length prefix);
    /// logs and counts a refusal.
    pub fn authenticated(&self, frame: &[u8], version: i16) {
        let mut b = Bytes::copy_from_slice(frame);
        let Ok(_) =
            ResponseHeader::decode(&mut b, SaslAuthenticateResponse::header_version(version))
        else {
            return;
        };
        let Ok(answer) = SaslAuthenticateResponse::decode(&mut b, version) else {
            return;
        };
        if answer.error_code == 0 {
            return;
        }
        let mechanism = MECHANISMS[usize::from(self.mechanism.load(Ordering::Relaxed))];
        metrics::sasl_failure("client", mechanism);
        warn!(
            client = self.client(),
            mechanism,
            error_code = answer.error_code,
            error = answer.error_message.as_deref().unwrap_or(""),
            "client authentication failed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn mechanism_names_are_bounded() {
        let s = ClientSasl::new(None);
        for (name, want) in [("SCRAM-SHA-512", 3), ("PLAIN", 1), ("made-up", 6)] {
            let mut out = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(SASL_HANDSHAKE)
                .with_request_api_version(1)
                .encode(&mut out, SaslHandshakeRequest::header_version(1))
                .unwrap();
            SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(name.into()))
                .encode(&mut out, 1)
                .unwrap();
            s.handshake(&out, 1);
            assert_eq!(s.mechanism.load(Ordering::Relaxed), want, "{name}");
        }
        // Garbage leaves the last mechanism as it was.
        s.handshake(&[0, 1, 2], 1);
        assert_eq!(s.mechanism.load(Ordering::Relaxed), 6);
    }
}
