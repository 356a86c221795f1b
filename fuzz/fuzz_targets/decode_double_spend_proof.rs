//! The DoubleSpendProof and RetainedDoubleSpendProof decoders and the proof
//! checks on top of them: refused or decoded to their own encoding;
//! verifying never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offpay_protocol::messages::{
    DOUBLE_SPEND_PROOF_BYTES_MAX, DoubleSpendProof, RetainedDoubleSpendProof,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = DoubleSpendProof::decode(data) {
        assert!(data.len() <= DOUBLE_SPEND_PROOF_BYTES_MAX);
        assert_eq!(
            p.encode(),
            data,
            "a proof decoded from a non-canonical encoding"
        );
    }
    let _ = offpay_fuzz::check_envelope::<RetainedDoubleSpendProof>(data);
    if let Some(root) = offpay_fuzz::decoder_root() {
        let _ = offpay_protocol::evidence::verify_double_spend_bytes(data, root);
        let _ = offpay_protocol::evidence::verify_retained_double_spend_bytes(data, root);
    }
});
