//! Brokers and clients that misbehave: each ends only its own connection,
//! with the error that says why.

use super::*;

#[tokio::test]
async fn a_broker_that_dies_with_requests_in_flight_is_reported() {
    crate::metrics::install();
    let env = test_env(LimitsConfig::default());

    // Three requests, one answer, then the broker is gone.
    let mut c = start(&env);
    let reqs: Vec<Vec<u8>> = (0..3)
        .map(|i| request(DESCRIBE_CONFIGS, 20 + i, &pattern(8, i as u8)))
        .collect();
    let all = reqs.concat();
    write(&mut c.client_w, &all).await;
    assert_eq!(read_n(&mut c.broker_r, all.len()).await, all);
    let first = response(20, &pattern(16, 5));
    write(&mut c.broker_w, &first).await;
    drop((c.broker_r, c.broker_w));
    let r = finish(c.proxy).await;
    assert!(
        matches!(r, Err(ConnError::UpstreamClosed { in_flight: 2 })),
        "{r:?}"
    );
    assert_eq!(read_to_eof(&mut c.client_r).await, first);

    // Dies mid-response: the partial response counts as in flight.
    let mut c = start(&env);
    let all = reqs[..2].concat();
    write(&mut c.client_w, &all).await;
    assert_eq!(read_n(&mut c.broker_r, all.len()).await, all);
    let second = response(21, &pattern(16, 6));
    let sent = [&first[..], &second[..10]].concat();
    write(&mut c.broker_w, &sent).await;
    drop((c.broker_r, c.broker_w));
    let r = finish(c.proxy).await;
    assert!(
        matches!(r, Err(ConnError::UpstreamClosed { in_flight: 1 })),
        "{r:?}"
    );
    assert_eq!(read_to_eof(&mut c.client_r).await, sent);

    // Dies with nothing in flight.
    let mut c = start(&env);
    drop((c.broker_r, c.broker_w));
    let r = finish(c.proxy).await;
    assert!(
        matches!(r, Err(ConnError::UpstreamClosed { in_flight: 0 })),
        "{r:?}"
    );
    assert!(read_to_eof(&mut c.client_r).await.is_empty());
}

#[tokio::test]
async fn a_response_out_of_order_ends_the_connection() {
    crate::metrics::install();
    let env = test_env(LimitsConfig::default());
    let mut c = start(&env);
    let all = [
        request(DESCRIBE_CONFIGS, 5, &[]),
        request(DESCRIBE_CONFIGS, 6, &[]),
    ]
    .concat();
    write(&mut c.client_w, &all).await;
    assert_eq!(read_n(&mut c.broker_r, all.len()).await, all);
    write(&mut c.broker_w, &response(6, &pattern(8, 1))).await;
    let r = finish(c.proxy).await;
    assert!(
        matches!(
            r,
            Err(ConnError::CorrelationMismatch {
                expected: 5,
                got: 6
            })
        ),
        "{r:?}"
    );
    assert!(
        read_to_eof(&mut c.client_r).await.is_empty(),
        "the mismatched response reached the client"
    );
}

#[tokio::test]
async fn a_response_to_no_request_ends_the_connection() {
    crate::metrics::install();
    let env = test_env(LimitsConfig::default());
    let req = request(JOIN_GROUP, 1, &pattern(4, 0));
    let resp = response(1, &pattern(6, 1));
    let stray = response(2, &pattern(6, 2));

    // The client has closed its sending side (and Strait has read that): no
    // request can follow. The stray response comes with the last one.
    let (eof_tx, eof_rx) = oneshot::channel();
    let mut c = start_wrapped(&env, |inner| {
        Box::new(NotifyEof {
            inner,
            eof: Some(eof_tx),
        })
    });
    write(&mut c.client_w, &req).await;
    c.client_w.shutdown().await.unwrap();
    assert_eq!(read_n(&mut c.broker_r, req.len()).await, req);
    timeout(GUARD, eof_rx)
        .await
        .expect("no end of stream")
        .unwrap();
    write(&mut c.broker_w, &[&resp[..], &stray[..]].concat()).await;
    let r = finish(c.proxy).await;
    assert!(
        matches!(r, Err(ConnError::UnexpectedResponse { correlation_id: 2 })),
        "{r:?}"
    );
    // The connection is dropped on the broker's error: the good response
    // read with the stray one may be lost, never cut or mixed up.
    let got = read_to_eof(&mut c.client_r).await;
    assert!(got.is_empty() || got == resp, "client got {got:?}");

    // The client is still connected (and idle).
    let mut c = start(&env);
    write(&mut c.client_w, &req).await;
    assert_eq!(read_n(&mut c.broker_r, req.len()).await, req);
    write(&mut c.broker_w, &resp).await;
    assert_eq!(read_n(&mut c.client_r, resp.len()).await, resp);
    write(&mut c.broker_w, &stray).await;
    let r = finish(c.proxy).await;
    assert!(
        matches!(r, Err(ConnError::UnexpectedResponse { correlation_id: 2 })),
        "{r:?}"
    );
    assert!(read_to_eof(&mut c.client_r).await.is_empty());

    // Before any request at all.
    let mut c = start(&env);
    write(&mut c.broker_w, &stray).await;
    let r = finish(c.proxy).await;
    assert!(
        matches!(r, Err(ConnError::UnexpectedResponse { correlation_id: 2 })),
        "{r:?}"
    );
    assert!(read_to_eof(&mut c.client_r).await.is_empty());
}

#[tokio::test]
async fn a_bad_client_frame_ends_the_connection_and_is_not_forwarded() {
    crate::metrics::install();
    let env = test_env(LimitsConfig::default());
    let max = env.limits.max_frame_bytes;
    let too_large = i32::try_from(max + 1).unwrap();
    let cases: [(i32, FrameError); 4] = [
        (-1, FrameError::NegativeLength(-1)),
        (i32::MIN, FrameError::NegativeLength(i32::MIN)),
        (too_large, FrameError::TooLarge { len: max + 1, max }),
        (3, FrameError::TooShort { len: 3 }),
    ];
    let valid = request(DESCRIBE_CONFIGS, 1, &pattern(4, 4));
    for (len, want) in cases {
        let mut bad = len.to_be_bytes().to_vec();
        bad.extend_from_slice(&pattern(12, 0x7f));
        for before in [&[][..], &valid[..]] {
            let mut c = start(&env);
            write(&mut c.client_w, &[before, &bad[..]].concat()).await;
            let r = finish(c.proxy).await;
            match &r {
                Err(ConnError::ClientFrame(e)) if *e == want => {}
                r => panic!("length {len}: {r:?}"),
            }
            // A valid request before it may or may not have been forwarded;
            // nothing of the bad frame is.
            let got = read_to_eof(&mut c.broker_r).await;
            assert!(before.starts_with(&got), "length {len}: broker got {got:?}");
            assert!(read_to_eof(&mut c.client_r).await.is_empty());
        }
    }
}

/// A SaslHandshake whose mechanism claims more bytes than the frame holds
/// is refused by the guard before it is decoded: the connection closes
/// with the api and version named, and the broker never sees the frame.
#[tokio::test]
async fn a_malformed_sasl_handshake_is_refused_and_never_forwarded() {
    crate::metrics::install();
    let env = test_env(LimitsConfig::default());
    let mut c = start(&env);
    write(&mut c.client_w, &request((17, 1), 3, &[0x7f, 0xff, b'P'])).await;
    let r = finish(c.proxy).await;
    let Err(ConnError::Enforce(e)) = &r else {
        panic!("{r:?}")
    };
    assert!(
        e.to_string().contains("SaslHandshake v1") && e.to_string().contains("malformed body"),
        "{e}"
    );
    assert!(
        read_to_eof(&mut c.broker_r).await.is_empty(),
        "nothing reached the broker"
    );
}
