//! Any bytes as a client's request stream: the length prefix, header peek and
//! produce-acks peek never panic and never read past the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait_proxy::codec::{frame_len, peek_produce_acks, RequestPeek};

fuzz_target!(|data: &[u8]| {
    let Ok(Some(len)) = frame_len(data, 1 << 20) else { return };
    let body = &data[4..];
    let Ok(Some(peek)) = RequestPeek::parse(body, len) else { return };
    if let Ok(Some((_, at))) = peek_produce_acks(body, peek.api_version, len) {
        assert!(at + 2 <= len, "acks at {at} past a {len}-byte frame");
    }
});
