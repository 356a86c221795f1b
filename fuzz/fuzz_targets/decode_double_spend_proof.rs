//! The DoubleSpendProof decoder and the proof check on top of it: refused or
//! decoded to its own encoding; verifying never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offpay_protocol::messages::{DOUBLE_SPEND_PROOF_BYTES_MAX, DoubleSpendProof};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = DoubleSpendProof::decode(data) {
        assert!(data.len() <= DOUBLE_SPEND_PROOF_BYTES_MAX);
        assert_eq!(
            p.encode(),
            data,
            "a proof decoded from a non-canonical encoding"
        );
    }
    if let Some(root) = offpay_fuzz::decoder_root() {
        let _ = offpay_protocol::evidence::verify_double_spend_bytes(data, root);
    }
});
