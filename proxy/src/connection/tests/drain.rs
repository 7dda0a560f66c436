//! The drain: a connection stops reading at its next request boundary,
//! delivers every response owed, then closes (FIN), without the client
//! closing first.

use super::*;

#[tokio::test]
async fn a_draining_connection_finishes_the_request_it_is_reading_and_delivers_every_response() {
    let (drain, flag) = tokio::sync::watch::channel(false);
    let env = test_env_with_drain(LimitsConfig::default(), flag);
    let mut c = start(&env);
    let first = request(DESCRIBE_CONFIGS, 1, &pattern(40, 1));
    let second = request(JOIN_GROUP, 2, &pattern(60, 2));
    let mut sent = first.clone();
    sent.extend_from_slice(&second[..30]);
    write(&mut c.client_w, &sent).await;
    assert_eq!(read_n(&mut c.broker_r, sent.len()).await, sent);

    // SIGTERM mid-request: the request being read is read to its end.
    drain.send_replace(true);
    write(&mut c.client_w, &second[30..]).await;
    assert_eq!(
        read_n(&mut c.broker_r, second.len() - 30).await,
        &second[30..]
    );
    // ... and nothing after it is.
    let third = request(DESCRIBE_CONFIGS, 3, &pattern(10, 3));
    write(&mut c.client_w, &third).await;

    let (r1, r2) = (response(1, &pattern(30, 4)), response(2, &pattern(70, 5)));
    write(&mut c.broker_w, &r1).await;
    write(&mut c.broker_w, &r2).await;
    let mut both = r1.clone();
    both.extend_from_slice(&r2);
    // Both responses whole, then the end of the stream: the client has not
    // closed anything, Strait closed after its last response.
    assert_eq!(read_to_eof(&mut c.client_r).await, both);
    // Strait reads (and drops) what the client still sends until it closes.
    c.client_w.shutdown().await.unwrap();
    finish(c.proxy).await.expect("a clean end");
    assert!(
        read_to_eof(&mut c.broker_r).await.is_empty(),
        "the request sent after the drain began is not forwarded"
    );
}

#[tokio::test]
async fn an_idle_connection_closes_as_soon_as_the_drain_begins() {
    let (drain, flag) = tokio::sync::watch::channel(false);
    let env = test_env_with_drain(LimitsConfig::default(), flag);
    let mut c = start(&env);
    let req = request(DESCRIBE_CONFIGS, 7, &pattern(12, 7));
    write(&mut c.client_w, &req).await;
    assert_eq!(read_n(&mut c.broker_r, req.len()).await, req);
    let resp = response(7, &pattern(9, 8));
    write(&mut c.broker_w, &resp).await;
    assert_eq!(read_n(&mut c.client_r, resp.len()).await, resp);

    drain.send_replace(true);
    assert!(read_to_eof(&mut c.client_r).await.is_empty());
    drop(c.client_w);
    finish(c.proxy).await.expect("a clean end");
}
