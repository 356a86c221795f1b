//! The messages of the offline protocol and of sync, field by field.
//!
//! Each body is a deterministic CBOR map with unsigned-integer keys; key 0 is
//! the message type, key 1 the protocol version, and the other keys are listed
//! on each struct. Every body except [`DoubleSpendProof`] travels inside a
//! COSE_Sign1 envelope ([`crate::envelope::Signed`]). docs/PROTOCOL.md is the
//! byte-exact description; the tests check its vectors.

use crate::cbor::{DecodeError, Decoder, Encoder, MapReader};
use crate::envelope::{Body, Signed};
use crate::types::{
    Amount, Currency, Hash32, IssuerId, IssuerStatus, Nonce, UnixSeconds, WalletId,
};

/// Largest certificate carried inline in a message (DER bytes): an ML-DSA-44
/// key certified by an ML-DSA-44 CA ([`crate::pki::CERTIFICATE_BYTES_MAX`]).
pub const CERT_FIELD_BYTES_MAX: usize = crate::pki::CERTIFICATE_BYTES_MAX;
/// Largest PaymentRequest envelope.
pub const PAYMENT_REQUEST_BYTES_MAX: usize = 8352;
/// Largest Payment envelope.
pub const PAYMENT_BYTES_MAX: usize = 8352;
/// Largest Receipt envelope.
pub const RECEIPT_BYTES_MAX: usize = 2880;
/// Largest LoadVoucher envelope.
pub const LOAD_VOUCHER_BYTES_MAX: usize = 2880;
/// Largest Redeem envelope.
pub const REDEEM_BYTES_MAX: usize = 2880;
/// Largest RiskPolicy envelope.
pub const RISK_POLICY_BYTES_MAX: usize = 2880;
/// Most entries in each list of a SyncReport or SyncResponse.
pub const SYNC_ENTRIES_MAX: usize = 4096;
/// Largest SyncReport envelope: a full log of inline-certificate payments.
pub const SYNC_REPORT_BYTES_MAX: usize = 34 << 20;
/// Largest CRL carried in a SyncResponse (DER bytes).
pub const CRL_FIELD_BYTES_MAX: usize = 1 << 20;
/// Largest SyncResponse envelope.
pub const SYNC_RESPONSE_BYTES_MAX: usize = 15 << 20;
/// Largest DoubleSpendProof encoding.
pub const DOUBLE_SPEND_PROOF_BYTES_MAX: usize = 28 << 10;
/// Largest RetainedDoubleSpendProof envelope.
pub const RETAINED_DOUBLE_SPEND_PROOF_BYTES_MAX: usize = 28 << 10;
/// Largest lock reason text.
pub const REASON_BYTES_MAX: usize = 128;

/// Bytes of one byte string's CBOR head when the string holds up to 64 KiB.
const BYTES_HEAD_MAX: usize = 3;
/// Bound on everything of an envelope but its payload's variable fields: the
/// tag, array, protected header, the payload's head, every fixed-size field
/// (ids, hashes, times, amounts, sequence numbers: 256 bytes) and the
/// signature of the longest suite with its head (ML-DSA-44, 2420 bytes).
const ENVELOPE_FIXED_BYTES_MAX: usize = 256 + BYTES_HEAD_MAX + crate::suite::SIGNATURE_BYTES_MAX;

// The limits fit their containers (checked at compile time).
// A PaymentRequest or Payment carrying its certificate inline.
const _: () =
    assert!(ENVELOPE_FIXED_BYTES_MAX + BYTES_HEAD_MAX + CERT_FIELD_BYTES_MAX <= PAYMENT_BYTES_MAX);
const _: () = assert!(
    ENVELOPE_FIXED_BYTES_MAX + BYTES_HEAD_MAX + CERT_FIELD_BYTES_MAX <= PAYMENT_REQUEST_BYTES_MAX
);
// Receipts, vouchers, redeems and policies carry fixed-size fields only.
const _: () = assert!(ENVELOPE_FIXED_BYTES_MAX <= RECEIPT_BYTES_MAX);
const _: () = assert!(ENVELOPE_FIXED_BYTES_MAX <= LOAD_VOUCHER_BYTES_MAX);
const _: () = assert!(ENVELOPE_FIXED_BYTES_MAX <= REDEEM_BYTES_MAX);
const _: () = assert!(ENVELOPE_FIXED_BYTES_MAX <= RISK_POLICY_BYTES_MAX);
// A SyncResponse at its fullest: every voucher at its largest, the largest
// CRL (a 5-byte head), a certificate, a policy and a lock reason.
const _: () = assert!(
    ENVELOPE_FIXED_BYTES_MAX
        + SYNC_ENTRIES_MAX * (BYTES_HEAD_MAX + LOAD_VOUCHER_BYTES_MAX)
        + 5
        + CRL_FIELD_BYTES_MAX
        + BYTES_HEAD_MAX
        + CERT_FIELD_BYTES_MAX
        + BYTES_HEAD_MAX
        + RISK_POLICY_BYTES_MAX
        + BYTES_HEAD_MAX
        + REASON_BYTES_MAX
        <= SYNC_RESPONSE_BYTES_MAX
);
// A DoubleSpendProof: two entries and two certificates at their largest.
const _: () = assert!(
    16 + 2 * (BYTES_HEAD_MAX + PAYMENT_BYTES_MAX) + 2 * (BYTES_HEAD_MAX + CERT_FIELD_BYTES_MAX)
        <= DOUBLE_SPEND_PROOF_BYTES_MAX
);
// A RetainedDoubleSpendProof: one entry and two certificates at their largest.
const _: () = assert!(
    ENVELOPE_FIXED_BYTES_MAX
        + BYTES_HEAD_MAX
        + PAYMENT_BYTES_MAX
        + 2 * (BYTES_HEAD_MAX + CERT_FIELD_BYTES_MAX)
        <= RETAINED_DOUBLE_SPEND_PROOF_BYTES_MAX
);
// Redeems travel in a report's outgoing list, whose entries may be Payments.
const _: () = assert!(REDEEM_BYTES_MAX <= PAYMENT_BYTES_MAX);
// A SyncReport whose outgoing and incoming lists together hold SYNC_ENTRIES_MAX
// entries at their largest (a wallet's log is bounded by that; the wallet
// asserts its own evidence fits too).
const _: () = assert!(
    ENVELOPE_FIXED_BYTES_MAX + SYNC_ENTRIES_MAX * (BYTES_HEAD_MAX + PAYMENT_BYTES_MAX + 9)
        <= SYNC_REPORT_BYTES_MAX
);
// 64 KiB strings have 3-byte heads (the bound used above).
const _: () = assert!(PAYMENT_BYTES_MAX <= 0xffff && CERT_FIELD_BYTES_MAX <= 0xffff);

/// Message type numbers (key 0 of every body).
pub mod message_type {
    /// [`super::PaymentRequest`]
    pub const PAYMENT_REQUEST: u64 = 1;
    /// [`super::Payment`]
    pub const PAYMENT: u64 = 2;
    /// [`super::Receipt`]
    pub const RECEIPT: u64 = 3;
    /// [`super::LoadVoucher`]
    pub const LOAD_VOUCHER: u64 = 4;
    /// [`super::Redeem`]
    pub const REDEEM: u64 = 5;
    /// [`super::SyncReport`]
    pub const SYNC_REPORT: u64 = 6;
    /// [`super::SyncResponse`]
    pub const SYNC_RESPONSE: u64 = 7;
    /// [`super::RiskPolicy`]
    pub const RISK_POLICY: u64 = 9;
    /// [`super::DoubleSpendProof`]
    pub const DOUBLE_SPEND_PROOF: u64 = 10;
    /// [`super::PinUnlockGrant`]
    pub const PIN_UNLOCK_GRANT: u64 = 11;
    /// [`super::PinLockedRequest`]
    pub const PIN_LOCKED_REQUEST: u64 = 12;
    /// [`super::PinUnlock`]
    pub const PIN_UNLOCK: u64 = 13;
    /// [`super::Directory`]
    pub const DIRECTORY: u64 = 14;
    /// [`super::SettlementStatement`]
    pub const SETTLEMENT_STATEMENT: u64 = 15;
    /// [`crate::bundle::EvidenceBundle`]
    pub const EVIDENCE_BUNDLE: u64 = 16;
    /// [`super::RetainedDoubleSpendProof`]
    pub const RETAINED_DOUBLE_SPEND_PROOF: u64 = 17;
}

// ---- field helpers -------------------------------------------------------

fn wallet(d: &mut Decoder<'_>, f: &'static str) -> Result<WalletId, DecodeError> {
    d.fixed::<16>(f).map(WalletId)
}
fn issuer_id(d: &mut Decoder<'_>, f: &'static str) -> Result<IssuerId, DecodeError> {
    d.fixed::<16>(f).map(IssuerId)
}
fn hash(d: &mut Decoder<'_>, f: &'static str) -> Result<Hash32, DecodeError> {
    d.fixed::<32>(f).map(Hash32)
}
fn nonce(d: &mut Decoder<'_>, f: &'static str) -> Result<Nonce, DecodeError> {
    d.fixed::<16>(f).map(Nonce)
}
fn time(d: &mut Decoder<'_>, f: &'static str) -> Result<UnixSeconds, DecodeError> {
    d.uint(f).map(UnixSeconds)
}
fn currency(d: &mut Decoder<'_>) -> Result<Currency, DecodeError> {
    Currency::new(d.text("currency", 3)?).ok_or(DecodeError::InvalidValue("currency"))
}
/// A positive amount: minor units at key `k`, currency at key `k + 1`.
fn amount(m: &mut MapReader<'_, '_>, k: u64, positive: bool) -> Result<Amount, DecodeError> {
    let minor = m.required(k, "amount")?.uint("amount")?;
    if positive && minor == 0 {
        return Err(DecodeError::InvalidValue("amount must be positive"));
    }
    let cur = currency(m.required(k + 1, "currency")?)?;
    Ok(Amount::new(minor, cur))
}
fn put_amount(e: &mut Encoder, k: u64, a: &Amount) {
    e.uint(k).uint(a.minor);
    e.uint(k + 1).text(a.currency.as_str());
}

/// A certificate carried in a message: inline DER, or a reference (SHA-256 of
/// the DER) to one the receiver already holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertField {
    /// The whole DER certificate.
    Inline(Vec<u8>),
    /// SHA-256 of a DER certificate the receiver is expected to hold.
    Reference(Hash32),
}

impl CertField {
    /// The reference of this certificate (hashing the inline DER if needed).
    pub fn reference(&self) -> Hash32 {
        match self {
            CertField::Inline(der) => Hash32::digest(der),
            CertField::Reference(h) => *h,
        }
    }
    /// Keys `k` (inline) and `k + 1` (reference): exactly one is present.
    fn read(m: &mut MapReader<'_, '_>, k: u64) -> Result<CertField, DecodeError> {
        let inline = match m.optional(k)? {
            Some(d) => Some(d.bytes("certificate", CERT_FIELD_BYTES_MAX)?.to_vec()),
            None => None,
        };
        let reference = match m.optional(k + 1)? {
            Some(d) => Some(hash(d, "certificate reference")?),
            None => None,
        };
        match (inline, reference) {
            (Some(der), None) => Ok(CertField::Inline(der)),
            (None, Some(h)) => Ok(CertField::Reference(h)),
            (None, None) => Err(DecodeError::MissingField("certificate")),
            (Some(_), Some(_)) => Err(DecodeError::InvalidValue("both certificate and reference")),
        }
    }
    fn write(&self, e: &mut Encoder, k: u64) {
        match self {
            CertField::Inline(der) => e.uint(k).bytes(der),
            CertField::Reference(h) => e.uint(k + 1).bytes(&h.0),
        };
    }
}

/// A suite given by its COSE algorithm identifier.
fn suite_alg(d: &mut Decoder<'_>, f: &'static str) -> Result<crate::Suite, DecodeError> {
    crate::Suite::from_cose_alg(d.int(f)?).ok_or(DecodeError::InvalidValue(f))
}

// ---- PaymentRequest ------------------------------------------------------

/// Payee -> payer: "pay me this amount against this fresh nonce". Signed by the payee TA.
///
/// Keys: 2 payee, 3 amount, 4 currency, 5 nonce, 6 created, 7 expires,
/// 8 payee certificate (DER) or 9 its reference; optional: 10 the payer
/// certificates the payee holds (array of 8-byte reference prefixes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequest {
    /// The payee wallet.
    pub payee: WalletId,
    /// What is asked.
    pub amount: Amount,
    /// Fresh random nonce; the payee TA keeps it pending until used or expired.
    pub nonce: Nonce,
    /// When the payee made the request (payee TA time).
    pub created: UnixSeconds,
    /// After this time the payer refuses to pay and the payee refuses the payment.
    pub expires: UnixSeconds,
    /// The payee's wallet certificate.
    pub payee_cert: CertField,
    /// The first 8 bytes of the references (SHA-256 of the DER) of the
    /// payer certificates the payee TA holds, at most
    /// [`KNOWN_CERTS_MAX`]: a payer whose certificate is listed may send
    /// it by reference ([`CertField::Reference`]). Empty: send it inline.
    pub known_certs: Vec<[u8; KNOWN_CERT_PREFIX_BYTES]>,
}

/// Most certificate prefixes a PaymentRequest lists (key 10).
pub const KNOWN_CERTS_MAX: usize = 16;
/// Bytes of a reference prefix in a PaymentRequest's key 10.
pub const KNOWN_CERT_PREFIX_BYTES: usize = 8;

impl Body for PaymentRequest {
    const TYPE: u64 = message_type::PAYMENT_REQUEST;
    const NAME: &'static str = "PaymentRequest";
    const BYTES_MAX: usize = PAYMENT_REQUEST_BYTES_MAX;
    fn field_count(&self) -> usize {
        7 + !self.known_certs.is_empty() as usize
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).bytes(&self.payee.0);
        put_amount(e, 3, &self.amount);
        e.uint(5).bytes(&self.nonce.0);
        e.uint(6).uint(self.created.0);
        e.uint(7).uint(self.expires.0);
        self.payee_cert.write(e, 8);
        if !self.known_certs.is_empty() {
            e.uint(10).array(self.known_certs.len());
            for k in &self.known_certs {
                e.bytes(k);
            }
        }
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        Ok(PaymentRequest {
            payee: wallet(m.required(2, "payee")?, "payee")?,
            amount: amount(m, 3, true)?,
            nonce: nonce(m.required(5, "nonce")?, "nonce")?,
            created: time(m.required(6, "created")?, "created")?,
            expires: time(m.required(7, "expires")?, "expires")?,
            payee_cert: CertField::read(m, 8)?,
            known_certs: match m.optional(10)? {
                None => Vec::new(),
                Some(d) => {
                    let n = d.array("known certificates", KNOWN_CERTS_MAX)?;
                    if n == 0 {
                        // Canonical: no list is written by leaving the key out.
                        return Err(DecodeError::InvalidValue("empty known certificates"));
                    }
                    let mut v = Vec::with_capacity(n);
                    for _ in 0..n {
                        v.push(d.fixed::<KNOWN_CERT_PREFIX_BYTES>("known certificate")?);
                    }
                    d.leave();
                    v
                }
            },
        })
    }
}

// ---- Payment -------------------------------------------------------------

/// Payer -> payee: the payment itself, an outgoing entry of the payer's hash
/// chain. Signed by the payer TA after it durably debited itself.
///
/// Keys: 2 payer, 3 seq, 4 prev, 5 payee, 6 amount, 7 currency, 8 nonce,
/// 9 time, 10 payer certificate (DER) or 11 its reference, 12 payee issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// The paying wallet.
    pub payer: WalletId,
    /// The payer's outgoing sequence number (1, 2, 3, ...).
    pub seq: u64,
    /// Hash of the payer's previous outgoing entry ([`Hash32::ZERO`] for seq 1).
    pub prev: Hash32,
    /// The payee wallet (from the request).
    pub payee: WalletId,
    /// The amount paid (equal to the request's).
    pub amount: Amount,
    /// The request's nonce.
    pub nonce: Nonce,
    /// Payer TA time of payment.
    pub time: UnixSeconds,
    /// The payer's wallet certificate.
    pub payer_cert: CertField,
    /// The payee's issuer (the payee certificate's [`IssuerId`], set by the
    /// payer TA from the validated request): the payee TA refuses a payment
    /// naming another issuer.
    pub payee_issuer: IssuerId,
}

impl Body for Payment {
    const TYPE: u64 = message_type::PAYMENT;
    const NAME: &'static str = "Payment";
    const BYTES_MAX: usize = PAYMENT_BYTES_MAX;
    fn field_count(&self) -> usize {
        10
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).bytes(&self.payer.0);
        e.uint(3).uint(self.seq);
        e.uint(4).bytes(&self.prev.0);
        e.uint(5).bytes(&self.payee.0);
        put_amount(e, 6, &self.amount);
        e.uint(8).bytes(&self.nonce.0);
        e.uint(9).uint(self.time.0);
        self.payer_cert.write(e, 10);
        e.uint(12).bytes(&self.payee_issuer.0);
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        let payer = wallet(m.required(2, "payer")?, "payer")?;
        let seq = m.required(3, "seq")?.uint("seq")?;
        if seq == 0 {
            return Err(DecodeError::InvalidValue("seq starts at 1"));
        }
        Ok(Payment {
            payer,
            seq,
            prev: hash(m.required(4, "prev")?, "prev")?,
            payee: wallet(m.required(5, "payee")?, "payee")?,
            amount: amount(m, 6, true)?,
            nonce: nonce(m.required(8, "nonce")?, "nonce")?,
            time: time(m.required(9, "time")?, "time")?,
            payer_cert: CertField::read(m, 10)?,
            payee_issuer: issuer_id(m.required(12, "payee issuer")?, "payee issuer")?,
        })
    }
}

// ---- Receipt -------------------------------------------------------------

/// Payee -> payer: "I have durably accepted this payment". Signed by the payee TA.
///
/// Keys: 2 payment id (SHA-256 of the Payment payload), 3 payee, 4 payer, 5 seq, 6 time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The accepted payment's id.
    pub payment_id: Hash32,
    /// The payee wallet.
    pub payee: WalletId,
    /// The payer wallet.
    pub payer: WalletId,
    /// The payment's seq in the payer's chain.
    pub seq: u64,
    /// Payee TA time of acceptance.
    pub time: UnixSeconds,
}

impl Body for Receipt {
    const TYPE: u64 = message_type::RECEIPT;
    const NAME: &'static str = "Receipt";
    const BYTES_MAX: usize = RECEIPT_BYTES_MAX;
    fn field_count(&self) -> usize {
        5
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).bytes(&self.payment_id.0);
        e.uint(3).bytes(&self.payee.0);
        e.uint(4).bytes(&self.payer.0);
        e.uint(5).uint(self.seq);
        e.uint(6).uint(self.time.0);
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        Ok(Receipt {
            payment_id: hash(m.required(2, "payment id")?, "payment id")?,
            payee: wallet(m.required(3, "payee")?, "payee")?,
            payer: wallet(m.required(4, "payer")?, "payer")?,
            seq: m.required(5, "seq")?.uint("seq")?,
            time: time(m.required(6, "time")?, "time")?,
        })
    }
}

// ---- LoadVoucher ---------------------------------------------------------

/// Issuer -> wallet: online money moved offline, for one wallet, numbered.
/// Signed by the issuer CA key. A wallet applies voucher `n` only right after `n - 1`.
///
/// Keys: 2 wallet, 3 load seq, 4 amount, 5 currency, 6 issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadVoucher {
    /// The wallet credited.
    pub wallet: WalletId,
    /// Per-wallet load sequence number (1, 2, 3, ...).
    pub load_seq: u64,
    /// The amount loaded.
    pub amount: Amount,
    /// Issuer time.
    pub issued: UnixSeconds,
}

impl Body for LoadVoucher {
    const TYPE: u64 = message_type::LOAD_VOUCHER;
    const NAME: &'static str = "LoadVoucher";
    const BYTES_MAX: usize = LOAD_VOUCHER_BYTES_MAX;
    fn field_count(&self) -> usize {
        5
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).bytes(&self.wallet.0);
        e.uint(3).uint(self.load_seq);
        put_amount(e, 4, &self.amount);
        e.uint(6).uint(self.issued.0);
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        let wallet = wallet(m.required(2, "wallet")?, "wallet")?;
        let load_seq = m.required(3, "load seq")?.uint("load seq")?;
        if load_seq == 0 {
            return Err(DecodeError::InvalidValue("load seq starts at 1"));
        }
        Ok(LoadVoucher {
            wallet,
            load_seq,
            amount: amount(m, 4, true)?,
            issued: time(m.required(6, "issued")?, "issued")?,
        })
    }
}

// ---- Redeem --------------------------------------------------------------

/// Wallet -> issuer: offline money back to the wallet holder's online account.
/// An outgoing entry of the wallet's hash chain, like a [`Payment`].
///
/// Keys: 2 wallet, 3 seq, 4 prev, 5 amount, 6 currency, 7 time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redeem {
    /// The redeeming wallet.
    pub wallet: WalletId,
    /// Outgoing sequence number.
    pub seq: u64,
    /// Hash of the previous outgoing entry.
    pub prev: Hash32,
    /// The amount redeemed.
    pub amount: Amount,
    /// Wallet TA time.
    pub time: UnixSeconds,
}

impl Body for Redeem {
    const TYPE: u64 = message_type::REDEEM;
    const NAME: &'static str = "Redeem";
    const BYTES_MAX: usize = REDEEM_BYTES_MAX;
    fn field_count(&self) -> usize {
        6
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).bytes(&self.wallet.0);
        e.uint(3).uint(self.seq);
        e.uint(4).bytes(&self.prev.0);
        put_amount(e, 5, &self.amount);
        e.uint(7).uint(self.time.0);
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        let wallet = wallet(m.required(2, "wallet")?, "wallet")?;
        let seq = m.required(3, "seq")?.uint("seq")?;
        if seq == 0 {
            return Err(DecodeError::InvalidValue("seq starts at 1"));
        }
        Ok(Redeem {
            wallet,
            seq,
            prev: hash(m.required(4, "prev")?, "prev")?,
            amount: amount(m, 5, true)?,
            time: time(m.required(7, "time")?, "time")?,
        })
    }
}

// ---- RiskPolicy ----------------------------------------------------------

/// The risk limits a wallet TA enforces, set by the issuer and signed by it.
/// Amount and count limits hold whatever the clock says; the time limit is a second line.
///
/// Keys: 2 id, 3 epoch, 4 max payment, 5 currency, 6 max balance,
/// 7 max offline spend, 8 max offline payments, 9 max offline seconds,
/// 10 max unsynced log entries, 11 certificate validity seconds; and for
/// terminals (optional, all three or none): 12 max received payments, 13 max
/// received minor units, 14 sweep float minor units ([`TerminalLimits`]);
/// optional, both or none: 15 required suite (its COSE algorithm), 16 from
/// (Unix seconds) ([`SuiteRequirement`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskPolicy {
    /// Policy id (a wallet certificate names it).
    pub id: u32,
    /// Version of the policy; a wallet only moves forward.
    pub epoch: u32,
    /// Largest single payment (and its currency: the policy's currency).
    pub max_payment: Amount,
    /// Holding limit: largest offline balance.
    pub max_balance_minor: u64,
    /// Largest total of outgoing payments between two syncs.
    pub max_offline_spend_minor: u64,
    /// Most outgoing payments between two syncs.
    pub max_offline_payments: u32,
    /// After this long without a sync the wallet refuses to pay.
    pub max_offline_seconds: u64,
    /// Most unsynced log entries (outgoing and incoming); then the wallet refuses to pay or receive.
    pub max_log_entries: u32,
    /// Validity given to wallet certificates under this policy.
    pub cert_validity_seconds: u64,
    /// What a wallet of the terminal profile may receive between two syncs,
    /// and what it keeps at a sync. `None` (a policy written before
    /// terminals existed): no receive limit but the log and holding limits,
    /// and a float of 0 (a terminal sweeps everything).
    pub terminal: Option<TerminalLimits>,
    /// The signature suite every wallet key must be in from a date: the
    /// issuer re-keys wallets of other suites at their syncs, and from
    /// `from` on TAs refuse to pay or accept with a key of another suite.
    pub required_suite: Option<SuiteRequirement>,
}

/// A policy's crypto-agility rule: wallets move to `suite`; keys of other
/// suites are refused offline from `from` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuiteRequirement {
    /// The suite wallet keys must be in.
    pub suite: crate::Suite,
    /// From this time (TA time) a key of another suite neither pays nor is accepted.
    pub from: UnixSeconds,
}

impl SuiteRequirement {
    /// Whether a key of `suite` is refused at `now`.
    pub fn retires(&self, suite: crate::Suite, now: UnixSeconds) -> bool {
        suite != self.suite && now >= self.from
    }
}

/// The limits of a receive-only merchant terminal (its certificate's
/// [`crate::pki::WalletProfile::Terminal`]): its spend limits do not apply
/// (it never pays), these do. Counted over the unsynced log, like the spend limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TerminalLimits {
    /// Most payments received between two syncs.
    pub max_receive_payments: u32,
    /// Largest total received between two syncs (the policy's currency).
    pub max_receive_minor: u64,
    /// What the terminal keeps offline at a sync: everything above it is
    /// swept to the merchant's online account (a redeem entry in the report).
    pub sweep_float_minor: u64,
}

impl RiskPolicy {
    /// The policy's currency.
    pub fn currency(&self) -> Currency {
        self.max_payment.currency
    }
}

impl Body for RiskPolicy {
    const TYPE: u64 = message_type::RISK_POLICY;
    const NAME: &'static str = "RiskPolicy";
    const BYTES_MAX: usize = RISK_POLICY_BYTES_MAX;
    fn field_count(&self) -> usize {
        10 + 3 * self.terminal.is_some() as usize + 2 * self.required_suite.is_some() as usize
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).uint(self.id as u64);
        e.uint(3).uint(self.epoch as u64);
        put_amount(e, 4, &self.max_payment);
        e.uint(6).uint(self.max_balance_minor);
        e.uint(7).uint(self.max_offline_spend_minor);
        e.uint(8).uint(self.max_offline_payments as u64);
        e.uint(9).uint(self.max_offline_seconds);
        e.uint(10).uint(self.max_log_entries as u64);
        e.uint(11).uint(self.cert_validity_seconds);
        if let Some(t) = &self.terminal {
            e.uint(12).uint(t.max_receive_payments as u64);
            e.uint(13).uint(t.max_receive_minor);
            e.uint(14).uint(t.sweep_float_minor);
        }
        if let Some(r) = &self.required_suite {
            e.uint(15).int(r.suite.cose_alg());
            e.uint(16).uint(r.from.0);
        }
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        let u32f = |d: &mut Decoder<'_>, f| d.uint_max(f, u32::MAX as u64).map(|v| v as u32);
        Ok(RiskPolicy {
            id: u32f(m.required(2, "policy id")?, "policy id")?,
            epoch: u32f(m.required(3, "epoch")?, "epoch")?,
            max_payment: amount(m, 4, true)?,
            max_balance_minor: m.required(6, "max balance")?.uint("max balance")?,
            max_offline_spend_minor: m
                .required(7, "max offline spend")?
                .uint("max offline spend")?,
            max_offline_payments: u32f(
                m.required(8, "max offline payments")?,
                "max offline payments",
            )?,
            max_offline_seconds: m
                .required(9, "max offline seconds")?
                .uint("max offline seconds")?,
            max_log_entries: {
                let v = u32f(m.required(10, "max log entries")?, "max log entries")?;
                if v as usize > SYNC_ENTRIES_MAX {
                    return Err(DecodeError::TooLarge {
                        field: "max log entries",
                        max: SYNC_ENTRIES_MAX as u64,
                    });
                }
                v
            },
            cert_validity_seconds: m.required(11, "cert validity")?.uint("cert validity")?,
            terminal: match m.optional(12)? {
                None => None,
                Some(d) => Some(TerminalLimits {
                    max_receive_payments: u32f(d, "max receive payments")?,
                    max_receive_minor: m
                        .required(13, "max receive amount")?
                        .uint("max receive amount")?,
                    sweep_float_minor: m.required(14, "sweep float")?.uint("sweep float")?,
                }),
            },
            required_suite: match m.optional(15)? {
                None => None,
                Some(d) => Some(SuiteRequirement {
                    suite: suite_alg(d, "required suite")?,
                    from: time(
                        m.required(16, "required suite from")?,
                        "required suite from",
                    )?,
                }),
            },
        })
    }
}

// ---- SyncReport ----------------------------------------------------------

/// Wallet -> issuer: everything since the last checkpoint. Signed by the wallet TA.
///
/// Keys: 2 wallet, 3 report seq, 4 time, 5 base checkpoint number,
/// 6 outgoing entries (array of Payment/Redeem envelopes, ascending seq),
/// 7 incoming payments (array of accepted Payment envelopes),
/// 8 loads applied (array of load seqs), 9 balance, 10 currency,
/// 11 chain seq, 12 chain head, 13 last load seq, 14 rollback evidence
/// (array of refused Payment envelopes), 15 locked (bool), 16 directory
/// version (0: none); optional: 17 CSR (PKCS#10 DER) of the key the issuer
/// asked for, 18 key generation of the signing key (absent: 0), 19 the
/// first seq signed by that key (absent: 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// The reporting wallet.
    pub wallet: WalletId,
    /// Per-wallet report number (1, 2, ...); the response echoes it.
    pub report_seq: u64,
    /// Wallet TA time.
    pub time: UnixSeconds,
    /// Number of the checkpoint this report builds on (0: none yet).
    pub base_checkpoint: u64,
    /// Outgoing chain entries since the base checkpoint.
    pub outgoing: Vec<Vec<u8>>,
    /// Payments accepted since the base checkpoint.
    pub incoming: Vec<Vec<u8>>,
    /// Load seqs applied since the base checkpoint.
    pub loads: Vec<u64>,
    /// Balance now.
    pub balance: Amount,
    /// The chain's last seq.
    pub seq: u64,
    /// The chain's head hash.
    pub head: Hash32,
    /// Last applied load seq.
    pub load_seq: u64,
    /// Payments refused because the payer rolled back (seq at or below one already seen).
    pub evidence: Vec<Vec<u8>>,
    /// Whether the TA is locked (rollback detected, or locked by the issuer).
    pub locked: bool,
    /// The version of the scheme directory the TA holds (0: none); the
    /// issuer answers with the changes after it.
    pub directory_version: u64,
    /// The CSR of a new key made at the issuer's request
    /// ([`SyncResponse::rekey`]), sent until a response certifies it.
    pub csr: Option<Vec<u8>>,
    /// The generation of the key that signed this report (0: the wallet's
    /// first key; +1 at each re-key).
    pub key_generation: u32,
    /// The first chain seq the signing key signed (1 for the first key): an
    /// entry below it was signed by the key of the previous generation.
    pub key_since: u64,
    /// The number of the issuer's CRL the TA holds (its complete CRL with
    /// the deltas applied; `None`: none, or the TA wants the complete CRL):
    /// the issuer answers with a delta CRL on it, the complete CRL, or no
    /// CRL when it has not changed ([`SyncResponse::crl_delta`]).
    pub crl_number: Option<u64>,
}

fn put_list(e: &mut Encoder, k: u64, items: &[Vec<u8>]) {
    e.uint(k).array(items.len());
    for it in items {
        e.bytes(it);
    }
}
fn read_list(
    d: &mut Decoder<'_>,
    f: &'static str,
    item_max: usize,
) -> Result<Vec<Vec<u8>>, DecodeError> {
    let n = d.array(f, SYNC_ENTRIES_MAX)?;
    let mut v = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        v.push(d.bytes(f, item_max)?.to_vec());
    }
    d.leave();
    Ok(v)
}

impl Body for SyncReport {
    const TYPE: u64 = message_type::SYNC_REPORT;
    const NAME: &'static str = "SyncReport";
    const BYTES_MAX: usize = SYNC_REPORT_BYTES_MAX;
    fn field_count(&self) -> usize {
        15 + self.csr.is_some() as usize
            + (self.key_generation != 0) as usize
            + (self.key_since != 1) as usize
            + self.crl_number.is_some() as usize
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).bytes(&self.wallet.0);
        e.uint(3).uint(self.report_seq);
        e.uint(4).uint(self.time.0);
        e.uint(5).uint(self.base_checkpoint);
        put_list(e, 6, &self.outgoing);
        put_list(e, 7, &self.incoming);
        e.uint(8).array(self.loads.len());
        for l in &self.loads {
            e.uint(*l);
        }
        put_amount(e, 9, &self.balance);
        e.uint(11).uint(self.seq);
        e.uint(12).bytes(&self.head.0);
        e.uint(13).uint(self.load_seq);
        put_list(e, 14, &self.evidence);
        e.uint(15).bool(self.locked);
        e.uint(16).uint(self.directory_version);
        if let Some(c) = &self.csr {
            e.uint(17).bytes(c);
        }
        if self.key_generation != 0 {
            e.uint(18).uint(u64::from(self.key_generation));
        }
        if self.key_since != 1 {
            e.uint(19).uint(self.key_since);
        }
        if let Some(n) = self.crl_number {
            e.uint(20).uint(n);
        }
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        let wallet = wallet(m.required(2, "wallet")?, "wallet")?;
        let report_seq = m.required(3, "report seq")?.uint("report seq")?;
        let time = time(m.required(4, "time")?, "time")?;
        let base_checkpoint = m.required(5, "base checkpoint")?.uint("base checkpoint")?;
        let outgoing = read_list(m.required(6, "outgoing")?, "outgoing", PAYMENT_BYTES_MAX)?;
        let incoming = read_list(m.required(7, "incoming")?, "incoming", PAYMENT_BYTES_MAX)?;
        let loads = {
            let d = m.required(8, "loads")?;
            let n = d.array("loads", SYNC_ENTRIES_MAX)?;
            let mut v = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                v.push(d.uint("load seq")?);
            }
            d.leave();
            v
        };
        Ok(SyncReport {
            wallet,
            report_seq,
            time,
            base_checkpoint,
            outgoing,
            incoming,
            loads,
            balance: amount(m, 9, false)?,
            seq: m.required(11, "seq")?.uint("seq")?,
            head: hash(m.required(12, "head")?, "head")?,
            load_seq: m.required(13, "load seq")?.uint("load seq")?,
            evidence: read_list(m.required(14, "evidence")?, "evidence", PAYMENT_BYTES_MAX)?,
            locked: m.required(15, "locked")?.bool("locked")?,
            directory_version: m
                .required(16, "directory version")?
                .uint("directory version")?,
            csr: m
                .optional(17)?
                .map(|d| {
                    d.bytes("csr", crate::pki::CSR_BYTES_MAX)
                        .map(<[u8]>::to_vec)
                })
                .transpose()?,
            key_generation: match m.optional(18)? {
                None => 0,
                // Canonical: generation 0 is written by leaving the key out.
                Some(d) => match d.uint_max("key generation", u32::MAX as u64)? {
                    0 => return Err(DecodeError::InvalidValue("key generation 0 is implicit")),
                    g => g as u32,
                },
            },
            key_since: match m.optional(19)? {
                None => 1,
                Some(d) => match d.uint("key since")? {
                    0 | 1 => return Err(DecodeError::InvalidValue("key since must exceed 1")),
                    s => s,
                },
            },
            crl_number: m.optional(20)?.map(|d| d.uint("crl number")).transpose()?,
        })
    }
}

// ---- SyncResponse and Checkpoint -----------------------------------------

/// The issuer's signed statement of a wallet's reconciled state.
///
/// Keys (a nested map): 0 number, 1 seq, 2 head, 3 balance, 4 currency,
/// 5 load seq, 6 time, 7 report seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Checkpoint number (1, 2, ...).
    pub number: u64,
    /// The wallet's chain seq the issuer has recorded up to.
    pub seq: u64,
    /// The chain head at that seq.
    pub head: Hash32,
    /// The wallet's balance at the report.
    pub balance: Amount,
    /// The last load seq the wallet applied.
    pub load_seq: u64,
    /// Issuer time: the wallet's clock never goes below it.
    pub time: UnixSeconds,
    /// The highest report seq the issuer has processed for this wallet (a
    /// wallet unlocked after a rollback continues numbering above it).
    pub report_seq: u64,
}

impl Checkpoint {
    fn encode(&self, e: &mut Encoder) {
        e.map(8);
        e.uint(0).uint(self.number);
        e.uint(1).uint(self.seq);
        e.uint(2).bytes(&self.head.0);
        put_amount(e, 3, &self.balance);
        e.uint(5).uint(self.load_seq);
        e.uint(6).uint(self.time.0);
        e.uint(7).uint(self.report_seq);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Checkpoint, DecodeError> {
        let mut m = d.map("checkpoint", 8)?;
        let c = Checkpoint {
            number: m
                .required(0, "checkpoint number")?
                .uint("checkpoint number")?,
            seq: m.required(1, "checkpoint seq")?.uint("checkpoint seq")?,
            head: hash(m.required(2, "checkpoint head")?, "checkpoint head")?,
            balance: amount(&mut m, 3, false)?,
            load_seq: m
                .required(5, "checkpoint load seq")?
                .uint("checkpoint load seq")?,
            time: time(m.required(6, "checkpoint time")?, "checkpoint time")?,
            report_seq: m
                .required(7, "checkpoint report seq")?
                .uint("checkpoint report seq")?,
        };
        m.end()?;
        Ok(c)
    }
}

/// What the issuer tells the TA to do with its lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletCommand {
    /// Nothing changes.
    None,
    /// Lock the wallet (it may still sync); the reason is for the user.
    Lock {
        /// Why.
        reason: String,
    },
    /// Unlock the wallet and adopt the checkpoint as its state (after a
    /// rollback or a PIN lockout has been dealt with at the issuer).
    Unlock,
}

/// Issuer -> wallet: the answer to a SyncReport (or to enrollment, with report seq 0).
/// Signed by the issuer CA key.
///
/// Keys: 2 wallet, 3 report seq, 4 time, 5 checkpoint (map), 6 vouchers
/// (array of LoadVoucher envelopes), 7 CRL (DER, optional), 8 renewed wallet
/// certificate (DER, optional), 9 RiskPolicy envelope (optional),
/// 10 command (0 none, 1 lock, 2 unlock), 11 lock reason (text, with command 1 only),
/// 12 directory update (map, optional; see [`DirectoryUpdate`]),
/// 13 re-key: the suite (COSE algorithm) of a new key to make (optional),
/// 14 delta CRL (DER, optional; never with 7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResponse {
    /// The wallet addressed.
    pub wallet: WalletId,
    /// The report answered.
    pub report_seq: u64,
    /// Issuer time.
    pub time: UnixSeconds,
    /// The new checkpoint.
    pub checkpoint: Checkpoint,
    /// Load vouchers to apply, ascending load seq.
    pub vouchers: Vec<Vec<u8>>,
    /// The current complete CRL of the issuer CA: when the report named no
    /// CRL number, or one the issuer keeps no delta for.
    pub crl: Option<Vec<u8>>,
    /// A delta CRL (RFC 5280 5.2.4) on the CRL number the report named,
    /// bringing it to the current one. Never with [`SyncResponse::crl`];
    /// neither when the report's number is the current one.
    pub crl_delta: Option<Vec<u8>>,
    /// A renewed (or re-keyed) wallet certificate.
    pub certificate: Option<Vec<u8>>,
    /// A new risk policy.
    pub policy: Option<Vec<u8>>,
    /// Lock or unlock.
    pub command: WalletCommand,
    /// The scheme directory's changes after the report's directory version
    /// (a standalone issuer sends none).
    pub directory: Option<DirectoryUpdate>,
    /// Make a new key in this suite and send its CSR in the next reports
    /// (the wallet keeps signing with its current key until a response
    /// carries the new key's certificate).
    pub rekey: Option<crate::Suite>,
}

impl Body for SyncResponse {
    const TYPE: u64 = message_type::SYNC_RESPONSE;
    const NAME: &'static str = "SyncResponse";
    const BYTES_MAX: usize = SYNC_RESPONSE_BYTES_MAX;
    fn field_count(&self) -> usize {
        6 + self.crl.is_some() as usize
            + self.certificate.is_some() as usize
            + self.policy.is_some() as usize
            + matches!(self.command, WalletCommand::Lock { .. }) as usize
            + self.directory.is_some() as usize
            + self.rekey.is_some() as usize
            + self.crl_delta.is_some() as usize
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).bytes(&self.wallet.0);
        e.uint(3).uint(self.report_seq);
        e.uint(4).uint(self.time.0);
        e.uint(5);
        self.checkpoint.encode(e);
        put_list(e, 6, &self.vouchers);
        if let Some(c) = &self.crl {
            e.uint(7).bytes(c);
        }
        if let Some(c) = &self.certificate {
            e.uint(8).bytes(c);
        }
        if let Some(p) = &self.policy {
            e.uint(9).bytes(p);
        }
        match &self.command {
            WalletCommand::None => e.uint(10).uint(0),
            WalletCommand::Lock { reason } => e.uint(10).uint(1).uint(11).text(reason),
            WalletCommand::Unlock => e.uint(10).uint(2),
        };
        if let Some(d) = &self.directory {
            e.uint(12);
            d.encode(e);
        }
        if let Some(s) = self.rekey {
            e.uint(13).int(s.cose_alg());
        }
        if let Some(c) = &self.crl_delta {
            e.uint(14).bytes(c);
        }
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        let wallet = wallet(m.required(2, "wallet")?, "wallet")?;
        let report_seq = m.required(3, "report seq")?.uint("report seq")?;
        let time = time(m.required(4, "time")?, "time")?;
        let checkpoint = Checkpoint::decode(m.required(5, "checkpoint")?)?;
        let vouchers = read_list(
            m.required(6, "vouchers")?,
            "vouchers",
            LOAD_VOUCHER_BYTES_MAX,
        )?;
        let crl = m
            .optional(7)?
            .map(|d| d.bytes("crl", CRL_FIELD_BYTES_MAX).map(<[u8]>::to_vec))
            .transpose()?;
        let certificate = m
            .optional(8)?
            .map(|d| {
                d.bytes("certificate", CERT_FIELD_BYTES_MAX)
                    .map(<[u8]>::to_vec)
            })
            .transpose()?;
        let policy = m
            .optional(9)?
            .map(|d| d.bytes("policy", RISK_POLICY_BYTES_MAX).map(<[u8]>::to_vec))
            .transpose()?;
        let command = match m.required(10, "command")?.uint("command")? {
            0 => WalletCommand::None,
            1 => WalletCommand::Lock {
                reason: m
                    .required(11, "lock reason")?
                    .text("lock reason", REASON_BYTES_MAX)?
                    .to_string(),
            },
            2 => WalletCommand::Unlock,
            _ => return Err(DecodeError::InvalidValue("command")),
        };
        let directory = m.optional(12)?.map(DirectoryUpdate::decode).transpose()?;
        let rekey = m
            .optional(13)?
            .map(|d| suite_alg(d, "re-key suite"))
            .transpose()?;
        let crl_delta = m
            .optional(14)?
            .map(|d| read_crl(d, "delta crl"))
            .transpose()?;
        if crl.is_some() && crl_delta.is_some() {
            return Err(DecodeError::InvalidValue(
                "a complete CRL and a delta CRL together",
            ));
        }
        Ok(SyncResponse {
            wallet,
            report_seq,
            time,
            checkpoint,
            vouchers,
            crl,
            crl_delta,
            certificate,
            policy,
            command,
            directory,
            rekey,
        })
    }
}

// ---- outgoing chain entries ------------------------------------------------

/// One entry of a wallet's outgoing hash chain: a payment or a redeem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainEntry {
    /// A payment to another wallet.
    Payment(Signed<Payment>),
    /// A redeem to the issuer.
    Redeem(Signed<Redeem>),
}

impl ChainEntry {
    /// Decode either kind of entry.
    pub fn decode(bytes: &[u8]) -> Result<ChainEntry, DecodeError> {
        let (_, payload, _) =
            crate::envelope::decode_envelope(bytes, "chain entry", PAYMENT_BYTES_MAX)?;
        match crate::envelope::peek_payload_type(&bytes[payload])? {
            message_type::PAYMENT => Signed::<Payment>::decode(bytes).map(ChainEntry::Payment),
            message_type::REDEEM => Signed::<Redeem>::decode(bytes).map(ChainEntry::Redeem),
            t => Err(DecodeError::WrongMessageType {
                expected: message_type::PAYMENT,
                found: t,
            }),
        }
    }
    /// The wallet whose chain this is.
    pub fn payer(&self) -> WalletId {
        match self {
            ChainEntry::Payment(p) => p.body().payer,
            ChainEntry::Redeem(r) => r.body().wallet,
        }
    }
    /// Sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            ChainEntry::Payment(p) => p.body().seq,
            ChainEntry::Redeem(r) => r.body().seq,
        }
    }
    /// Hash of the previous entry.
    pub fn prev(&self) -> Hash32 {
        match self {
            ChainEntry::Payment(p) => p.body().prev,
            ChainEntry::Redeem(r) => r.body().prev,
        }
    }
    /// The amount leaving the wallet.
    pub fn amount(&self) -> Amount {
        match self {
            ChainEntry::Payment(p) => p.body().amount,
            ChainEntry::Redeem(r) => r.body().amount,
        }
    }
    /// The entry hash (SHA-256 of the payload): the next entry's `prev`.
    pub fn hash(&self) -> Hash32 {
        match self {
            ChainEntry::Payment(p) => p.payload_hash(),
            ChainEntry::Redeem(r) => r.payload_hash(),
        }
    }
    /// Entry time (payer TA clock).
    pub fn time(&self) -> UnixSeconds {
        match self {
            ChainEntry::Payment(p) => p.body().time,
            ChainEntry::Redeem(r) => r.body().time,
        }
    }
    /// The envelope bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            ChainEntry::Payment(p) => p.bytes(),
            ChainEntry::Redeem(r) => r.bytes(),
        }
    }
    /// Verify the signature with the payer's key.
    pub fn verify(
        &self,
        key: &crate::suite::PublicKey,
    ) -> Result<(), crate::envelope::VerifyError> {
        match self {
            ChainEntry::Payment(p) => p.verify(key),
            ChainEntry::Redeem(r) => r.verify(key),
        }
    }
    /// The bytes the signature covers.
    pub fn sig_structure(&self) -> Vec<u8> {
        match self {
            ChainEntry::Payment(p) => p.sig_structure(),
            ChainEntry::Redeem(r) => r.sig_structure(),
        }
    }
    /// The signature.
    pub fn signature(&self) -> &[u8] {
        match self {
            ChainEntry::Payment(p) => p.signature(),
            ChainEntry::Redeem(r) => r.signature(),
        }
    }
}

// ---- DoubleSpendProof ------------------------------------------------------

/// Two validly signed, different entries of one payer's chain with the same
/// seq or the same prev: proof that the payer's TA was rolled back, cloned or
/// broken. It verifies with nothing but the scheme root certificate
/// ([`crate::evidence::verify_double_spend`]). Not an envelope: its content is
/// already signed, and anyone may assemble it.
///
/// Keys: 2 entry A, 3 entry B (envelopes; A sorts before B bytewise),
/// 4 payer certificate (DER), 5 issuer CA certificate (DER).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoubleSpendProof {
    /// The entry whose bytes sort first.
    pub entry_a: Vec<u8>,
    /// The other entry.
    pub entry_b: Vec<u8>,
    /// The payer's wallet certificate.
    pub payer_cert: Vec<u8>,
    /// The issuer CA certificate that signed it.
    pub issuer_cert: Vec<u8>,
}

impl DoubleSpendProof {
    /// A proof of two entries (in either order; they are sorted).
    pub fn new(
        a: Vec<u8>,
        b: Vec<u8>,
        payer_cert: Vec<u8>,
        issuer_cert: Vec<u8>,
    ) -> DoubleSpendProof {
        let (entry_a, entry_b) = if a <= b { (a, b) } else { (b, a) };
        DoubleSpendProof {
            entry_a,
            entry_b,
            payer_cert,
            issuer_cert,
        }
    }
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(6);
        e.uint(0).uint(message_type::DOUBLE_SPEND_PROOF);
        e.uint(1).uint(crate::envelope::PROTOCOL_VERSION);
        e.uint(2).bytes(&self.entry_a);
        e.uint(3).bytes(&self.entry_b);
        e.uint(4).bytes(&self.payer_cert);
        e.uint(5).bytes(&self.issuer_cert);
        let bytes = e.finish();
        debug_assert!(crate::cbor::is_one_value(&bytes), "proof map count");
        bytes
    }
    /// Parse (structure only; [`crate::evidence::verify_double_spend`] checks it).
    pub fn decode(bytes: &[u8]) -> Result<DoubleSpendProof, DecodeError> {
        if bytes.len() > DOUBLE_SPEND_PROOF_BYTES_MAX {
            return Err(DecodeError::TooLarge {
                field: "DoubleSpendProof",
                max: DOUBLE_SPEND_PROOF_BYTES_MAX as u64,
            });
        }
        let mut d = Decoder::new(bytes);
        let p = {
            let mut m = d.map("DoubleSpendProof", 6)?;
            crate::envelope::read_type_version(&mut m, message_type::DOUBLE_SPEND_PROOF)?;
            let p = DoubleSpendProof {
                entry_a: m
                    .required(2, "entry a")?
                    .bytes("entry a", PAYMENT_BYTES_MAX)?
                    .to_vec(),
                entry_b: m
                    .required(3, "entry b")?
                    .bytes("entry b", PAYMENT_BYTES_MAX)?
                    .to_vec(),
                payer_cert: m
                    .required(4, "payer certificate")?
                    .bytes("payer certificate", CERT_FIELD_BYTES_MAX)?
                    .to_vec(),
                issuer_cert: m
                    .required(5, "issuer certificate")?
                    .bytes("issuer certificate", CERT_FIELD_BYTES_MAX)?
                    .to_vec(),
            };
            m.end()?;
            p
        };
        d.finish()?;
        if p.entry_a >= p.entry_b {
            return Err(DecodeError::NonCanonical(
                "proof entries not in ascending order",
            ));
        }
        Ok(p)
    }
}

// ---- RetainedDoubleSpendProof ----------------------------------------------

/// A double spend against an entry whose bytes the issuer no longer holds
/// (deleted by its retention rule: it keeps only the hash and prev of a
/// settled entry). The new entry is signed by the payer; the retained side
/// is the **issuer's** signed statement that it recorded an entry with
/// `retained_hash` and `retained_prev` at (`payer`, `seq`). The envelope is
/// signed by the issuer CA key; it verifies with the scheme root certificate
/// alone ([`crate::evidence::verify_retained_double_spend`]), but unlike a
/// [`DoubleSpendProof`] it rests on the issuer's word for the pruned side.
///
/// Keys: 2 entry (the new entry's envelope), 3 payer certificate (DER),
/// 4 issuer CA certificate (DER), 5 payer, 6 seq, 7 retained hash,
/// 8 retained prev, 9 time (issuer time of the statement).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetainedDoubleSpendProof {
    /// The new chain entry envelope (Payment or Redeem), signed by the payer.
    pub entry: Vec<u8>,
    /// The payer's wallet certificate whose key signed `entry`.
    pub payer_cert: Vec<u8>,
    /// The issuer CA certificate that issued it and signs this statement.
    pub issuer_cert: Vec<u8>,
    /// The payer wallet.
    pub payer: WalletId,
    /// The seq at which the issuer recorded the retained entry.
    pub seq: u64,
    /// The entry hash the issuer recorded at (payer, seq).
    pub retained_hash: Hash32,
    /// That entry's prev.
    pub retained_prev: Hash32,
    /// Issuer time of the statement.
    pub time: UnixSeconds,
}

impl Body for RetainedDoubleSpendProof {
    const TYPE: u64 = message_type::RETAINED_DOUBLE_SPEND_PROOF;
    const NAME: &'static str = "RetainedDoubleSpendProof";
    const BYTES_MAX: usize = RETAINED_DOUBLE_SPEND_PROOF_BYTES_MAX;
    fn field_count(&self) -> usize {
        8
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).bytes(&self.entry);
        e.uint(3).bytes(&self.payer_cert);
        e.uint(4).bytes(&self.issuer_cert);
        e.uint(5).bytes(&self.payer.0);
        e.uint(6).uint(self.seq);
        e.uint(7).bytes(&self.retained_hash.0);
        e.uint(8).bytes(&self.retained_prev.0);
        e.uint(9).uint(self.time.0);
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        let entry = m
            .required(2, "entry")?
            .bytes("entry", PAYMENT_BYTES_MAX)?
            .to_vec();
        let payer_cert = m
            .required(3, "payer certificate")?
            .bytes("payer certificate", CERT_FIELD_BYTES_MAX)?
            .to_vec();
        let issuer_cert = m
            .required(4, "issuer certificate")?
            .bytes("issuer certificate", CERT_FIELD_BYTES_MAX)?
            .to_vec();
        let payer = wallet(m.required(5, "payer")?, "payer")?;
        let seq = m.required(6, "seq")?.uint("seq")?;
        if seq == 0 {
            return Err(DecodeError::InvalidValue("seq starts at 1"));
        }
        let retained_hash = hash(m.required(7, "retained hash")?, "retained hash")?;
        let retained_prev = hash(m.required(8, "retained prev")?, "retained prev")?;
        let time = time(m.required(9, "time")?, "time")?;
        Ok(RetainedDoubleSpendProof {
            entry,
            payer_cert,
            issuer_cert,
            payer,
            seq,
            retained_hash,
            retained_prev,
            time,
        })
    }
}

// ---- PIN lockout recovery --------------------------------------------------

/// Largest PinUnlockGrant envelope.
pub const PIN_UNLOCK_GRANT_BYTES_MAX: usize = 2624;
/// Largest PinLockedRequest envelope.
pub const PIN_LOCKED_REQUEST_BYTES_MAX: usize = 2880;
/// Largest PinUnlock envelope.
pub const PIN_UNLOCK_BYTES_MAX: usize = 2624;
/// Largest PIN attempt count carried (more is malformed).
pub const PIN_ATTEMPTS_FIELD_MAX: u64 = 255;

/// Wallet TA -> itself, for the issuer: "this Ed25519 key may ask, for me,
/// to be unlocked after a PIN lockout, and nothing else". Signed by the
/// wallet key while the vault is open (after enrollment); kept by the vault
/// under the device secret alone, so the PIN-locked vault can still send a
/// [`PinLockedRequest`]. The issuer accepts the unlock key for that message
/// only: it can sign no payment.
///
/// Keys: 2 wallet, 3 unlock key (32-byte Ed25519 public key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinUnlockGrant {
    /// The wallet granting.
    pub wallet: WalletId,
    /// The unlock key's Ed25519 public key.
    pub unlock_key: [u8; 32],
}

impl Body for PinUnlockGrant {
    const TYPE: u64 = message_type::PIN_UNLOCK_GRANT;
    const NAME: &'static str = "PinUnlockGrant";
    const BYTES_MAX: usize = PIN_UNLOCK_GRANT_BYTES_MAX;
    fn field_count(&self) -> usize {
        2
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).bytes(&self.wallet.0);
        e.uint(3).bytes(&self.unlock_key);
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        Ok(PinUnlockGrant {
            wallet: wallet(m.required(2, "wallet")?, "wallet")?,
            unlock_key: m.required(3, "unlock key")?.fixed::<32>("unlock key")?,
        })
    }
}

/// PIN-locked wallet -> issuer: "my vault refuses every PIN after `attempts`
/// wrong ones; unlock me against this fresh nonce". Signed by the unlock key
/// named in the grant (an Ed25519 envelope), the grant signed by the wallet
/// key. The issuer answers with a [`PinUnlock`] only after its operator
/// confirmed that the customer re-authenticated with the bank.
///
/// Keys: 2 wallet, 3 attempts, 4 nonce, 5 time (device clock), 6 grant (a
/// [`PinUnlockGrant`] envelope).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinLockedRequest {
    /// The locked wallet.
    pub wallet: WalletId,
    /// The wrong-PIN count the vault holds (at most [`PIN_ATTEMPTS_FIELD_MAX`]).
    pub attempts: u64,
    /// Fresh, drawn by the vault; the unlock must carry it back.
    pub nonce: Nonce,
    /// Device time of the request (informational: the device clock is not trusted).
    pub time: UnixSeconds,
    /// The wallet's [`PinUnlockGrant`] envelope.
    pub grant: Vec<u8>,
}

impl Body for PinLockedRequest {
    const TYPE: u64 = message_type::PIN_LOCKED_REQUEST;
    const NAME: &'static str = "PinLockedRequest";
    const BYTES_MAX: usize = PIN_LOCKED_REQUEST_BYTES_MAX;
    fn field_count(&self) -> usize {
        5
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).bytes(&self.wallet.0);
        e.uint(3).uint(self.attempts);
        e.uint(4).bytes(&self.nonce.0);
        e.uint(5).uint(self.time.0);
        e.uint(6).bytes(&self.grant);
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        Ok(PinLockedRequest {
            wallet: wallet(m.required(2, "wallet")?, "wallet")?,
            attempts: m
                .required(3, "attempts")?
                .uint_max("attempts", PIN_ATTEMPTS_FIELD_MAX)?,
            nonce: nonce(m.required(4, "nonce")?, "nonce")?,
            time: time(m.required(5, "time")?, "time")?,
            grant: m
                .required(6, "grant")?
                .bytes("grant", PIN_UNLOCK_GRANT_BYTES_MAX)?
                .to_vec(),
        })
    }
}

/// Issuer -> PIN-locked wallet: "reset your wrong-PIN count". Signed by the
/// issuer CA key; bound to the wallet, the attempt count and the nonce of
/// one [`PinLockedRequest`], so it unlocks that lockout of that vault once.
///
/// Keys: 2 wallet, 3 attempts, 4 nonce, 5 issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinUnlock {
    /// The wallet unlocked.
    pub wallet: WalletId,
    /// The attempt count of the request answered.
    pub attempts: u64,
    /// The nonce of the request answered.
    pub nonce: Nonce,
    /// Issuer time of the approval.
    pub issued: UnixSeconds,
}

impl Body for PinUnlock {
    const TYPE: u64 = message_type::PIN_UNLOCK;
    const NAME: &'static str = "PinUnlock";
    const BYTES_MAX: usize = PIN_UNLOCK_BYTES_MAX;
    fn field_count(&self) -> usize {
        4
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).bytes(&self.wallet.0);
        e.uint(3).uint(self.attempts);
        e.uint(4).bytes(&self.nonce.0);
        e.uint(5).uint(self.issued.0);
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        Ok(PinUnlock {
            wallet: wallet(m.required(2, "wallet")?, "wallet")?,
            attempts: m
                .required(3, "attempts")?
                .uint_max("attempts", PIN_ATTEMPTS_FIELD_MAX)?,
            nonce: nonce(m.required(4, "nonce")?, "nonce")?,
            issued: time(m.required(5, "issued")?, "issued")?,
        })
    }
}

// ---- scheme of many issuers: directory -------------------------------------

/// Most issuers in a [`Directory`] or a [`DirectoryUpdate`] (and in a wallet's directory).
pub const DIRECTORY_ISSUERS_MAX: usize = 64;
/// Largest encoded [`DirectoryUpdate`] (the map inside a SyncResponse).
pub const DIRECTORY_UPDATE_BYTES_MAX: usize = 2 << 20;
/// Largest Directory envelope.
pub const DIRECTORY_BYTES_MAX: usize = 16 << 20;
/// Largest issuer code carried (an issuer CA's commonName, `[a-z0-9-]{1,32}`).
pub const ISSUER_CODE_FIELD_BYTES_MAX: usize = crate::pki::ISSUER_CODE_BYTES_MAX;
/// Most lines in a [`SettlementStatement`].
pub const STATEMENT_LINES_MAX: usize = 256;
/// Largest SettlementStatement envelope.
pub const SETTLEMENT_STATEMENT_BYTES_MAX: usize = 32 << 10;

// A SyncResponse at its fullest with a directory update (5-byte map head).
const _: () = assert!(
    ENVELOPE_FIXED_BYTES_MAX
        + SYNC_ENTRIES_MAX * (BYTES_HEAD_MAX + LOAD_VOUCHER_BYTES_MAX)
        + 5
        + CRL_FIELD_BYTES_MAX
        + BYTES_HEAD_MAX
        + CERT_FIELD_BYTES_MAX
        + BYTES_HEAD_MAX
        + RISK_POLICY_BYTES_MAX
        + BYTES_HEAD_MAX
        + REASON_BYTES_MAX
        + 1
        + DIRECTORY_UPDATE_BYTES_MAX
        <= SYNC_RESPONSE_BYTES_MAX
);
// A statement at its fullest: each line at most 1 + 17 + 4 * 9 + 34 + 5 key bytes.
const _: () = assert!(
    ENVELOPE_FIXED_BYTES_MAX + 3 + STATEMENT_LINES_MAX * 96 <= SETTLEMENT_STATEMENT_BYTES_MAX
);
// A directory of every issuer, each with a certificate at its largest and a
// CRL of up to 128 KiB (about 3 000 entries), fits; the scheme refuses a CRL
// publication that would make its directory exceed DIRECTORY_BYTES_MAX.
const _: () = assert!(
    ENVELOPE_FIXED_BYTES_MAX
        + 5
        + CRL_FIELD_BYTES_MAX
        + DIRECTORY_ISSUERS_MAX
            * (16
                + ISSUER_CODE_FIELD_BYTES_MAX
                + BYTES_HEAD_MAX
                + CERT_FIELD_BYTES_MAX
                + 5
                + (128 << 10))
        <= DIRECTORY_BYTES_MAX
);

fn read_crl(d: &mut Decoder<'_>, f: &'static str) -> Result<Vec<u8>, DecodeError> {
    d.bytes(f, CRL_FIELD_BYTES_MAX).map(<[u8]>::to_vec)
}
fn read_cert(d: &mut Decoder<'_>, f: &'static str) -> Result<Vec<u8>, DecodeError> {
    d.bytes(f, CERT_FIELD_BYTES_MAX).map(<[u8]>::to_vec)
}

/// One issuer in a [`DirectoryUpdate`]: its CA certificate (root-signed) and
/// its current CRL of wallet certificates (signed by that CA).
///
/// Keys (a nested map): 0 changed, 1 CA certificate (DER), 2 CRL (DER, optional).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryIssuer {
    /// The directory version at which this issuer's entry last changed (>= 1).
    pub changed: u64,
    /// The issuer CA certificate (DER).
    pub ca_cert: Vec<u8>,
    /// The issuer's latest CRL (DER), if it published one.
    pub crl: Option<Vec<u8>>,
}

impl DirectoryIssuer {
    fn encode(&self, e: &mut Encoder) {
        e.map(2 + self.crl.is_some() as usize);
        e.uint(0).uint(self.changed);
        e.uint(1).bytes(&self.ca_cert);
        if let Some(c) = &self.crl {
            e.uint(2).bytes(c);
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<DirectoryIssuer, DecodeError> {
        let mut m = d.map("directory issuer", 3)?;
        let changed = m.required(0, "changed")?.uint("changed")?;
        if changed == 0 {
            return Err(DecodeError::InvalidValue("changed starts at 1"));
        }
        let ca_cert = read_cert(
            m.required(1, "issuer CA certificate")?,
            "issuer CA certificate",
        )?;
        let crl = m
            .optional(2)?
            .map(|d| read_crl(d, "issuer CRL"))
            .transpose()?;
        m.end()?;
        Ok(DirectoryIssuer {
            changed,
            ca_cert,
            crl,
        })
    }
}

/// The changes of the scheme directory after a wallet's version, carried in
/// a [`SyncResponse`] (plain CBOR inside the issuer-signed response; every
/// element verifies on its own against the scheme root).
///
/// Keys (a nested map): 0 version, 1 issuer CRL (DER, root-signed, optional),
/// 2 issuers (array of [`DirectoryIssuer`] maps, ascending `changed`).
/// Decoding refuses more than [`DIRECTORY_ISSUERS_MAX`] issuers, an encoding
/// over [`DIRECTORY_UPDATE_BYTES_MAX`], a `changed` of 0, above `version`
/// or descending, and a `version` of 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryUpdate {
    /// The directory version the wallet holds once it applied this update:
    /// the highest `changed` fully included.
    pub version: u64,
    /// The root-signed CRL of issuer CA certificates (certificateHold =
    /// suspended, another reason = revoked).
    pub issuer_crl: Option<Vec<u8>>,
    /// The issuers whose entry changed, oldest change first.
    pub issuers: Vec<DirectoryIssuer>,
}

impl DirectoryUpdate {
    /// The canonical CBOR map (as nested in a SyncResponse).
    pub fn encode(&self, e: &mut Encoder) {
        e.map(2 + self.issuer_crl.is_some() as usize);
        e.uint(0).uint(self.version);
        if let Some(c) = &self.issuer_crl {
            e.uint(1).bytes(c);
        }
        e.uint(2).array(self.issuers.len());
        for i in &self.issuers {
            i.encode(e);
        }
    }
    /// The encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        let mut e = Encoder::new();
        self.encode(&mut e);
        e.len()
    }
    /// Read one nested update map (strict; see the type's limits).
    pub fn decode(d: &mut Decoder<'_>) -> Result<DirectoryUpdate, DecodeError> {
        let start = d.position();
        let mut m = d.map("directory update", 3)?;
        let version = m
            .required(0, "directory version")?
            .uint("directory version")?;
        if version == 0 {
            return Err(DecodeError::InvalidValue("directory version starts at 1"));
        }
        let issuer_crl = m
            .optional(1)?
            .map(|c| read_crl(c, "issuer CRL"))
            .transpose()?;
        let issuers = {
            let arr = m.required(2, "directory issuers")?;
            let n = arr.array("directory issuers", DIRECTORY_ISSUERS_MAX)?;
            let mut out: Vec<DirectoryIssuer> = Vec::with_capacity(n);
            for _ in 0..n {
                let item = DirectoryIssuer::decode(arr)?;
                if item.changed > version {
                    return Err(DecodeError::InvalidValue(
                        "issuer changed after the version",
                    ));
                }
                if out.last().is_some_and(|p| p.changed > item.changed) {
                    return Err(DecodeError::InvalidValue(
                        "directory issuers not oldest first",
                    ));
                }
                out.push(item);
            }
            arr.leave();
            out
        };
        m.end()?;
        if d.position() - start > DIRECTORY_UPDATE_BYTES_MAX {
            return Err(DecodeError::TooLarge {
                field: "directory update",
                max: DIRECTORY_UPDATE_BYTES_MAX as u64,
            });
        }
        Ok(DirectoryUpdate {
            version,
            issuer_crl,
            issuers,
        })
    }
}

/// One admitted issuer in the scheme's [`Directory`].
///
/// Keys (a nested map): 0 code, 1 status (0 active, 1 suspended, 2 revoked),
/// 2 changed, 3 CA certificate (DER), 4 CRL (DER, optional).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The issuer code (`[a-z0-9-]{1,32}`, the CA certificate's commonName).
    pub code: String,
    /// Its standing (also on the directory's issuer CRL, which is what verifiers use).
    pub status: IssuerStatus,
    /// The directory version at which this entry last changed (>= 1).
    pub changed: u64,
    /// The issuer CA certificate (DER, root-signed).
    pub ca_cert: Vec<u8>,
    /// The issuer's latest CRL (DER), if it published one.
    pub crl: Option<Vec<u8>>,
}

impl DirectoryEntry {
    /// This entry as a [`DirectoryIssuer`] of an update.
    pub fn to_update_issuer(&self) -> DirectoryIssuer {
        DirectoryIssuer {
            changed: self.changed,
            ca_cert: self.ca_cert.clone(),
            crl: self.crl.clone(),
        }
    }
    fn encode(&self, e: &mut Encoder) {
        e.map(4 + self.crl.is_some() as usize);
        e.uint(0).text(&self.code);
        e.uint(1).uint(self.status.code());
        e.uint(2).uint(self.changed);
        e.uint(3).bytes(&self.ca_cert);
        if let Some(c) = &self.crl {
            e.uint(4).bytes(c);
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<DirectoryEntry, DecodeError> {
        let mut m = d.map("directory entry", 5)?;
        let code = m
            .required(0, "issuer code")?
            .text("issuer code", ISSUER_CODE_FIELD_BYTES_MAX)?;
        if !crate::pki::is_issuer_code(code) {
            return Err(DecodeError::InvalidValue("issuer code"));
        }
        let code = code.to_string();
        let status =
            IssuerStatus::from_code(m.required(1, "issuer status")?.uint("issuer status")?)
                .ok_or(DecodeError::InvalidValue("issuer status"))?;
        let changed = m.required(2, "changed")?.uint("changed")?;
        if changed == 0 {
            return Err(DecodeError::InvalidValue("changed starts at 1"));
        }
        let ca_cert = read_cert(
            m.required(3, "issuer CA certificate")?,
            "issuer CA certificate",
        )?;
        let crl = m
            .optional(4)?
            .map(|d| read_crl(d, "issuer CRL"))
            .transpose()?;
        m.end()?;
        Ok(DirectoryEntry {
            code,
            status,
            changed,
            ca_cert,
            crl,
        })
    }
}

/// Scheme -> issuers (and, through sync, wallets): every admitted issuer,
/// its CA certificate, its latest CRL, and the root-signed issuer CRL.
/// Signed by the scheme root key.
///
/// Keys: 2 version, 3 time, 4 currency, 5 issuer CRL (DER, root-signed),
/// 6 issuers (array of [`DirectoryEntry`] maps, ascending code, codes unique,
/// at most [`DIRECTORY_ISSUERS_MAX`]; every `changed` at most `version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    /// Directory version: grows with every change (admission, suspension,
    /// reinstatement, revocation, CRL publication).
    pub version: u64,
    /// Scheme time of publication.
    pub time: UnixSeconds,
    /// The scheme's currency.
    pub currency: Currency,
    /// The root-signed CRL of issuer CA certificates.
    pub issuer_crl: Vec<u8>,
    /// The admitted issuers.
    pub issuers: Vec<DirectoryEntry>,
}

impl Directory {
    /// The changes after version `since`, for a holder at that version: the
    /// entries with `changed > since`, oldest change first, as many whole
    /// versions as fit in `budget` encoded bytes (capped at
    /// [`DIRECTORY_UPDATE_BYTES_MAX`]), with the issuer CRL. `version` of the
    /// update = the highest `changed` fully included. `None` when nothing
    /// changed after `since`, or when not even the oldest change fits (the
    /// holder stays at its version).
    pub fn update_since(&self, since: u64, budget: usize) -> Option<DirectoryUpdate> {
        let budget = budget.min(DIRECTORY_UPDATE_BYTES_MAX);
        let mut pending: Vec<&DirectoryEntry> =
            self.issuers.iter().filter(|e| e.changed > since).collect();
        pending.sort_by_key(|e| e.changed);
        let mut update = DirectoryUpdate {
            version: since,
            issuer_crl: Some(self.issuer_crl.clone()),
            issuers: Vec::new(),
        };
        let mut i = 0;
        while i < pending.len() {
            // One version at a time: all entries sharing a `changed`, or none.
            let v = pending[i].changed;
            let mut j = i;
            let mut next = update.clone();
            while j < pending.len() && pending[j].changed == v {
                next.issuers.push(pending[j].to_update_issuer());
                j += 1;
            }
            next.version = v;
            if next.encoded_len() > budget {
                break;
            }
            update = next;
            i = j;
        }
        (update.version > since).then_some(update)
    }

    /// The entry of an issuer code.
    pub fn entry(&self, code: &str) -> Option<&DirectoryEntry> {
        self.issuers
            .binary_search_by(|e| e.code.as_str().cmp(code))
            .ok()
            .and_then(|i| self.issuers.get(i))
    }
}

impl Body for Directory {
    const TYPE: u64 = message_type::DIRECTORY;
    const NAME: &'static str = "Directory";
    const BYTES_MAX: usize = DIRECTORY_BYTES_MAX;
    fn field_count(&self) -> usize {
        5
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).uint(self.version);
        e.uint(3).uint(self.time.0);
        e.uint(4).text(self.currency.as_str());
        e.uint(5).bytes(&self.issuer_crl);
        e.uint(6).array(self.issuers.len());
        for i in &self.issuers {
            i.encode(e);
        }
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        let version = m
            .required(2, "directory version")?
            .uint("directory version")?;
        let time = time(m.required(3, "time")?, "time")?;
        let currency = currency(m.required(4, "currency")?)?;
        let issuer_crl = read_crl(m.required(5, "issuer CRL")?, "issuer CRL")?;
        let issuers = {
            let arr = m.required(6, "directory issuers")?;
            let n = arr.array("directory issuers", DIRECTORY_ISSUERS_MAX)?;
            let mut v: Vec<DirectoryEntry> = Vec::with_capacity(n);
            for _ in 0..n {
                let e = DirectoryEntry::decode(arr)?;
                if e.changed > version {
                    return Err(DecodeError::InvalidValue("entry changed after the version"));
                }
                if v.last().is_some_and(|p| p.code >= e.code) {
                    return Err(DecodeError::InvalidValue(
                        "directory entries not in ascending code order",
                    ));
                }
                v.push(e);
            }
            arr.leave();
            v
        };
        Ok(Directory {
            version,
            time,
            currency,
            issuer_crl,
            issuers,
        })
    }
}

// ---- scheme of many issuers: settlement -------------------------------------

/// SHA-256 over the concatenation of the 32-byte claim ids, sorted ascending
/// (sorted in place): the digest of a [`StatementLine`]'s claims.
pub fn statement_digest(claim_ids: &mut [Hash32]) -> Hash32 {
    use sha2::{Digest, Sha256};
    claim_ids.sort_unstable();
    let mut h = Sha256::new();
    for id in claim_ids.iter() {
        h.update(id.0);
    }
    Hash32(h.finalize().into())
}

/// One counterparty of a [`SettlementStatement`].
///
/// Keys (a nested map): 0 counterparty, 1 receivable, 2 payable, 3 claims, 4 digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementLine {
    /// The other issuer.
    pub counterparty: IssuerId,
    /// Total of the cycle's claims where we are the payee's issuer (minor units).
    pub receivable_minor: u64,
    /// Total of the cycle's claims where we are the payer's issuer (minor units).
    pub payable_minor: u64,
    /// Number of claims in this line (both directions, at least 1).
    pub claims: u64,
    /// [`statement_digest`] of this line's claim ids.
    pub digest: Hash32,
}

impl StatementLine {
    /// Receivable minus payable: positive = the counterparty owes us.
    pub fn net(&self) -> i128 {
        i128::from(self.receivable_minor) - i128::from(self.payable_minor)
    }
    fn encode(&self, e: &mut Encoder) {
        e.map(5);
        e.uint(0).bytes(&self.counterparty.0);
        e.uint(1).uint(self.receivable_minor);
        e.uint(2).uint(self.payable_minor);
        e.uint(3).uint(self.claims);
        e.uint(4).bytes(&self.digest.0);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<StatementLine, DecodeError> {
        let mut m = d.map("statement line", 5)?;
        let line = StatementLine {
            counterparty: issuer_id(m.required(0, "counterparty")?, "counterparty")?,
            receivable_minor: m.required(1, "receivable")?.uint("receivable")?,
            payable_minor: m.required(2, "payable")?.uint("payable")?,
            claims: m.required(3, "claims")?.uint("claims")?,
            digest: hash(m.required(4, "digest")?, "digest")?,
        };
        m.end()?;
        if line.claims == 0 {
            return Err(DecodeError::InvalidValue("statement line without claims"));
        }
        Ok(line)
    }
}

/// Scheme -> one issuer: its net position of a settlement cycle, per
/// counterparty. Signed by the scheme root key.
///
/// Keys: 2 cycle, 3 issuer, 4 time, 5 currency, 6 lines (array of
/// [`StatementLine`] maps, ascending counterparty, unique, never the issuer
/// itself, 1 to [`STATEMENT_LINES_MAX`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementStatement {
    /// The cycle number (1, 2, ...).
    pub cycle: u64,
    /// The issuer addressed.
    pub issuer: IssuerId,
    /// Scheme time of the cycle's close.
    pub time: UnixSeconds,
    /// The scheme's currency.
    pub currency: Currency,
    /// One line per counterparty.
    pub lines: Vec<StatementLine>,
}

impl SettlementStatement {
    /// Sum of the lines' nets: positive = the scheme pays the issuer.
    pub fn net(&self) -> i128 {
        self.lines.iter().map(StatementLine::net).sum()
    }
    /// The line of a counterparty.
    pub fn line(&self, counterparty: &IssuerId) -> Option<&StatementLine> {
        self.lines
            .binary_search_by(|l| l.counterparty.cmp(counterparty))
            .ok()
            .and_then(|i| self.lines.get(i))
    }
}

impl Body for SettlementStatement {
    const TYPE: u64 = message_type::SETTLEMENT_STATEMENT;
    const NAME: &'static str = "SettlementStatement";
    const BYTES_MAX: usize = SETTLEMENT_STATEMENT_BYTES_MAX;
    fn field_count(&self) -> usize {
        5
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).uint(self.cycle);
        e.uint(3).bytes(&self.issuer.0);
        e.uint(4).uint(self.time.0);
        e.uint(5).text(self.currency.as_str());
        e.uint(6).array(self.lines.len());
        for l in &self.lines {
            l.encode(e);
        }
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        let cycle = m.required(2, "cycle")?.uint("cycle")?;
        if cycle == 0 {
            return Err(DecodeError::InvalidValue("cycle starts at 1"));
        }
        let issuer = issuer_id(m.required(3, "issuer")?, "issuer")?;
        let time = time(m.required(4, "time")?, "time")?;
        let currency = currency(m.required(5, "currency")?)?;
        let lines = {
            let arr = m.required(6, "statement lines")?;
            let n = arr.array("statement lines", STATEMENT_LINES_MAX)?;
            if n == 0 {
                return Err(DecodeError::InvalidValue("statement without lines"));
            }
            let mut v: Vec<StatementLine> = Vec::with_capacity(n);
            for _ in 0..n {
                let l = StatementLine::decode(arr)?;
                if l.counterparty == issuer {
                    return Err(DecodeError::InvalidValue(
                        "statement line with the issuer itself",
                    ));
                }
                if v.last().is_some_and(|p| p.counterparty >= l.counterparty) {
                    return Err(DecodeError::InvalidValue(
                        "statement lines not in ascending counterparty order",
                    ));
                }
                v.push(l);
            }
            arr.leave();
            v
        };
        Ok(SettlementStatement {
            cycle,
            issuer,
            time,
            currency,
            lines,
        })
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;
    use crate::{Nonce, SigningKey, Suite};

    /// The bound the compile-time limit checks above rely on: every envelope
    /// whose fields are all fixed-size (each at its largest value) fits in
    /// [`ENVELOPE_FIXED_BYTES_MAX`], in both suites.
    #[test]
    fn fixed_size_envelopes_fit_their_bound() {
        let max = UnixSeconds(u64::MAX);
        let amount = Amount::new(u64::MAX, Currency::new("EUR").unwrap());
        let (w, h) = (WalletId([0xff; 16]), Hash32([0xff; 32]));
        for suite in [Suite::Ed25519, Suite::P256] {
            let key = SigningKey::from_seed(suite, &[9; 32]).unwrap();
            let request = PaymentRequest {
                payee: w,
                amount,
                nonce: Nonce([0xff; 16]),
                created: max,
                expires: max,
                payee_cert: CertField::Reference(h),
                known_certs: Vec::new(),
            };
            let sizes = [
                Signed::sign(
                    Receipt {
                        payment_id: h,
                        payee: w,
                        payer: w,
                        seq: u64::MAX,
                        time: max,
                    },
                    &key,
                )
                .bytes()
                .len(),
                Signed::sign(
                    LoadVoucher {
                        wallet: w,
                        load_seq: u64::MAX,
                        amount,
                        issued: max,
                    },
                    &key,
                )
                .bytes()
                .len(),
                Signed::sign(
                    Redeem {
                        wallet: w,
                        seq: u64::MAX,
                        prev: h,
                        amount,
                        time: max,
                    },
                    &key,
                )
                .bytes()
                .len(),
                Signed::sign(
                    RiskPolicy {
                        required_suite: None,
                        id: u32::MAX,
                        epoch: u32::MAX,
                        max_payment: amount,
                        max_balance_minor: u64::MAX,
                        max_offline_spend_minor: u64::MAX,
                        max_offline_payments: u32::MAX,
                        max_offline_seconds: u64::MAX,
                        max_log_entries: u32::MAX,
                        cert_validity_seconds: u64::MAX,
                        terminal: Some(TerminalLimits {
                            max_receive_payments: u32::MAX,
                            max_receive_minor: u64::MAX,
                            sweep_float_minor: u64::MAX,
                        }),
                    },
                    &key,
                )
                .bytes()
                .len(),
                Signed::sign(
                    Payment {
                        payer: w,
                        seq: u64::MAX,
                        prev: h,
                        payee: w,
                        amount,
                        nonce: Nonce([0xff; 16]),
                        time: max,
                        payer_cert: CertField::Reference(h),
                        payee_issuer: IssuerId([0xff; 16]),
                    },
                    &key,
                )
                .bytes()
                .len(),
                Signed::sign(request, &key).bytes().len(),
            ];
            for n in sizes {
                assert!(
                    n <= ENVELOPE_FIXED_BYTES_MAX,
                    "{n} bytes > {ENVELOPE_FIXED_BYTES_MAX}"
                );
            }
        }
    }
}

#[cfg(test)]
mod scheme_message_tests {
    use super::*;
    use crate::{SigningKey, Suite};

    fn key() -> SigningKey {
        SigningKey::from_seed(Suite::Ed25519, &[3; 32]).unwrap()
    }

    fn entry(code: &str, changed: u64, crl_len: usize) -> DirectoryEntry {
        DirectoryEntry {
            code: code.to_string(),
            status: IssuerStatus::Active,
            changed,
            ca_cert: vec![0x30; 300],
            crl: (crl_len > 0).then(|| vec![0x31; crl_len]),
        }
    }

    fn directory(entries: Vec<DirectoryEntry>) -> Directory {
        Directory {
            version: entries.iter().map(|e| e.changed).max().unwrap_or(1),
            time: UnixSeconds(1000),
            currency: Currency::EUR,
            issuer_crl: vec![0x32; 200],
            issuers: entries,
        }
    }

    fn update_bytes(u: &DirectoryUpdate) -> Vec<u8> {
        let mut e = Encoder::new();
        u.encode(&mut e);
        e.finish()
    }

    fn decode_update(b: &[u8]) -> Result<DirectoryUpdate, DecodeError> {
        let mut d = Decoder::new(b);
        let u = DirectoryUpdate::decode(&mut d)?;
        d.finish()?;
        Ok(u)
    }

    fn statement(lines: Vec<StatementLine>) -> SettlementStatement {
        SettlementStatement {
            cycle: 1,
            issuer: IssuerId([5; 16]),
            time: UnixSeconds(10),
            currency: Currency::EUR,
            lines,
        }
    }

    fn line(cp: u8) -> StatementLine {
        StatementLine {
            counterparty: IssuerId([cp; 16]),
            receivable_minor: 10,
            payable_minor: 30,
            claims: 2,
            digest: Hash32([cp; 32]),
        }
    }

    #[test]
    fn directory_and_statement_round_trip() {
        let d = directory(vec![entry("bank-a", 1, 0), entry("bank-b", 2, 50)]);
        let s = Signed::sign(d.clone(), &key());
        let back = Signed::<Directory>::decode(s.bytes()).unwrap();
        assert_eq!(back.body(), &d);
        assert_eq!(d.entry("bank-b").unwrap().changed, 2);
        assert!(d.entry("bank-c").is_none());
        let st = statement(vec![line(1), line(9)]);
        let s = Signed::sign(st.clone(), &key());
        assert_eq!(
            Signed::<SettlementStatement>::decode(s.bytes())
                .unwrap()
                .body(),
            &st
        );
        assert_eq!(st.net(), -40);
        assert_eq!(st.line(&IssuerId([9; 16])).unwrap().net(), -20);
        let u = d.update_since(0, usize::MAX).unwrap();
        assert_eq!(decode_update(&update_bytes(&u)).unwrap(), u);
        assert_eq!(update_bytes(&u).len(), u.encoded_len());
    }

    #[test]
    fn directory_refusals() {
        let k = key();
        let refuse = |d: Directory, want: DecodeError| {
            let s = Signed::sign(d, &k);
            assert_eq!(Signed::<Directory>::decode(s.bytes()).unwrap_err(), want);
        };
        refuse(
            directory(vec![entry("bank-b", 1, 0), entry("bank-a", 1, 0)]),
            DecodeError::InvalidValue("directory entries not in ascending code order"),
        );
        refuse(
            directory(vec![entry("bank-a", 1, 0), entry("bank-a", 1, 0)]),
            DecodeError::InvalidValue("directory entries not in ascending code order"),
        );
        refuse(
            directory(vec![entry("Bank-A", 1, 0)]),
            DecodeError::InvalidValue("issuer code"),
        );
        refuse(
            directory(vec![entry("bank-a", 0, 0)]),
            DecodeError::InvalidValue("changed starts at 1"),
        );
        let mut d = directory(vec![entry("bank-a", 2, 0)]);
        d.version = 1;
        refuse(
            d,
            DecodeError::InvalidValue("entry changed after the version"),
        );
        let mut e = entry("bank-a", 1, 0);
        e.ca_cert = vec![0; CERT_FIELD_BYTES_MAX + 1];
        refuse(
            directory(vec![e]),
            DecodeError::TooLarge {
                field: "issuer CA certificate",
                max: CERT_FIELD_BYTES_MAX as u64,
            },
        );
        let many = (0..=DIRECTORY_ISSUERS_MAX)
            .map(|i| entry(&format!("bank-{i:03}"), 1, 0))
            .collect();
        refuse(
            directory(many),
            DecodeError::TooLarge {
                field: "directory issuers",
                max: DIRECTORY_ISSUERS_MAX as u64,
            },
        );
        // An unknown status code.
        let one = directory(vec![entry("bank-a", 1, 0)]);
        let mut payload = one.to_payload();
        let at = payload
            .windows(3)
            .position(|w| w == [0x01, 0x00, 0x02])
            .unwrap();
        payload[at + 1] = 0x03;
        let mut dec = Decoder::new(&payload);
        let mut fields = dec.map("Directory", 32).unwrap();
        crate::envelope::read_type_version(&mut fields, message_type::DIRECTORY).unwrap();
        assert_eq!(
            Directory::decode_fields(&mut fields).unwrap_err(),
            DecodeError::InvalidValue("issuer status")
        );
    }

    #[test]
    fn update_refusals() {
        let u = DirectoryUpdate {
            version: 3,
            issuer_crl: None,
            issuers: vec![
                DirectoryIssuer {
                    changed: 2,
                    ca_cert: vec![1; 10],
                    crl: None,
                },
                DirectoryIssuer {
                    changed: 3,
                    ca_cert: vec![2; 10],
                    crl: Some(vec![3; 10]),
                },
            ],
        };
        assert_eq!(decode_update(&update_bytes(&u)).unwrap(), u);
        let mut bad = u.clone();
        bad.issuers.swap(0, 1);
        assert_eq!(
            decode_update(&update_bytes(&bad)).unwrap_err(),
            DecodeError::InvalidValue("directory issuers not oldest first")
        );
        let mut bad = u.clone();
        bad.version = 2;
        assert_eq!(
            decode_update(&update_bytes(&bad)).unwrap_err(),
            DecodeError::InvalidValue("issuer changed after the version")
        );
        let mut bad = u.clone();
        bad.version = 0;
        assert_eq!(
            decode_update(&update_bytes(&bad)).unwrap_err(),
            DecodeError::InvalidValue("directory version starts at 1")
        );
        // Over the byte budget: two CRLs at their largest.
        let big = DirectoryUpdate {
            version: 1,
            issuer_crl: Some(vec![0; CRL_FIELD_BYTES_MAX]),
            issuers: vec![DirectoryIssuer {
                changed: 1,
                ca_cert: vec![1; 10],
                crl: Some(vec![0; CRL_FIELD_BYTES_MAX]),
            }],
        };
        assert_eq!(
            decode_update(&update_bytes(&big)).unwrap_err(),
            DecodeError::TooLarge {
                field: "directory update",
                max: DIRECTORY_UPDATE_BYTES_MAX as u64,
            }
        );
    }

    #[test]
    fn updates_follow_the_budget_whole_versions_at_a_time() {
        // Versions 1 (a), 2 (b and c), 3 (d), each entry about 300 + crl bytes.
        let d = directory(vec![
            entry("a", 1, 0),
            entry("b", 2, 1000),
            entry("c", 2, 1000),
            entry("d", 3, 0),
        ]);
        assert_eq!(d.update_since(3, usize::MAX), None);
        let all = d.update_since(0, usize::MAX).unwrap();
        assert_eq!(all.version, 3);
        let changed: Vec<u64> = all.issuers.iter().map(|i| i.changed).collect();
        assert_eq!(changed, [1, 2, 2, 3]);
        // Since 1: b, c and d.
        let since1 = d.update_since(1, usize::MAX).unwrap();
        assert_eq!(since1.issuers.len(), 3);
        // A budget that holds version 1 but not the whole of version 2.
        let small = d.update_since(0, 1500).unwrap();
        assert_eq!(small.version, 1);
        assert_eq!(small.issuers.len(), 1);
        assert!(small.encoded_len() <= 1500);
        // A budget too small for the oldest change: nothing.
        assert_eq!(d.update_since(0, 100), None);
        // Every update carries the issuer CRL.
        assert_eq!(small.issuer_crl.as_deref(), Some(&d.issuer_crl[..]));
    }

    #[test]
    fn statement_refusals() {
        let k = key();
        let refuse = |st: SettlementStatement, want: DecodeError| {
            let s = Signed::sign(st, &k);
            assert_eq!(
                Signed::<SettlementStatement>::decode(s.bytes()).unwrap_err(),
                want
            );
        };
        refuse(
            statement(vec![line(9), line(1)]),
            DecodeError::InvalidValue("statement lines not in ascending counterparty order"),
        );
        refuse(
            statement(vec![line(1), line(1)]),
            DecodeError::InvalidValue("statement lines not in ascending counterparty order"),
        );
        refuse(
            statement(vec![line(5)]),
            DecodeError::InvalidValue("statement line with the issuer itself"),
        );
        refuse(
            statement(vec![]),
            DecodeError::InvalidValue("statement without lines"),
        );
        let mut l = line(1);
        l.claims = 0;
        refuse(
            statement(vec![l]),
            DecodeError::InvalidValue("statement line without claims"),
        );
        let mut st = statement(vec![line(1)]);
        st.cycle = 0;
        refuse(st, DecodeError::InvalidValue("cycle starts at 1"));
        let many = (0..=STATEMENT_LINES_MAX)
            .map(|i| StatementLine {
                counterparty: IssuerId([
                    6,
                    (i >> 8) as u8,
                    i as u8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ]),
                ..line(6)
            })
            .collect();
        refuse(
            statement(many),
            DecodeError::TooLarge {
                field: "statement lines",
                max: STATEMENT_LINES_MAX as u64,
            },
        );
        // The fullest statement, every integer at its widest, fits its limit.
        let full: Vec<StatementLine> = (0..STATEMENT_LINES_MAX)
            .map(|i| StatementLine {
                counterparty: IssuerId([7, i as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                receivable_minor: u64::MAX,
                payable_minor: u64::MAX,
                claims: u64::MAX,
                digest: Hash32([0xff; 32]),
            })
            .collect();
        let st = SettlementStatement {
            cycle: u64::MAX,
            time: UnixSeconds(u64::MAX),
            ..statement(full)
        };
        let s = Signed::sign(st.clone(), &k);
        assert!(s.bytes().len() <= SETTLEMENT_STATEMENT_BYTES_MAX);
        assert_eq!(
            Signed::<SettlementStatement>::decode(s.bytes())
                .unwrap()
                .body(),
            &st
        );
        // Nets in i128: no overflow with every line at its extreme.
        assert_eq!(st.net(), 0);
    }

    #[test]
    fn the_statement_digest_sorts_the_claim_ids() {
        let ids = [Hash32([1; 32]), Hash32([2; 32]), Hash32([3; 32])];
        let mut shuffled = [ids[2], ids[0], ids[1]];
        let mut sorted = ids;
        assert_eq!(
            statement_digest(&mut shuffled),
            statement_digest(&mut sorted)
        );
        assert_eq!(shuffled, sorted);
        let mut cat = Vec::new();
        for h in ids {
            cat.extend_from_slice(&h.0);
        }
        assert_eq!(statement_digest(&mut sorted), Hash32::digest(&cat));
        assert_eq!(statement_digest(&mut []), Hash32::digest(&[]));
        assert_ne!(
            statement_digest(&mut [ids[0], ids[1]]),
            statement_digest(&mut [ids[0], ids[2]])
        );
    }

    #[test]
    fn every_payment_keeps_one_size_whatever_the_payee_issuer() {
        let k = key();
        let p = |issuer: IssuerId| Payment {
            payer: WalletId([1; 16]),
            seq: 1,
            prev: Hash32::ZERO,
            payee: WalletId([2; 16]),
            amount: Amount::new(100, Currency::EUR),
            nonce: Nonce([3; 16]),
            time: UnixSeconds(5),
            payer_cert: CertField::Reference(Hash32([4; 32])),
            payee_issuer: issuer,
        };
        let a = Signed::sign(p(IssuerId([0; 16])), &k);
        let b = Signed::sign(p(IssuerId([0xff; 16])), &k);
        assert_eq!(a.bytes().len(), b.bytes().len());
        assert_eq!(
            Signed::<Payment>::decode(b.bytes())
                .unwrap()
                .body()
                .payee_issuer,
            IssuerId([0xff; 16])
        );
    }
}

#[cfg(test)]
mod terminal_policy_tests {
    use super::*;
    use crate::{SigningKey, Suite};

    pub(super) fn policy(terminal: Option<TerminalLimits>) -> RiskPolicy {
        RiskPolicy {
            required_suite: None,
            id: 2,
            epoch: 5,
            max_payment: Amount::new(5_000, Currency::new("EUR").unwrap()),
            max_balance_minor: 100_000,
            max_offline_spend_minor: 20_000,
            max_offline_payments: 20,
            max_offline_seconds: 86_400,
            max_log_entries: 500,
            cert_validity_seconds: 30 * 86_400,
            terminal,
        }
    }

    #[test]
    fn terminal_limits_round_trip_and_are_all_or_nothing() {
        let key = SigningKey::from_seed(Suite::Ed25519, &[9; 32]).unwrap();
        let limits = TerminalLimits {
            max_receive_payments: 300,
            max_receive_minor: 90_000,
            sweep_float_minor: 1_000,
        };
        for p in [policy(None), policy(Some(limits))] {
            let bytes = Signed::sign(p.clone(), &key).into_bytes();
            assert_eq!(Signed::<RiskPolicy>::decode(&bytes).unwrap().body(), &p);
        }
        // A policy without the terminal keys is the policy of before (same bytes).
        let old = Signed::sign(policy(None), &key).into_bytes();
        let new = Signed::sign(policy(Some(limits)), &key).into_bytes();
        assert!(new.len() > old.len());

        // Keys 13 and 14 without 12, or 12 without 13/14: refused.
        let payload = |extra: &[(u64, u64)]| {
            let mut e = Encoder::new();
            e.map(12 + extra.len());
            e.uint(0).uint(RiskPolicy::TYPE);
            e.uint(1).uint(crate::envelope::PROTOCOL_VERSION);
            policy(None).encode_fields(&mut e);
            for (k, v) in extra {
                e.uint(*k).uint(*v);
            }
            e.finish()
        };
        assert_eq!(
            RiskPolicy::from_payload(&payload(&[(13, 1), (14, 1)])),
            Err(DecodeError::UnexpectedKey { key: 13 })
        );
        assert_eq!(
            RiskPolicy::from_payload(&payload(&[(12, 1)])),
            Err(DecodeError::MissingField("max receive amount"))
        );
        assert_eq!(
            RiskPolicy::from_payload(&payload(&[(12, 1), (13, 1)])),
            Err(DecodeError::MissingField("sweep float"))
        );
        assert_eq!(
            RiskPolicy::from_payload(&payload(&[(12, 1), (13, 2), (14, 3)]))
                .unwrap()
                .terminal,
            Some(TerminalLimits {
                max_receive_payments: 1,
                max_receive_minor: 2,
                sweep_float_minor: 3,
            })
        );
    }
}

#[cfg(test)]
mod rekey_field_tests {
    use super::*;
    use crate::{SigningKey, Suite};

    fn report(csr: Option<Vec<u8>>, key_generation: u32, key_since: u64) -> SyncReport {
        SyncReport {
            wallet: WalletId([0xAA; 16]),
            report_seq: 3,
            time: UnixSeconds(1_000),
            base_checkpoint: 2,
            outgoing: Vec::new(),
            incoming: Vec::new(),
            loads: Vec::new(),
            balance: Amount::new(0, Currency::new("EUR").unwrap()),
            seq: 40,
            head: Hash32([0xBB; 32]),
            load_seq: 1,
            evidence: Vec::new(),
            locked: false,
            directory_version: 0,
            csr,
            key_generation,
            key_since,
            crl_number: None,
        }
    }

    /// Replace the one occurrence of `from` in `bytes` by `to`.
    fn patch(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at: Vec<usize> = bytes
            .windows(from.len())
            .enumerate()
            .filter(|(_, w)| *w == from)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at.len(), 1, "pattern {from:02x?} must occur once");
        let mut b = bytes.to_vec();
        b[at[0]..at[0] + to.len()].copy_from_slice(to);
        b
    }

    /// Keys 17 to 19 round-trip; absent they are the defaults (the report of
    /// before, byte for byte); an explicit default, and a CSR over its
    /// bound, are refused.
    #[test]
    fn the_re_key_fields_of_a_report_are_canonical_and_bounded() {
        let key = SigningKey::from_seed(Suite::Ed25519, &[5; 32]).unwrap();
        let plain = report(None, 0, 1);
        let full = report(Some(vec![0x30; 300]), 7, 41);
        for r in [&plain, &full] {
            let b = Signed::sign(r.clone(), &key).into_bytes();
            assert_eq!(Signed::<SyncReport>::decode(&b).unwrap().body(), r);
        }
        let b = Signed::sign(full.clone(), &key).into_bytes();
        // Generation 7 (key 18 = 0x12, value 0x07) written as an explicit 0.
        let zero = patch(&b, &[0x12, 0x07], &[0x12, 0x00]);
        assert_eq!(
            Signed::<SyncReport>::decode(&zero).unwrap_err(),
            DecodeError::InvalidValue("key generation 0 is implicit")
        );
        // Since 41 (key 19 = 0x13, 0x18 0x29) written as 1.
        let one = patch(&b, &[0x13, 0x18, 0x29], &[0x13, 0x18, 0x01]);
        assert!(Signed::<SyncReport>::decode(&one).is_err());
        let big = report(Some(vec![0x30; crate::pki::CSR_BYTES_MAX + 1]), 7, 41);
        let b = Signed::sign(big, &key).into_bytes();
        assert!(matches!(
            Signed::<SyncReport>::decode(&b).unwrap_err(),
            DecodeError::TooLarge { field: "csr", .. }
        ));
    }

    /// A re-key suite and a policy's required suite travel as COSE
    /// algorithms; one no suite has is refused by name.
    #[test]
    fn suites_travel_as_cose_algorithms() {
        let key = SigningKey::from_seed(Suite::Ed25519, &[6; 32]).unwrap();
        let mut p = super::terminal_policy_tests::policy(None);
        p.required_suite = Some(SuiteRequirement {
            suite: Suite::MlDsa44,
            from: UnixSeconds(77_777),
        });
        let b = Signed::sign(p.clone(), &key).into_bytes();
        assert_eq!(Signed::<RiskPolicy>::decode(&b).unwrap().body(), &p);
        // -48 is 0x38 0x2f; -49 names no suite.
        let bad = patch(&b, &[0x0f, 0x38, 0x2f], &[0x0f, 0x38, 0x30]);
        assert_eq!(
            Signed::<RiskPolicy>::decode(&bad).unwrap_err(),
            DecodeError::InvalidValue("required suite")
        );
        let r = p.required_suite.unwrap();
        assert!(r.retires(Suite::Ed25519, UnixSeconds(77_777)));
        assert!(!r.retires(Suite::Ed25519, UnixSeconds(77_776)));
        assert!(!r.retires(Suite::MlDsa44, UnixSeconds(99_999)));
    }
}

#[cfg(test)]
mod crl_field_tests {
    use super::*;
    use crate::{SigningKey, Suite};

    fn report(crl_number: Option<u64>) -> SyncReport {
        SyncReport {
            wallet: WalletId([0xAA; 16]),
            report_seq: 3,
            time: UnixSeconds(1_000),
            base_checkpoint: 2,
            outgoing: Vec::new(),
            incoming: Vec::new(),
            loads: Vec::new(),
            balance: Amount::new(0, Currency::new("EUR").unwrap()),
            seq: 40,
            head: Hash32([0xBB; 32]),
            load_seq: 1,
            evidence: Vec::new(),
            locked: false,
            directory_version: 0,
            csr: None,
            key_generation: 0,
            key_since: 1,
            crl_number,
        }
    }

    fn response(crl: Option<Vec<u8>>, crl_delta: Option<Vec<u8>>) -> SyncResponse {
        SyncResponse {
            wallet: WalletId([0xAA; 16]),
            report_seq: 3,
            time: UnixSeconds(1_000),
            checkpoint: Checkpoint {
                number: 4,
                seq: 40,
                head: Hash32([0xBB; 32]),
                balance: Amount::new(0, Currency::new("EUR").unwrap()),
                load_seq: 1,
                time: UnixSeconds(1_000),
                report_seq: 3,
            },
            vouchers: Vec::new(),
            crl,
            crl_delta,
            certificate: None,
            policy: None,
            command: WalletCommand::None,
            directory: None,
            rekey: None,
        }
    }

    /// The payload of `body` with `extra` (key, pre-encoded value) appended
    /// to its map (whose head counts one more field per extra).
    fn payload_with<B: Body>(body: &B, extra: &[(u64, &[u8])]) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(2 + body.field_count() + extra.len());
        e.uint(0).uint(B::TYPE);
        e.uint(1).uint(crate::envelope::PROTOCOL_VERSION);
        body.encode_fields(&mut e);
        let mut b = e.finish();
        for (k, v) in extra {
            let mut ke = Encoder::new();
            ke.uint(*k);
            b.extend_from_slice(&ke.finish());
            b.extend_from_slice(v);
        }
        b
    }

    /// Key 20 of a SyncReport round-trips; absent it is `None` and the
    /// report is the report of before, byte for byte; a value that is not an
    /// unsigned integer is refused.
    #[test]
    fn the_crl_number_of_a_report() {
        let key = SigningKey::from_seed(Suite::Ed25519, &[5; 32]).unwrap();
        for n in [None, Some(1), Some(u64::MAX)] {
            let r = report(n);
            let b = Signed::sign(r.clone(), &key).into_bytes();
            assert_eq!(Signed::<SyncReport>::decode(&b).unwrap().body(), &r);
        }
        let none = payload_with(&report(None), &[]);
        let some = payload_with(&report(Some(7)), &[]);
        // The same map plus one field (the head counts it): 0x14 0x07.
        assert_eq!(some[1..], [&none[1..], &[0x14, 0x07][..]].concat());
        assert_eq!(some[0], none[0] + 1);
        let base = report(None);
        for (bad, why) in [
            (&[0x41, 0x07][..], "a byte string"),
            (&[0x26][..], "a negative integer"),
            (&[0xF5][..], "a boolean"),
        ] {
            let p = payload_with(&base, &[(20, bad)]);
            assert!(SyncReport::from_payload(&p).is_err(), "{why} accepted");
        }
        // Key 21 is not a field.
        let p = payload_with(&base, &[(21, &[0x01])]);
        assert_eq!(
            SyncReport::from_payload(&p),
            Err(DecodeError::UnexpectedKey { key: 21 })
        );
    }

    /// Key 14 of a SyncResponse (a delta CRL) round-trips; never with key 7;
    /// bounded like the complete CRL; not a byte string: refused.
    #[test]
    fn the_delta_crl_of_a_response() {
        let key = SigningKey::from_seed(Suite::Ed25519, &[6; 32]).unwrap();
        for r in [
            response(None, None),
            response(Some(vec![0x30; 40]), None),
            response(None, Some(vec![0x30; 50])),
        ] {
            let b = Signed::sign(r.clone(), &key).into_bytes();
            assert_eq!(Signed::<SyncResponse>::decode(&b).unwrap().body(), &r);
        }
        let both = Signed::sign(response(Some(vec![1; 4]), Some(vec![2; 4])), &key).into_bytes();
        assert_eq!(
            Signed::<SyncResponse>::decode(&both).unwrap_err(),
            DecodeError::InvalidValue("a complete CRL and a delta CRL together")
        );
        let big = Signed::sign(
            response(None, Some(vec![0x30; CRL_FIELD_BYTES_MAX + 1])),
            &key,
        )
        .into_bytes();
        assert!(matches!(
            Signed::<SyncResponse>::decode(&big).unwrap_err(),
            DecodeError::TooLarge {
                field: "delta crl",
                ..
            }
        ));
        let p = payload_with(&response(None, None), &[(14, &[0x07])]);
        assert!(SyncResponse::from_payload(&p).is_err());
    }
}
