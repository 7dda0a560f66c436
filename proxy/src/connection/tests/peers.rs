//! Slow and stalled clients, on a paused clock (time only moves when every
//! task waits, so the timeouts are exact and nothing really waits): a client
//! that trickles a request is dropped once its frame read timeout runs out,
//! one that stops taking responses once its write timeout does; clients that
//! are merely slow between requests, or read slowly but steadily, are not.

use tokio::time::{sleep, Instant};

use super::*;

const TIMEOUT_MS: u64 = 1_000;

fn short_timeouts() -> LimitsConfig {
    LimitsConfig {
        frame_read_timeout_ms: TIMEOUT_MS,
        client_write_timeout_ms: TIMEOUT_MS,
        ..LimitsConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_trickles_a_request_is_dropped_at_its_frame_timeout() {
    let env = test_env(short_timeouts());
    let Conn {
        mut client_r,
        mut client_w,
        mut broker_r,
        broker_w: _broker_w,
        proxy,
    } = start(&env);
    let req = request(DESCRIBE_CONFIGS, 1, &pattern(40, 1));
    let began = Instant::now();
    // One byte every 300 ms: the 57-byte frame would take 17 s.
    let trickle = async {
        for b in &req {
            if client_w.write_all(&[*b]).await.is_err() {
                return;
            }
            sleep(Duration::from_millis(300)).await;
        }
    };
    let dropped = async { (finish(proxy).await, began.elapsed()) };
    let ((r, took), ()) = tokio::join!(dropped, trickle);
    match r {
        Err(ConnError::FrameReadTimeout {
            received,
            timeout_ms,
        }) => {
            assert_eq!(timeout_ms, TIMEOUT_MS);
            // Bytes at 0, 300, 600 and 900 ms arrived before the deadline.
            assert_eq!(received, 4);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(took, Duration::from_millis(TIMEOUT_MS), "dropped on time");
    // Both sides are closed: the broker sees end of stream.
    let mut seen = Vec::new();
    broker_r.read_to_end(&mut seen).await.unwrap();
    assert!(seen.len() <= 4, "{seen:?}");
    assert!(read_to_eof(&mut client_r).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn pauses_between_requests_and_frames_that_arrive_in_time_are_fine() {
    let env = test_env(short_timeouts());
    let mut c = start(&env);
    for i in 0..3 {
        // Each frame in two halves 900 ms apart (within the timeout), then
        // a pause of three timeouts before the next frame (no deadline).
        let req = request(DESCRIBE_CONFIGS, i, &pattern(20, i as u8));
        let (a, b) = req.split_at(7);
        write(&mut c.client_w, a).await;
        sleep(Duration::from_millis(900)).await;
        write(&mut c.client_w, b).await;
        assert_eq!(read_n(&mut c.broker_r, req.len()).await, req);
        let resp = response(i, &pattern(12, i as u8));
        write(&mut c.broker_w, &resp).await;
        assert_eq!(read_n(&mut c.client_r, resp.len()).await, resp);
        sleep(Duration::from_millis(3 * TIMEOUT_MS)).await;
    }
    // Two frames in one read, the second incomplete: its deadline starts
    // with that read, not with the first frame's.
    let first = request(DESCRIBE_CONFIGS, 10, &pattern(20, 1));
    let second = request(DESCRIBE_CONFIGS, 11, &pattern(20, 2));
    write(&mut c.client_w, &[&first[..], &second[..5]].concat()).await;
    sleep(Duration::from_millis(900)).await;
    write(&mut c.client_w, &second[5..]).await;
    let both = [first, second].concat();
    assert_eq!(read_n(&mut c.broker_r, both.len()).await, both);
    assert!(poll_once(&mut c.client_r).await.is_none(), "still open");
    assert!(!c.proxy.is_finished(), "not dropped");
    c.client_w.shutdown().await.unwrap();
    let (r1, r2) = (response(10, b"a"), response(11, b"b"));
    write(&mut c.broker_w, &[r1, r2].concat()).await;
    finish(c.proxy).await.expect("clean end");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_dropped_and_the_broker_is_not_read() {
    let env = test_env(short_timeouts());
    let c = start(&env);
    let Conn {
        client_r,
        mut client_w,
        mut broker_r,
        mut broker_w,
        proxy,
    } = c;
    let req = request(DESCRIBE_CONFIGS, 1, &pattern(8, 1));
    write(&mut client_w, &req).await;
    assert_eq!(read_n(&mut broker_r, req.len()).await, req);
    // A response of eight pipes: the client pipe takes one, Strait's read
    // buffer at most its 256 KiB (four), the broker pipe one; the rest
    // stays with the broker.
    let big = response(1, &vec![7u8; 8 * PIPE]);
    let began = Instant::now();
    let broker = async {
        let mut sent = 0;
        for chunk in big.chunks(1024) {
            if broker_w.write_all(chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    };
    let dropped = async { (finish(proxy).await, began.elapsed()) };
    let ((r, took), sent) = tokio::join!(dropped, broker);
    match r {
        Err(ConnError::ClientWriteTimeout {
            pending,
            timeout_ms,
        }) => {
            assert_eq!(timeout_ms, TIMEOUT_MS);
            assert!(pending > 0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        took,
        Duration::from_millis(TIMEOUT_MS),
        "dropped once the client took nothing for the timeout"
    );
    assert!(
        sent < big.len(),
        "Strait stopped reading the broker while the client did not read"
    );
    drop(client_r);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_reads_slowly_but_steadily_is_not_dropped() {
    let env = test_env(short_timeouts());
    let Conn {
        mut client_r,
        mut client_w,
        mut broker_r,
        mut broker_w,
        proxy,
    } = start(&env);
    let req = request(DESCRIBE_CONFIGS, 1, &pattern(8, 1));
    write(&mut client_w, &req).await;
    assert_eq!(read_n(&mut broker_r, req.len()).await, req);
    let big = response(1, &vec![7u8; 3 * PIPE]);
    let broker = async {
        broker_w.write_all(&big).await.unwrap();
    };
    // 4 KiB every 800 ms: 48 reads, 38 s, never a timeout's pause.
    let reader = async {
        let mut got = Vec::new();
        while got.len() < big.len() {
            sleep(Duration::from_millis(800)).await;
            let mut b = vec![0u8; 4096.min(big.len() - got.len())];
            client_r.read_exact(&mut b).await.unwrap();
            got.extend_from_slice(&b);
        }
        got
    };
    let ((), got) = tokio::join!(broker, reader);
    assert!(got == big, "the whole response, in order");
    client_w.shutdown().await.unwrap();
    finish(proxy).await.expect("clean end");
}

#[tokio::test(start_paused = true)]
async fn a_large_request_held_up_by_a_slow_broker_is_not_the_clients_fault() {
    let env = test_env(short_timeouts());
    let Conn {
        client_r: _client_r,
        mut client_w,
        mut broker_r,
        broker_w: _broker_w,
        proxy,
    } = start(&env);
    // Three pipes' worth in six parts 100 ms apart: 600 ms of the client's
    // own time. The broker takes nothing for 2 s (so Strait cannot read on
    // while its write waits), then everything.
    let req = request(DESCRIBE_CONFIGS, 1, &pattern(3 * PIPE, 3));
    let client = async {
        for part in req.chunks(PIPE / 2) {
            client_w.write_all(part).await.unwrap();
            sleep(Duration::from_millis(100)).await;
        }
    };
    let broker = async {
        sleep(Duration::from_secs(2)).await;
        let mut got = vec![0u8; req.len()];
        broker_r.read_exact(&mut got).await.unwrap();
        got
    };
    let ((), got) = tokio::join!(client, broker);
    assert!(got == req, "the whole request, in order");
    assert!(!proxy.is_finished(), "the client was not dropped");
}
