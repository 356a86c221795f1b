//! QR codes: round trips through PNG, real offpay payments, and hostile images.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_protocol::Suite;
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{CertField, Payment};
use offpay_test_support::*;
use offpay_transport::qr::{
    self, Ecc, QR_BYTES_MAX, QR_IMAGE_SIDE_MAX, QR_PNG_FILE_BYTES_MAX, QR_SCALE_MAX, QrError,
};

fn png_of(bytes: &[u8], scale: u32) -> (Vec<u8>, qr::QrInfo) {
    let mut out = Vec::new();
    let info = qr::encode_png(bytes, &mut out, scale).unwrap();
    (out, info)
}

#[test]
fn round_trip_sizes_all_byte_values() {
    for (i, len) in [1usize, 100, 600, 666, 1200, 2300].into_iter().enumerate() {
        let data = test_bytes(len, 0x5eed + i as u64);
        if len >= 256 {
            let mut seen = [false; 256];
            data.iter().for_each(|&b| seen[usize::from(b)] = true);
            assert!(seen.iter().all(|&s| s), "all byte values in {len}");
        }
        let (png, info) = png_of(&data, 3);
        assert_eq!(info.version, qr::qr_version_for(len).unwrap());
        assert_eq!(info.modules, 17 + 4 * usize::from(info.version));
        assert_eq!(info.ecc, Ecc::M);
        let (back, read) = qr::decode_png_with_info(&png).unwrap();
        assert_eq!(back, data, "round trip of {len} bytes");
        assert_eq!(read, info);
    }
}

#[test]
fn version_boundaries() {
    assert_eq!(qr::qr_version_for(1), Some(1));
    assert_eq!(qr::qr_version_for(14), Some(1));
    assert_eq!(qr::qr_version_for(15), Some(2));
    assert_eq!(qr::qr_version_for(600), Some(19));
    assert_eq!(qr::qr_version_for(666), Some(20));
    assert_eq!(qr::qr_version_for(667), Some(21));
    assert_eq!(qr::qr_version_for(QR_BYTES_MAX), Some(40));
    assert_eq!(qr::qr_version_for(QR_BYTES_MAX + 1), None);
    let info = qr::qr_info(&[0; 666]).unwrap();
    assert_eq!((info.version, info.modules), (20, 97));
}

#[test]
fn largest_code_round_trips_and_one_more_byte_is_too_large() {
    let data = test_bytes(QR_BYTES_MAX, 40);
    let (png, info) = png_of(&data, 2);
    assert_eq!(info.version, 40);
    assert_eq!(qr::decode_png(&png).unwrap(), data);

    let too_big = vec![7u8; QR_BYTES_MAX + 1];
    let mut out = Vec::new();
    assert!(matches!(
        qr::encode_png(&too_big, &mut out, 4),
        Err(QrError::TooLarge {
            bytes: 2332,
            max: 2331
        })
    ));
    assert!(out.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.png");
    assert!(matches!(
        qr::encode_png_file(&too_big, &path, 4),
        Err(QrError::TooLarge { .. })
    ));
    assert!(!path.exists(), "no file left behind");
    assert!(matches!(
        qr::qr_info(&too_big),
        Err(QrError::TooLarge { .. })
    ));
    let e = qr::encode_terminal(&too_big).unwrap_err();
    assert!(e.to_string().contains("2332"), "{e}");
}

#[test]
fn scales_and_files() {
    let data = test_bytes(300, 9);
    for scale in [1, 2, 5, 8] {
        let (png, _) = png_of(&data, scale);
        assert_eq!(qr::decode_png(&png).unwrap(), data, "scale {scale}");
    }
    for scale in [0, QR_SCALE_MAX + 1] {
        assert!(matches!(
            qr::encode_png(&data, Vec::new(), scale),
            Err(QrError::InvalidScale { .. })
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("code.png");
    let info = qr::encode_png_file(&data, &path, qr::QR_SCALE_DEFAULT).unwrap();
    let (back, read) = qr::decode_png_file_with_info(&path).unwrap();
    assert_eq!(back, data);
    assert_eq!(read, info);
    assert_eq!(qr::decode_png_file(&path).unwrap(), data);
}

/// Build a real Payment (payer certificate inline, as on a first contact).
fn real_payment(suite: Suite) -> Vec<u8> {
    let mut s = Scheme::new(suite);
    let mut alice = s.memory_wallet(suite);
    let mut bob = s.memory_wallet(suite);
    s.load(&mut alice, 10_000, T0);
    let req = bob.request(eur(2_500), 300, T0.plus(10)).unwrap();
    let payment = alice.pay(&req, T0.plus(20)).unwrap();
    let p = Signed::<Payment>::decode(&payment).unwrap();
    assert!(matches!(p.body().payer_cert, CertField::Inline(_)));
    payment
}

#[test]
fn real_payment_fits_version_20_and_round_trips() {
    for suite in [Suite::Ed25519, Suite::P256] {
        let payment = real_payment(suite);
        let version = qr::qr_version_for(payment.len()).unwrap();
        eprintln!(
            "{suite:?} payment with inline certificate: {} bytes -> QR version {version}-M",
            payment.len()
        );
        assert!(
            version <= 20,
            "{suite:?}: {} bytes need version {version}",
            payment.len()
        );
        let (png, info) = png_of(&payment, 4);
        assert_eq!(info.version, version);
        assert_eq!(qr::decode_png(&png).unwrap(), payment);
        // And the terminal rendering has one line per two module rows.
        let t = qr::encode_terminal(&payment).unwrap();
        assert_eq!(t.lines().count(), (info.modules + 8).div_ceil(2));
    }
}

#[test]
fn empty_garbage_and_corrupt_inputs_are_errors() {
    assert!(matches!(qr::decode_png(&[]), Err(QrError::Png(_))));
    assert!(matches!(
        qr::decode_png(b"not a png at all"),
        Err(QrError::Png(_))
    ));
    let sig = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    assert!(matches!(qr::decode_png(&sig), Err(QrError::Png(_))));

    let (png, _) = png_of(&test_bytes(200, 3), 3);
    // Every truncation is an error (or, at worst, a still-readable image), never a panic.
    for cut in (0..png.len()).step_by(7) {
        assert!(qr::decode_png(&png[..cut]).is_err(), "cut at {cut}");
    }
    // Flipped bytes: CRC or zlib errors, or an unreadable code; never a panic.
    let mut seed = 12345u64;
    for _ in 0..300 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut bad = png.clone();
        let i = (seed >> 33) as usize % bad.len();
        bad[i] ^= (seed >> 8) as u8 | 1;
        let _ = qr::decode_png(&bad);
    }
    // Random bytes after a PNG signature.
    for k in 0..50 {
        let mut junk = sig.to_vec();
        junk.extend(test_bytes(100 + k * 13, k as u64));
        assert!(qr::decode_png(&junk).is_err());
    }

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(qr::decode_png_file(&empty), Err(QrError::Png(_))));
    let missing = dir.path().join("missing.png");
    assert!(matches!(qr::decode_png_file(&missing), Err(QrError::Io(_))));
    let garbage = dir.path().join("garbage.png");
    std::fs::write(&garbage, test_bytes(5000, 77)).unwrap();
    assert!(matches!(
        qr::decode_png_file(&garbage),
        Err(QrError::Png(_))
    ));
    // A directory is not a PNG either.
    assert!(qr::decode_png_file(dir.path()).is_err());
    // A file over the limit is refused before it is read.
    let big = dir.path().join("big.png");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(QR_PNG_FILE_BYTES_MAX as u64 + 1).unwrap();
    assert!(matches!(
        qr::decode_png_file(&big),
        Err(QrError::FileTooLarge { .. })
    ));
}

/// Write a PNG of `w` x `h` 8-bit greyscale pixels.
fn grey_png(w: u32, h: u32, pixel: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().unwrap();
    let data: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| pixel(x, y))
        .collect();
    wr.write_image_data(&data).unwrap();
    wr.finish().unwrap();
    out
}

#[test]
fn images_without_a_code_are_errors() {
    let white = grey_png(200, 200, |_, _| 255);
    assert!(matches!(qr::decode_png(&white), Err(QrError::NoQrCode)));
    let black = grey_png(64, 64, |_, _| 0);
    assert!(matches!(qr::decode_png(&black), Err(QrError::NoQrCode)));
    let stripes = grey_png(300, 120, |x, _| if (x / 7) % 2 == 0 { 0 } else { 255 });
    assert!(qr::decode_png(&stripes).is_err());
    // Noise, at a few densities: whatever the decoder finds, no panic, no bytes.
    for k in 0..12u64 {
        let noise = test_bytes(160 * 160, 1000 + k);
        let thresh = (k * 20) as u8;
        let img = grey_png(160, 160, |x, y| {
            if noise[(y * 160 + x) as usize] > thresh {
                255
            } else {
                0
            }
        });
        assert!(qr::decode_png(&img).is_err());
    }
    let tiny = grey_png(1, 1, |_, _| 0);
    assert!(qr::decode_png(&tiny).is_err());
}

#[test]
fn damaged_code_reads_within_ecc_and_fails_cleanly_beyond() {
    let data = test_bytes(500, 5);
    let (png, info) = png_of(&data, 4);
    let (w, h, mut px) = decode_grey(&png);
    // A small blot in the data area (not on a finder pattern): level M repairs it.
    let side = (info.modules + 8) * 4;
    assert_eq!((w, h), (side, side));
    let c = side / 2;
    for y in c..c + 8 {
        for x in c..c + 8 {
            px[y * side + x] = 255 - px[y * side + x];
        }
    }
    let repaired = grey_png(side as u32, side as u32, |x, y| {
        px[y as usize * side + x as usize]
    });
    assert_eq!(qr::decode_png(&repaired).unwrap(), data);
    // Wipe half of the code: the finder patterns survive, the data does not.
    for y in 0..side {
        for x in 0..side {
            if x > side / 3 && y > side / 3 && x < side - side / 3 - 1 {
                px[y * side + x] = if (x + y) % 3 == 0 { 0 } else { 255 };
            }
        }
    }
    let wrecked = grey_png(side as u32, side as u32, |x, y| {
        px[y as usize * side + x as usize]
    });
    let e = qr::decode_png(&wrecked).unwrap_err();
    assert!(
        matches!(e, QrError::Unreadable(_) | QrError::NoQrCode),
        "{e:?}"
    );
}

#[test]
fn colour_and_alpha_images_decode() {
    let data = test_bytes(120, 11);
    let (png, info) = png_of(&data, 3);
    let (w, _, px) = decode_grey(&png);
    let side = (info.modules + 8) * 3;
    assert_eq!(w, side);
    // RGBA: dark modules opaque navy, light modules fully transparent (over white).
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().unwrap();
        let rgba: Vec<u8> = px
            .iter()
            .flat_map(|&g| {
                if g < 128 {
                    [0, 0, 80, 255]
                } else {
                    [0, 0, 0, 0]
                }
            })
            .collect();
        wr.write_image_data(&rgba).unwrap();
        wr.finish().unwrap();
    }
    assert_eq!(qr::decode_png(&out).unwrap(), data);
    // Two copies side by side of the same code are one content, not ambiguous.
    let double = grey_png(2 * side as u32, side as u32, |x, y| {
        px[y as usize * side + (x as usize % side)]
    });
    assert_eq!(qr::decode_png(&double).unwrap(), data);
}

#[test]
fn two_different_codes_are_ambiguous() {
    let (a, ia) = png_of(&test_bytes(50, 1), 3);
    let (b, ib) = png_of(&test_bytes(50, 2), 3);
    assert_eq!(ia.modules, ib.modules);
    let (side, _, pa) = decode_grey(&a);
    let (_, _, pb) = decode_grey(&b);
    let img = grey_png(2 * side as u32, side as u32, |x, y| {
        let (x, y) = (x as usize, y as usize);
        if x < side {
            pa[y * side + x]
        } else {
            pb[y * side + x - side]
        }
    });
    assert!(matches!(
        qr::decode_png(&img),
        Err(QrError::MultipleQrCodes { count: 2 })
    ));
}

#[test]
fn oversized_image_refused_before_decoding() {
    // A header announcing a huge image, with no pixel data behind it.
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, QR_IMAGE_SIDE_MAX + 1, 4);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let wr = enc.write_header().unwrap();
        drop(wr);
    }
    assert!(matches!(
        qr::decode_png(&out),
        Err(QrError::ImageTooLarge { .. })
    ));
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 10_000, 10_000);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Sixteen);
        let wr = enc.write_header().unwrap();
        drop(wr);
    }
    assert!(matches!(
        qr::decode_png(&out),
        Err(QrError::ImageTooLarge {
            width: 10_000,
            height: 10_000
        })
    ));
}

/// Decode one of our PNGs to 8-bit grey pixels (test helper).
fn decode_grey(png_bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let f = r.next_frame(&mut buf).unwrap();
    assert_eq!(f.color_type, png::ColorType::Grayscale);
    buf.truncate(f.buffer_size());
    (f.width as usize, f.height as usize, buf)
}
