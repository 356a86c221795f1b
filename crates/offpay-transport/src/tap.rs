//! The tap: one payment exchange over a local TCP connection, standing in for
//! an NFC or BLE tap between two phones.
//!
//! The payee listens ([`TapListener::bind`]) and runs [`serve_one`]; the payer
//! connects ([`tap_connect`], [`pay_over_tap`]). The exchange is a fixed
//! sequence of at most [`TAP_FRAMES_PER_EXCHANGE_MAX`] frames:
//!
//! ```text
//! payee                                   payer
//!   | -- REQUEST (PaymentRequest bytes) --> |   on_request(request) -> payment
//!   | <-- PAYMENT (Payment bytes) --------- |   (or ERROR: the payer refuses)
//!   |   on_payment(payment) -> receipt      |
//!   | -- RECEIPT (Receipt bytes) ---------> |   (or ERROR: the payee refuses)
//! ```
//!
//! Each side stops at the first ERROR frame, so no exchange carries more than
//! three frames, and nothing is read after the last one.
//!
//! # Frame format
//!
//! | offset | size | field                                                  |
//! |-------:|-----:|--------------------------------------------------------|
//! | 0      | 1    | frame type: `0x01` REQUEST, `0x02` PAYMENT, `0x03` RECEIPT, `0x04` ERROR |
//! | 1      | 4    | payload length `n`, unsigned big-endian                |
//! | 5      | `n`  | payload                                                |
//!
//! The payload is the protocol message's envelope bytes, as the wallet TA made
//! them (REQUEST: PaymentRequest, PAYMENT: Payment, RECEIPT: Receipt), or for
//! ERROR a UTF-8 reason of at most [`TAP_ERROR_REASON_BYTES_MAX`] bytes. A
//! receiver checks the type byte first ([`TapError::UnknownFrameType`]), then
//! the length against the hard maximum [`TAP_FRAME_BYTES_MAX`] and the
//! type's own maximum ([`FrameType::payload_max`], from
//! `offpay_protocol::messages`) before it allocates or reads the payload
//! ([`TapError::FrameTooLarge`]); REQUEST, PAYMENT and RECEIPT payloads must
//! not be empty. Received error reasons are decoded lossily and control
//! characters are replaced, so a peer cannot inject terminal escapes.
//!
//! # Timeouts
//!
//! Every frame, read or written, must complete within the connection's timeout
//! (default [`TAP_TIMEOUT_MS_DEFAULT`]): the deadline covers the whole frame,
//! so a peer trickling one byte at a time cannot hold the exchange open. The
//! payee's wait for a PAYMENT includes the payer's own processing (and any
//! confirmation its user gives); the payer's wait for a RECEIPT includes the
//! payee's. [`TapListener::with_accept_timeout`] bounds the wait for a payer.
//!
//! # Torn exchanges and retry
//!
//! The transport knows no wallet: it carries bytes and calls the caller's
//! closures. A connection can drop at any point; what matters is the window
//! after the payer's TA produced the Payment (and durably debited) and before
//! the payer has the Receipt. [`pay_over_tap`] reports that window as
//! [`TapError::Torn`] (`payment_sent` tells whether the whole PAYMENT frame
//! was handed to the network). Recovery is simply to run the exchange again:
//! the payee calls [`serve_one`] again with **the same request bytes**, the
//! payer calls [`pay_over_tap`] again, and because the wallet TA is idempotent
//! (the same request gives the same Payment bytes, the same Payment gives the
//! same Receipt bytes) the payer resends the identical Payment, the payee's
//! TA returns the identical Receipt, and money moves once. The payee side
//! reports [`TapError::Torn`] too when it credited a payment but could not
//! send the Receipt: it should keep offering the same request until the payer
//! has retried (or the request expires).
//!
//! # What a peer learns when the other side declines
//!
//! A callback that declines returns a [`Decline`]: its own reason, which
//! stays on its side ([`TapError::Refused`]), and a [`Declined`] category,
//! whose fixed text is all the ERROR frame carries. A payer that cannot pay
//! (funds, limits, a lock) never tells the payee its balance or limit state;
//! the payee hears "declined" and, at most, that its message was not
//! acceptable. A plain `String` converts into a [`Decline`] with the
//! [`Declined::Unwilling`] category (`reason.into()`), so no caller's reason
//! reaches the wire by accident.
//!
//! The listener binds exactly the address the caller gives (tests use
//! `127.0.0.1:0`): nothing is exposed beyond what the caller asks for.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use offpay_protocol::messages::{PAYMENT_BYTES_MAX, PAYMENT_REQUEST_BYTES_MAX, RECEIPT_BYTES_MAX};

/// Bytes of a frame header: 1 type byte and a 4-byte big-endian length.
pub const TAP_FRAME_HEADER_BYTES: usize = 5;
/// Hard maximum payload of any frame, whatever its type: the largest message
/// (an ML-DSA-44 Payment with its certificate inline) rounded up to 1 KiB.
pub const TAP_FRAME_BYTES_MAX: usize = 9216;
/// Largest reason in an ERROR frame (longer reasons are cut when sent).
pub const TAP_ERROR_REASON_BYTES_MAX: usize = 256;
/// Default timeout for each frame read or written, in milliseconds.
pub const TAP_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Most frames in one exchange (REQUEST, PAYMENT, RECEIPT; an ERROR ends it early).
pub const TAP_FRAMES_PER_EXCHANGE_MAX: usize = 3;

const _: () = assert!(PAYMENT_REQUEST_BYTES_MAX <= TAP_FRAME_BYTES_MAX);
const _: () = assert!(PAYMENT_BYTES_MAX <= TAP_FRAME_BYTES_MAX);
const _: () = assert!(RECEIPT_BYTES_MAX <= TAP_FRAME_BYTES_MAX);
const _: () = assert!(TAP_ERROR_REASON_BYTES_MAX <= TAP_FRAME_BYTES_MAX);

/// How long the accept loop sleeps between tries when an accept timeout is set.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// The default per-frame timeout.
pub fn default_timeout() -> Duration {
    Duration::from_millis(TAP_TIMEOUT_MS_DEFAULT)
}

/// What the peer is told when a side declines: a general category, never
/// the reason itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Declined {
    /// This side will not go on (funds, limits, its state, its user): which
    /// of these is not said.
    Unwilling,
    /// The peer's message is not acceptable: invalid, expired, not for this
    /// wallet, or not what was expected.
    NotAcceptable,
}

impl Declined {
    /// The fixed text the ERROR frame carries.
    pub fn text(self) -> &'static str {
        match self {
            Declined::Unwilling => "declined by the other wallet (its reason is not shared)",
            Declined::NotAcceptable => {
                "declined: the message was not acceptable to the other wallet (invalid, expired, not for it, or not what it expected)"
            }
        }
    }
}

/// A callback's refusal: its reason stays local, the peer hears `general`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decline {
    /// Why, for this side only (returned as [`TapError::Refused`]).
    pub reason: String,
    /// What the peer hears.
    pub general: Declined,
}

impl Decline {
    /// A refusal with its local reason and what the peer hears.
    pub fn new(reason: impl Into<String>, general: Declined) -> Decline {
        Decline {
            reason: reason.into(),
            general,
        }
    }
}

impl From<String> for Decline {
    fn from(reason: String) -> Decline {
        Decline::new(reason, Declined::Unwilling)
    }
}

impl From<&str> for Decline {
    fn from(reason: &str) -> Decline {
        Decline::new(reason, Declined::Unwilling)
    }
}

/// The type of a frame (its first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// Payee -> payer: a PaymentRequest envelope.
    Request = 0x01,
    /// Payer -> payee: a Payment envelope.
    Payment = 0x02,
    /// Payee -> payer: a Receipt envelope.
    Receipt = 0x03,
    /// Either way: the sender refuses; the payload is a UTF-8 reason.
    Error = 0x04,
}

impl FrameType {
    /// The frame type of a type byte, if known.
    pub fn from_byte(b: u8) -> Option<FrameType> {
        match b {
            0x01 => Some(FrameType::Request),
            0x02 => Some(FrameType::Payment),
            0x03 => Some(FrameType::Receipt),
            0x04 => Some(FrameType::Error),
            _ => None,
        }
    }

    /// The type byte.
    pub fn byte(self) -> u8 {
        self as u8
    }

    /// Largest payload of this type.
    pub fn payload_max(self) -> usize {
        match self {
            FrameType::Request => PAYMENT_REQUEST_BYTES_MAX,
            FrameType::Payment => PAYMENT_BYTES_MAX,
            FrameType::Receipt => RECEIPT_BYTES_MAX,
            FrameType::Error => TAP_ERROR_REASON_BYTES_MAX,
        }
    }

    /// Whether an empty payload is allowed (only for ERROR).
    fn may_be_empty(self) -> bool {
        self == FrameType::Error
    }
}

impl fmt::Display for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameType::Request => "REQUEST",
            FrameType::Payment => "PAYMENT",
            FrameType::Receipt => "RECEIPT",
            FrameType::Error => "ERROR",
        })
    }
}

/// Where in the exchange something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Binding the listener.
    Bind,
    /// Waiting for (accepting) a payer.
    Accept,
    /// Connecting to the payee.
    Connect,
    /// Payee sending its REQUEST.
    SendRequest,
    /// Payer waiting for the REQUEST.
    AwaitRequest,
    /// Payer sending its PAYMENT.
    SendPayment,
    /// Payee waiting for the PAYMENT.
    AwaitPayment,
    /// Payee sending its RECEIPT.
    SendReceipt,
    /// Payer waiting for the RECEIPT.
    AwaitReceipt,
    /// Reading or writing a frame outside an exchange ([`read_frame`], [`write_frame`]).
    Frame,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Bind => "binding the tap listener",
            Step::Accept => "waiting for a payer",
            Step::Connect => "connecting to the payee",
            Step::SendRequest => "sending the REQUEST",
            Step::AwaitRequest => "waiting for the REQUEST",
            Step::SendPayment => "sending the PAYMENT",
            Step::AwaitPayment => "waiting for the PAYMENT",
            Step::SendReceipt => "sending the RECEIPT",
            Step::AwaitReceipt => "waiting for the RECEIPT",
            Step::Frame => "transferring a frame",
        })
    }
}

/// Why a tap exchange failed.
#[derive(Debug)]
pub enum TapError {
    /// The peer did not complete a frame (or connect) in time.
    Timeout {
        /// What we were doing.
        step: Step,
    },
    /// The peer closed or reset the connection (premature end of stream).
    Closed {
        /// What we were doing.
        step: Step,
    },
    /// Another I/O error (binding, connecting, the socket).
    Io {
        /// What we were doing.
        step: Step,
        /// The error.
        source: io::Error,
    },
    /// A received frame's type byte is not a known [`FrameType`].
    UnknownFrameType {
        /// The type byte.
        byte: u8,
        /// What we were doing.
        step: Step,
    },
    /// A received frame announces a payload larger than its type allows.
    FrameTooLarge {
        /// Its type.
        frame: FrameType,
        /// The announced payload length.
        len: u32,
        /// Most allowed for that type (at most [`TAP_FRAME_BYTES_MAX`]).
        max: usize,
    },
    /// A received REQUEST, PAYMENT or RECEIPT frame has an empty payload.
    EmptyFrame {
        /// Its type.
        frame: FrameType,
    },
    /// A well-formed frame of the wrong type for this point of the exchange.
    UnexpectedFrame {
        /// The type expected.
        expected: FrameType,
        /// The type received.
        got: FrameType,
    },
    /// Something we were asked to send is larger than its frame type allows
    /// (or empty); nothing was sent for it.
    MessageTooLarge {
        /// The frame type.
        frame: FrameType,
        /// Its length.
        len: usize,
        /// Most allowed.
        max: usize,
    },
    /// The timeout given is zero.
    InvalidTimeout,
    /// The peer sent an ERROR frame.
    PeerRefused {
        /// Its reason (lossily decoded, control characters replaced).
        reason: String,
        /// Whether our PAYMENT had been sent before (payer side: our TA already
        /// debited; see [`TapError::Torn`] for what to do).
        payment_sent: bool,
    },
    /// Our own callback refused: this is its reason (kept here); the peer was
    /// sent an ERROR frame with only its [`Declined`] category.
    Refused {
        /// The callback's reason.
        reason: String,
    },
    /// The exchange tore after the payer's TA produced the Payment and before the
    /// payer got the Receipt. Retry: the payee serves the same request again,
    /// the payer pays it again; the idempotent TAs resend the same bytes.
    Torn {
        /// Payer side: whether the whole PAYMENT frame was handed to the network
        /// (if `false`, the payee certainly did not process it). Payee side:
        /// always `true` (the payment was received and its receipt made).
        payment_sent: bool,
        /// What broke.
        cause: Box<TapError>,
    },
}

impl TapError {
    /// Whether running the exchange again (same request, same wallets) is the remedy.
    pub fn is_torn(&self) -> bool {
        matches!(self, TapError::Torn { .. })
    }
}

impl fmt::Display for TapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapError::Timeout { step } => write!(f, "tap timed out {step}"),
            TapError::Closed { step } => write!(f, "tap connection closed by the peer {step}"),
            TapError::Io { step, source } => write!(f, "tap I/O error {step}: {source}"),
            TapError::UnknownFrameType { byte, step } => {
                write!(f, "unknown tap frame type 0x{byte:02x} {step}")
            }
            TapError::FrameTooLarge { frame, len, max } => write!(
                f,
                "tap {frame} frame of {len} bytes is larger than allowed ({max})"
            ),
            TapError::EmptyFrame { frame } => write!(f, "empty tap {frame} frame"),
            TapError::UnexpectedFrame { expected, got } => {
                write!(f, "expected a tap {expected} frame, got {got}")
            }
            TapError::MessageTooLarge { frame, len, max } => write!(
                f,
                "cannot send a {frame} frame of {len} bytes (must be 1..={max})"
            ),
            TapError::InvalidTimeout => f.write_str("tap timeout must not be zero"),
            TapError::PeerRefused { reason, .. } => write!(f, "the peer refused: {reason}"),
            TapError::Refused { reason } => write!(f, "refused: {reason}"),
            TapError::Torn {
                payment_sent,
                cause,
            } => write!(
                f,
                "tap exchange torn ({}): {cause}; retry the exchange with the same request",
                if *payment_sent {
                    "payment sent"
                } else {
                    "payment made but not sent"
                }
            ),
        }
    }
}

impl std::error::Error for TapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TapError::Io { source, .. } => Some(source),
            TapError::Torn { cause, .. } => Some(cause.as_ref()),
            _ => None,
        }
    }
}

/// Classify an I/O error of a socket operation.
fn io_err(step: Step, e: io::Error) -> TapError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TapError::Timeout { step },
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => TapError::Closed { step },
        _ => TapError::Io { step, source: e },
    }
}

// ---- frames --------------------------------------------------------------

fn check_outgoing(frame: FrameType, payload: &[u8]) -> Result<(), TapError> {
    let max = frame.payload_max();
    if payload.len() > max || (payload.is_empty() && !frame.may_be_empty()) {
        return Err(TapError::MessageTooLarge {
            frame,
            len: payload.len(),
            max,
        });
    }
    Ok(())
}

/// Encode one frame: type byte, 4-byte big-endian length, payload.
///
/// Fails with [`TapError::MessageTooLarge`] if the payload is larger than the
/// type's [`FrameType::payload_max`] (or empty for a non-ERROR frame).
pub fn encode_frame(frame: FrameType, payload: &[u8]) -> Result<Vec<u8>, TapError> {
    check_outgoing(frame, payload)?;
    let len = u32::try_from(payload.len()).map_err(|_| TapError::MessageTooLarge {
        frame,
        len: payload.len(),
        max: frame.payload_max(),
    })?;
    let mut out = Vec::with_capacity(TAP_FRAME_HEADER_BYTES + payload.len());
    out.push(frame.byte());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Write one frame to `w` (see [`encode_frame`]); the writer's own timeouts apply.
pub fn write_frame<W: Write>(w: &mut W, frame: FrameType, payload: &[u8]) -> Result<(), TapError> {
    write_frame_at(w, frame, payload, Step::Frame)
}

fn write_frame_at<W: Write>(
    w: &mut W,
    frame: FrameType,
    payload: &[u8],
    step: Step,
) -> Result<(), TapError> {
    let bytes = encode_frame(frame, payload)?;
    w.write_all(&bytes).map_err(|e| io_err(step, e))?;
    w.flush().map_err(|e| io_err(step, e))
}

/// Read one frame from `r`, checking the type byte, the length against the
/// type's maximum (before reading the payload) and non-emptiness; the reader's
/// own timeouts apply.
pub fn read_frame<R: Read>(r: &mut R) -> Result<(FrameType, Vec<u8>), TapError> {
    read_frame_at(r, Step::Frame)
}

fn read_frame_at<R: Read>(r: &mut R, step: Step) -> Result<(FrameType, Vec<u8>), TapError> {
    let mut header = [0u8; TAP_FRAME_HEADER_BYTES];
    r.read_exact(&mut header).map_err(|e| io_err(step, e))?;
    let [ty, l0, l1, l2, l3] = header;
    let frame = FrameType::from_byte(ty).ok_or(TapError::UnknownFrameType { byte: ty, step })?;
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    let max = frame.payload_max();
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    if n > max {
        return Err(TapError::FrameTooLarge { frame, len, max });
    }
    if n == 0 && !frame.may_be_empty() {
        return Err(TapError::EmptyFrame { frame });
    }
    let mut payload = vec![0u8; n];
    r.read_exact(&mut payload).map_err(|e| io_err(step, e))?;
    Ok((frame, payload))
}

/// A peer's ERROR reason, made safe to display.
fn sanitize_reason(payload: &[u8]) -> String {
    String::from_utf8_lossy(payload)
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// A reason cut to [`TAP_ERROR_REASON_BYTES_MAX`] bytes at a character boundary.
fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= TAP_ERROR_REASON_BYTES_MAX {
        return reason;
    }
    let mut end = TAP_ERROR_REASON_BYTES_MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

// ---- a connection with a per-frame deadline --------------------------------

/// One accepted or connected socket; every frame must complete within `timeout`.
struct Conn {
    stream: TcpStream,
    timeout: Duration,
}

/// The socket, read or written against one deadline.
struct Deadlined<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Deadlined<'_> {
    fn remaining(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::ErrorKind::TimedOut.into())
        } else {
            Ok(left)
        }
    }
}

impl Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.remaining()?;
        self.stream.set_read_timeout(Some(left))?;
        let mut s = self.stream;
        s.read(buf)
    }
}

impl Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.remaining()?;
        self.stream.set_write_timeout(Some(left))?;
        let mut s = self.stream;
        s.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        let mut s = self.stream;
        s.flush()
    }
}

impl Conn {
    fn new(stream: TcpStream, timeout: Duration, step: Step) -> Result<Conn, TapError> {
        stream.set_nonblocking(false).map_err(|e| io_err(step, e))?;
        // Small frames, strict turn-taking: do not wait for Nagle.
        stream.set_nodelay(true).map_err(|e| io_err(step, e))?;
        Ok(Conn { stream, timeout })
    }

    fn deadlined(&self) -> Deadlined<'_> {
        Deadlined {
            stream: &self.stream,
            deadline: Instant::now() + self.timeout,
        }
    }

    fn send(&self, frame: FrameType, payload: &[u8], step: Step) -> Result<(), TapError> {
        write_frame_at(&mut self.deadlined(), frame, payload, step)
    }

    /// Read the frame expected at `step`; an ERROR frame becomes [`TapError::PeerRefused`].
    fn expect(
        &self,
        expected: FrameType,
        step: Step,
        payment_sent: bool,
    ) -> Result<Vec<u8>, TapError> {
        let (got, payload) = read_frame_at(&mut self.deadlined(), step)?;
        if got == FrameType::Error {
            return Err(TapError::PeerRefused {
                reason: sanitize_reason(&payload),
                payment_sent,
            });
        }
        if got != expected {
            return Err(TapError::UnexpectedFrame { expected, got });
        }
        Ok(payload)
    }

    /// Tell the peer we refuse, best effort (the peer may be gone already).
    fn send_error(&self, reason: &str, step: Step) {
        let _ = self.send(FrameType::Error, truncate_reason(reason).as_bytes(), step);
    }

    /// Half-close: everything written is delivered, then the peer reads end of stream.
    fn finish(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

// ---- payee ---------------------------------------------------------------

/// The payee's end of the tap: a TCP listener on exactly the address given.
#[derive(Debug)]
pub struct TapListener {
    listener: TcpListener,
    timeout: Duration,
    accept_timeout: Option<Duration>,
}

impl TapListener {
    /// Listen on `addr` (e.g. `127.0.0.1:0` for a free local port), with the
    /// default per-frame timeout and no accept timeout.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> Result<TapListener, TapError> {
        let listener = TcpListener::bind(addr).map_err(|e| io_err(Step::Bind, e))?;
        Ok(TapListener {
            listener,
            timeout: default_timeout(),
            accept_timeout: None,
        })
    }

    /// Set the per-frame timeout of the exchanges it serves (must not be zero).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<TapListener, TapError> {
        if timeout.is_zero() {
            return Err(TapError::InvalidTimeout);
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// Bound the wait for a payer to connect (`None`: wait as long as it takes).
    pub fn with_accept_timeout(mut self, accept_timeout: Option<Duration>) -> TapListener {
        self.accept_timeout = accept_timeout;
        self
    }

    /// The per-frame timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The address it listens on (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, TapError> {
        self.listener
            .local_addr()
            .map_err(|e| io_err(Step::Bind, e))
    }

    fn accept(&self) -> Result<(TcpStream, SocketAddr), TapError> {
        let Some(limit) = self.accept_timeout else {
            return loop {
                match self.listener.accept() {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r.map_err(|e| io_err(Step::Accept, e)),
                }
            };
        };
        let set_nb = |nb: bool| {
            self.listener
                .set_nonblocking(nb)
                .map_err(|e| io_err(Step::Accept, e))
        };
        set_nb(true)?;
        let start = Instant::now();
        let r = loop {
            match self.listener.accept() {
                Ok(ok) => break Ok(ok),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    if start.elapsed() >= limit {
                        break Err(TapError::Timeout { step: Step::Accept });
                    }
                    std::thread::sleep(ACCEPT_POLL);
                }
                Err(e) => {
                    break Err(TapError::Io {
                        step: Step::Accept,
                        source: e,
                    });
                }
            }
        };
        set_nb(false)?;
        r
    }
}

/// What a completed exchange carried (payee side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapOutcome {
    /// The payer's address.
    pub peer: SocketAddr,
    /// The Payment received.
    pub payment: Vec<u8>,
    /// The Receipt sent back.
    pub receipt: Vec<u8>,
}

/// Payee: wait for one payer on `listener` and run one exchange.
///
/// Sends `request` (the PaymentRequest envelope), reads the PAYMENT, hands it
/// to `on_payment` (the wallet: verify, credit, return the Receipt, or a
/// reason to refuse) and sends the RECEIPT, or an ERROR frame with the
/// reason. `on_payment` is called at most once, and only with a complete
/// PAYMENT frame.
///
/// Errors: [`TapError::Refused`] if `on_payment` refused (the payer hears
/// only its [`Declined`] category),
/// [`TapError::PeerRefused`] if the payer sent ERROR instead of paying,
/// [`TapError::Torn`] if the Receipt was made but could not be sent (keep
/// serving the same request: the payer will retry), and the transport errors
/// ([`TapError::Timeout`], [`TapError::Closed`], [`TapError::UnknownFrameType`],
/// [`TapError::FrameTooLarge`], ...) before that. A failed exchange leaves the
/// listener usable: call `serve_one` again.
pub fn serve_one<F>(
    listener: &TapListener,
    request: &[u8],
    on_payment: F,
) -> Result<TapOutcome, TapError>
where
    F: FnOnce(&[u8]) -> Result<Vec<u8>, Decline>,
{
    check_outgoing(FrameType::Request, request)?;
    let (stream, peer) = listener.accept()?;
    let conn = Conn::new(stream, listener.timeout, Step::Accept)?;
    conn.send(FrameType::Request, request, Step::SendRequest)?;
    let payment = conn.expect(FrameType::Payment, Step::AwaitPayment, false)?;
    let receipt = match on_payment(&payment) {
        Ok(receipt) => receipt,
        Err(d) => {
            conn.send_error(d.general.text(), Step::SendReceipt);
            conn.finish();
            return Err(TapError::Refused { reason: d.reason });
        }
    };
    if let Err(e) = check_outgoing(FrameType::Receipt, &receipt) {
        conn.send_error("payee could not send its receipt", Step::SendReceipt);
        conn.finish();
        return Err(e);
    }
    if let Err(cause) = conn.send(FrameType::Receipt, &receipt, Step::SendReceipt) {
        return Err(TapError::Torn {
            payment_sent: true,
            cause: Box::new(cause),
        });
    }
    conn.finish();
    Ok(TapOutcome {
        peer,
        payment,
        receipt,
    })
}

// ---- payer ---------------------------------------------------------------

/// The payer's end of the tap: a connection to a payee, not yet used.
#[derive(Debug)]
pub struct TapConnection {
    conn_stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
}

/// What a completed exchange carried (payer side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapPaid {
    /// The Payment sent.
    pub payment: Vec<u8>,
    /// The payee's Receipt (hand it to the wallet's `confirm`).
    pub receipt: Vec<u8>,
}

/// Payer: connect to the payee at `addr` within `timeout`, which is also the
/// per-frame timeout of the exchange (must not be zero). Every address `addr`
/// resolves to is tried in turn.
pub fn tap_connect<A: ToSocketAddrs>(
    addr: A,
    timeout: Duration,
) -> Result<TapConnection, TapError> {
    if timeout.is_zero() {
        return Err(TapError::InvalidTimeout);
    }
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| io_err(Step::Connect, e))?;
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(stream) => {
                return Ok(TapConnection {
                    conn_stream: stream,
                    peer: a,
                    timeout,
                });
            }
            Err(e) => last = Some(io_err(Step::Connect, e)),
        }
    }
    Err(last.unwrap_or_else(|| TapError::Io {
        step: Step::Connect,
        source: io::Error::new(io::ErrorKind::InvalidInput, "address resolved to nothing"),
    }))
}

impl TapConnection {
    /// The payee's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Run one exchange: read the REQUEST, hand it to `on_request` (the wallet:
    /// verify, debit, return the Payment, or a reason to refuse), send the
    /// PAYMENT and read the RECEIPT. `on_request` is called at most once, and
    /// only with a complete REQUEST frame.
    ///
    /// Errors: [`TapError::Refused`] if `on_request` refused (an ERROR frame
    /// tells the payee its [`Declined`] category, not the reason), [`TapError::PeerRefused`] if the payee sent ERROR
    /// (with `payment_sent: true` if it refused our payment), transport errors
    /// before the Payment was made, and [`TapError::Torn`] for any failure
    /// after it: retry the exchange (see the module docs).
    pub fn pay<F>(self, on_request: F) -> Result<TapPaid, TapError>
    where
        F: FnOnce(&[u8]) -> Result<Vec<u8>, Decline>,
    {
        let conn = Conn::new(self.conn_stream, self.timeout, Step::Connect)?;
        let request = conn.expect(FrameType::Request, Step::AwaitRequest, false)?;
        let payment = match on_request(&request) {
            Ok(payment) => payment,
            Err(d) => {
                conn.send_error(d.general.text(), Step::SendPayment);
                conn.finish();
                return Err(TapError::Refused { reason: d.reason });
            }
        };
        let torn = |payment_sent: bool, cause: TapError| match cause {
            e @ TapError::PeerRefused { .. } => e,
            cause => TapError::Torn {
                payment_sent,
                cause: Box::new(cause),
            },
        };
        conn.send(FrameType::Payment, &payment, Step::SendPayment)
            .map_err(|e| torn(false, e))?;
        let receipt = conn
            .expect(FrameType::Receipt, Step::AwaitReceipt, true)
            .map_err(|e| torn(true, e))?;
        conn.finish();
        Ok(TapPaid { payment, receipt })
    }
}

/// Payer: [`tap_connect`] to `addr` with the default timeout
/// ([`TAP_TIMEOUT_MS_DEFAULT`]) and [`TapConnection::pay`].
pub fn pay_over_tap<A, F>(addr: A, on_request: F) -> Result<TapPaid, TapError>
where
    A: ToSocketAddrs,
    F: FnOnce(&[u8]) -> Result<Vec<u8>, Decline>,
{
    tap_connect(addr, default_timeout())?.pay(on_request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_limits() {
        let f = encode_frame(FrameType::Payment, b"abc").unwrap();
        assert_eq!(f, [0x02, 0, 0, 0, 3, b'a', b'b', b'c']);
        let (t, p) = read_frame(&mut &f[..]).unwrap();
        assert_eq!((t, p.as_slice()), (FrameType::Payment, &b"abc"[..]));
        assert!(matches!(
            encode_frame(FrameType::Receipt, &[0; RECEIPT_BYTES_MAX + 1]),
            Err(TapError::MessageTooLarge { .. })
        ));
        assert!(matches!(
            encode_frame(FrameType::Request, &[]),
            Err(TapError::MessageTooLarge { len: 0, .. })
        ));
        assert_eq!(
            encode_frame(FrameType::Error, &[]).unwrap(),
            [4, 0, 0, 0, 0]
        );
        // Header checks happen before the payload is read.
        let huge = [0x01, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut &huge[..]),
            Err(TapError::FrameTooLarge {
                frame: FrameType::Request,
                len: u32::MAX,
                max: PAYMENT_REQUEST_BYTES_MAX
            })
        ));
        assert!(matches!(
            read_frame(&mut &[0x00u8, 0, 0, 0, 1, 0][..]),
            Err(TapError::UnknownFrameType { byte: 0, .. })
        ));
        assert!(matches!(
            read_frame(&mut &[0x03u8, 0, 0, 0, 0][..]),
            Err(TapError::EmptyFrame {
                frame: FrameType::Receipt
            })
        ));
        assert!(matches!(
            read_frame(&mut &[0x03u8, 0, 0][..]),
            Err(TapError::Closed { step: Step::Frame })
        ));
        assert!(matches!(
            read_frame(&mut &[0x03u8, 0, 0, 0, 9, 1, 2][..]),
            Err(TapError::Closed { step: Step::Frame })
        ));
        for b in 0..=255u8 {
            assert_eq!(
                FrameType::from_byte(b).map(FrameType::byte),
                (1..=4).contains(&b).then_some(b)
            );
        }
    }

    #[test]
    fn reasons_are_bounded_and_sanitized() {
        let long = "é".repeat(200); // 400 bytes
        let t = truncate_reason(&long);
        assert!(t.len() <= TAP_ERROR_REASON_BYTES_MAX && t.len() >= TAP_ERROR_REASON_BYTES_MAX - 1);
        assert_eq!(
            sanitize_reason(b"no\x1b[2J\xffway"),
            "no\u{fffd}[2J\u{fffd}way"
        );
    }
}
