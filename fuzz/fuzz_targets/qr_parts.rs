//! The multi-part QR reassembler (offpay-transport/src/qr/parts.rs): the
//! input is cut into parts at 2-byte length prefixes and fed to a
//! `Reassembly`; a refused part changes nothing, and a joined message always
//! matches the id of its parts (re-splitting it gives parts that join back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use offpay_transport::qr::parts::{PART_CODE_BYTES, Reassembly, join, message_id, parse_part, split};

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembly::new();
    let mut rest = data;
    let mut id = None;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (part, tail) = rest[2..].split_at(n);
        rest = tail;
        let before = r.missing();
        match r.add(part) {
            Ok(()) => {
                let p = parse_part(part).expect("an added part parses");
                id.get_or_insert(p.id);
            }
            Err(_) => assert_eq!(r.missing(), before, "a refused part changed the reassembly"),
        }
    }
    if let Ok(msg) = r.finish() {
        assert_eq!(Some(message_id(&msg)), id);
        if let Ok(parts) = split(&msg, PART_CODE_BYTES) {
            assert_eq!(join(parts.iter().map(Vec::as_slice)).as_deref(), Ok(msg.as_slice()));
        }
    }
});
