//! Requests and responses flowing as they should: order, pipelining,
//! frames split anywhere, half-close, acks=0, the ApiVersions clamp.

use super::*;
#[test]
fn the_apis_used_here_stream_untouched() {
    for (key, version) in [DESCRIBE_CONFIGS, JOIN_GROUP, PRODUCE] {
        assert_eq!(classify(key, version), Ok(None), "api key {key} v{version}");
    }
    assert!(classify(API_VERSIONS.0, API_VERSIONS.1).unwrap().is_some());
}

#[tokio::test]
async fn responses_reach_the_client_in_request_order_byte_for_byte() {
    crate::metrics::install();
    let env = test_env(LimitsConfig::default());
    let mut c = start(&env);
    let n = 50usize;
    // Correlation ids in no particular order: responses pair by position.
    let ids: Vec<i32> = (0..n as i32).map(|i| (i * 7919) % 1009 - 500).collect();
    let reqs: Vec<Vec<u8>> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let api = if i % 2 == 0 {
                DESCRIBE_CONFIGS
            } else {
                JOIN_GROUP
            };
            request(api, id, &pattern(i * 37 % 300, i as u8))
        })
        .collect();
    let resps: Vec<Vec<u8>> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| response(id, &pattern(i * 53 % 400, !(i as u8))))
        .collect();

    let all = reqs.concat();
    write(&mut c.client_w, &all).await;
    assert_eq!(read_n(&mut c.broker_r, all.len()).await, all);
    for r in &resps {
        write(&mut c.broker_w, r).await;
    }
    for (i, r) in resps.iter().enumerate() {
        assert_eq!(&read_n(&mut c.client_r, r.len()).await, r, "response {i}");
    }

    c.client_w.shutdown().await.unwrap();
    finish(c.proxy).await.expect("clean end");
    assert!(read_to_eof(&mut c.client_r).await.is_empty());
    assert!(read_to_eof(&mut c.broker_r).await.is_empty());
}

#[tokio::test]
async fn pipelined_requests_interleave_with_responses() {
    crate::metrics::install();
    let env = test_env(LimitsConfig::default());
    let mut c = start(&env);
    let reqs: Vec<Vec<u8>> = (0..6)
        .map(|i| {
            request(
                DESCRIBE_CONFIGS,
                100 + i,
                &pattern(10 + i as usize, i as u8),
            )
        })
        .collect();
    let resps: Vec<Vec<u8>> = (0..6)
        .map(|i| response(100 + i, &pattern(20 + i as usize, 7 * i as u8)))
        .collect();

    // Three requests before reading anything.
    let first = reqs[..3].concat();
    write(&mut c.client_w, &first).await;
    assert_eq!(read_n(&mut c.broker_r, first.len()).await, first);
    // The broker answers two; the client reads them and sends two more.
    write(&mut c.broker_w, &resps[..2].concat()).await;
    assert_eq!(read_n(&mut c.client_r, resps[0].len()).await, resps[0]);
    assert_eq!(read_n(&mut c.client_r, resps[1].len()).await, resps[1]);
    let more = reqs[3..5].concat();
    write(&mut c.client_w, &more).await;
    assert_eq!(read_n(&mut c.broker_r, more.len()).await, more);
    // Part of the sixth request (past its header: Strait holds a frame until
    // it can peek the header) is sent while the third response goes back.
    let (head, tail) = reqs[5].split_at(4 + crate::codec::PEEK_LEN + 3);
    write(&mut c.client_w, head).await;
    assert_eq!(read_n(&mut c.broker_r, head.len()).await, head);
    write(&mut c.broker_w, &resps[2]).await;
    assert_eq!(read_n(&mut c.client_r, resps[2].len()).await, resps[2]);
    write(&mut c.client_w, tail).await;
    assert_eq!(read_n(&mut c.broker_r, tail.len()).await, tail);
    // The rest of the answers in one write.
    let rest = resps[3..].concat();
    write(&mut c.broker_w, &rest).await;
    assert_eq!(read_n(&mut c.client_r, rest.len()).await, rest);

    c.client_w.shutdown().await.unwrap();
    finish(c.proxy).await.expect("clean end");
    assert!(read_to_eof(&mut c.client_r).await.is_empty());
}

/// Splits `bytes` at `k` into one or two chunks; each is one read for Strait.
fn send_split(tx: &mpsc::UnboundedSender<Vec<u8>>, bytes: &[u8], k: usize) {
    let (a, b) = bytes.split_at(k);
    tx.send(a.to_vec()).unwrap();
    tx.send(b.to_vec()).unwrap();
}

#[tokio::test]
async fn frames_split_at_every_byte_boundary_pass_intact() {
    crate::metrics::install();
    let reqs = [
        request(DESCRIBE_CONFIGS, 1, &pattern(3, 1)),
        request(API_VERSIONS, 2, &[0]),
        request(JOIN_GROUP, 3, &pattern(5, 3)),
    ]
    .concat();
    let resps = [
        response(1, &pattern(4, 9)),
        api_versions_response(2, &unclamped_api_versions()),
        response(3, &[]),
    ]
    .concat();
    for env in [test_env(small_buffers()), test_env(LimitsConfig::default())] {
        let buffer = env.limits.buffer_bytes;
        for k in 0..=reqs.len().max(resps.len()) {
            let mut c = start_chunked(&env);
            send_split(&c.client_tx, &reqs, k.min(reqs.len()));
            assert_eq!(
                read_n(&mut c.broker_r, reqs.len()).await,
                reqs,
                "requests split at {k}, buffer {buffer}"
            );
            send_split(&c.broker_tx, &resps, k.min(resps.len()));
            assert_eq!(
                read_n(&mut c.client_r, resps.len()).await,
                resps,
                "responses split at {k}, buffer {buffer}"
            );
            drop(c.client_tx);
            finish(c.proxy).await.expect("clean end");
        }
        // And one byte per read, both ways.
        let mut c = start_chunked(&env);
        for b in &reqs {
            c.client_tx.send(vec![*b]).unwrap();
        }
        assert_eq!(read_n(&mut c.broker_r, reqs.len()).await, reqs);
        for b in &resps {
            c.broker_tx.send(vec![*b]).unwrap();
        }
        assert_eq!(read_n(&mut c.client_r, resps.len()).await, resps);
        drop(c.client_tx);
        finish(c.proxy).await.expect("clean end");
    }
}

#[tokio::test]
async fn a_half_closed_client_gets_every_response_then_eof() {
    crate::metrics::install();
    let env = test_env(LimitsConfig::default());
    let (eof_tx, eof_rx) = oneshot::channel();
    let mut c = start_wrapped(&env, |inner| {
        Box::new(NotifyEof {
            inner,
            eof: Some(eof_tx),
        })
    });
    let reqs = [
        request(DESCRIBE_CONFIGS, 7, &pattern(12, 1)),
        request(JOIN_GROUP, 8, &pattern(30, 2)),
        request(API_VERSIONS, 9, &[0]),
    ]
    .concat();
    let resps = [
        response(7, &pattern(40, 3)),
        response(8, &pattern(5, 4)),
        api_versions_response(9, &unclamped_api_versions()),
    ]
    .concat();

    write(&mut c.client_w, &reqs).await;
    c.client_w.shutdown().await.unwrap();
    assert_eq!(read_n(&mut c.broker_r, reqs.len()).await, reqs);
    // Strait has read the client's end of stream (and, on this runtime,
    // finished the poll that read it): the broker's side must still be open.
    timeout(GUARD, eof_rx)
        .await
        .expect("Strait never reads the client's end of stream")
        .unwrap();
    assert_eq!(
        poll_once(&mut c.broker_r).await,
        None,
        "the broker saw its connection closed (or data) before it answered"
    );

    write(&mut c.broker_w, &resps).await;
    assert_eq!(read_n(&mut c.client_r, resps.len()).await, resps);
    finish(c.proxy).await.expect("clean end");
    assert!(read_to_eof(&mut c.client_r).await.is_empty());
    assert!(read_to_eof(&mut c.broker_r).await.is_empty());
}

#[tokio::test]
async fn acks_0_produce_expects_no_response() {
    crate::metrics::install();
    let env = test_env(LimitsConfig::default());
    let mut c = start(&env);
    let all = [
        request(PRODUCE, 1, &produce_body(0)),
        request(DESCRIBE_CONFIGS, 2, &[]),
        request(PRODUCE, 3, &produce_body(1)),
    ]
    .concat();
    write(&mut c.client_w, &all).await;
    assert_eq!(read_n(&mut c.broker_r, all.len()).await, all);
    let resps = [response(2, &pattern(3, 0)), response(3, &pattern(9, 1))].concat();
    write(&mut c.broker_w, &resps).await;
    assert_eq!(read_n(&mut c.client_r, resps.len()).await, resps);
    c.client_w.shutdown().await.unwrap();
    finish(c.proxy).await.expect("clean end");
}

#[tokio::test]
async fn more_pipelined_requests_than_max_in_flight_in_one_read() {
    crate::metrics::install();
    let env = test_env(LimitsConfig {
        max_in_flight: 2,
        ..LimitsConfig::default()
    });
    let mut c = start(&env);
    let n = 8;
    let reqs: Vec<Vec<u8>> = (0..n)
        .map(|i| request(DESCRIBE_CONFIGS, i, &pattern(6, i as u8)))
        .collect();
    let resps: Vec<Vec<u8>> = (0..n)
        .map(|i| response(i, &pattern(5, !(i as u8))))
        .collect();
    // One write: Strait reads every request at once, more than it may
    // admit; the broker answers each request as it arrives.
    write(&mut c.client_w, &reqs.concat()).await;
    for (req, resp) in reqs.iter().zip(&resps) {
        assert_eq!(&read_n(&mut c.broker_r, req.len()).await, req);
        write(&mut c.broker_w, resp).await;
    }
    let all = resps.concat();
    assert_eq!(read_n(&mut c.client_r, all.len()).await, all);
    c.client_w.shutdown().await.unwrap();
    finish(c.proxy).await.expect("clean end");
}

#[tokio::test]
async fn api_versions_is_clamped_on_the_way_back() {
    crate::metrics::install();
    let env = test_env(LimitsConfig::default());
    let mut c = start(&env);
    let req = request(API_VERSIONS, 42, &[0]);
    write(&mut c.client_w, &req).await;
    assert_eq!(read_n(&mut c.broker_r, req.len()).await, req);
    let broker = ApiVersionsResponse::default().with_api_keys(vec![
        version(ApiKey::Produce as i16, 0, 13),
        version(ApiKey::Fetch as i16, 0, 17),
        version(DESCRIBE_CONFIGS.0, 0, 4),
    ]);
    write(&mut c.broker_w, &api_versions_response(42, &broker)).await;

    let len = i32::from_be_bytes(read_n(&mut c.client_r, 4).await.try_into().unwrap());
    let mut body = bytes::Bytes::from(read_n(&mut c.client_r, len as usize).await);
    let header = ResponseHeader::decode(&mut body, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let got = ApiVersionsResponse::decode(&mut body, API_VERSIONS.1).unwrap();
    assert!(body.is_empty(), "trailing bytes after the response");
    let ranges: Vec<(i16, i16, i16)> = got
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    let clamped = |key: ApiKey, min: i16, max: i16| {
        let (lo, hi) = proxy_range(key as i16, LeaderEndpoints::Clamp).unwrap();
        (key as i16, min.max(lo), max.min(hi))
    };
    assert_eq!(
        ranges,
        vec![
            clamped(ApiKey::Produce, 0, 13),
            clamped(ApiKey::Fetch, 0, 17),
            (DESCRIBE_CONFIGS.0, 0, 4),
        ]
    );
    assert!(
        ranges[0].2 <= 9 && ranges[1].2 <= 15,
        "KIP-951 versions hidden"
    );

    c.client_w.shutdown().await.unwrap();
    finish(c.proxy).await.expect("clean end");
}
