//! A client's own SASL exchange, watched but not touched: the request side
//! notes the mechanism of its SaslHandshake, the response side reads the
//! error code of each SaslAuthenticate answer and logs and counts a refusal.
//! Only those two (small, rare) frames are decoded, each walked by the
//! guard first ([`crate::codec::guard`]): a malformed one closes the
//! connection (the handshake never reaches the broker). Everything else on
//! the connection stays a byte stream.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion};
use tracing::{debug, warn};

use crate::codec::guard;
use crate::metrics;
use crate::policy::EnforceError;
use crate::response::RewriteError;

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
    /// length prefix) names. One the guard refuses is an error (the
    /// connection closes); one it passes but kafka-protocol cannot decode
    /// is left to the broker.
    pub fn handshake(&self, frame: &[u8], version: i16) -> Result<(), EnforceError> {
        let header_version = SaslHandshakeRequest::header_version(version);
        walk(
            frame,
            guard::request_header,
            header_version,
            guard::request,
            ApiKey::SaslHandshake,
            version,
        )
        .map_err(|why| EnforceError::Decode {
            api: ApiKey::SaslHandshake,
            version,
            why,
        })?;
        let mut b = Bytes::copy_from_slice(frame);
        let Ok(_) = RequestHeader::decode(&mut b, header_version) else {
            return Ok(());
        };
        let Ok(req) = SaslHandshakeRequest::decode(&mut b, version) else {
            return Ok(());
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
        Ok(())
    }

    fn client(&self) -> String {
        self.peer.map_or("unknown".to_string(), |p| p.to_string())
    }

    /// Reads a SaslAuthenticate answer (`frame`: after the length prefix);
    /// logs and counts a refusal. One the guard refuses is an error (the
    /// connection closes).
    pub fn authenticated(&self, frame: &[u8], version: i16) -> Result<(), RewriteError> {
        let header_version = SaslAuthenticateResponse::header_version(version);
        walk(
            frame,
            guard::response_header,
            header_version,
            guard::response,
            ApiKey::SaslAuthenticate,
            version,
        )
        .map_err(|why| RewriteError::Decode {
            what: "SaslAuthenticate",
            version,
            source: anyhow::anyhow!(why),
        })?;
        let mut b = Bytes::copy_from_slice(frame);
        let Ok(_) = ResponseHeader::decode(&mut b, header_version) else {
            return Ok(());
        };
        let Ok(answer) = SaslAuthenticateResponse::decode(&mut b, version) else {
            return Ok(());
        };
        if answer.error_code == 0 {
            return Ok(());
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
        Ok(())
    }
}

/// The guard's walk of a frame (after the length prefix): its header with
/// `header`, then its body with `body`; the error says which was malformed
/// and where.
fn walk(
    frame: &[u8],
    header: fn(i16, &[u8]) -> Result<usize, guard::Malformed>,
    header_version: i16,
    body: fn(ApiKey, i16, &[u8]) -> Result<(), guard::Malformed>,
    api: ApiKey,
    version: i16,
) -> Result<(), String> {
    let len = header(header_version, frame).map_err(|e| format!("malformed header: {e}"))?;
    body(api, version, &frame[len..]).map_err(|e| format!("malformed body: {e}"))
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
            s.handshake(&out, 1).unwrap();
            assert_eq!(s.mechanism.load(Ordering::Relaxed), want, "{name}");
        }
        // Garbage is refused (the connection closes) and leaves the last
        // mechanism as it was.
        let err = s.handshake(&[0, 1, 2], 1).unwrap_err().to_string();
        assert!(
            err.contains("SaslHandshake v1") && err.contains("malformed header"),
            "{err}"
        );
        assert_eq!(s.mechanism.load(Ordering::Relaxed), 6);
    }

    /// A SaslAuthenticate answer whose auth bytes claim more than the frame
    /// holds is refused before kafka-protocol reads it.
    #[test]
    fn a_malformed_authenticate_answer_is_refused() {
        let s = ClientSasl::new(None);
        // Header v1 (correlation id, no tags), error code, compact null
        // message, then auth bytes of 2^28 - 1 bytes.
        let frame = [0, 0, 0, 7, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x01];
        let err = s.authenticated(&frame, 2).unwrap_err().to_string();
        assert!(
            err.contains("SaslAuthenticate response v2") && err.contains("malformed body"),
            "{err}"
        );
        // A well-formed success passes.
        let mut out = BytesMut::new();
        ResponseHeader::default().encode(&mut out, 1).unwrap();
        SaslAuthenticateResponse::default()
            .encode(&mut out, 2)
            .unwrap();
        s.authenticated(&out, 2).unwrap();
    }
}
