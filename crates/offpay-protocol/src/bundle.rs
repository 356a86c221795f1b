//! The evidence bundle of a dispute case ([`EvidenceBundle`], message type 16).
//!
//! An issuer's signed statement of one case: what the customer claims, what
//! the issuer decided, and the system's own evidence, with every certificate
//! needed to check it, so that anyone holding the scheme root certificate
//! verifies it offline ([`crate::evidence::verify_bundle`]). The payer's
//! signed chain entry and the double-spend proofs prove themselves; the
//! delivery state, the checkpoints and the CRL state are the issuer's word,
//! under its signature over the bundle.

use crate::cbor::{DecodeError, Decoder, Encoder, MapReader};
use crate::envelope::Body;
use crate::messages::{
    CERT_FIELD_BYTES_MAX, DOUBLE_SPEND_PROOF_BYTES_MAX, PAYMENT_BYTES_MAX, message_type,
};
use crate::types::{Currency, Hash32, UnixSeconds, WalletId};

/// Largest EvidenceBundle envelope.
pub const EVIDENCE_BUNDLE_BYTES_MAX: usize = 160 << 10;
/// Checkpoints a bundle carries at most.
pub const BUNDLE_CHECKPOINTS_MAX: usize = 4;
/// Double-spend proofs a bundle carries at most.
pub const BUNDLE_PROOFS_MAX: usize = 4;
/// Wallet certificates (one per key generation) a bundle carries at most.
pub const BUNDLE_CERTS_MAX: usize = 4;
/// Longest kind, state, decision or retirement text.
pub const BUNDLE_WORD_BYTES_MAX: usize = 32;

// Everything at its largest fits: 1 KiB for the fixed fields and the
// envelope, the signature, the entry and the issuer certificate (3-byte
// heads), the proofs (5-byte heads), the certificates and the checkpoints.
const _: () = assert!(
    1024 + crate::suite::SIGNATURE_BYTES_MAX
        + (3 + PAYMENT_BYTES_MAX)
        + (3 + CERT_FIELD_BYTES_MAX)
        + BUNDLE_PROOFS_MAX * (5 + DOUBLE_SPEND_PROOF_BYTES_MAX)
        + BUNDLE_CERTS_MAX * (3 + CERT_FIELD_BYTES_MAX)
        + BUNDLE_CHECKPOINTS_MAX * 128
        <= EVIDENCE_BUNDLE_BYTES_MAX
);

/// Whether the payee's TA holds a settled payment, as the issuer records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleDelivery {
    /// Settled from the payer's report; no report of the payee carried it.
    Pending,
    /// A report of the payee carried it (or the payee is another issuer's).
    Delivered,
    /// Returned to the payer's customer after the payee's window closed.
    Returned,
    /// No settlement (a case on a wallet, not on a payment).
    None,
}

impl BundleDelivery {
    /// Wire code.
    pub fn code(self) -> u64 {
        match self {
            BundleDelivery::Pending => 0,
            BundleDelivery::Delivered => 1,
            BundleDelivery::Returned => 2,
            BundleDelivery::None => 3,
        }
    }
    /// From the wire code.
    pub fn from_code(c: u64) -> Option<BundleDelivery> {
        match c {
            0 => Some(BundleDelivery::Pending),
            1 => Some(BundleDelivery::Delivered),
            2 => Some(BundleDelivery::Returned),
            3 => Some(BundleDelivery::None),
            _ => None,
        }
    }
    /// Name.
    pub fn as_str(self) -> &'static str {
        match self {
            BundleDelivery::Pending => "pending",
            BundleDelivery::Delivered => "delivered",
            BundleDelivery::Returned => "returned",
            BundleDelivery::None => "none",
        }
    }
}

/// One checkpoint of a wallet as the issuer recorded it.
///
/// Keys (a nested map): 0 wallet, 1 number, 2 seq, 3 head, 4 balance
/// (minor units, an integer), 5 time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleCheckpoint {
    /// The wallet.
    pub wallet: WalletId,
    /// Checkpoint number.
    pub number: u64,
    /// Chain seq it covers.
    pub seq: u64,
    /// Chain head at that seq.
    pub head: Hash32,
    /// Balance, minor units.
    pub balance_minor: i64,
    /// Issuer time.
    pub time: UnixSeconds,
}

impl BundleCheckpoint {
    fn encode(&self, e: &mut Encoder) {
        e.map(6);
        e.uint(0).bytes(&self.wallet.0);
        e.uint(1).uint(self.number);
        e.uint(2).uint(self.seq);
        e.uint(3).bytes(&self.head.0);
        e.uint(4).int(self.balance_minor);
        e.uint(5).uint(self.time.0);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<BundleCheckpoint, DecodeError> {
        let mut m = d.map("bundle checkpoint", 6)?;
        let c = BundleCheckpoint {
            wallet: WalletId(
                m.required(0, "checkpoint wallet")?
                    .fixed("checkpoint wallet")?,
            ),
            number: m
                .required(1, "checkpoint number")?
                .uint("checkpoint number")?,
            seq: m.required(2, "checkpoint seq")?.uint("checkpoint seq")?,
            head: Hash32(m.required(3, "checkpoint head")?.fixed("checkpoint head")?),
            balance_minor: m
                .required(4, "checkpoint balance")?
                .int("checkpoint balance")?,
            time: UnixSeconds(m.required(5, "checkpoint time")?.uint("checkpoint time")?),
        };
        m.end()?;
        Ok(c)
    }
}

/// Issuer -> anyone: one dispute case and its evidence. Signed by the issuer
/// CA key.
///
/// Keys: 2 case id, 3 kind, 4 state, 5 decision ("" before one), 6 time,
/// 7 wallet (the payer, or the disputed wallet), 8 seq (0: a case on a
/// wallet), 9 amount, 10 currency, 11 paid, 12 entry (the payer's signed
/// chain entry; empty: none), 13 delivery, 14 window closed at (0: not seen),
/// 15 revoked at (0: not revoked), 16 CRL number (0: on none yet),
/// 17 retired ("", "lost", "broken"), 18 checkpoints, 19 double-spend proofs,
/// 20 wallet certificates, 21 issuer CA certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceBundle {
    /// Case id (1, 2, ...).
    pub case_id: u64,
    /// What the customer says (`paid_not_received`, `not_my_payment`, `refused_but_debited`).
    pub kind: String,
    /// The case's state when the bundle was made.
    pub state: String,
    /// The decision by the liability rules ("" while open).
    pub decision: String,
    /// Issuer time of the bundle.
    pub time: UnixSeconds,
    /// The payer of the payment, or the wallet the case is about.
    pub wallet: WalletId,
    /// The payment's seq (0: a case on a wallet).
    pub seq: u64,
    /// The amount in dispute, minor units.
    pub amount_minor: u64,
    /// Its currency.
    pub currency: Currency,
    /// What the resolution paid to the customer, minor units.
    pub paid_minor: u64,
    /// The payer's signed chain entry (empty: none).
    pub entry: Vec<u8>,
    /// Whether the payee's TA holds it.
    pub delivery: BundleDelivery,
    /// When a report of the payee made after its window closed did not carry it (0: not seen).
    pub window_closed_at: UnixSeconds,
    /// When the wallet's certificate was revoked (0: not revoked).
    pub revoked_at: UnixSeconds,
    /// The first CRL number listing that revocation (0: none yet).
    pub crl_number: u64,
    /// Why the wallet was retired ("", "lost", "broken").
    pub retired: String,
    /// The checkpoints of the payer and the payee around the payment.
    pub checkpoints: Vec<BundleCheckpoint>,
    /// Encoded double-spend proofs of the wallet at this seq (or any, for a wallet case).
    pub double_spends: Vec<Vec<u8>>,
    /// The wallet's certificates (DER), every key generation.
    pub wallet_certs: Vec<Vec<u8>>,
    /// The issuer CA certificate (DER) that signed them and the bundle.
    pub issuer_cert: Vec<u8>,
}

fn word(m: &mut MapReader<'_, '_>, k: u64, name: &'static str) -> Result<String, DecodeError> {
    Ok(m.required(k, name)?
        .text(name, BUNDLE_WORD_BYTES_MAX)?
        .to_string())
}

fn byte_list(
    map: &mut MapReader<'_, '_>,
    key: u64,
    name: &'static str,
    count_max: usize,
    bytes_max: usize,
) -> Result<Vec<Vec<u8>>, DecodeError> {
    let items = map.required(key, name)?;
    let count = items.array(name, count_max)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(items.bytes(name, bytes_max)?.to_vec());
    }
    items.leave();
    Ok(out)
}

impl Body for EvidenceBundle {
    const TYPE: u64 = message_type::EVIDENCE_BUNDLE;
    const NAME: &'static str = "EvidenceBundle";
    const BYTES_MAX: usize = EVIDENCE_BUNDLE_BYTES_MAX;
    fn field_count(&self) -> usize {
        20
    }
    fn encode_fields(&self, e: &mut Encoder) {
        e.uint(2).uint(self.case_id);
        e.uint(3).text(&self.kind);
        e.uint(4).text(&self.state);
        e.uint(5).text(&self.decision);
        e.uint(6).uint(self.time.0);
        e.uint(7).bytes(&self.wallet.0);
        e.uint(8).uint(self.seq);
        e.uint(9).uint(self.amount_minor);
        e.uint(10).text(self.currency.as_str());
        e.uint(11).uint(self.paid_minor);
        e.uint(12).bytes(&self.entry);
        e.uint(13).uint(self.delivery.code());
        e.uint(14).uint(self.window_closed_at.0);
        e.uint(15).uint(self.revoked_at.0);
        e.uint(16).uint(self.crl_number);
        e.uint(17).text(&self.retired);
        e.uint(18).array(self.checkpoints.len());
        for c in &self.checkpoints {
            c.encode(e);
        }
        e.uint(19).array(self.double_spends.len());
        for p in &self.double_spends {
            e.bytes(p);
        }
        e.uint(20).array(self.wallet_certs.len());
        for c in &self.wallet_certs {
            e.bytes(c);
        }
        e.uint(21).bytes(&self.issuer_cert);
    }
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError> {
        let case_id = m.required(2, "case id")?.uint("case id")?;
        if case_id == 0 {
            return Err(DecodeError::InvalidValue("case ids start at 1"));
        }
        let kind = word(m, 3, "kind")?;
        let state = word(m, 4, "state")?;
        let decision = word(m, 5, "decision")?;
        let time = UnixSeconds(m.required(6, "time")?.uint("time")?);
        let wallet = WalletId(m.required(7, "wallet")?.fixed("wallet")?);
        let seq = m.required(8, "seq")?.uint("seq")?;
        let amount_minor = m.required(9, "amount")?.uint("amount")?;
        let currency = Currency::new(m.required(10, "currency")?.text("currency", 3)?)
            .ok_or(DecodeError::InvalidValue("currency"))?;
        let paid_minor = m.required(11, "paid")?.uint("paid")?;
        let entry = m
            .required(12, "entry")?
            .bytes("entry", PAYMENT_BYTES_MAX)?
            .to_vec();
        if seq == 0 && !entry.is_empty() {
            return Err(DecodeError::InvalidValue("a wallet case carries no entry"));
        }
        let delivery = BundleDelivery::from_code(m.required(13, "delivery")?.uint("delivery")?)
            .ok_or(DecodeError::InvalidValue("delivery"))?;
        let window_closed_at = UnixSeconds(m.required(14, "window closed")?.uint("window closed")?);
        let revoked_at = UnixSeconds(m.required(15, "revoked at")?.uint("revoked at")?);
        let crl_number = m.required(16, "crl number")?.uint("crl number")?;
        let retired = word(m, 17, "retired")?;
        let checkpoints = {
            let d = m.required(18, "checkpoints")?;
            let n = d.array("checkpoints", BUNDLE_CHECKPOINTS_MAX)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(BundleCheckpoint::decode(d)?);
            }
            d.leave();
            v
        };
        let double_spends = byte_list(
            m,
            19,
            "double spends",
            BUNDLE_PROOFS_MAX,
            DOUBLE_SPEND_PROOF_BYTES_MAX,
        )?;
        let wallet_certs = byte_list(
            m,
            20,
            "wallet certificates",
            BUNDLE_CERTS_MAX,
            CERT_FIELD_BYTES_MAX,
        )?;
        let issuer_cert = m
            .required(21, "issuer certificate")?
            .bytes("issuer certificate", CERT_FIELD_BYTES_MAX)?
            .to_vec();
        Ok(EvidenceBundle {
            case_id,
            kind,
            state,
            decision,
            time,
            wallet,
            seq,
            amount_minor,
            currency,
            paid_minor,
            entry,
            delivery,
            window_closed_at,
            revoked_at,
            crl_number,
            retired,
            checkpoints,
            double_spends,
            wallet_certs,
            issuer_cert,
        })
    }
}
