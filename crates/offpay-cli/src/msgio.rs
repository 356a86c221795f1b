//! Carrying a protocol message offline: as a file (the binary message
//! itself), as a QR code (a PNG, or Unicode blocks on the terminal), and read
//! back from either.

use std::path::{Path, PathBuf};

use clap::Args;
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{LoadVoucher, Payment, PaymentRequest, Receipt, Redeem};
use offpay_transport::qr::parts::{self, PART_CODE_BYTES, PartCodes};
use offpay_transport::qr::{self, QR_SCALE_DEFAULT, TerminalTheme};
use serde_json::{Map, Value, json};

use crate::out::Failure;
use crate::walletdir::{read_bounded, write_atomic};

/// Largest message file read (the largest offline message is a Payment of
/// at most `PAYMENT_BYTES_MAX` bytes; the decoders check the exact limits).
pub(crate) const MESSAGE_FILE_BYTES_MAX: u64 = 16 << 10;

/// Where an incoming message comes from.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct InArgs {
    /// The message file (the binary message, as written by --out).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Read the message from QR codes: one PNG, the PNGs of a multi-part
    /// message (any order), or one animated PNG of all its parts.
    #[arg(long, value_name = "PNG", num_args = 1.., conflicts_with = "file")]
    pub from_qr: Vec<PathBuf>,
}

/// Where an outgoing message goes (any combination).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct OutArgs {
    /// Write the message to FILE (binary).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the message as a QR code PNG.
    #[arg(long, value_name = "PNG")]
    pub qr: Option<PathBuf>,
    /// Show the message as a QR code in the terminal.
    #[arg(long)]
    pub show_qr: bool,
    /// Largest QR code, in bytes: a longer message becomes several codes
    /// (the default, 666, is one version-20 code at level M).
    #[arg(long, value_name = "BYTES", default_value_t = PART_CODE_BYTES)]
    pub qr_part_bytes: usize,
}

/// The first bytes of every PNG file.
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// What `bytes` are, in words ("a payment"), if they are an offline message
/// (or a PNG image) at all.
pub(crate) fn identify(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(PNG_MAGIC) {
        return Some("a PNG image");
    }
    if Signed::<PaymentRequest>::decode(bytes).is_ok() {
        Some("a payment request")
    } else if Signed::<Payment>::decode(bytes).is_ok() {
        Some("a payment")
    } else if Signed::<Receipt>::decode(bytes).is_ok() {
        Some("a receipt")
    } else if Signed::<LoadVoucher>::decode(bytes).is_ok() {
        Some("a load voucher")
    } else if Signed::<Redeem>::decode(bytes).is_ok() {
        Some("a redeem")
    } else {
        None
    }
}

/// Why `bytes` are not the `what` expected, when they are something else
/// that can be named: "this is a payment, not a receipt" (with the step that
/// takes it), or a PNG given as a message file.
pub(crate) fn mismatch(bytes: &[u8], what: &str) -> Option<String> {
    let is = identify(bytes)?;
    let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    if is == "a PNG image" && what == "load voucher" {
        return Some("this file is a PNG image, not a load voucher file (`offpay admin load --out FILE` writes one)".into());
    }
    if is == "a PNG image" {
        return Some(format!(
            "this file is a PNG image, not {article} {what} file: to read the QR code in it, pass it with --from-qr"
        ));
    }
    if is.strip_prefix("a ") == Some(what) {
        return None;
    }
    let hint = match is {
        "a payment request" => " (a payer pays it: `offpay wallet --dir PAYER pay FILE`)",
        "a payment" => {
            " (the payee takes it: `offpay wallet --dir PAYEE receive FILE --out RECEIPT`)"
        }
        "a receipt" => " (the payer records it: `offpay wallet --dir PAYER confirm FILE`)",
        "a load voucher" => " (`offpay wallet --dir DIR load --voucher FILE`)",
        _ => "",
    };
    Some(format!("this is {is}, not {article} {what}{hint}"))
}

impl InArgs {
    /// The message bytes; `what` names the message for errors ("payment request").
    pub(crate) fn read(&self, what: &str) -> Result<Vec<u8>, Failure> {
        if let Some(p) = &self.file {
            let bytes = read_bounded(p, MESSAGE_FILE_BYTES_MAX).map_err(|e| {
                Failure::io(format!("cannot read the {what} file {}", p.display()), &e)
            })?;
            if bytes.starts_with(PNG_MAGIC) {
                return Err(Failure::usage(format!(
                    "{} is a PNG image, not a {what} file: to read the QR code in it, use --from-qr {}",
                    p.display(),
                    p.display()
                )));
            }
            return Ok(bytes);
        }
        if !self.from_qr.is_empty() {
            let names: Vec<String> = self
                .from_qr
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            return parts::decode_files(&self.from_qr).map_err(|e| {
                Failure::refused(
                    "qr_unreadable",
                    format!("cannot read a QR code from {}: {e}", names.join(", ")),
                )
            });
        }
        Err(Failure::usage(format!(
            "give the {what}: a FILE, or --from-qr PNG... (one code, all parts, or an animated PNG)"
        )))
    }
}

/// What writing a message did, for the command's output.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Lines for people.
    pub human: String,
    /// JSON fields (`out`, `qr`, `qr_version`, `qr_text`).
    pub json: Map<String, Value>,
}

impl OutArgs {
    /// Whether any destination was named.
    pub(crate) fn given(&self) -> bool {
        self.out.is_some() || self.qr.is_some() || self.show_qr
    }

    /// A usage error unless a destination was named (checked before the
    /// wallet acts, so a forgotten flag changes nothing).
    pub(crate) fn require(&self, what: &str) -> Result<(), Failure> {
        if self.given() {
            Ok(())
        } else {
            Err(Failure::usage(format!(
                "say where the {what} goes: --out FILE, --qr FILE.png and/or --show-qr"
            )))
        }
    }

    /// Check, before the wallet acts, that every file destination can be
    /// written (its directory exists and takes a new file; it is not a
    /// directory), so a wrong path is refused with nothing changed.
    pub(crate) fn check(&self, what: &str) -> Result<(), Failure> {
        let range = parts::PART_CODE_BYTES_MIN..=qr::QR_BYTES_MAX;
        if !range.contains(&self.qr_part_bytes) {
            return Err(Failure::usage(format!(
                "--qr-part-bytes {} is out of range ({}..={} bytes); nothing was done",
                self.qr_part_bytes,
                range.start(),
                range.end()
            )));
        }
        for p in self.out.iter().chain(self.qr.iter()) {
            check_writable(p).map_err(|why| {
                Failure::refused(
                    "io",
                    format!(
                        "cannot write the {what} to {}: {why}; nothing was done",
                        p.display()
                    ),
                )
            })?;
        }
        Ok(())
    }

    /// Write `bytes` everywhere asked. The wallet is idempotent: if this fails
    /// after it acted, running the same command again gives the same bytes.
    pub(crate) fn write(&self, bytes: &[u8], what: &str) -> Result<Written, Failure> {
        let mut w = Written::default();
        let retry = "; the wallet gives the same message again if you repeat the command";
        if let Some(p) = &self.out {
            write_atomic(p, bytes).map_err(|f| match f {
                Failure::Refused { code, message } => Failure::Refused {
                    code,
                    message: format!("{message}{retry}"),
                },
                f => f,
            })?;
            w.human.push_str(&format!(
                "  {what} written to {} ({} bytes)\n",
                p.display(),
                bytes.len()
            ));
            w.json.insert("out".into(), json!(p.display().to_string()));
        }
        let multi = (self.qr.is_some() || self.show_qr) && bytes.len() > self.qr_part_bytes;
        if multi {
            self.write_parts(bytes, what, retry, &mut w)?;
        } else {
            self.write_single(bytes, what, retry, &mut w)?;
        }
        w.json.insert("bytes".into(), json!(bytes.len()));
        Ok(w)
    }
}

impl OutArgs {
    /// `bytes` as one QR code (PNG and/or terminal).
    fn write_single(
        &self,
        bytes: &[u8],
        what: &str,
        retry: &str,
        w: &mut Written,
    ) -> Result<(), Failure> {
        if let Some(p) = &self.qr {
            let info = qr::encode_png_file(bytes, p, QR_SCALE_DEFAULT).map_err(|e| {
                Failure::refused(
                    "qr",
                    format!("cannot write the QR code {}: {e}{retry}", p.display()),
                )
            })?;
            w.human.push_str(&format!(
                "  {what} written as a QR code to {} (version {}, {}x{} modules)\n",
                p.display(),
                info.version,
                info.modules,
                info.modules
            ));
            w.json.insert("qr".into(), json!(p.display().to_string()));
            w.json.insert("qr_version".into(), json!(info.version));
        }
        if self.show_qr {
            let text = qr::encode_terminal(bytes).map_err(|e| {
                Failure::refused("qr", format!("cannot draw the QR code: {e}{retry}"))
            })?;
            w.human.push_str(&text);
            w.json.insert("qr_text".into(), json!(text));
        }
        Ok(())
    }

    /// `bytes` as a multi-part QR message: an animated PNG at `--qr` plus one
    /// PNG per part next to it, and/or each part drawn on the terminal.
    fn write_parts(
        &self,
        bytes: &[u8],
        what: &str,
        retry: &str,
        w: &mut Written,
    ) -> Result<(), Failure> {
        let refused = |e: qr::QrError| {
            Failure::refused("qr", format!("cannot make the QR codes: {e}{retry}"))
        };
        let codes = PartCodes::new(bytes, self.qr_part_bytes).map_err(refused)?;
        let n = codes.parts.len();
        w.json
            .insert("qr_version".into(), json!(codes.info.version));
        w.json.insert("qr_parts".into(), json!(n));
        if let Some(p) = &self.qr {
            let files = parts::encode_parts_files(bytes, p, self.qr_part_bytes, QR_SCALE_DEFAULT)
                .map_err(|e| {
                Failure::refused(
                    "qr",
                    format!("cannot write the QR codes {}: {e}{retry}", p.display()),
                )
            })?;
            let names: Vec<String> = files
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            w.human.push_str(&format!(
                "  {what} written as {n} QR codes (version {}, {}x{} modules each): animated in {}, one per file in {}\n",
                files.info.version,
                files.info.modules,
                files.info.modules,
                p.display(),
                names.join(", ")
            ));
            w.json.insert("qr".into(), json!(p.display().to_string()));
            w.json.insert("qr_files".into(), json!(names));
        }
        if self.show_qr {
            let mut text = String::new();
            for i in 0..n {
                let code = codes
                    .terminal(i, TerminalTheme::DarkBackground)
                    .ok_or_else(|| Failure::refused("qr", format!("no QR part {}", i + 1)))?;
                text.push_str(&format!("QR part {} of {n}:\n", i + 1));
                text.push_str(&code);
            }
            w.human.push_str(&text);
            w.json.insert("qr_text".into(), json!(text));
        }
        Ok(())
    }
}

/// Whether a file can be written at `p` (see [`OutArgs::check`]).
pub(crate) fn check_writable(p: &Path) -> Result<(), String> {
    if p.is_dir() {
        return Err("it is a directory".into());
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(format!("the directory {} does not exist", parent.display()));
    }
    tempfile::NamedTempFile::new_in(parent)
        .map(drop)
        .map_err(|e| format!("the directory {} takes no new file ({e})", parent.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritable_destinations_are_named() {
        let d = tempfile::tempdir().unwrap();
        assert!(check_writable(&d.path().join("x.bin")).is_ok());
        assert!(check_writable(d.path()).unwrap_err().contains("directory"));
        assert!(
            check_writable(&d.path().join("missing/x.bin"))
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn pngs_and_wrong_messages_are_named() {
        assert!(
            mismatch(b"\x89PNG\r\n\x1a\nrest", "payment request")
                .unwrap()
                .contains("--from-qr")
        );
        assert_eq!(identify(b"nothing at all"), None);
        assert_eq!(mismatch(b"nothing at all", "receipt"), None);
    }
}
