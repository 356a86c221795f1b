//! A small, strict DER reader and writer: exactly what offpay's certificates,
//! CRLs and CSRs need, and nothing that can panic on hostile bytes.
//!
//! The reader accepts only DER: single-byte tags, definite minimal lengths
//! (at most three length octets, i.e. < 16 MiB, far above every limit here),
//! minimal INTEGERs, BOOLEAN as 0x00/0xFF. Every error names the field being
//! read ([`PkiError::Malformed`]).

use core::time::Duration;

use der::asn1::{GeneralizedTime, UtcTime};
use der::{DateTime, Decode, Encode};

use super::PkiError;
use crate::types::UnixSeconds;

pub(crate) type Res<T> = Result<T, PkiError>;

/// ASN.1 universal and context tags (the whole identifier octet).
pub(crate) mod tag {
    pub(crate) const BOOLEAN: u8 = 0x01;
    pub(crate) const INTEGER: u8 = 0x02;
    pub(crate) const BIT_STRING: u8 = 0x03;
    pub(crate) const OCTET_STRING: u8 = 0x04;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const ENUMERATED: u8 = 0x0a;
    pub(crate) const UTF8_STRING: u8 = 0x0c;
    pub(crate) const PRINTABLE_STRING: u8 = 0x13;
    pub(crate) const UTC_TIME: u8 = 0x17;
    pub(crate) const GENERALIZED_TIME: u8 = 0x18;
    pub(crate) const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;

    /// `[n]` constructed (EXPLICIT, or IMPLICIT of a constructed type).
    pub(crate) const fn ctx_cons(n: u8) -> u8 {
        0xa0 | n
    }
    /// `[n]` primitive (IMPLICIT of a primitive type).
    pub(crate) const fn ctx_prim(n: u8) -> u8 {
        0x80 | n
    }
}

/// One decoded element: its tag, its contents, and its whole encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

/// A cursor over a sequence of DER elements.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(super) fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// The next element, whatever its tag.
    pub(super) fn any(&mut self, what: &'static str) -> Res<Tlv<'a>> {
        let bad = PkiError::Malformed(what);
        let buf = self.buf;
        let (&t, rest) = buf.split_first().ok_or(bad)?;
        if t & 0x1f == 0x1f {
            return Err(bad); // high-tag-number form: never used here
        }
        let (&l0, rest) = rest.split_first().ok_or(bad)?;
        let (len, rest) = if l0 < 0x80 {
            (l0 as usize, rest)
        } else {
            let n = (l0 & 0x7f) as usize;
            if n == 0 || n > 3 || rest.len() < n {
                return Err(bad); // indefinite, absurd, or truncated length
            }
            let (lb, rest) = rest.split_at(n);
            if lb[0] == 0 {
                return Err(bad); // non-minimal length
            }
            let len = lb.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
            if len < 0x80 {
                return Err(bad); // should have used the short form
            }
            (len, rest)
        };
        if rest.len() < len {
            return Err(bad);
        }
        let header = buf.len() - rest.len();
        let (raw, tail) = buf.split_at(header + len);
        self.buf = tail;
        Ok(Tlv {
            tag: t,
            value: &raw[header..],
            raw,
        })
    }

    /// The next element, which must have tag `t`.
    pub(super) fn expect_tlv(&mut self, t: u8, what: &'static str) -> Res<Tlv<'a>> {
        if self.peek_tag() != Some(t) {
            return Err(PkiError::Malformed(what));
        }
        self.any(what)
    }

    /// The contents of the next element, which must have tag `t`.
    pub(super) fn expect(&mut self, t: u8, what: &'static str) -> Res<&'a [u8]> {
        self.expect_tlv(t, what).map(|x| x.value)
    }

    /// The next element if it has tag `t`.
    pub(super) fn optional(&mut self, t: u8, what: &'static str) -> Res<Option<Tlv<'a>>> {
        if self.peek_tag() == Some(t) {
            self.any(what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Nothing may follow.
    pub(super) fn finish(&self, what: &'static str) -> Res<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(PkiError::Malformed(what))
        }
    }
}

/// The contents of the single element that `buf` must consist of.
pub(crate) fn single<'a>(buf: &'a [u8], t: u8, what: &'static str) -> Res<&'a [u8]> {
    let mut r = Reader::new(buf);
    let v = r.expect(t, what)?;
    r.finish(what)?;
    Ok(v)
}

/// A non-negative INTEGER's contents: the big-endian magnitude without leading zeros
/// (empty for zero). Refuses negative and non-minimal encodings.
pub(crate) fn uint_magnitude<'a>(value: &'a [u8], what: &'static str) -> Res<&'a [u8]> {
    let bad = PkiError::Malformed(what);
    match value {
        [] => Err(bad),
        [0] => Ok(&[]),
        [0, b, ..] if *b < 0x80 => Err(bad), // non-minimal
        [0, rest @ ..] => Ok(rest),
        [b, ..] if *b >= 0x80 => Err(bad), // negative
        v => Ok(v),
    }
}

/// A non-negative INTEGER's contents that fit in a `u64`.
pub(crate) fn uint_u64(value: &[u8], what: &'static str) -> Res<u64> {
    let m = uint_magnitude(value, what)?;
    if m.len() > 8 {
        return Err(PkiError::Malformed(what));
    }
    Ok(m.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
}

/// A BOOLEAN's contents.
pub(crate) fn boolean(value: &[u8], what: &'static str) -> Res<bool> {
    match value {
        [0x00] => Ok(false),
        [0xff] => Ok(true),
        _ => Err(PkiError::Malformed(what)),
    }
}

/// A BIT STRING's contents without unused bits (keys, signatures).
pub(crate) fn bit_string_octets<'a>(value: &'a [u8], what: &'static str) -> Res<&'a [u8]> {
    match value.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(PkiError::Malformed(what)),
    }
}

/// Check the contents of an OBJECT IDENTIFIER are well-formed base-128
/// (arcs of any size are allowed: offpay's own OID has a 128-bit arc).
pub(crate) fn check_oid(value: &[u8], what: &'static str) -> Res<()> {
    let bad = PkiError::Malformed(what);
    if value.is_empty() || value.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(bad);
    }
    let mut at_start = true;
    for &b in value {
        if at_start && b == 0x80 {
            return Err(bad); // non-minimal sub-identifier
        }
        at_start = b & 0x80 == 0;
    }
    Ok(())
}

/// Parse a UTCTime or GeneralizedTime (RFC 5280 form: seconds, `Z`).
pub(crate) fn time(t: Tlv<'_>, what: &'static str) -> Res<UnixSeconds> {
    let bad = PkiError::Malformed(what);
    let d = match t.tag {
        tag::UTC_TIME => UtcTime::from_der(t.raw)
            .map_err(|_| bad)?
            .to_unix_duration(),
        tag::GENERALIZED_TIME => GeneralizedTime::from_der(t.raw)
            .map_err(|_| bad)?
            .to_unix_duration(),
        _ => return Err(bad),
    };
    Ok(UnixSeconds(d.as_secs()))
}

// ---- writer ----------------------------------------------------------------

/// Append one element.
pub(crate) fn put(out: &mut Vec<u8>, t: u8, value: &[u8]) {
    out.push(t);
    let n = value.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
}

/// One element.
pub(crate) fn tlv(t: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 4);
    put(&mut out, t, value);
    out
}

/// A constructed element of the concatenation of `parts`.
pub(crate) fn cons(t: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(t, &parts.concat())
}

/// A SEQUENCE of the concatenation of `parts`.
pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    cons(tag::SEQUENCE, parts)
}

/// A non-negative INTEGER from a big-endian magnitude (leading zeros allowed).
pub(crate) fn uint_from_be(magnitude: &[u8]) -> Vec<u8> {
    let m: &[u8] = {
        let skip = magnitude.iter().take_while(|&&b| b == 0).count();
        &magnitude[skip..]
    };
    let mut v = Vec::with_capacity(m.len() + 1);
    if m.first().is_none_or(|&b| b >= 0x80) {
        v.push(0);
    }
    v.extend_from_slice(m);
    tlv(tag::INTEGER, &v)
}

/// A non-negative INTEGER.
pub(crate) fn uint(v: u64) -> Vec<u8> {
    uint_from_be(&v.to_be_bytes())
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(octets: &[u8]) -> Vec<u8> {
    cons(tag::BIT_STRING, &[&[0], octets])
}

/// RFC 5280 time: UTCTime through 2049, GeneralizedTime from 2050.
pub(crate) fn put_time(t: UnixSeconds) -> Res<Vec<u8>> {
    let bad = PkiError::InvalidArgument("time not representable in X.509 (1970..=9999)");
    let dt = DateTime::from_unix_duration(Duration::from_secs(t.0)).map_err(|_| bad)?;
    if dt.year() < 2050 {
        UtcTime::from_date_time(dt)
            .and_then(|u| u.to_der())
            .map_err(|_| bad)
    } else {
        GeneralizedTime::from_date_time(dt)
            .to_der()
            .map_err(|_| bad)
    }
}
