//! The UniFFI binding generator for the offpay SDK (feature `bindgen`):
//! `uniffi-bindgen generate --library target/debug/liboffpay_ffi.so --language python --out-dir OUT`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
