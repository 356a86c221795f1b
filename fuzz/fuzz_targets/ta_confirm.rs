//! The wallet TA's `confirm` fed arbitrary bytes (raw, or edits of the fixture's
//! valid message): a refusal leaves the TA unchanged, an acceptance adds at
//! most what the valid message carries, and the stored state reopens equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offpay_fuzz::{fixture, ta_case};

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    ta_case(&f.confirm, data, 0, |w, m, _now| w.confirm(m));
});
