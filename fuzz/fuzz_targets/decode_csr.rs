//! Enrollment requests (PKCS#10): refused or parsed, never a panic; a parsed
//! request's key is one the suite accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(csr) = offpay_protocol::pki::parse_csr(data) {
        let _ = csr.public_key.suite();
    }
});
