//! Deterministic CBOR (RFC 8949 §4.2.1), the subset offpay uses.
//!
//! Encoding: unsigned and negative integers, byte strings, text strings,
//! arrays, maps with unsigned-integer keys in ascending order, tags, `true`,
//! `false`. Every header uses the shortest form; lengths are definite.
//!
//! Decoding accepts exactly one byte string per value: non-shortest headers,
//! indefinite lengths, floats, unknown simple values, out-of-order or
//! duplicate map keys, invalid UTF-8 and trailing bytes are all refused. Every
//! length is checked against a limit given by the caller before anything is
//! allocated, and nesting is bounded by [`DEPTH_MAX`].

use core::fmt;

/// Deepest nesting of arrays and maps the decoder follows.
pub const DEPTH_MAX: usize = 8;

/// Why bytes were refused. One variant per reason a peer must be told apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value.
    Truncated,
    /// Bytes follow the last value.
    TrailingBytes,
    /// A valid CBOR form that is not the deterministic one (e.g. a long header for a small number).
    NonCanonical(&'static str),
    /// CBOR offpay never uses (floats, indefinite lengths, reserved values).
    Unsupported(&'static str),
    /// A value of another type than the field needs.
    UnexpectedType {
        /// The field being read.
        field: &'static str,
    },
    /// A length or value over its named limit.
    TooLarge {
        /// The field being read.
        field: &'static str,
        /// Its limit (bytes, items, or the value bound).
        max: u64,
    },
    /// A fixed-size field of the wrong length.
    BadLength {
        /// The field being read.
        field: &'static str,
    },
    /// A map key that is not the next expected one: unknown, duplicate or out of order.
    UnexpectedKey {
        /// The key found.
        key: u64,
    },
    /// A required map field is absent.
    MissingField(&'static str),
    /// A field whose value is not allowed (bad currency code, zero amount, ...).
    InvalidValue(&'static str),
    /// Nesting deeper than [`DEPTH_MAX`].
    TooDeep,
    /// The message's type field names another message.
    WrongMessageType {
        /// The type expected.
        expected: u64,
        /// The type found.
        found: u64,
    },
    /// A protocol version this implementation does not speak.
    UnknownVersion(u64),
    /// The COSE algorithm is not a suite offpay speaks.
    UnknownSuite(i64),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "input truncated"),
            DecodeError::TrailingBytes => write!(f, "trailing bytes after the message"),
            DecodeError::NonCanonical(w) => write!(f, "non-canonical encoding: {w}"),
            DecodeError::Unsupported(w) => write!(f, "unsupported CBOR: {w}"),
            DecodeError::UnexpectedType { field } => write!(f, "field {field}: unexpected type"),
            DecodeError::TooLarge { field, max } => {
                write!(f, "field {field}: over its limit of {max}")
            }
            DecodeError::BadLength { field } => write!(f, "field {field}: wrong length"),
            DecodeError::UnexpectedKey { key } => write!(f, "unexpected map key {key}"),
            DecodeError::MissingField(n) => write!(f, "missing field {n}"),
            DecodeError::InvalidValue(n) => write!(f, "invalid value: {n}"),
            DecodeError::TooDeep => write!(f, "nesting too deep"),
            DecodeError::WrongMessageType { expected, found } => {
                write!(f, "wrong message type: expected {expected}, found {found}")
            }
            DecodeError::UnknownVersion(v) => write!(f, "unknown protocol version {v}"),
            DecodeError::UnknownSuite(a) => write!(f, "unknown signature algorithm {a}"),
        }
    }
}
impl std::error::Error for DecodeError {}

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// Appends deterministic CBOR to a buffer.
#[derive(Default, Debug)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Encoder {
        Encoder {
            buf: Vec::with_capacity(256),
        }
    }
    /// An empty encoder with room for `bytes` bytes (no reallocation below it).
    pub fn with_capacity(bytes: usize) -> Encoder {
        Encoder {
            buf: Vec::with_capacity(bytes),
        }
    }
    fn head(&mut self, major: u8, arg: u64) {
        let m = major << 5;
        if arg < 24 {
            self.buf.push(m | arg as u8);
        } else if arg <= 0xff {
            self.buf.extend_from_slice(&[m | 24, arg as u8]);
        } else if arg <= 0xffff {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&(arg as u16).to_be_bytes());
        } else if arg <= 0xffff_ffff {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&(arg as u32).to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&arg.to_be_bytes());
        }
    }
    /// An unsigned integer.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        self.head(MAJOR_UINT, v);
        self
    }
    /// A signed integer.
    pub fn int(&mut self, v: i64) -> &mut Self {
        if v >= 0 {
            self.head(MAJOR_UINT, v as u64)
        } else {
            self.head(MAJOR_NINT, !(v as u64))
        }
        self
    }
    /// A byte string.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.head(MAJOR_BYTES, b.len() as u64);
        self.buf.extend_from_slice(b);
        self
    }
    /// A text string.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.head(MAJOR_TEXT, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }
    /// The header of an array of `len` items (the items follow).
    pub fn array(&mut self, len: usize) -> &mut Self {
        self.head(MAJOR_ARRAY, len as u64);
        self
    }
    /// The header of a map of `len` pairs (keys must then be written in ascending order).
    pub fn map(&mut self, len: usize) -> &mut Self {
        self.head(MAJOR_MAP, len as u64);
        self
    }
    /// A tag (the tagged item follows).
    pub fn tag(&mut self, t: u64) -> &mut Self {
        self.head(MAJOR_TAG, t);
        self
    }
    /// `true` or `false`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(if v { 0xf5 } else { 0xf4 });
        self
    }
    /// Bytes that are already one encoded CBOR value.
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    /// The bytes written so far.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
    /// Length written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Reads deterministic CBOR from a byte slice, refusing every other form.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `input`.
    pub fn new(input: &'a [u8]) -> Decoder<'a> {
        Decoder {
            input,
            pos: 0,
            depth: 0,
        }
    }
    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// Refuse trailing bytes.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self
            .input
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn peek_byte(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated)
    }
    /// The major type of the next value without consuming it.
    pub fn peek_major(&self) -> Result<u8, DecodeError> {
        Ok(self.peek_byte()? >> 5)
    }
    fn head(&mut self) -> Result<(u8, u64), DecodeError> {
        let b = self.take(1)?[0];
        let major = b >> 5;
        let info = b & 0x1f;
        if major == MAJOR_SIMPLE {
            return match info {
                20 | 21 => Ok((major, info as u64)),
                25..=27 => Err(DecodeError::Unsupported("floating point")),
                31 => Err(DecodeError::Unsupported("break")),
                _ => Err(DecodeError::Unsupported("simple value")),
            };
        }
        let arg = match info {
            0..=23 => info as u64,
            24 => {
                let v = self.take(1)?[0] as u64;
                if v < 24 {
                    return Err(DecodeError::NonCanonical("one-byte argument below 24"));
                }
                v
            }
            25 => {
                let v = u16::from_be_bytes([self.take(1)?[0], self.take(1)?[0]]) as u64;
                if v <= 0xff {
                    return Err(DecodeError::NonCanonical("two-byte argument fits in one"));
                }
                v
            }
            26 => {
                let s = self.take(4)?;
                let v = u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64;
                if v <= 0xffff {
                    return Err(DecodeError::NonCanonical("four-byte argument fits in two"));
                }
                v
            }
            27 => {
                let s = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                let v = u64::from_be_bytes(a);
                if v <= 0xffff_ffff {
                    return Err(DecodeError::NonCanonical(
                        "eight-byte argument fits in four",
                    ));
                }
                v
            }
            31 => return Err(DecodeError::Unsupported("indefinite length")),
            _ => return Err(DecodeError::Unsupported("reserved additional information")),
        };
        Ok((major, arg))
    }
    fn expect(&mut self, major: u8, field: &'static str) -> Result<u64, DecodeError> {
        let save = self.pos;
        let (m, arg) = self.head()?;
        if m != major {
            self.pos = save;
            return Err(DecodeError::UnexpectedType { field });
        }
        Ok(arg)
    }
    /// An unsigned integer.
    pub fn uint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.expect(MAJOR_UINT, field)
    }
    /// An unsigned integer no larger than `max`.
    pub fn uint_max(&mut self, field: &'static str, max: u64) -> Result<u64, DecodeError> {
        let v = self.uint(field)?;
        if v > max {
            return Err(DecodeError::TooLarge { field, max });
        }
        Ok(v)
    }
    /// A signed integer in `i64` range.
    pub fn int(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        let (m, arg) = self.head()?;
        match m {
            MAJOR_UINT => i64::try_from(arg).map_err(|_| DecodeError::TooLarge {
                field,
                max: i64::MAX as u64,
            }),
            MAJOR_NINT => {
                let v = i64::try_from(arg).map_err(|_| DecodeError::TooLarge {
                    field,
                    max: i64::MAX as u64,
                })?;
                Ok(-1 - v)
            }
            _ => Err(DecodeError::UnexpectedType { field }),
        }
    }
    /// A byte string of at most `max` bytes.
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.expect(MAJOR_BYTES, field)?;
        if len > max as u64 {
            return Err(DecodeError::TooLarge {
                field,
                max: max as u64,
            });
        }
        self.take(len as usize)
    }
    /// A byte string of exactly `N` bytes.
    pub fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let len = self.expect(MAJOR_BYTES, field)?;
        if len != N as u64 {
            return Err(DecodeError::BadLength { field });
        }
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }
    /// A UTF-8 text string of at most `max` bytes.
    pub fn text(&mut self, field: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let len = self.expect(MAJOR_TEXT, field)?;
        if len > max as u64 {
            return Err(DecodeError::TooLarge {
                field,
                max: max as u64,
            });
        }
        core::str::from_utf8(self.take(len as usize)?).map_err(|_| DecodeError::InvalidValue(field))
    }
    /// `true` or `false`.
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        let (m, arg) = self.head()?;
        match (m, arg) {
            (MAJOR_SIMPLE, 20) => Ok(false),
            (MAJOR_SIMPLE, 21) => Ok(true),
            _ => Err(DecodeError::UnexpectedType { field }),
        }
    }
    /// A tag number.
    pub fn tag(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.expect(MAJOR_TAG, field)
    }
    /// An array header of at most `max` items; the caller reads the items and then calls [`Decoder::leave`].
    pub fn array(&mut self, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        let len = self.expect(MAJOR_ARRAY, field)?;
        if len > max as u64 {
            return Err(DecodeError::TooLarge {
                field,
                max: max as u64,
            });
        }
        self.enter()?;
        Ok(len as usize)
    }
    /// A map with unsigned-integer keys in strictly ascending order, at most `max` pairs.
    pub fn map(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<MapReader<'_, 'a>, DecodeError> {
        let len = self.expect(MAJOR_MAP, field)?;
        if len > max as u64 {
            return Err(DecodeError::TooLarge {
                field,
                max: max as u64,
            });
        }
        self.enter()?;
        Ok(MapReader {
            d: self,
            remaining: len as usize,
            last_key: None,
        })
    }
    fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > DEPTH_MAX {
            return Err(DecodeError::TooDeep);
        }
        Ok(())
    }
    /// Skip one whole value (for look-ahead only; bounded by the input and [`DEPTH_MAX`]).
    fn skip(&mut self) -> Result<(), DecodeError> {
        let (major, arg) = self.head()?;
        match major {
            MAJOR_BYTES | MAJOR_TEXT => {
                self.take(usize::try_from(arg).map_err(|_| DecodeError::Truncated)?)?;
            }
            MAJOR_ARRAY | MAJOR_MAP | MAJOR_TAG => {
                self.enter()?;
                let n = match major {
                    MAJOR_ARRAY => arg,
                    MAJOR_MAP => arg.saturating_mul(2),
                    _ => 1,
                };
                for _ in 0..n {
                    self.skip()?;
                }
                self.leave();
            }
            _ => {}
        }
        Ok(())
    }

    /// Close an array opened with [`Decoder::array`].
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}

/// Whether `bytes` is exactly one well-formed CBOR value: every array and map
/// holds as many items as its header says, nothing is missing or left over.
/// The encoders assert it (debug builds) of what they wrote; the map reader
/// checks the same count on every map it reads ([`MapReader::end`]).
pub fn is_one_value(bytes: &[u8]) -> bool {
    let mut d = Decoder::new(bytes);
    d.skip().is_ok() && d.finish().is_ok()
}

/// Reads a map's fields in ascending key order. Reading key `k` when the next
/// key in the input is larger means `k` is absent; a smaller or equal key
/// (out of order, duplicate, or unknown) is refused.
#[derive(Debug)]
pub struct MapReader<'d, 'a> {
    d: &'d mut Decoder<'a>,
    remaining: usize,
    last_key: Option<u64>,
}

impl<'a> MapReader<'_, 'a> {
    fn peek_key(&mut self) -> Result<Option<u64>, DecodeError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let save = self.d.pos;
        let k = self.d.uint("map key")?;
        self.d.pos = save;
        if let Some(last) = self.last_key
            && k <= last
        {
            return Err(if k == last {
                DecodeError::UnexpectedKey { key: k }
            } else {
                DecodeError::NonCanonical("map keys out of order")
            });
        }
        Ok(Some(k))
    }
    /// If the next key is `key`, consume it and return the decoder positioned at its value.
    pub fn optional(&mut self, key: u64) -> Result<Option<&mut Decoder<'a>>, DecodeError> {
        match self.peek_key()? {
            Some(k) if k == key => {
                self.d.uint("map key")?;
                // peek_key finds a key only while pairs remain (the header's count).
                debug_assert!(self.remaining > 0, "read past the map's pair count");
                self.remaining -= 1;
                self.last_key = Some(k);
                Ok(Some(&mut *self.d))
            }
            Some(k) if k < key => Err(DecodeError::UnexpectedKey { key: k }),
            // Absent here but present further on: the keys are out of order.
            Some(_) if self.appears_later(key) => {
                Err(DecodeError::NonCanonical("map keys out of order"))
            }
            _ => Ok(None),
        }
    }
    /// The value of required key `key`.
    pub fn required(
        &mut self,
        key: u64,
        name: &'static str,
    ) -> Result<&mut Decoder<'a>, DecodeError> {
        if self.peek_key()? != Some(key) && self.appears_later(key) {
            return Err(DecodeError::NonCanonical("map keys out of order"));
        }
        self.optional(key)?.ok_or(DecodeError::MissingField(name))
    }
    /// All pairs must have been read: refuses unknown keys.
    pub fn end(self) -> Result<(), DecodeError> {
        if self.remaining != 0 {
            let k = self.d.uint("map key")?;
            return Err(DecodeError::UnexpectedKey { key: k });
        }
        self.d.leave();
        Ok(())
    }

    /// Whether `key` is among the remaining keys (a look-ahead on a copy).
    fn appears_later(&self, key: u64) -> bool {
        let mut d = self.d.clone();
        for _ in 0..self.remaining {
            match d.uint("map key") {
                Ok(k) if k == key => return true,
                Ok(_) if d.skip().is_ok() => {}
                _ => return false,
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_shortest() {
        for v in [
            0u64,
            1,
            23,
            24,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            let mut e = Encoder::new();
            e.uint(v);
            let b = e.finish();
            let mut d = Decoder::new(&b);
            assert_eq!(d.uint("v").unwrap(), v);
            d.finish().unwrap();
        }
        for v in [-1i64, -8, -24, -25, -256, -257, i64::MIN] {
            let mut e = Encoder::new();
            e.int(v);
            let b = e.finish();
            assert_eq!(Decoder::new(&b).int("v").unwrap(), v);
        }
    }

    #[test]
    fn non_shortest_refused() {
        for b in [
            &[0x18, 0x05][..],
            &[0x19, 0x00, 0xff],
            &[0x1a, 0, 0, 0xff, 0xff],
            &[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(
                matches!(Decoder::new(b).uint("v"), Err(DecodeError::NonCanonical(_))),
                "{b:?}"
            );
        }
    }

    #[test]
    fn unsupported_forms_refused() {
        assert_eq!(
            Decoder::new(&[0x5f]).bytes("b", 10),
            Err(DecodeError::Unsupported("indefinite length"))
        );
        assert_eq!(
            Decoder::new(&[0xf9, 0, 0]).uint("f"),
            Err(DecodeError::Unsupported("floating point"))
        );
        assert_eq!(
            Decoder::new(&[0x1c]).uint("r"),
            Err(DecodeError::Unsupported("reserved additional information"))
        );
        assert_eq!(
            Decoder::new(&[0x62, 0xff, 0xfe]).text("t", 10),
            Err(DecodeError::InvalidValue("t"))
        );
        assert_eq!(
            Decoder::new(&[0x45, 1, 2]).bytes("b", 10),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            Decoder::new(&[0x45, 1, 2, 3, 4, 5]).bytes("b", 4),
            Err(DecodeError::TooLarge { field: "b", max: 4 })
        );
        // a huge declared length is refused before any allocation
        assert!(
            Decoder::new(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .bytes("b", 100)
                .is_err()
        );
    }

    #[test]
    fn map_order_enforced() {
        // {1: 1, 0: 0} is out of order
        let b = [0xa2, 0x01, 0x01, 0x00, 0x00];
        let mut d = Decoder::new(&b);
        let mut m = d.map("m", 4).unwrap();
        assert!(m.required(0, "zero").is_err());
        // {0: 0, 0: 1} duplicate
        let b = [0xa2, 0x00, 0x00, 0x00, 0x01];
        let mut d = Decoder::new(&b);
        let mut m = d.map("m", 4).unwrap();
        m.required(0, "zero").unwrap().uint("zero").unwrap();
        assert_eq!(
            m.optional(1).unwrap_err(),
            DecodeError::UnexpectedKey { key: 0 }
        );
        // unknown key 7 left over
        let b = [0xa2, 0x00, 0x00, 0x07, 0x01];
        let mut d = Decoder::new(&b);
        let mut m = d.map("m", 4).unwrap();
        m.required(0, "zero").unwrap().uint("zero").unwrap();
        assert!(m.optional(3).unwrap().is_none());
        assert_eq!(m.end().unwrap_err(), DecodeError::UnexpectedKey { key: 7 });
    }

    #[test]
    fn depth_bounded() {
        let b = [0x81u8; 20];
        let mut d = Decoder::new(&b);
        let mut r = Ok(0);
        for _ in 0..20 {
            r = d.array("a", 1);
            if r.is_err() {
                break;
            }
        }
        assert_eq!(r, Err(DecodeError::TooDeep));
    }
}
