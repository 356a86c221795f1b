//! The EvidenceBundle decoder: arbitrary bytes are refused or decode to their own
//! canonical encoding (see `offpay_fuzz::check_envelope`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use offpay_protocol::bundle::EvidenceBundle;

fuzz_target!(|data: &[u8]| {
    let _ = offpay_fuzz::check_envelope::<EvidenceBundle>(data);
});
