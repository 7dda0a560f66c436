//! SASL for Strait's own connections: SaslHandshake v1, then
//! SaslAuthenticate v1 frames carrying PLAIN or SCRAM (KIP-152, KIP-84),
//! with the session lifetime the broker grants (KIP-368) turned into a
//! deadline after which the connection is no longer used.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

use super::scram::{ScramClient, ScramHash};
use super::BrokerConn;
use crate::config::{SaslCredentials, SaslMechanism};

const HANDSHAKE_VERSION: i16 = 1;
const AUTHENTICATE_VERSION: i16 = 1;

/// A connection is retired when this share of its session lifetime has
/// passed (as Kafka's own clients re-authenticate at 85–95%), so no request
/// of Strait's reaches the broker after the session ends.
const LIFETIME_SHARE: f64 = 0.85;

/// The broker refused Strait's credentials (or its mechanism). Transport
/// errors during the exchange are not this: they are plain errors.
#[derive(Debug, thiserror::Error)]
#[error("SASL {mechanism} authentication as {username:?} to broker {broker} failed: {reason}")]
pub struct AuthFailed {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub broker: String,
    pub reason: String,
}

fn broker_error(code: i16, message: Option<&StrBytes>) -> String {
    let name = match ResponseError::try_from_code(code) {
        Some(e) => e.to_string(),
        None => "unknown error".into(),
    };
    match message {
        Some(m) if !m.is_empty() => format!("{name} ({code}): {m}"),
        _ => format!("{name} ({code})"),
    }
}

/// Authenticates `conn` with `creds`; returns when the session must end, if
/// the broker set a lifetime.
pub async fn authenticate(
    conn: &mut BrokerConn,
    creds: &SaslCredentials,
) -> anyhow::Result<Option<Instant>> {
    let broker = conn.addr().to_string();
    let failed = |reason: String| AuthFailed {
        mechanism: creds.mechanism,
        username: creds.username.clone(),
        broker: broker.clone(),
        reason,
    };
    let handshake = conn
        .call(
            HANDSHAKE_VERSION,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_static_str(creds.mechanism.name())),
        )
        .await?;
    if handshake.error_code != 0 {
        let enabled: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
        let reason = format!(
            "{}; the broker's listener enables {enabled:?}",
            broker_error(handshake.error_code, None)
        );
        return Err(failed(reason).into());
    }
    let started = Instant::now();
    let lifetime_ms = match creds.mechanism {
        SaslMechanism::Plain => {
            let token = format!("\0{}\0{}", creds.username, creds.password);
            let (_, lifetime) = step(conn, token.into_bytes()).await?.map_err(failed)?;
            lifetime
        }
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            let hash = match creds.mechanism {
                SaslMechanism::ScramSha256 => ScramHash::Sha256,
                _ => ScramHash::Sha512,
            };
            let client = ScramClient::new(hash, &creds.username, &creds.password);
            let first = client.client_first().into_bytes();
            let (server_first, _) = step(conn, first).await?.map_err(failed)?;
            let server_first = String::from_utf8(server_first.to_vec())
                .map_err(|_| failed("the server-first message is not UTF-8".into()))?;
            // PBKDF2: thousands of HMAC rounds, off the reactor.
            let (client_final, check) =
                tokio::task::spawn_blocking(move || client.respond(&server_first))
                    .await?
                    .map_err(failed)?;
            let (server_final, lifetime) = step(conn, client_final.into_bytes())
                .await?
                .map_err(failed)?;
            let server_final = String::from_utf8_lossy(&server_final);
            check.verify(&server_final).map_err(failed)?;
            lifetime
        }
    };
    Ok((lifetime_ms > 0)
        .then(|| started + Duration::from_millis((lifetime_ms as f64 * LIFETIME_SHARE) as u64)))
}

/// One SaslAuthenticate round: the broker's bytes and session lifetime, or
/// why it refused.
async fn step(
    conn: &mut BrokerConn,
    token: Vec<u8>,
) -> anyhow::Result<Result<(Bytes, i64), String>> {
    let answer = conn
        .call(
            AUTHENTICATE_VERSION,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
        )
        .await?;
    if answer.error_code != 0 {
        return Ok(Err(broker_error(
            answer.error_code,
            answer.error_message.as_ref(),
        )));
    }
    Ok(Ok((answer.auth_bytes, answer.session_lifetime_ms)))
}
