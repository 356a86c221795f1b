//! X.509 certificates (our strict DER): refused, or parsed keeping exactly
//! the input bytes, and every check on the result runs without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offpay_protocol::UnixSeconds;
use offpay_protocol::pki::Certificate;

fuzz_target!(|data: &[u8]| {
    let Ok(c) = Certificate::from_der(data) else {
        return;
    };
    assert_eq!(c.der(), data);
    assert_eq!(
        Certificate::from_der(c.der()).ok().map(|c| c.reference()),
        Some(c.reference())
    );
    let _ = (
        c.serial(),
        c.role(),
        c.wallet_id(),
        c.policy_ref(),
        c.is_ca(),
    );
    let _ = c.check_validity(UnixSeconds(1_795_000_000));
    let _ = c.verify_signed_by(&c);
    if let Some(root) = offpay_fuzz::decoder_root() {
        let _ = c.verify_signed_by(root);
    }
    let pem = c.to_pem();
    assert_eq!(
        Certificate::from_pem(&pem).ok().map(|p| p.der().to_vec()),
        Some(data.to_vec())
    );
});
