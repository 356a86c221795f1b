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

/// Revocation sizes at one count of revoked certificates
/// ([`crl_sizes`]): the complete CRL against a delta of [`CRL_DELTA_NEW`]
/// new revocations, each alone and inside a signed SyncResponse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrlSizes {
    /// Revoked certificates listed (unexpired).
    pub revoked: usize,
    /// The complete CRL, DER.
    pub full_crl_bytes: usize,
    /// The SyncResponse carrying it (no vouchers, certificate or policy).
    pub full_response_bytes: usize,
    /// Whether the complete CRL fits a SyncResponse
    /// (`CRL_FIELD_BYTES_MAX`, the same as `pki::CRL_BYTES_MAX`).
    pub full_fits: bool,
    /// Milliseconds to build and sign the complete CRL.
    pub full_build_ms: u64,
    /// The delta CRL of [`CRL_DELTA_NEW`] revocations, DER.
    pub delta_crl_bytes: usize,
    /// The SyncResponse carrying it.
    pub delta_response_bytes: usize,
    /// The SyncResponse when nothing changed (no CRL at all).
    pub unchanged_response_bytes: usize,
}

/// New revocations in the measured delta.
pub const CRL_DELTA_NEW: usize = 10;

/// Measure [`CrlSizes`] at each count: generated revocation records
/// (fixed-width wallet serials from 2^62, a revocation date each,
/// keyCompromise), an Ed25519 issuer CA, a SyncResponse as the issuer
/// signs it at a sync with nothing else to say.
pub fn crl_sizes(counts: &[usize]) -> Result<Vec<CrlSizes>, String> {
    use offpay_protocol::messages::{CRL_FIELD_BYTES_MAX, Checkpoint, SyncResponse, WalletCommand};
    use offpay_protocol::pki::{self, RevocationReason, RevokedEntry};
    use offpay_protocol::{Currency, Hash32, UnixSeconds, WalletId};

    let now = UnixSeconds(1_795_000_000);
    let day = 86_400;
    let root_key = SigningKey::from_seed(Suite::Ed25519, &[1; 32]).map_err(err("key"))?;
    let root = pki::issue_root(
        &root_key,
        "offpay scheme root",
        1,
        now,
        now.plus(3650 * day),
    )
    .map_err(err("root"))?;
    let key = SigningKey::from_seed(Suite::Ed25519, &[2; 32]).map_err(err("key"))?;
    let issuer = pki::issue_issuer_ca(
        &root_key,
        &root,
        &key.public_key(),
        "offpay issuer",
        2,
        now,
        now.plus(365 * day),
    )
    .map_err(err("issuer CA"))?;
    let entry = |i: usize| RevokedEntry {
        serial: (1u64 << 62) + i as u64,
        revoked_at: UnixSeconds(now.0 - (i as u64 % (30 * day))),
        reason: RevocationReason::KeyCompromise,
    };
    let response = |crl: Option<Vec<u8>>, crl_delta: Option<Vec<u8>>| {
        let eur = Currency::new("EUR").ok_or("currency")?;
        let body = SyncResponse {
            wallet: WalletId([0x5a; 16]),
            report_seq: 41,
            time: now,
            checkpoint: Checkpoint {
                number: 40,
                seq: 1_000,
                head: Hash32([0x33; 32]),
                balance: Amount::new(12_345, eur),
                load_seq: 12,
                time: now,
                report_seq: 41,
            },
            vouchers: Vec::new(),
            crl,
            crl_delta,
            certificate: None,
            policy: None,
            command: WalletCommand::None,
            directory: None,
            rekey: None,
        };
        Ok::<usize, String>(Signed::sign(body, &key).into_bytes().len())
    };
    let mut out = Vec::with_capacity(counts.len());
    for &n in counts {
        let entries: Vec<RevokedEntry> = (0..n).map(entry).collect();
        let t = std::time::Instant::now();
        let full = pki::issue_crl_der_unbounded(&key, &issuer, 7, now, now.plus(day), &entries)
            .map_err(err("complete CRL"))?;
        let full_build_ms = t.elapsed().as_millis() as u64;
        let new: Vec<RevokedEntry> = (n..n + CRL_DELTA_NEW).map(entry).collect();
        let delta = pki::issue_delta_crl(
            &key,
            &issuer,
            8,
            7,
            now,
            now.plus(day),
            pki::CrlChanges {
                revoked: &new,
                removed: &[],
            },
        )
        .map_err(err("delta CRL"))?;
        out.push(CrlSizes {
            revoked: n,
            full_crl_bytes: full.len(),
            full_fits: full.len() <= CRL_FIELD_BYTES_MAX,
            full_response_bytes: response(Some(full), None)?,
            full_build_ms,
            delta_crl_bytes: delta.der().len(),
            delta_response_bytes: response(None, Some(delta.der().to_vec()))?,
            unchanged_response_bytes: response(None, None)?,
        });
    }
    Ok(out)
}
