//! A client's own SASL exchange, watched but not touched: the request side
//! notes the mechanism of its SaslHandshake, the response side reads the
//! error code of each SaslAuthenticate answer and logs and counts a refusal.
//! Only those two (small, rare) frames are decoded, each walked by the
//! guard first ([`crate::codec::guard`]): a malformed one closes the
//! connection (the handshake never reaches the broker). Everything else on
//! the connection stays a byte stream.
//!
//! It also tells the request pump whether the client is still
//! authenticating ([`ClientSasl::pre_authentication`]): from its first
//! SaslHandshake until the broker's answer that completes the exchange.
//! Until then frames are capped at [`PRE_AUTH_MAX_FRAME_BYTES`], as the
//! broker caps them (`sasl.server.max.receive.size`), so a client without
//! credentials cannot make Strait buffer `limits.max_frame_bytes`. A client
//! that never handshakes (a PLAINTEXT or TLS-only cluster) is not capped:
//! there is nothing it could authenticate with.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

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

/// The largest frame accepted from a client that has started a SASL
/// handshake and not completed it, and the largest SaslHandshake or
/// SaslAuthenticate request at any time: the broker's own default
/// `sasl.server.max.receive.size` (512 KiB). The broker refuses larger ones
/// by closing the connection; Strait does the same before buffering them.
pub const PRE_AUTH_MAX_FRAME_BYTES: usize = 512 * 1024;

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
    /// A SaslHandshake has been sent (the request pump sets it).
    handshake: AtomicBool,
    /// The broker has answered a SaslAuthenticate that completes the
    /// exchange (the response pump sets it before the answer reaches the
    /// client, so the client's next request already sees it). Never unset:
    /// a KIP-368 re-authentication happens on an authenticated connection.
    authenticated: AtomicBool,
}

impl ClientSasl {
    /// The client's address, when known.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    pub fn new(peer: Option<SocketAddr>) -> ClientSasl {
        ClientSasl {
            peer,
            mechanism: AtomicU8::new(0),
            handshake: AtomicBool::new(false),
            authenticated: AtomicBool::new(false),
        }
    }

    /// True between the client's first SaslHandshake and the answer that
    /// completes its authentication: frames are capped at
    /// [`PRE_AUTH_MAX_FRAME_BYTES`].
    pub fn pre_authentication(&self) -> bool {
        self.handshake.load(Ordering::Acquire) && !self.authenticated.load(Ordering::Acquire)
    }

    /// Notes the mechanism a SaslHandshake request (`frame`: after the
    /// length prefix) names. One the guard refuses is an error (the
    /// connection closes); one it passes but kafka-protocol cannot decode
    /// is left to the broker.
    pub fn handshake(&self, frame: &[u8], version: i16) -> Result<(), EnforceError> {
        // Before anything can fail: a handshake Strait cannot read is still
        // the start of an authentication.
        self.handshake.store(true, Ordering::Release);
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
        let Ok(header) = RequestHeader::decode(&mut b, header_version) else {
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
        // re-authentication; the client id tells whose connection it is.
        debug!(
            client = self.client(),
            client_id = header.client_id.as_ref().map_or("", |c| c.as_str()),
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
        let mechanism = MECHANISMS[usize::from(self.mechanism.load(Ordering::Relaxed))];
        if answer.error_code == 0 {
            if completes(mechanism, &answer) {
                self.authenticated.store(true, Ordering::Release);
            }
            return Ok(());
        }
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

/// Whether a successful SaslAuthenticate answer ends the exchange. A success
/// mid-exchange proves little (SCRAM's first answer needs only a user name;
/// OAUTHBEARER reports a bad token in a successful answer and fails the
/// next round), so for the mechanisms whose rounds Strait can tell apart
/// only the last one counts. A session lifetime is set by the broker only
/// once the exchange is complete. GSSAPI and mechanisms Strait does not know
/// count any success: GSSAPI's first answer already needs a ticket the KDC
/// issued, and the broker answers a handshake naming a mechanism it does
/// not enable with an error and closes the connection, so a success means
/// one it enabled, whose rounds Strait cannot tell apart (capping its
/// clients for ever would refuse their large requests after authentication).
fn completes(mechanism: &str, answer: &SaslAuthenticateResponse) -> bool {
    if answer.session_lifetime_ms > 0 {
        return true;
    }
    match mechanism {
        "PLAIN" => true,
        // The server-final message carries the verifier, the server-first
        // message a nonce (`r=`).
        "SCRAM-SHA-256" | "SCRAM-SHA-512" => answer.auth_bytes.starts_with(b"v="),
        // A valid token is answered with nothing; a bad one with an error
        // document in a successful answer.
        "OAUTHBEARER" => answer.auth_bytes.is_empty(),
        _ => true,
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

    /// Only the answer that ends the exchange lifts the pre-authentication
    /// cap: SCRAM's first answer needs only a user name, OAUTHBEARER answers
    /// a bad token with a success carrying an error document.
    #[test]
    fn only_the_last_round_of_an_exchange_authenticates() {
        let answer = |mechanism: &str, error: i16, auth: &[u8], lifetime: i64| {
            let s = ClientSasl::new(None);
            let mut out = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(SASL_HANDSHAKE)
                .with_request_api_version(1)
                .encode(&mut out, SaslHandshakeRequest::header_version(1))
                .unwrap();
            SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(mechanism.into()))
                .encode(&mut out, 1)
                .unwrap();
            assert!(!s.pre_authentication(), "no handshake yet");
            s.handshake(&out, 1).unwrap();
            assert!(s.pre_authentication());
            let mut out = BytesMut::new();
            ResponseHeader::default().encode(&mut out, 1).unwrap();
            SaslAuthenticateResponse::default()
                .with_error_code(error)
                .with_auth_bytes(Bytes::copy_from_slice(auth))
                .with_session_lifetime_ms(lifetime)
                .encode(&mut out, 2)
                .unwrap();
            s.authenticated(&out, 2).unwrap();
            !s.pre_authentication()
        };
        assert!(answer("PLAIN", 0, b"", 0));
        assert!(!answer("PLAIN", 58, b"", 0));
        assert!(!answer("SCRAM-SHA-512", 0, b"r=abc,s=c2FsdA==,i=4096", 0));
        assert!(answer("SCRAM-SHA-512", 0, b"v=dmVyaWZpZXI=", 0));
        assert!(!answer(
            "OAUTHBEARER",
            0,
            br#"{"status":"invalid_token"}"#,
            0
        ));
        assert!(answer("OAUTHBEARER", 0, b"", 0));
        // The broker sets a session lifetime only once the exchange is done.
        assert!(answer("SCRAM-SHA-256", 0, b"anything", 3_600_000));
        assert!(answer("GSSAPI", 0, b"token", 0));
    }
}
