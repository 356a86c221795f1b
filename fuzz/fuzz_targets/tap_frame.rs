//! The tap frame parser (offpay-transport/src/tap.rs): read frames from
//! arbitrary bytes until the first refusal; each frame read is within its
//! type's limit and re-encodes to exactly the bytes it was read from.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use offpay_transport::tap::{TAP_FRAME_HEADER_BYTES, encode_frame, read_frame};

fuzz_target!(|data: &[u8]| {
    let mut r = Cursor::new(data);
    let mut start = 0usize;
    while let Ok((frame, payload)) = read_frame(&mut r) {
        assert!(payload.len() <= frame.payload_max());
        let end = usize::try_from(r.position()).unwrap_or(usize::MAX);
        assert_eq!(end - start, TAP_FRAME_HEADER_BYTES + payload.len());
        match encode_frame(frame, &payload) {
            Ok(bytes) => assert_eq!(bytes, data[start..end], "a frame re-encodes differently"),
            Err(e) => panic!("a frame that was read does not encode: {e}"),
        }
        start = end;
    }
});
