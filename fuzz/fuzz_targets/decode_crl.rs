//! CRLs (our strict DER): refused, or parsed keeping exactly the input bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offpay_protocol::UnixSeconds;
use offpay_protocol::pki::Crl;

fuzz_target!(|data: &[u8]| {
    let Ok(crl) = Crl::from_der(data) else {
        return;
    };
    assert_eq!(crl.der(), data);
    let _ = (
        crl.number(),
        crl.issuer_cn(),
        crl.this_update(),
        crl.next_update(),
    );
    let _ = crl.is_stale_at(UnixSeconds(1_795_000_000));
    for e in crl.entries() {
        assert!(crl.is_revoked(e.serial).is_some());
    }
    if let Some(root) = offpay_fuzz::decoder_root() {
        let _ = crl.verify_signed_by(root);
    }
    let pem = crl.to_pem();
    assert_eq!(
        Crl::from_pem(&pem).ok().map(|p| p.der().to_vec()),
        Some(data.to_vec())
    );
});
