//! Any bytes as a partition's record batches: the batch reader never panics,
//! never allocates beyond its caps, and record views stay inside the data.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strait_proxy::codec::batch;

fuzz_target!(|data: &[u8]| {
    let Ok(batches) = batch::batches(Bytes::copy_from_slice(data)) else { return };
    for b in &batches {
        if let Ok(bytes) = b.record_bytes(1 << 20) {
            let _ = batch::records(&bytes, b.record_count());
        }
    }
});
