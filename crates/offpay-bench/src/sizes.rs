//! Message sizes, from real wallets and a real issuer: the first payment of
//! a fresh wallet, 12.50 EUR, as in docs/PROTOCOL.md §10. Per chain
//! ([`CHAINS`]): the three pure suites (wallets and issuer CA of one suite)
//! and the two mixed ones (ML-DSA-44 wallets under an Ed25519 CA, Ed25519
//! wallets under an ML-DSA-44 CA).

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{CertField, Payment};
use offpay_protocol::{Amount, SigningKey, Suite};
use offpay_transport::qr::encode_png;
use offpay_transport::qr::parts::{PART_CODE_BYTES, PartCodes};
use offpay_wallet::vault::MemoryVault;

use crate::setup::{self, err};
use crate::sys;

/// Minor units of the measured payment (12.50).
pub const AMOUNT_MINOR: u64 = 1250;

/// Encoded sizes in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// PaymentRequest with the payee certificate inline.
    pub request_bytes: usize,
    /// Payment with a reference (SHA-256) to the payer certificate.
    pub payment_bytes: usize,
    /// Payment with the payer certificate inline (what the wallet sends).
    pub payment_bytes_with_cert: usize,
    /// Receipt.
    pub receipt_bytes: usize,
    /// LoadVoucher.
    pub voucher_bytes: usize,
    /// Smallest QR code version holding the inline payment (binary mode, level M).
    pub qr_version: u8,
    /// P-256 scheme (CA and wallets): payment with the certificate inline.
    pub payment_bytes_with_cert_p256: usize,
    /// Smallest QR code version holding the P-256 inline payment.
    pub qr_version_p256: u8,
    /// Per chain of [`CHAINS`], in that order: the QR-carried messages,
    /// their QR version and code count.
    pub by_suite: [SuiteSizes; 5],
}

/// The chains measured, `(wallet suite, issuer CA suite)`: Ed25519, P-256,
/// ML-DSA-44, then ML-DSA-44 wallets under an Ed25519 CA and Ed25519
/// wallets under an ML-DSA-44 CA.
pub const CHAINS: [(Suite, Suite); 5] = [
    (Suite::Ed25519, Suite::Ed25519),
    (Suite::P256, Suite::P256),
    (Suite::MlDsa44, Suite::MlDsa44),
    (Suite::MlDsa44, Suite::Ed25519),
    (Suite::Ed25519, Suite::MlDsa44),
];

/// How a message travels as QR codes: one code up to [`PART_CODE_BYTES`]
/// (version 20-M), else multi-part codes all at one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QrLayout {
    /// Encoded size of the message.
    pub bytes: usize,
    /// QR version of the code (of each part).
    pub version: u8,
    /// Codes needed (1: a single code).
    pub codes: usize,
}

/// The QR-carried messages of one chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuiteSizes {
    /// The wallets' suite ([`Suite::name`]: "ed25519", "p256", "ml-dsa-44").
    pub suite: &'static str,
    /// The issuer CA's suite (it signs the wallet certificates).
    pub ca_suite: &'static str,
    /// PaymentRequest, payee certificate inline.
    pub request: QrLayout,
    /// Payment, payer certificate inline.
    pub payment_inline: QrLayout,
    /// Payment, payer certificate by reference.
    pub payment_reference: QrLayout,
    /// Receipt.
    pub receipt: QrLayout,
}

/// Really encode `bytes` as the CLI would (not only look up a table).
fn layout(bytes: &[u8]) -> Result<QrLayout, String> {
    if bytes.len() <= PART_CODE_BYTES {
        let info = encode_png(bytes, std::io::sink(), 1).map_err(err("QR code"))?;
        return Ok(QrLayout {
            bytes: bytes.len(),
            version: info.version,
            codes: 1,
        });
    }
    let codes = PartCodes::new(bytes, PART_CODE_BYTES).map_err(err("QR parts"))?;
    Ok(QrLayout {
        bytes: bytes.len(),
        version: codes.info.version,
        codes: codes.parts.len(),
    })
}

/// Sizes of one scheme.
struct Scheme {
    request: usize,
    payment: usize,
    payment_by_reference: usize,
    receipt: usize,
    voucher: usize,
    inline_payment: Vec<u8>,
    layouts: SuiteSizes,
}

fn scheme(suite: Suite, ca_suite: Suite) -> Result<Scheme, String> {
    let now = sys::now();
    let store = offpay_store::open_sqlite_memory().map_err(err("in-memory store"))?;
    let issuer = setup::issuer(store, ca_suite, now)?;
    let mut payer = setup::wallet(&issuer, MemoryVault::new(), suite, "payer", now)?;
    let mut payee = setup::wallet(&issuer, MemoryVault::new(), suite, "payee", now)?;
    let voucher = issuer
        .load(
            &payee.wallet_id(),
            Amount::new(AMOUNT_MINOR, issuer.currency()),
            "size-probe",
            now,
        )
        .map_err(err("load"))?;
    let x = setup::pay(
        &mut payer,
        &mut payee,
        Amount::new(AMOUNT_MINOR, issuer.currency()),
        now,
    )?;
    // The wallet always sends its certificate inline; the reference form is
    // the same payment with the certificate replaced by its SHA-256, signed
    // again by a key of the same suite (same signature size).
    let signed = Signed::<Payment>::decode(&x.payment).map_err(err("decode payment"))?;
    let mut body = signed.body().clone();
    body.payer_cert = CertField::Reference(body.payer_cert.reference());
    let key = SigningKey::from_seed(suite, &[0x42; 32]).map_err(err("test key"))?;
    let by_reference = Signed::sign(body, &key).into_bytes();
    Signed::<Payment>::decode(&by_reference).map_err(err("decode payment by reference"))?;
    let layouts = SuiteSizes {
        suite: suite.name(),
        ca_suite: ca_suite.name(),
        request: layout(&x.request)?,
        payment_inline: layout(&x.payment)?,
        payment_reference: layout(&by_reference)?,
        receipt: layout(&x.receipt)?,
    };
    Ok(Scheme {
        layouts,
        request: x.request.len(),
        payment: x.payment.len(),
        payment_by_reference: by_reference.len(),
        receipt: x.receipt.len(),
        voucher: voucher.len(),
        inline_payment: x.payment,
    })
}

/// Measure every size.
pub fn measure() -> Result<Sizes, String> {
    let [ed, p256, mldsa, mldsa_under_ed, ed_under_mldsa] =
        CHAINS.map(|(wallet, ca)| scheme(wallet, ca));
    let (ed, p256) = (ed?, p256?);
    // One code of the smallest version (binary mode, level M), really
    // encoded, not only looked up in the capacity table: the Ed25519 and
    // P-256 payments fit one (an ML-DSA-44 one fits no single code).
    let qr_version = |s: &Scheme| -> Result<u8, String> {
        Ok(encode_png(&s.inline_payment, std::io::sink(), 1)
            .map_err(err("QR code"))?
            .version)
    };
    Ok(Sizes {
        request_bytes: ed.request,
        payment_bytes: ed.payment_by_reference,
        payment_bytes_with_cert: ed.payment,
        receipt_bytes: ed.receipt,
        voucher_bytes: ed.voucher,
        qr_version: qr_version(&ed)?,
        payment_bytes_with_cert_p256: p256.payment,
        qr_version_p256: qr_version(&p256)?,
        by_suite: [
            ed.layouts,
            p256.layouts,
            mldsa?.layouts,
            mldsa_under_ed?.layouts,
            ed_under_mldsa?.layouts,
        ],
    })
}
