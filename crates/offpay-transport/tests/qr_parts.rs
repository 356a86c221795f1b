//! Multi-part QR: split, reassemble, images (PNG series and APNG), hostile parts.

use offpay_transport::qr::QrError;
use offpay_transport::qr::parts::{
    self, MESSAGE_BYTES_MAX, PART_CODE_BYTES, PART_HEADER_BYTES, PARTS_MAX, PartCodes, PartError,
    Reassembly, decode_files, decode_images, encode_parts_files, join, split,
};

fn message(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A tiny deterministic shuffle (xorshift).
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

#[test]
fn round_trip_sizes_shuffled_and_duplicated() {
    let mut sizes = vec![2usize, 3, 100, 651, 652, 1000, 1302, 1303, 4096, 10 * 1024];
    sizes.extend((2..40).map(|i| i * 257));
    for (n, &len) in sizes.iter().enumerate() {
        let msg = message(len, n as u8);
        let ps = split(&msg, PART_CODE_BYTES).unwrap();
        assert!(ps.len() >= 2 && ps.len() <= PARTS_MAX, "{len}");
        assert!(ps.iter().all(|p| p.len() <= PART_CODE_BYTES), "{len}");
        assert_eq!(
            ps.len(),
            len.div_ceil(PART_CODE_BYTES - PART_HEADER_BYTES).max(2)
        );
        let mut all: Vec<&[u8]> = ps.iter().map(Vec::as_slice).collect();
        all.extend(ps.iter().take(2).map(Vec::as_slice)); // duplicates
        shuffle(&mut all, 0x9e37_79b9 + len as u64);
        assert_eq!(join(all).unwrap(), msg, "{len}");
    }
    // A 1-byte message is one code, never parts.
    assert_eq!(
        split(&[7], PART_CODE_BYTES),
        Err(PartError::MessageSize { bytes: 1 })
    );
    assert_eq!(
        split(&[], PART_CODE_BYTES),
        Err(PartError::MessageSize { bytes: 0 })
    );
    assert_eq!(
        split(&vec![0; MESSAGE_BYTES_MAX + 1], PART_CODE_BYTES),
        Err(PartError::MessageSize {
            bytes: MESSAGE_BYTES_MAX + 1
        })
    );
    assert!(matches!(
        split(&vec![0; MESSAGE_BYTES_MAX], 40),
        Err(PartError::TooManyParts { .. })
    ));
    assert_eq!(split(b"ab", 10), Err(PartError::CodeSize { bytes: 10 }));
}

#[test]
fn missing_parts_are_named() {
    let msg = message(3000, 1);
    let ps = split(&msg, PART_CODE_BYTES).unwrap();
    assert_eq!(ps.len(), 5);
    let mut r = Reassembly::new();
    for i in [0, 2, 4] {
        r.add(&ps[i]).unwrap();
    }
    assert_eq!(r.missing(), vec![2, 4]);
    let e = r.finish().unwrap_err();
    assert_eq!(
        e,
        PartError::Missing {
            parts: vec![2, 4],
            count: 5
        }
    );
    assert!(e.to_string().contains("2, 4 of 5"), "{e}");
    assert_eq!(Reassembly::new().finish(), Err(PartError::Empty));
}

#[test]
fn corrupted_part_fails_the_checksum() {
    let msg = message(2000, 2);
    let mut ps = split(&msg, PART_CODE_BYTES).unwrap();
    let last = ps[1].len() - 1;
    ps[1][last] ^= 1;
    assert_eq!(join(ps.iter().map(Vec::as_slice)), Err(PartError::Checksum));
}

#[test]
fn parts_of_another_message_and_conflicts_are_refused() {
    let first = split(&message(2000, 3), PART_CODE_BYTES).unwrap();
    let other = split(&message(2000, 4), PART_CODE_BYTES).unwrap();
    let mut r = Reassembly::new();
    r.add(&first[0]).unwrap();
    assert!(matches!(
        r.add(&other[1]),
        Err(PartError::OtherMessage { .. })
    ));
    // Same id, other count: inconsistent.
    let mut bad_count = first[1].clone();
    bad_count[12] = 5;
    bad_count.truncate(PART_HEADER_BYTES + 400);
    assert_eq!(r.add(&bad_count), Err(PartError::Inconsistent { part: 2 }));
    // Same index, other bytes.
    let mut bad_bytes = first[0].clone();
    bad_bytes[PART_HEADER_BYTES] ^= 0xff;
    assert_eq!(r.add(&bad_bytes), Err(PartError::Conflict { part: 1 }));
    // Nothing changed: the rest completes the message.
    for p in &first[1..] {
        r.add(p).unwrap();
    }
    assert_eq!(r.finish().unwrap(), message(2000, 3));
}

fn header(index: u8, count: u8, total: u16) -> Vec<u8> {
    let mut h = b"OQ\x01".to_vec();
    h.extend_from_slice(&[0xaa; 8]);
    h.extend_from_slice(&[index, count]);
    h.extend_from_slice(&total.to_be_bytes());
    h
}

#[test]
fn hostile_headers_get_specific_errors() {
    let p = |mut h: Vec<u8>, data: usize| {
        h.extend(std::iter::repeat_n(0u8, data));
        parts::parse_part(&h).map(|_| ()).unwrap_err()
    };
    assert_eq!(p(header(0, 0, 10), 5), PartError::Count { count: 0 });
    assert_eq!(p(header(0, 1, 10), 10), PartError::Count { count: 1 });
    assert_eq!(p(header(0, 255, 10), 5), PartError::Count { count: 255 });
    assert_eq!(
        p(header(3, 3, 30), 10),
        PartError::Index { index: 3, count: 3 }
    );
    assert_eq!(
        p(header(9, 2, 30), 10),
        PartError::Index { index: 9, count: 2 }
    );
    assert_eq!(
        p(header(0, 2, 0), 0),
        PartError::Total { total: 0, count: 2 }
    );
    assert_eq!(
        p(header(0, 4, 3), 1),
        PartError::Total { total: 3, count: 4 }
    );
    assert_eq!(
        p(header(0, 2, u16::MAX), 10),
        PartError::Total {
            total: u16::MAX,
            count: 2
        }
    );
    // 10 bytes in 4 parts: stride 3, 3*3 = 9 < 10 ok; 5 bytes in 4: stride 2, 6 >= 5 -> empty last.
    assert_eq!(
        p(header(0, 4, 5), 2),
        PartError::Total { total: 5, count: 4 }
    );
    assert_eq!(
        p(header(1, 2, 30), 14),
        PartError::SliceLength {
            part: 2,
            expected: 15,
            found: 14
        }
    );
    let mut v = header(0, 2, 30);
    v[2] = 2;
    assert_eq!(p(v, 15), PartError::Format { version: 2 });
    assert_eq!(parts::parse_part(b"OQ\x01"), Err(PartError::NotAPart));
    assert_eq!(parts::parse_part(&[0xa1; 40]), Err(PartError::NotAPart));
    // Every truncation of a valid part is refused without panic.
    let ps = split(&message(700, 5), PART_CODE_BYTES).unwrap();
    for n in 0..ps[0].len() {
        assert!(parts::parse_part(&ps[0][..n]).is_err());
    }
}

#[test]
fn png_series_and_apng_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let msg = message(3000, 6);
    let out = encode_parts_files(&msg, d.path().join("pay.png"), PART_CODE_BYTES, 2).unwrap();
    assert_eq!(out.files.len(), 5);
    assert!(out.info.version <= 20, "{}", out.info.version);
    assert!(out.files[0].ends_with("pay-1-of-5.png"));
    assert!(out.files[4].ends_with("pay-5-of-5.png"));
    // The APNG alone.
    assert_eq!(decode_files(&[&out.apng]).unwrap(), msg);
    // The PNGs, shuffled, one twice.
    let mut files = out.files.clone();
    files.push(files[2].clone());
    shuffle(&mut files, 42);
    assert_eq!(decode_files(&files).unwrap(), msg);
    // One missing.
    let e = decode_files(&out.files[1..]).unwrap_err();
    assert!(
        matches!(&e, QrError::Parts(PartError::Missing { parts, count: 5 }) if parts == &vec![1]),
        "{e}"
    );
    // A single-code image is still read alone; mixed with parts it is refused.
    let one = d.path().join("one.png");
    offpay_transport::qr::encode_png_file(b"\xa1\x01\x02", &one, 2).unwrap();
    assert_eq!(decode_files(&[&one]).unwrap(), b"\xa1\x01\x02");
    let mut mixed = out.files.clone();
    mixed.push(one);
    assert!(matches!(
        decode_files(&mixed),
        Err(QrError::Parts(PartError::NotAPart))
    ));
    // In memory: the APNG's bytes.
    let codes = PartCodes::new(&msg, 300).unwrap();
    assert_eq!(codes.parts.len(), 11);
    assert!(codes.info.version < 20);
    let mut apng = Vec::new();
    codes.apng(&mut apng, 2, 300).unwrap();
    assert_eq!(decode_images([apng.as_slice()]).unwrap(), msg);
    assert!(codes.terminal(0, Default::default()).unwrap().contains('▀'));
    assert!(codes.terminal(11, Default::default()).is_none());
}

#[test]
fn garbage_images_are_refused() {
    assert!(matches!(
        decode_images([&b"not a png"[..]]),
        Err(QrError::Png(_))
    ));
    assert!(decode_images(std::iter::empty::<&[u8]>()).is_err());
}

/// The example of docs/PROTOCOL.md §14.
#[test]
fn protocol_doc_example() {
    let msg = message(1000, 9);
    let ps = split(&msg, PART_CODE_BYTES).unwrap();
    let id = parts::message_id(&msg);
    assert_eq!(ps.len(), 2);
    for (i, p) in ps.iter().enumerate() {
        assert_eq!(p.len(), 515);
        assert_eq!(&p[..3], b"OQ\x01");
        assert_eq!(p[3..11], id);
        assert_eq!(p[11..15], [i as u8, 2, 0x03, 0xe8]);
        assert_eq!(p[15..], msg[i * 500..(i + 1) * 500]);
    }
    assert_eq!(offpay_transport::qr_version_for(515), Some(18));
    let doc = include_str!("../../../docs/PROTOCOL.md");
    assert!(doc.contains("each code 515 bytes\n(version 18-M)"));
}

/// The fuzz seeds were written from docs/PROTOCOL.md §14 by an independent
/// script: the well-formed ones join, the hostile one is refused.
#[test]
fn independent_encoder_agrees() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/qr_parts");
    let (mut joined, mut refused) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        let mut rest = data.as_slice();
        let mut ps = Vec::new();
        while rest.len() >= 2 {
            let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            ps.push(&rest[2..2 + n]);
            rest = &rest[2 + n..];
        }
        match join(ps.iter().copied()) {
            Ok(msg) => {
                joined += 1;
                assert_eq!(parts::message_id(&msg)[..], ps[0][3..11]);
                if ps[0].len() > 100 {
                    // Same split as ours at the default code size.
                    let ours = split(&msg, PART_CODE_BYTES).unwrap();
                    assert!(ps.iter().all(|p| ours.iter().any(|o| o.as_slice() == *p)));
                }
            }
            Err(PartError::Index { index: 3, count: 3 }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((joined, refused), (3, 1));
}

/// An animated PNG of more frames than a message can have parts is refused
/// from its header, before any frame is decoded.
#[test]
fn apng_with_too_many_frames_is_refused() {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 8, 8);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_animated(129, 0).unwrap();
    let mut w = enc.write_header().unwrap();
    for _ in 0..129 {
        w.write_image_data(&[255; 64]).unwrap();
    }
    w.finish().unwrap();
    assert!(matches!(
        decode_images([out.as_slice()]),
        Err(QrError::Parts(PartError::TooManyParts { needed: 129 }))
    ));
    // An animation without any code says so.
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 8, 8);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_animated(2, 0).unwrap();
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&[255; 64]).unwrap();
    w.write_image_data(&[255; 64]).unwrap();
    w.finish().unwrap();
    assert!(matches!(
        decode_images([out.as_slice()]),
        Err(QrError::NoQrCode)
    ));
}
