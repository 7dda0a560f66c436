//! A client's own SASL exchange: while it authenticates, a frame over the
//! broker's `sasl.server.max.receive.size` (512 KiB) closes the connection
//! before any of it is buffered or forwarded; once the broker has accepted
//! its credentials, or on a connection that never handshakes, frames up to
//! `limits.max_frame_bytes` pass as before.

use kafka_protocol::messages::SaslAuthenticateResponse;

use super::*;
use crate::connection::sasl::PRE_AUTH_MAX_FRAME_BYTES;

const SASL_HANDSHAKE: (i16, i16) = (17, 1);
const SASL_AUTHENTICATE: (i16, i16) = (36, 1);

/// A SaslHandshake v1 request naming PLAIN.
fn handshake(correlation_id: i32) -> Vec<u8> {
    let mut body = 5i16.to_be_bytes().to_vec();
    body.extend_from_slice(b"PLAIN");
    request(SASL_HANDSHAKE, correlation_id, &body)
}

/// A SaslAuthenticate v1 answer (header v0) with `error_code`.
fn authenticate_answer(correlation_id: i32, error_code: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut b, 0)
        .unwrap();
    SaslAuthenticateResponse::default()
        .with_error_code(error_code)
        .encode(&mut b, SASL_AUTHENTICATE.1)
        .unwrap();
    response_of(&b)
}

/// The start of a request frame whose length prefix says `len`, with
/// `body` bytes of its body.
fn claiming(api: (i16, i16), correlation_id: i32, len: usize, body: usize) -> Vec<u8> {
    let mut f = request(api, correlation_id, &pattern(body, 3));
    f[..4].copy_from_slice(&i32::try_from(len).unwrap().to_be_bytes());
    f
}

/// Sends `frame` and expects the broker to get it whole (a whole request of
/// this size does not fit the pipe: written and read at once).
async fn passes(c: &mut Conn, frame: &[u8]) {
    let (_, got) = tokio::join!(
        write(&mut c.client_w, frame),
        read_n(&mut c.broker_r, frame.len())
    );
    assert!(got == frame, "the broker got another frame");
}

/// The client's handshake, through to the broker and back.
async fn handshaken(c: &mut Conn) {
    let hs = handshake(1);
    write(&mut c.client_w, &hs).await;
    assert_eq!(read_n(&mut c.broker_r, hs.len()).await, hs);
    let answer = response(1, &[0, 0, 0, 0, 0, 1, 0, 5, b'P', b'L', b'A', b'I', b'N']);
    write(&mut c.broker_w, &answer).await;
    assert_eq!(read_n(&mut c.client_r, answer.len()).await, answer);
}

fn refused(r: Result<(), ConnError>, api: i16) {
    match r {
        Err(e @ ConnError::PreAuthFrameTooLarge { len, api_key, max }) => {
            assert_eq!(
                (len, api_key, max),
                (PRE_AUTH_MAX_FRAME_BYTES + 1, api, PRE_AUTH_MAX_FRAME_BYTES)
            );
            assert!(
                e.to_string().contains("SASL authentication completes"),
                "{e}"
            );
        }
        other => panic!("expected the pre-authentication cap, got {other:?}"),
    }
}

// A paused clock: a frame left waiting would only end at the hang guard,
// which then comes at once instead of after ten seconds.
#[tokio::test(start_paused = true)]
async fn a_client_that_has_not_authenticated_cannot_send_more_than_512_kib() {
    let env = test_env(LimitsConfig::default());
    let over = PRE_AUTH_MAX_FRAME_BYTES + 1;

    // After its handshake, any request over the cap: nothing of it reaches
    // the broker.
    let mut c = start(&env);
    handshaken(&mut c).await;
    write(&mut c.client_w, &claiming(DESCRIBE_CONFIGS, 2, over, 64)).await;
    refused(finish(c.proxy).await, DESCRIBE_CONFIGS.0);
    assert!(read_to_eof(&mut c.broker_r).await.is_empty());

    // Its SaslAuthenticate too.
    let mut c = start(&env);
    handshaken(&mut c).await;
    write(&mut c.client_w, &claiming(SASL_AUTHENTICATE, 2, over, 64)).await;
    refused(finish(c.proxy).await, SASL_AUTHENTICATE.0);

    // A SaslHandshake over the cap is not read whole first.
    let mut c = start(&env);
    write(&mut c.client_w, &claiming(SASL_HANDSHAKE, 1, over, 64)).await;
    refused(finish(c.proxy).await, SASL_HANDSHAKE.0);
    assert!(read_to_eof(&mut c.broker_r).await.is_empty());

    // A failed authentication leaves the cap in place.
    let mut c = start(&env);
    handshaken(&mut c).await;
    let auth = request(SASL_AUTHENTICATE, 2, &[0, 0, 0, 1, 0]);
    write(&mut c.client_w, &auth).await;
    assert_eq!(read_n(&mut c.broker_r, auth.len()).await, auth);
    let failed = authenticate_answer(2, 58); // SASL_AUTHENTICATION_FAILED
    write(&mut c.broker_w, &failed).await;
    assert_eq!(read_n(&mut c.client_r, failed.len()).await, failed);
    write(&mut c.client_w, &claiming(DESCRIBE_CONFIGS, 3, over, 64)).await;
    refused(finish(c.proxy).await, DESCRIBE_CONFIGS.0);
}

#[tokio::test(start_paused = true)]
async fn large_requests_pass_without_sasl_and_once_authenticated() {
    let env = test_env(LimitsConfig::default());
    let large = request(
        DESCRIBE_CONFIGS,
        7,
        &pattern(PRE_AUTH_MAX_FRAME_BYTES * 2, 1),
    );

    // No handshake (a PLAINTEXT cluster): not capped.
    let mut c = start(&env);
    passes(&mut c, &large).await;

    // Once the broker has accepted the client's credentials.
    let mut c = start(&env);
    handshaken(&mut c).await;
    let auth = request(SASL_AUTHENTICATE, 2, &[0, 0, 0, 1, 0]);
    write(&mut c.client_w, &auth).await;
    assert_eq!(read_n(&mut c.broker_r, auth.len()).await, auth);
    let ok = authenticate_answer(2, 0);
    write(&mut c.broker_w, &ok).await;
    assert_eq!(read_n(&mut c.client_r, ok.len()).await, ok);
    passes(&mut c, &large).await;
    let answer = response(7, &pattern(8, 2));
    write(&mut c.broker_w, &answer).await;
    assert_eq!(read_n(&mut c.client_r, answer.len()).await, answer);
    c.client_w.shutdown().await.unwrap();
    finish(c.proxy).await.expect("clean end");
    assert!(read_to_eof(&mut c.broker_r).await.is_empty());
}
