//! Multi-part QR: a message too large for one scannable code as a sequence of codes.
//!
//! A message longer than [`PART_CODE_BYTES`] (one code of version
//! [`PART_QR_VERSION`] at level M) is split into `count` parts of nearly equal
//! size; each part is one QR code holding a [`PART_HEADER_BYTES`]-byte header
//! and a slice of the message. Byte layout (docs/PROTOCOL.md §14):
//!
//! | offset | bytes | field                                              |
//! |--------|-------|----------------------------------------------------|
//! | 0      | 2     | magic `4F 51` ("OQ")                               |
//! | 2      | 1     | format version, `01`                               |
//! | 3      | 8     | message id: the first 8 bytes of SHA-256(message)  |
//! | 11     | 1     | index, 0-based, `< count`                          |
//! | 12     | 1     | count, `2..=`[`PARTS_MAX`]                          |
//! | 13     | 2     | total length of the message, big-endian             |
//! | 15     | ..    | the slice                                          |
//!
//! With `s = ceil(total / count)`, part `i` holds `message[i*s .. min((i+1)*s, total)]`;
//! every part's slice length is checked against that, and `(count - 1) * s < total`
//! (no empty part). Reassembly ([`Reassembly`]) takes parts in any order,
//! tolerates exact duplicates, refuses a part of another message, a part that
//! disagrees with the first on count or total, and a different part at an
//! index already filled; the whole is returned only once its SHA-256 starts
//! with the message id. Limits are checked on the header, before anything is
//! allocated: at most [`PARTS_MAX`] parts and [`MESSAGE_BYTES_MAX`] bytes.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    Ecc, Matrix, QR_SCALE_MAX, QrError, QrInfo, matrix_png_data, png_frames_to_luma,
    qr_version_for, read_png_file, scan_luma,
};

/// The first two bytes of every part.
pub const PART_MAGIC: [u8; 2] = *b"OQ";
/// The part format version this code writes and reads.
pub const PART_FORMAT: u8 = 1;
/// Bytes of the part header.
pub const PART_HEADER_BYTES: usize = 15;
/// QR version of each part's code by default: 97x97 modules, which phone
/// cameras read off a screen or paper at arm's length; level M (15 %) as for
/// single codes. It is also the project's size target for one-code messages.
pub const PART_QR_VERSION: u8 = 20;
/// Bytes one part's code holds by default (version 20, level M): 666.
pub const PART_CODE_BYTES: usize = 666;
/// Most parts in one message.
pub const PARTS_MAX: usize = 64;
/// Largest message carried in parts.
pub const MESSAGE_BYTES_MAX: usize = 32 << 10;
/// Smallest code size (header + slice) a caller may ask for.
pub const PART_CODE_BYTES_MIN: usize = PART_HEADER_BYTES + 16;

/// Why parts could not be made or joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartError {
    /// The message is empty or larger than [`MESSAGE_BYTES_MAX`].
    MessageSize {
        /// Its length.
        bytes: usize,
    },
    /// The asked code size is outside `PART_CODE_BYTES_MIN..=QR_BYTES_MAX`.
    CodeSize {
        /// The size asked for.
        bytes: usize,
    },
    /// The message would need more than [`PARTS_MAX`] parts at this code size.
    TooManyParts {
        /// Parts needed.
        needed: usize,
    },
    /// The bytes are not a part (too short, or wrong magic).
    NotAPart,
    /// A part of an unknown format version.
    Format {
        /// The version byte.
        version: u8,
    },
    /// The header's count is below 2 or above [`PARTS_MAX`].
    Count {
        /// The count read.
        count: u8,
    },
    /// The header's index is not below its count.
    Index {
        /// The index read.
        index: u8,
        /// The count read.
        count: u8,
    },
    /// The header's total is 0, above [`MESSAGE_BYTES_MAX`], or does not fit its count.
    Total {
        /// The total read.
        total: u16,
        /// The count read.
        count: u8,
    },
    /// The slice length does not match the header.
    SliceLength {
        /// Part number, 1-based.
        part: usize,
        /// Expected slice length.
        expected: usize,
        /// Slice length found.
        found: usize,
    },
    /// The part belongs to another message (a different id).
    OtherMessage {
        /// Id of the message being reassembled (hex).
        expected: String,
        /// Id of the part (hex).
        found: String,
    },
    /// The part has the same id but another count or total than the first part.
    Inconsistent {
        /// Part number, 1-based.
        part: usize,
    },
    /// A different part was already given at this index.
    Conflict {
        /// Part number, 1-based.
        part: usize,
    },
    /// Parts are missing (1-based numbers).
    Missing {
        /// The missing parts' numbers.
        parts: Vec<usize>,
        /// Parts in the message.
        count: usize,
    },
    /// No part was given.
    Empty,
    /// The joined message does not match its id (SHA-256).
    Checksum,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl fmt::Display for PartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartError::MessageSize { bytes } => write!(
                f,
                "a message of {bytes} bytes cannot be split into QR parts (1..={MESSAGE_BYTES_MAX} bytes)"
            ),
            PartError::CodeSize { bytes } => write!(
                f,
                "QR part size {bytes} bytes is out of range ({PART_CODE_BYTES_MIN}..={} bytes)",
                super::QR_BYTES_MAX
            ),
            PartError::TooManyParts { needed } => write!(
                f,
                "the message would need {needed} QR codes (at most {PARTS_MAX})"
            ),
            PartError::NotAPart => f.write_str("not a part of a multi-part QR message"),
            PartError::Format { version } => {
                write!(f, "multi-part QR format {version} is not supported (only {PART_FORMAT})")
            }
            PartError::Count { count } => {
                write!(f, "QR part header says {count} parts (2..={PARTS_MAX})")
            }
            PartError::Index { index, count } => write!(
                f,
                "QR part header says part number {} of {count}",
                u16::from(*index) + 1
            ),
            PartError::Total { total, count } => write!(
                f,
                "QR part header says {total} bytes in {count} parts (1..={MESSAGE_BYTES_MAX} bytes, no empty part)"
            ),
            PartError::SliceLength {
                part,
                expected,
                found,
            } => write!(
                f,
                "QR part {part} holds {found} bytes of the message, its header says {expected}"
            ),
            PartError::OtherMessage { expected, found } => write!(
                f,
                "this QR code is a part of another message (id {found}, not {expected})"
            ),
            PartError::Inconsistent { part } => write!(
                f,
                "QR part {part} disagrees with the other parts on the part count or message length"
            ),
            PartError::Conflict { part } => {
                write!(f, "two different QR codes both claim to be part {part}")
            }
            PartError::Missing { parts, count } => {
                let list: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
                write!(
                    f,
                    "QR parts missing: {} of {count} (scan or give those too)",
                    list.join(", ")
                )
            }
            PartError::Empty => f.write_str("no QR part was given"),
            PartError::Checksum => f.write_str(
                "the joined QR parts do not match the message's checksum (SHA-256): a part is corrupt",
            ),
        }
    }
}

impl std::error::Error for PartError {}

/// One parsed part, borrowing its slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part<'a> {
    /// The message id (first 8 bytes of its SHA-256).
    pub id: [u8; 8],
    /// 0-based index.
    pub index: usize,
    /// Parts in the message.
    pub count: usize,
    /// Length of the whole message.
    pub total: usize,
    /// This part's slice of the message.
    pub data: &'a [u8],
}

/// Whether `bytes` start like a part (magic). Protocol messages are CBOR
/// arrays or maps and never start with `4F 51`.
pub fn is_part(bytes: &[u8]) -> bool {
    bytes.starts_with(&PART_MAGIC)
}

/// Slice length of every part but possibly the last.
fn stride(total: usize, count: usize) -> usize {
    total.div_ceil(count)
}

/// Expected slice length of part `index`, if the header is coherent.
fn slice_len(total: usize, count: usize, index: usize) -> Option<usize> {
    let s = stride(total, count);
    let start = index.checked_mul(s)?;
    if start >= total {
        return None;
    }
    Some(s.min(total - start))
}

/// Parse and check one part's bytes (header limits, slice length).
pub fn parse_part(bytes: &[u8]) -> Result<Part<'_>, PartError> {
    if bytes.len() < PART_HEADER_BYTES || !is_part(bytes) {
        return Err(PartError::NotAPart);
    }
    let (h, data) = bytes.split_at(PART_HEADER_BYTES);
    if h[2] != PART_FORMAT {
        return Err(PartError::Format { version: h[2] });
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[3..11]);
    let (index, count) = (h[11], h[12]);
    let total = u16::from_be_bytes([h[13], h[14]]);
    if count < 2 || usize::from(count) > PARTS_MAX {
        return Err(PartError::Count { count });
    }
    if index >= count {
        return Err(PartError::Index { index, count });
    }
    let (t, c, i) = (usize::from(total), usize::from(count), usize::from(index));
    // Every part must be non-empty: (count - 1) * stride < total.
    let coherent = t >= c && t <= MESSAGE_BYTES_MAX && slice_len(t, c, c - 1).is_some();
    if !coherent {
        return Err(PartError::Total { total, count });
    }
    let expected = slice_len(t, c, i).ok_or(PartError::Total { total, count })?;
    if data.len() != expected {
        return Err(PartError::SliceLength {
            part: i + 1,
            expected,
            found: data.len(),
        });
    }
    Ok(Part {
        id,
        index: i,
        count: c,
        total: t,
        data,
    })
}

/// The message id: the first 8 bytes of SHA-256(message).
pub fn message_id(message: &[u8]) -> [u8; 8] {
    let d = Sha256::digest(message);
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    id
}

/// Split `message` into parts whose codes hold at most `code_bytes` bytes
/// (header included; [`PART_CODE_BYTES`] by default). Always at least 2 parts.
pub fn split(message: &[u8], code_bytes: usize) -> Result<Vec<Vec<u8>>, PartError> {
    if message.is_empty() || message.len() > MESSAGE_BYTES_MAX {
        return Err(PartError::MessageSize {
            bytes: message.len(),
        });
    }
    if !(PART_CODE_BYTES_MIN..=super::QR_BYTES_MAX).contains(&code_bytes) {
        return Err(PartError::CodeSize { bytes: code_bytes });
    }
    let per = code_bytes - PART_HEADER_BYTES;
    let count = message.len().div_ceil(per).max(2);
    // A 1-byte message cannot fill two parts: at least 2 bytes.
    if count > PARTS_MAX || count > message.len() {
        return Err(if count > PARTS_MAX {
            PartError::TooManyParts { needed: count }
        } else {
            PartError::MessageSize {
                bytes: message.len(),
            }
        });
    }
    let id = message_id(message);
    let s = stride(message.len(), count);
    let total = u16::try_from(message.len()).map_err(|_| PartError::MessageSize {
        bytes: message.len(),
    })?;
    let (c8, total_be) = (
        u8::try_from(count).map_err(|_| PartError::TooManyParts { needed: count })?,
        total.to_be_bytes(),
    );
    let mut parts = Vec::with_capacity(count);
    for (i, chunk) in message.chunks(s).enumerate() {
        let mut p = Vec::with_capacity(PART_HEADER_BYTES + chunk.len());
        p.extend_from_slice(&PART_MAGIC);
        p.push(PART_FORMAT);
        p.extend_from_slice(&id);
        p.push(u8::try_from(i).map_err(|_| PartError::TooManyParts { needed: count })?);
        p.push(c8);
        p.extend_from_slice(&total_be);
        p.extend_from_slice(chunk);
        parts.push(p);
    }
    if parts.len() != count {
        // chunks(s) gives exactly ceil(total / s) = count pieces when (count-1)*s < total.
        return Err(PartError::MessageSize {
            bytes: message.len(),
        });
    }
    Ok(parts)
}

/// Parts collected so far of one message.
#[derive(Debug, Default)]
pub struct Reassembly {
    head: Option<([u8; 8], usize, usize)>,
    slots: Vec<Option<Vec<u8>>>,
}

impl Reassembly {
    /// Nothing collected yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one part (the bytes read from one code). An exact duplicate is
    /// accepted and changes nothing; on error nothing changes.
    pub fn add(&mut self, bytes: &[u8]) -> Result<(), PartError> {
        let p = parse_part(bytes)?;
        match self.head {
            None => {
                self.head = Some((p.id, p.count, p.total));
                self.slots = vec![None; p.count];
            }
            Some((id, count, total)) => {
                if id != p.id {
                    return Err(PartError::OtherMessage {
                        expected: hex(&id),
                        found: hex(&p.id),
                    });
                }
                if count != p.count || total != p.total {
                    return Err(PartError::Inconsistent { part: p.index + 1 });
                }
            }
        }
        let slot = self.slots.get_mut(p.index).ok_or(PartError::Index {
            index: u8::try_from(p.index).unwrap_or(u8::MAX),
            count: u8::try_from(p.count).unwrap_or(u8::MAX),
        })?;
        match slot {
            Some(have) if have.as_slice() != p.data => {
                Err(PartError::Conflict { part: p.index + 1 })
            }
            Some(_) => Ok(()),
            None => {
                *slot = Some(p.data.to_vec());
                Ok(())
            }
        }
    }

    /// Parts in the message, once one part was added.
    pub fn count(&self) -> Option<usize> {
        self.head.map(|(_, c, _)| c)
    }

    /// The missing parts' numbers (1-based).
    pub fn missing(&self) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| i + 1)
            .collect()
    }

    /// The whole message, if every part is there and it matches its id.
    pub fn finish(&self) -> Result<Vec<u8>, PartError> {
        let (id, count, total) = self.head.ok_or(PartError::Empty)?;
        let missing = self.missing();
        if !missing.is_empty() {
            return Err(PartError::Missing {
                parts: missing,
                count,
            });
        }
        let mut out = Vec::with_capacity(total);
        for s in self.slots.iter().flatten() {
            out.extend_from_slice(s);
        }
        if out.len() != total || message_id(&out) != id {
            return Err(PartError::Checksum);
        }
        Ok(out)
    }
}

/// Join parts given in any order (duplicates tolerated).
pub fn join<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, PartError> {
    let mut r = Reassembly::new();
    for p in parts {
        r.add(p)?;
    }
    r.finish()
}

// ---- images ------------------------------------------------------------

/// The codes of a message's parts, all at one QR version.
pub struct PartCodes {
    /// What each code is (one version for all).
    pub info: QrInfo,
    /// The parts' bytes, in order.
    pub parts: Vec<Vec<u8>>,
    matrices: Vec<Matrix>,
}

impl PartCodes {
    /// Split `message` (see [`split`]) and draw each part as a QR code at the
    /// version that holds the largest part.
    pub fn new(message: &[u8], code_bytes: usize) -> Result<Self, QrError> {
        let parts = split(message, code_bytes).map_err(QrError::Parts)?;
        let largest = parts.iter().map(Vec::len).max().unwrap_or(0);
        let version = qr_version_for(largest).ok_or(QrError::TooLarge {
            bytes: largest,
            max: super::QR_BYTES_MAX,
        })?;
        let matrices = parts
            .iter()
            .map(|p| Matrix::with_version(p, version))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PartCodes {
            info: QrInfo {
                version,
                modules: 17 + 4 * usize::from(version),
                ecc: Ecc::M,
            },
            parts,
            matrices,
        })
    }

    /// Part `i`'s code as Unicode half blocks (see [`super::encode_terminal_for`]).
    pub fn terminal(&self, i: usize, theme: super::TerminalTheme) -> Option<String> {
        self.matrices
            .get(i)
            .map(|m| super::matrix_terminal(m, theme))
    }

    /// Write each part as a PNG to `out(i)` (any writer).
    fn png_to<W: Write>(&self, i: usize, out: W, scale: u32) -> Result<(), QrError> {
        let m = self
            .matrices
            .get(i)
            .ok_or(QrError::Encode("no such part".into()))?;
        super::matrix_png(m, out, scale)
    }

    /// Write the parts as one animated PNG (APNG, one frame per part,
    /// `frame_ms` milliseconds each, looping forever) to `out`.
    pub fn apng<W: Write>(&self, out: W, scale: u32, frame_ms: u16) -> Result<(), QrError> {
        check_scale(scale)?;
        let png_err = |e: png::EncodingError| match e {
            png::EncodingError::IoError(e) => QrError::Io(e),
            e => QrError::Encode(e.to_string()),
        };
        let frames = u32::try_from(self.matrices.len())
            .map_err(|_| QrError::Encode("too many frames".into()))?;
        let mut side = 0u32;
        let mut datas = Vec::with_capacity(self.matrices.len());
        for m in &self.matrices {
            let (s, d) = matrix_png_data(m, scale)?;
            side = s;
            datas.push(d);
        }
        let mut enc = png::Encoder::new(out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_animated(frames, 0).map_err(png_err)?;
        enc.set_frame_delay(frame_ms, 1000).map_err(png_err)?;
        let mut w = enc.write_header().map_err(png_err)?;
        for d in &datas {
            w.write_image_data(d).map_err(png_err)?;
        }
        w.finish().map_err(png_err)
    }
}

fn check_scale(scale: u32) -> Result<(), QrError> {
    if scale == 0 || scale > QR_SCALE_MAX {
        return Err(QrError::InvalidScale {
            scale,
            max: QR_SCALE_MAX,
        });
    }
    Ok(())
}

/// The file of part `i` (0-based) of `count` next to `path`: `pay.png` gives
/// `pay-1-of-3.png`.
pub fn part_path(path: &Path, i: usize, count: usize) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "qr".into());
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "png".into());
    path.with_file_name(format!("{stem}-{}-of-{count}.{ext}", i + 1))
}

/// What [`encode_parts_files`] wrote.
#[derive(Debug, Clone)]
pub struct PartFiles {
    /// The code every part became.
    pub info: QrInfo,
    /// The animated PNG (all parts).
    pub apng: PathBuf,
    /// One PNG per part, in order.
    pub files: Vec<PathBuf>,
}

/// Write `message` in parts: an APNG at `path` and one PNG per part next to
/// it ([`part_path`]). Everything is checked before any file is created.
pub fn encode_parts_files(
    message: &[u8],
    path: impl AsRef<Path>,
    code_bytes: usize,
    scale: u32,
) -> Result<PartFiles, QrError> {
    let path = path.as_ref();
    check_scale(scale)?;
    let codes = PartCodes::new(message, code_bytes)?;
    let n = codes.parts.len();
    let write = |p: &Path, f: &dyn Fn(&mut io::BufWriter<File>) -> Result<(), QrError>| {
        let mut file = io::BufWriter::new(File::create(p)?);
        f(&mut file)?;
        file.flush()?;
        file.into_inner()
            .map_err(|e| QrError::Io(e.into_error()))?
            .sync_all()?;
        Ok::<(), QrError>(())
    };
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        let p = part_path(path, i, n);
        write(&p, &|w| codes.png_to(i, w, scale))?;
        files.push(p);
    }
    write(path, &|w| codes.apng(w, scale, 500))?;
    Ok(PartFiles {
        info: codes.info,
        apng: path.to_path_buf(),
        files,
    })
}

/// Read a message from images: PNG files in memory, each a single code, or
/// an APNG of several frames. One image holding one code that is not a part
/// is that message (the single-code form); otherwise every code read must be
/// a part of the same message, and all its parts must be there.
pub fn decode_images<'a>(images: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, QrError> {
    let mut r = Reassembly::new();
    let mut single: Option<Vec<u8>> = None;
    let mut codes = 0usize;
    for img in images {
        let frames = png_frames_to_luma(img, PARTS_MAX * 2)?;
        let animated = frames.len() > 1;
        for (w, h, luma) in frames {
            let (bytes, _) = match scan_luma(w, h, &luma) {
                // A frame of an animation without a code (a title frame) is skipped.
                Err(QrError::NoQrCode) if animated => continue,
                r => r?,
            };
            codes += 1;
            if codes > PARTS_MAX * 2 {
                return Err(QrError::Parts(PartError::TooManyParts { needed: codes }));
            }
            if is_part(&bytes) {
                r.add(&bytes).map_err(QrError::Parts)?;
            } else {
                single = Some(bytes);
            }
        }
    }
    if codes == 0 {
        return Err(QrError::NoQrCode);
    }
    match (single, r.count()) {
        (Some(b), None) if codes == 1 => Ok(b),
        (Some(_), _) => Err(QrError::Parts(PartError::NotAPart)),
        (None, _) => r.finish().map_err(QrError::Parts),
    }
}

/// [`decode_images`] on files.
pub fn decode_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<u8>, QrError> {
    if paths.len() > PARTS_MAX * 2 {
        return Err(QrError::Parts(PartError::TooManyParts {
            needed: paths.len(),
        }));
    }
    let mut bufs = Vec::with_capacity(paths.len());
    for p in paths {
        bufs.push(read_png_file(p.as_ref())?);
    }
    decode_images(bufs.iter().map(Vec::as_slice))
}
