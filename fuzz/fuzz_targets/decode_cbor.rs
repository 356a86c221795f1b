//! Raw CBOR: every value the strict decoder reads re-encodes to the same
//! bytes; the payload decoders of every message and the envelope reader
//! refuse or accept without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offpay_protocol::cbor::{Decoder, Encoder};
use offpay_protocol::envelope::{Body, decode_envelope, peek_payload_type};
use offpay_protocol::messages::{
    LoadVoucher, Payment, PaymentRequest, Receipt, Redeem, RiskPolicy, SyncReport, SyncResponse,
};

fn payload<T: Body>(data: &[u8]) {
    if let Ok(b) = T::from_payload(data) {
        assert_eq!(b.to_payload(), data, "{} payload not canonical", T::NAME);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::new(data);
    let mut e = Encoder::new();
    if offpay_fuzz::walk_cbor(&mut d, &mut e, 0).is_ok() && d.finish().is_ok() {
        assert_eq!(
            e.finish(),
            data,
            "a CBOR value decoded from a non-canonical encoding"
        );
    }
    let _ = peek_payload_type(data);
    let _ = decode_envelope(data, "fuzz", usize::MAX);
    payload::<PaymentRequest>(data);
    payload::<Payment>(data);
    payload::<Receipt>(data);
    payload::<LoadVoucher>(data);
    payload::<Redeem>(data);
    payload::<RiskPolicy>(data);
    payload::<SyncReport>(data);
    payload::<SyncResponse>(data);
});
