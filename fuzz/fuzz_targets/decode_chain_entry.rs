//! A chain entry (a Payment or a Redeem, as the issuer reads reports): what
//! decodes keeps its bytes, and its accessors agree with the typed decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offpay_protocol::messages::{ChainEntry, Payment, Redeem};

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = ChainEntry::decode(data) else {
        return;
    };
    assert_eq!(entry.bytes(), data);
    let payment = offpay_fuzz::check_envelope::<Payment>(data);
    let redeem = offpay_fuzz::check_envelope::<Redeem>(data);
    match (payment, redeem) {
        (Some(p), None) => {
            assert_eq!(entry.payer(), p.body().payer);
            assert_eq!(entry.seq(), p.body().seq);
            assert_eq!(entry.hash(), p.payload_hash());
        }
        (None, Some(r)) => {
            assert_eq!(entry.payer(), r.body().wallet);
            assert_eq!(entry.seq(), r.body().seq);
            assert_eq!(entry.hash(), r.payload_hash());
        }
        _ => panic!("a chain entry is exactly one of Payment and Redeem"),
    }
    let _ = entry.sig_structure();
});
