//! QR codes: a protocol message as one QR code, in a PNG file or on a terminal.
//!
//! One message is one QR code in binary (byte) mode at error-correction level
//! M, the smallest version that holds it (see [`qr_version_for`]); a message
//! larger than version 40-M ([`QR_BYTES_MAX`] = 2331 bytes) is refused with
//! [`QrError::TooLarge`]. The code always has the standard quiet zone of
//! [`QR_QUIET_ZONE_MODULES`] light modules on each side.
//!
//! * [`encode_png`] / [`encode_png_file`]: a 1-bit greyscale PNG, `scale`
//!   pixels per module.
//! * [`encode_terminal`] / [`encode_terminal_for`]: Unicode half blocks, two
//!   modules per character cell vertically.
//! * [`decode_png`] / [`decode_png_file`]: find and read the QR code in a PNG
//!   (any colour type and bit depth; alpha is composited over white) with the
//!   pure-Rust `rqrr` decoder.
//!
//! Images come from other people: the decoder refuses files larger than
//! [`QR_PNG_FILE_BYTES_MAX`] and images of more than [`QR_IMAGE_PIXELS_MAX`]
//! pixels or wider/taller than [`QR_IMAGE_SIDE_MAX`] before allocating the
//! pixels, and every failure is a [`QrError`], never a panic (the third-party
//! decoder additionally runs under `catch_unwind` as a last line of defence).

use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use qrcode::bits::Bits;
use qrcode::{Color, EcLevel, QrCode, Version};

pub mod parts;

/// Most bytes one QR code holds in binary mode at level M (version 40-M).
pub const QR_BYTES_MAX: usize = 2331;
/// Light modules of quiet zone around the code, on each side (the standard's minimum).
pub const QR_QUIET_ZONE_MODULES: usize = 4;
/// Largest accepted PNG scale (pixels per module).
pub const QR_SCALE_MAX: u32 = 32;
/// A good default PNG scale (pixels per module) for screens and files.
pub const QR_SCALE_DEFAULT: u32 = 4;
/// Largest PNG file [`decode_png_file`] / [`decode_png`] accept.
pub const QR_PNG_FILE_BYTES_MAX: usize = 32 << 20;
/// Most pixels (width x height) of an image the decoder accepts.
pub const QR_IMAGE_PIXELS_MAX: u64 = 16 << 20;
/// Largest width or height of an image the decoder accepts.
pub const QR_IMAGE_SIDE_MAX: u32 = 16_384;
/// Memory the PNG decoder may use for its own buffers (the pixels are bounded separately).
const PNG_DECODER_BYTES_MAX: usize = 64 << 20;

/// Binary-mode capacity in bytes of versions 1..=40 at level M (ISO/IEC 18004, table 7).
const CAPACITY_M: [u16; 40] = [
    14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624, 666,
    711, 779, 857, 911, 997, 1059, 1125, 1190, 1264, 1370, 1452, 1538, 1628, 1722, 1809, 1911,
    1989, 2099, 2213, 2331,
];

/// The smallest QR version (1..=40) that holds `len` bytes in binary mode at
/// level M, or `None` if more than [`QR_BYTES_MAX`].
pub fn qr_version_for(len: usize) -> Option<u8> {
    CAPACITY_M
        .iter()
        .position(|&cap| len <= usize::from(cap))
        .and_then(|i| u8::try_from(i + 1).ok())
}

/// Bytes a QR code of `version` (1..=40) holds in binary mode at level M.
pub fn qr_capacity(version: u8) -> Option<usize> {
    let i = usize::from(version).checked_sub(1)?;
    CAPACITY_M.get(i).map(|&c| usize::from(c))
}

/// Error-correction level of a QR code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ecc {
    /// Low: about 7 % of codewords recoverable.
    L,
    /// Medium: about 15 %. offpay always encodes at this level.
    M,
    /// Quartile: about 25 %.
    Q,
    /// High: about 30 %.
    H,
}

impl fmt::Display for Ecc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ecc::L => "L",
            Ecc::M => "M",
            Ecc::Q => "Q",
            Ecc::H => "H",
        })
    }
}

/// What QR code a message became (or was read from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QrInfo {
    /// QR version, 1..=40.
    pub version: u8,
    /// Modules per side, without the quiet zone (`17 + 4 * version`).
    pub modules: usize,
    /// Error-correction level.
    pub ecc: Ecc,
}

/// Why a QR code could not be made or read.
#[derive(Debug)]
pub enum QrError {
    /// The message does not fit in one QR code at level M.
    TooLarge {
        /// Length of the message.
        bytes: usize,
        /// Most one code holds ([`QR_BYTES_MAX`]).
        max: usize,
    },
    /// The PNG scale is 0 or above [`QR_SCALE_MAX`].
    InvalidScale {
        /// The scale asked for.
        scale: u32,
        /// Largest accepted scale.
        max: u32,
    },
    /// The QR encoder refused the data (not expected for data that fits).
    Encode(String),
    /// Reading or writing a file or writer failed.
    Io(io::Error),
    /// The PNG file is larger than [`QR_PNG_FILE_BYTES_MAX`].
    FileTooLarge {
        /// Size of the file (or at least this many bytes).
        bytes: u64,
        /// Largest accepted file.
        max: usize,
    },
    /// The input is not a PNG, or a corrupt or truncated one.
    Png(String),
    /// The image is too large to scan (see [`QR_IMAGE_PIXELS_MAX`], [`QR_IMAGE_SIDE_MAX`]).
    ImageTooLarge {
        /// Image width in pixels.
        width: u32,
        /// Image height in pixels.
        height: u32,
    },
    /// No QR code was found in the image.
    NoQrCode,
    /// A QR code was found but could not be read (damaged beyond error correction, unsupported data).
    Unreadable(String),
    /// The image holds several QR codes with different contents.
    MultipleQrCodes {
        /// How many different contents were read.
        count: usize,
    },
    /// The QR decoder failed internally on this image (a bug in it, contained).
    DecoderFailed,
    /// Multi-part QR: the parts could not be made or joined.
    Parts(parts::PartError),
}

impl fmt::Display for QrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QrError::TooLarge { bytes, max } => write!(
                f,
                "message of {bytes} bytes is too large for one QR code (at most {max} bytes at level M)"
            ),
            QrError::InvalidScale { scale, max } => {
                write!(f, "invalid QR scale {scale} (1..={max} pixels per module)")
            }
            QrError::Encode(e) => write!(f, "QR encoding failed: {e}"),
            QrError::Io(e) => write!(f, "I/O error: {e}"),
            QrError::FileTooLarge { bytes, max } => {
                write!(f, "PNG file of {bytes} bytes is too large (at most {max})")
            }
            QrError::Png(e) => write!(f, "not a valid PNG image: {e}"),
            QrError::ImageTooLarge { width, height } => write!(
                f,
                "image of {width}x{height} pixels is too large to scan (at most {QR_IMAGE_SIDE_MAX} per side, {QR_IMAGE_PIXELS_MAX} pixels)"
            ),
            QrError::NoQrCode => f.write_str("no QR code found in the image"),
            QrError::Unreadable(e) => write!(f, "QR code found but unreadable: {e}"),
            QrError::MultipleQrCodes { count } => {
                write!(f, "the image holds {count} different QR codes")
            }
            QrError::DecoderFailed => f.write_str("the QR decoder failed on this image"),
            QrError::Parts(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for QrError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QrError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for QrError {
    fn from(e: io::Error) -> Self {
        QrError::Io(e)
    }
}

// ---- encoding ------------------------------------------------------------

/// The module matrix of one code: `width * width` modules, `true` = dark.
struct Matrix {
    info: QrInfo,
    dark: Vec<bool>,
}

impl Matrix {
    fn new(bytes: &[u8]) -> Result<Matrix, QrError> {
        let too_large = || QrError::TooLarge {
            bytes: bytes.len(),
            max: QR_BYTES_MAX,
        };
        let version = qr_version_for(bytes.len()).ok_or_else(too_large)?;
        Matrix::with_version(bytes, version)
    }

    /// The code of `bytes` at `version` (at least the smallest that holds them).
    fn with_version(bytes: &[u8], version: u8) -> Result<Matrix, QrError> {
        if qr_capacity(version).is_none_or(|cap| bytes.len() > cap) {
            return Err(QrError::TooLarge {
                bytes: bytes.len(),
                max: qr_capacity(version).unwrap_or(0),
            });
        }
        let enc = |e: qrcode::types::QrError| QrError::Encode(e.to_string());
        let mut bits = Bits::new(Version::Normal(i16::from(version)));
        bits.push_byte_data(bytes).map_err(enc)?;
        bits.push_terminator(EcLevel::M).map_err(enc)?;
        let code = QrCode::with_bits(bits, EcLevel::M).map_err(enc)?;
        let modules = code.width();
        let dark = code.to_colors().iter().map(|c| *c == Color::Dark).collect();
        Ok(Matrix {
            info: QrInfo {
                version,
                modules,
                ecc: Ecc::M,
            },
            dark,
        })
    }

    /// Side of the matrix with the quiet zone.
    fn side(&self) -> usize {
        self.info.modules + 2 * QR_QUIET_ZONE_MODULES
    }

    /// Whether the module at (x, y), quiet zone included, is dark; outside is light.
    fn dark_at(&self, x: usize, y: usize) -> bool {
        let n = self.info.modules;
        let q = QR_QUIET_ZONE_MODULES;
        match (x.checked_sub(q), y.checked_sub(q)) {
            (Some(x), Some(y)) if x < n && y < n => {
                self.dark.get(y * n + x).copied().unwrap_or(false)
            }
            _ => false,
        }
    }
}

/// The QR code (version, size, level) `bytes` would become, without drawing it.
pub fn qr_info(bytes: &[u8]) -> Result<QrInfo, QrError> {
    let version = qr_version_for(bytes.len()).ok_or(QrError::TooLarge {
        bytes: bytes.len(),
        max: QR_BYTES_MAX,
    })?;
    Ok(QrInfo {
        version,
        modules: 17 + 4 * usize::from(version),
        ecc: Ecc::M,
    })
}

/// Encode `bytes` as one QR code (binary mode, level M) and write it to `out`
/// as a 1-bit greyscale PNG with `scale` pixels per module (1..=[`QR_SCALE_MAX`]),
/// quiet zone included.
pub fn encode_png<W: Write>(bytes: &[u8], out: W, scale: u32) -> Result<QrInfo, QrError> {
    if scale == 0 || scale > QR_SCALE_MAX {
        return Err(QrError::InvalidScale {
            scale,
            max: QR_SCALE_MAX,
        });
    }
    let m = Matrix::new(bytes)?;
    matrix_png(&m, out, scale)?;
    Ok(m.info)
}

/// The 1-bit rows of `m`'s PNG at `scale`, and the image side in pixels.
fn matrix_png_data(m: &Matrix, scale: u32) -> Result<(u32, Vec<u8>), QrError> {
    let scale_px = scale as usize; // <= 32
    let side_px = m.side() * scale_px; // <= (177 + 8) * 32
    let row_bytes = side_px.div_ceil(8);
    let mut data = vec![0u8; row_bytes * side_px];
    for (py, row) in data.chunks_exact_mut(row_bytes).enumerate() {
        let y = py / scale_px;
        for px in 0..side_px {
            // Grey level 1 (bit set) is white: light modules set their bit.
            if !m.dark_at(px / scale_px, y) {
                row[px / 8] |= 0x80 >> (px % 8);
            }
        }
    }
    let side = u32::try_from(side_px).map_err(|_| QrError::Encode("image too large".into()))?;
    Ok((side, data))
}

/// Write `m` as a 1-bit greyscale PNG.
fn matrix_png<W: Write>(m: &Matrix, out: W, scale: u32) -> Result<(), QrError> {
    let (side, data) = matrix_png_data(m, scale)?;
    let png_err = |e: png::EncodingError| match e {
        png::EncodingError::IoError(e) => QrError::Io(e),
        e => QrError::Encode(e.to_string()),
    };
    let mut enc = png::Encoder::new(out, side, side);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::One);
    let mut writer = enc.write_header().map_err(png_err)?;
    writer.write_image_data(&data).map_err(png_err)?;
    writer.finish().map_err(png_err)?;
    Ok(())
}

/// [`encode_png`] into a file at `path` (created or truncated).
pub fn encode_png_file(
    bytes: &[u8],
    path: impl AsRef<Path>,
    scale: u32,
) -> Result<QrInfo, QrError> {
    // Check before creating the file, so that a refused message leaves no file behind.
    qr_info(bytes)?;
    if scale == 0 || scale > QR_SCALE_MAX {
        return Err(QrError::InvalidScale {
            scale,
            max: QR_SCALE_MAX,
        });
    }
    let mut file = io::BufWriter::new(File::create(path)?);
    let info = encode_png(bytes, &mut file, scale)?;
    file.flush()?;
    file.into_inner()
        .map_err(|e| QrError::Io(e.into_error()))?
        .sync_all()?;
    Ok(info)
}

/// The terminal's colours, to draw the code dark-on-light whatever the theme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TerminalTheme {
    /// Light text on a dark background (the usual default): the glyphs paint
    /// the light modules and the background shows through as the dark ones.
    #[default]
    DarkBackground,
    /// Dark text on a light background: the glyphs paint the dark modules.
    LightBackground,
}

/// Render `bytes` as a QR code for a terminal with the usual dark background
/// ([`TerminalTheme::DarkBackground`]): see [`encode_terminal_for`].
pub fn encode_terminal(bytes: &[u8]) -> Result<String, QrError> {
    encode_terminal_for(bytes, TerminalTheme::DarkBackground)
}

/// Render `bytes` as a QR code (binary mode, level M) with Unicode half blocks
/// (`▀ ▄ █` and space): each character cell is one module wide and two
/// modules tall, so the code looks square in a usual terminal font. The
/// quiet zone is included; every line ends with `\n`. `theme` says which
/// modules the glyphs paint so that the code shows dark-on-light.
pub fn encode_terminal_for(bytes: &[u8], theme: TerminalTheme) -> Result<String, QrError> {
    let m = Matrix::new(bytes)?;
    Ok(matrix_terminal(&m, theme))
}

/// `m` as Unicode half blocks (see [`encode_terminal_for`]).
fn matrix_terminal(m: &Matrix, theme: TerminalTheme) -> String {
    let side = m.side();
    let painted = |x: usize, y: usize| {
        // Rows past the bottom (odd side) count as quiet zone (light).
        let dark = y < side && m.dark_at(x, y);
        match theme {
            TerminalTheme::DarkBackground => !dark,
            TerminalTheme::LightBackground => dark,
        }
    };
    let mut out = String::with_capacity((side + 1) * side.div_ceil(2) * 3);
    for y in (0..side).step_by(2) {
        for x in 0..side {
            out.push(match (painted(x, y), painted(x, y + 1)) {
                (true, true) => '\u{2588}',
                (true, false) => '\u{2580}',
                (false, true) => '\u{2584}',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    out
}

// ---- decoding ------------------------------------------------------------

/// Read the PNG file at `path` and decode the QR code in it: see [`decode_png`].
pub fn decode_png_file(path: impl AsRef<Path>) -> Result<Vec<u8>, QrError> {
    decode_png_file_with_info(path).map(|(bytes, _)| bytes)
}

/// [`decode_png_file`], also returning what code was read.
pub fn decode_png_file_with_info(path: impl AsRef<Path>) -> Result<(Vec<u8>, QrInfo), QrError> {
    let buf = read_png_file(path.as_ref())?;
    decode_png_with_info(&buf)
}

/// The bytes of the file at `path`, at most [`QR_PNG_FILE_BYTES_MAX`].
fn read_png_file(path: &Path) -> Result<Vec<u8>, QrError> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > QR_PNG_FILE_BYTES_MAX as u64 {
        return Err(QrError::FileTooLarge {
            bytes: len,
            max: QR_PNG_FILE_BYTES_MAX,
        });
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // The file may grow while we read it: never read past the limit.
    file.take(QR_PNG_FILE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut buf)?;
    if buf.len() > QR_PNG_FILE_BYTES_MAX {
        return Err(QrError::FileTooLarge {
            bytes: buf.len() as u64,
            max: QR_PNG_FILE_BYTES_MAX,
        });
    }
    Ok(buf)
}

/// Decode the QR code in a PNG image held in memory and return its bytes.
///
/// Errors: [`QrError::Png`] for anything that is not a valid PNG (empty,
/// truncated, corrupt), [`QrError::ImageTooLarge`], [`QrError::NoQrCode`],
/// [`QrError::Unreadable`] for a code damaged beyond repair, and
/// [`QrError::MultipleQrCodes`] if several codes with different contents are
/// in the image.
pub fn decode_png(png_bytes: &[u8]) -> Result<Vec<u8>, QrError> {
    decode_png_with_info(png_bytes).map(|(bytes, _)| bytes)
}

/// [`decode_png`], also returning what code was read.
pub fn decode_png_with_info(png_bytes: &[u8]) -> Result<(Vec<u8>, QrInfo), QrError> {
    if png_bytes.len() > QR_PNG_FILE_BYTES_MAX {
        return Err(QrError::FileTooLarge {
            bytes: png_bytes.len() as u64,
            max: QR_PNG_FILE_BYTES_MAX,
        });
    }
    let (width, height, luma) = png_to_luma(png_bytes)?;
    scan_luma(width, height, &luma)
}

/// Decode a PNG to 8-bit luminance, one byte per pixel, row-major.
fn png_to_luma(png_bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), QrError> {
    png_frames_to_luma(png_bytes, 1)?
        .into_iter()
        .next()
        .ok_or(QrError::NoQrCode)
}

/// Most luminance pixels [`png_frames_to_luma`] returns over all frames.
const FRAMES_PIXELS_MAX: u64 = 4 * QR_IMAGE_PIXELS_MAX;

/// Decode the frames of a PNG (one) or APNG (up to `max_frames`; more is an
/// error) to 8-bit luminance: (width, height, pixels) per frame.
fn png_frames_to_luma(
    png_bytes: &[u8],
    max_frames: usize,
) -> Result<Vec<(usize, usize, Vec<u8>)>, QrError> {
    let perr = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => QrError::Png("decoder memory limit exceeded".into()),
        e => QrError::Png(e.to_string()),
    };
    let mut dec = png::Decoder::new_with_limits(
        Cursor::new(png_bytes),
        png::Limits {
            bytes: PNG_DECODER_BYTES_MAX,
        },
    );
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let (w, h) = {
        let info = dec.read_header_info().map_err(perr)?;
        (info.width, info.height)
    };
    if w == 0 || h == 0 {
        return Err(QrError::NoQrCode);
    }
    if w > QR_IMAGE_SIDE_MAX
        || h > QR_IMAGE_SIDE_MAX
        || u64::from(w) * u64::from(h) > QR_IMAGE_PIXELS_MAX
    {
        return Err(QrError::ImageTooLarge {
            width: w,
            height: h,
        });
    }
    let mut reader = dec.read_info().map_err(perr)?;
    let size = reader.output_buffer_size().ok_or(QrError::ImageTooLarge {
        width: w,
        height: h,
    })?;
    // At most 16 Mi pixels * 4 bytes (8-bit RGBA after the transformations).
    if size > (QR_IMAGE_PIXELS_MAX as usize) * 4 {
        return Err(QrError::ImageTooLarge {
            width: w,
            height: h,
        });
    }
    let frames = reader
        .info()
        .animation_control()
        .map_or(1, |a| a.num_frames.max(1) as usize);
    if frames > max_frames {
        return Err(QrError::Parts(parts::PartError::TooManyParts {
            needed: frames,
        }));
    }
    let mut buf = vec![0u8; size];
    let mut out = Vec::with_capacity(frames);
    let mut pixels = 0u64;
    // An APNG whose default image is not a frame has one image more; a
    // truncated one ends early (the missing parts are then named).
    let animated = reader.info().animation_control().is_some();
    let images = if animated { frames + 1 } else { 1 };
    while out.len() < images {
        let frame = match reader.next_frame(&mut buf) {
            Ok(f) => f,
            Err(_) if !out.is_empty() => break,
            Err(e) => return Err(perr(e)),
        };
        pixels += u64::from(frame.width) * u64::from(frame.height);
        if pixels > FRAMES_PIXELS_MAX {
            return Err(QrError::ImageTooLarge {
                width: w,
                height: h,
            });
        }
        out.push(frame_luma(&buf, &frame)?);
    }
    Ok(out)
}

/// One decoded frame (8-bit, normalised) as luminance.
fn frame_luma(buf: &[u8], frame: &png::OutputInfo) -> Result<(usize, usize, Vec<u8>), QrError> {
    if frame.bit_depth != png::BitDepth::Eight {
        return Err(QrError::Png(format!(
            "unexpected bit depth {:?}",
            frame.bit_depth
        )));
    }
    let channels = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(QrError::Png("palette not expanded".into()));
        }
    };
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    let line = frame.line_size;
    if fw == 0 || fh == 0 || line < fw * channels || buf.len() < line * fh {
        return Err(QrError::Png("inconsistent frame size".into()));
    }
    let mut luma = Vec::with_capacity(fw * fh);
    for row in buf.chunks_exact(line).take(fh) {
        for px in row[..fw * channels].chunks_exact(channels) {
            luma.push(to_luma(px));
        }
    }
    Ok((fw, fh, luma))
}

/// One 8-bit pixel (G, GA, RGB or RGBA) as luminance, alpha composited over white.
fn to_luma(px: &[u8]) -> u8 {
    let (l, a) = match *px {
        [g] => (u32::from(g), 255),
        [g, a] => (u32::from(g), u32::from(a)),
        [r, g, b] => (
            (299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)) / 1000,
            255,
        ),
        [r, g, b, a] => (
            (299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)) / 1000,
            u32::from(a),
        ),
        _ => (255, 255),
    };
    let v = (l * a + 255 * (255 - a)) / 255;
    u8::try_from(v).unwrap_or(u8::MAX)
}

/// Find and read the QR code(s) in a luminance image.
fn scan_luma(width: usize, height: usize, luma: &[u8]) -> Result<(Vec<u8>, QrInfo), QrError> {
    if luma.len() < width.saturating_mul(height) {
        return Err(QrError::Png("inconsistent image size".into()));
    }
    let scan = || {
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            luma.get(y * width + x).copied().unwrap_or(255)
        });
        let grids = img.detect_grids();
        if grids.is_empty() {
            return Err(QrError::NoQrCode);
        }
        let mut found: Vec<(Vec<u8>, QrInfo)> = Vec::new();
        let mut first_err = None;
        for g in &grids {
            let mut out = Vec::new();
            match g.decode_to(&mut out) {
                Ok(meta) => {
                    let version = u8::try_from(meta.version.0).unwrap_or(0);
                    let info = QrInfo {
                        version,
                        modules: meta.version.to_size(),
                        ecc: match meta.ecc_level {
                            0 => Ecc::M,
                            1 => Ecc::L,
                            2 => Ecc::H,
                            _ => Ecc::Q,
                        },
                    };
                    if !found.iter().any(|(b, _)| *b == out) {
                        found.push((out, info));
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match found.len() {
            0 => Err(QrError::Unreadable(
                first_err.map_or_else(|| "unknown".to_string(), |e| e.to_string()),
            )),
            1 => Ok(found.remove(0)),
            count => Err(QrError::MultipleQrCodes { count }),
        }
    };
    catch_unwind(AssertUnwindSafe(scan)).unwrap_or(Err(QrError::DecoderFailed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The capacity table agrees with the encoder: each version holds exactly
    /// its capacity in binary mode at level M.
    #[test]
    fn capacity_table_matches_encoder() {
        for v in 1..=40u8 {
            let cap = qr_capacity(v).unwrap();
            let fits = |len: usize| {
                let mut bits = Bits::new(Version::Normal(i16::from(v)));
                bits.push_byte_data(&vec![0xa5; len]).is_ok()
                    && bits.push_terminator(EcLevel::M).is_ok()
            };
            assert!(fits(cap), "version {v} holds {cap}");
            assert!(!fits(cap + 1), "version {v} does not hold {}", cap + 1);
            assert_eq!(qr_version_for(cap), Some(v));
            assert_eq!(
                qr_version_for(cap + 1),
                if v < 40 { Some(v + 1) } else { None }
            );
        }
        assert_eq!(qr_version_for(0), Some(1));
        assert_eq!(qr_capacity(0), None);
        assert_eq!(qr_capacity(41), None);
    }

    /// Parse a terminal rendering back into modules and read it.
    fn read_terminal(s: &str, theme: TerminalTheme) -> Vec<u8> {
        let mut rows: Vec<Vec<bool>> = Vec::new();
        for line in s.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in line.chars() {
                let (t, b) = match c {
                    '\u{2588}' => (true, true),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected glyph {other:?}"),
                };
                let dark = |p: bool| match theme {
                    TerminalTheme::DarkBackground => !p,
                    TerminalTheme::LightBackground => p,
                };
                top.push(dark(t));
                bottom.push(dark(b));
            }
            rows.push(top);
            rows.push(bottom);
        }
        let side = rows[0].len();
        // The quiet zone is there and light.
        for r in &rows {
            assert_eq!(r.len(), side);
            assert!(!r[..QR_QUIET_ZONE_MODULES].iter().any(|&d| d));
        }
        assert!(!rows[..QR_QUIET_ZONE_MODULES].iter().flatten().any(|&d| d));
        let scale = 4;
        let px = side * scale;
        let luma: Vec<u8> = (0..px * px)
            .map(|i| {
                let (x, y) = (i % px / scale, i / px / scale);
                if rows.get(y).and_then(|r| r.get(x)).copied().unwrap_or(false) {
                    0
                } else {
                    255
                }
            })
            .collect();
        scan_luma(px, px, &luma).unwrap().0
    }

    #[test]
    fn terminal_round_trip_both_themes() {
        let data: Vec<u8> = (0..=255u8).chain(0..=99).collect();
        for theme in [
            TerminalTheme::DarkBackground,
            TerminalTheme::LightBackground,
        ] {
            let s = encode_terminal_for(&data, theme).unwrap();
            assert!(s.ends_with('\n'));
            assert_eq!(read_terminal(&s, theme), data);
        }
        assert_eq!(
            encode_terminal(b"x").unwrap(),
            encode_terminal_for(b"x", TerminalTheme::DarkBackground).unwrap()
        );
        assert!(matches!(
            encode_terminal(&[0; QR_BYTES_MAX + 1]),
            Err(QrError::TooLarge {
                bytes: 2332,
                max: 2331
            })
        ));
    }

    #[test]
    fn luma_conversion() {
        assert_eq!(to_luma(&[0]), 0);
        assert_eq!(to_luma(&[0, 0]), 255); // transparent black is white paper
        assert_eq!(to_luma(&[0, 255]), 0);
        assert_eq!(to_luma(&[255, 255, 255]), 255);
        assert_eq!(to_luma(&[0, 0, 0, 255]), 0);
        assert_eq!(to_luma(&[]), 255);
    }
}
