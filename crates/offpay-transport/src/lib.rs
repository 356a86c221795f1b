//! offpay-transport: offline transports for the protocol's byte messages.
//!
//! Two phones paying each other offline would use NFC or Bluetooth LE; this
//! crate stands in for those radios with two transports that run anywhere and
//! carry exactly the same bytes (the envelopes the wallet TA makes):
//!
//! * [`qr`]: one message as one QR code (binary mode, level M), written to a
//!   PNG file or drawn on a terminal with Unicode half blocks, and read back
//!   from a PNG with a pure-Rust decoder. Good for a one-way hop (a payee
//!   showing its PaymentRequest, a payer showing its Payment). A message
//!   longer than one version-20 code goes as several ([`qr::parts`]: a PNG
//!   series or an animated PNG, reassembled in any order).
//! * [`tap`]: a local TCP connection that runs one whole payment exchange
//!   (REQUEST, PAYMENT, RECEIPT) like a tap would: framed, size-limited,
//!   time-limited, with the wallet logic passed in as closures, and a
//!   documented retry for torn exchanges. Its module docs give the frame
//!   format byte by byte.
//!
//! The transports know nothing of wallets or keys: they move bytes and refuse
//! malformed input. Every input from another device (frames, images, files)
//! is treated as hostile: bounded before it is allocated, and every failure is
//! a typed error ([`qr::QrError`], [`tap::TapError`]), never a panic.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod qr;
pub mod tap;

pub use qr::{
    Ecc, QR_BYTES_MAX, QrError, QrInfo, TerminalTheme, decode_png, decode_png_file, encode_png,
    encode_png_file, encode_terminal, qr_version_for,
};
pub use tap::{
    Decline, Declined, FrameType, TAP_FRAME_BYTES_MAX, TAP_TIMEOUT_MS_DEFAULT, TapConnection,
    TapError, TapListener, TapOutcome, TapPaid, pay_over_tap, serve_one, tap_connect,
};
