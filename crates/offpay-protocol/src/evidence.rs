//! Double-spend evidence: building and verifying a [`DoubleSpendProof`].
//!
//! Two different entries signed by one wallet key with the same seq (or the
//! same prev) cannot come from an intact TA: its chain only grows. The proof
//! carries both entries, the payer's certificate and the issuer CA
//! certificate, so it verifies with nothing but the scheme root certificate.
//! Certificate validity periods are deliberately not checked: the proof is
//! about what the key signed, and a key signs nothing after its certificate
//! expires without that being an offence of its own.

use core::fmt;

use crate::cbor::DecodeError;
use crate::envelope::Signed;
use crate::messages::{ChainEntry, DoubleSpendProof, RetainedDoubleSpendProof};
use crate::pki::{Certificate, PkiError};
use crate::types::{Amount, Hash32, UnixSeconds, WalletId};

/// Why a proof does not prove a double spend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvidenceError {
    /// The proof or an entry inside it is malformed.
    Decode(DecodeError),
    /// A certificate is malformed or does not chain to the root.
    Certificate(PkiError),
    /// An entry's signature does not verify under the payer's certificate.
    BadSignature,
    /// The entries are of different wallets, or not of the certificate's wallet.
    WalletMismatch,
    /// The two entries are the same entry.
    SameEntry,
    /// The entries share neither seq nor prev: no conflict.
    NoConflict,
    /// A retained-entry statement's signature does not verify under the
    /// issuer CA certificate it carries.
    BadIssuerSignature,
}

impl fmt::Display for EvidenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvidenceError::Decode(e) => write!(f, "malformed proof: {e}"),
            EvidenceError::Certificate(e) => write!(f, "certificate: {e}"),
            EvidenceError::BadSignature => f.write_str("entry signature does not verify"),
            EvidenceError::WalletMismatch => f.write_str("entries are not of the certified wallet"),
            EvidenceError::SameEntry => f.write_str("the two entries are identical"),
            EvidenceError::NoConflict => f.write_str("entries share neither seq nor prev"),
            EvidenceError::BadIssuerSignature => {
                f.write_str("the issuer's retained-entry statement does not verify")
            }
        }
    }
}
impl std::error::Error for EvidenceError {}

/// What a verified proof establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenDoubleSpend {
    /// The wallet that signed both entries.
    pub payer: WalletId,
    /// Serial of its certificate (to revoke).
    pub payer_serial: u64,
    /// The conflicting seq (of entry A).
    pub seq: u64,
    /// Hashes of the two entries.
    pub entries: [Hash32; 2],
    /// Amounts of the two entries.
    pub amounts: [Amount; 2],
}

/// Verify a proof against the scheme root certificate alone.
pub fn verify_double_spend(
    proof: &DoubleSpendProof,
    root: &Certificate,
) -> Result<ProvenDoubleSpend, EvidenceError> {
    let issuer = Certificate::from_der(&proof.issuer_cert).map_err(EvidenceError::Certificate)?;
    let payer = Certificate::from_der(&proof.payer_cert).map_err(EvidenceError::Certificate)?;
    root.verify_signed_by(root)
        .map_err(EvidenceError::Certificate)?;
    issuer
        .verify_signed_by(root)
        .map_err(EvidenceError::Certificate)?;
    if !issuer.is_ca() {
        return Err(EvidenceError::Certificate(PkiError::NotACa));
    }
    payer
        .verify_signed_by(&issuer)
        .map_err(EvidenceError::Certificate)?;
    let wallet = payer
        .wallet_id()
        .ok_or(EvidenceError::Certificate(PkiError::NotAWalletCertificate))?;
    let a = ChainEntry::decode(&proof.entry_a).map_err(EvidenceError::Decode)?;
    let b = ChainEntry::decode(&proof.entry_b).map_err(EvidenceError::Decode)?;
    if a.payer() != wallet || b.payer() != wallet {
        return Err(EvidenceError::WalletMismatch);
    }
    let (ha, hb) = (a.hash(), b.hash());
    if ha == hb {
        return Err(EvidenceError::SameEntry);
    }
    if a.seq() != b.seq() && a.prev() != b.prev() {
        return Err(EvidenceError::NoConflict);
    }
    a.verify(payer.public_key())
        .map_err(|_| EvidenceError::BadSignature)?;
    b.verify(payer.public_key())
        .map_err(|_| EvidenceError::BadSignature)?;
    Ok(ProvenDoubleSpend {
        payer: wallet,
        payer_serial: payer.serial(),
        seq: a.seq(),
        entries: [ha, hb],
        amounts: [a.amount(), b.amount()],
    })
}

/// Decode and verify an encoded proof.
pub fn verify_double_spend_bytes(
    bytes: &[u8],
    root: &Certificate,
) -> Result<ProvenDoubleSpend, EvidenceError> {
    let proof = DoubleSpendProof::decode(bytes).map_err(EvidenceError::Decode)?;
    verify_double_spend(&proof, root)
}

// ---- evidence bundles of dispute cases -------------------------------------

/// Why an evidence bundle does not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// The bundle or an item inside it is malformed.
    Decode(DecodeError),
    /// A certificate is malformed or does not chain to the root.
    Certificate(PkiError),
    /// The issuer's signature over the bundle does not verify.
    BadIssuerSignature,
    /// No wallet certificate of the bundle verifies the payer's entry.
    BadEntrySignature,
    /// The entry is not of the bundle's wallet and seq.
    EntryMismatch,
    /// A double-spend proof does not verify, or is of another wallet.
    DoubleSpend(EvidenceError),
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Decode(e) => write!(f, "malformed bundle: {e}"),
            BundleError::Certificate(e) => write!(f, "certificate: {e}"),
            BundleError::BadIssuerSignature => {
                f.write_str("the issuer's signature over the bundle does not verify")
            }
            BundleError::BadEntrySignature => {
                f.write_str("no wallet certificate of the bundle verifies the payer's entry")
            }
            BundleError::EntryMismatch => {
                f.write_str("the entry is not of the bundle's wallet and seq")
            }
            BundleError::DoubleSpend(e) => write!(f, "double-spend proof: {e}"),
        }
    }
}
impl std::error::Error for BundleError {}

/// The payer's signed entry inside a verified bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenEntry {
    /// Its hash (the payment id).
    pub hash: Hash32,
    /// The amount that left the payer's wallet.
    pub amount: Amount,
    /// The payee (None: a redeem).
    pub payee: Option<WalletId>,
    /// Payer TA time of the entry.
    pub time: crate::types::UnixSeconds,
    /// Serial of the wallet certificate whose key signed it.
    pub payer_serial: u64,
}

/// What a verified bundle establishes, and on whose signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedBundle {
    /// The bundle (its statements are the issuer's, under its signature).
    pub bundle: crate::bundle::EvidenceBundle,
    /// Serial of the issuer CA certificate that signed the bundle.
    pub issuer_serial: u64,
    /// The entry, proven by the payer's own signature (None: no entry).
    pub entry: Option<ProvenEntry>,
    /// The double spends, each proven by two signatures of the payer's key.
    pub double_spends: Vec<ProvenDoubleSpend>,
}

impl VerifiedBundle {
    /// One line per proven statement, naming whose signature proves it.
    pub fn statements(&self) -> Vec<String> {
        let b = &self.bundle;
        let mut out = vec![format!(
            "issuer signed the bundle (CA certificate serial {}): case {} ({}), state {}, decision {}",
            self.issuer_serial,
            b.case_id,
            b.kind,
            b.state,
            if b.decision.is_empty() {
                "none yet"
            } else {
                &b.decision
            }
        )];
        if let Some(e) = &self.entry {
            out.push(format!(
                "payer signed the entry (wallet {} certificate serial {}): seq {}, {} at {}{}",
                b.wallet.to_hex(),
                e.payer_serial,
                b.seq,
                e.amount,
                e.time.0,
                e.payee
                    .map(|p| format!(" to {}", p.to_hex()))
                    .unwrap_or_default()
            ));
        }
        let reported = match b.delivery {
            crate::bundle::BundleDelivery::Delivered => "the payee's TA reported the payment",
            crate::bundle::BundleDelivery::Pending => "the payee's TA has not reported the payment",
            crate::bundle::BundleDelivery::Returned => {
                "the payee's TA did not report the payment within its window: returned to the payer"
            }
            crate::bundle::BundleDelivery::None => "no settlement in question",
        };
        out.push(format!("issuer states: {reported}"));
        if b.revoked_at.0 == 0 {
            out.push("issuer states: the wallet was not revoked".into());
        } else {
            out.push(format!(
                "issuer states: the wallet was revoked at {} (CRL number {}{})",
                b.revoked_at.0,
                b.crl_number,
                if b.retired.is_empty() {
                    String::new()
                } else {
                    format!(", retired {}", b.retired)
                }
            ));
        }
        for c in &b.checkpoints {
            out.push(format!(
                "issuer states: checkpoint {} of {} covers seq {} (balance {} minor)",
                c.number,
                c.wallet.to_hex(),
                c.seq,
                c.balance_minor
            ));
        }
        for d in &self.double_spends {
            out.push(format!(
                "payer signed two entries at seq {} (double spend, certificate serial {})",
                d.seq, d.payer_serial
            ));
        }
        out
    }
}

/// Verify an encoded bundle against the scheme root certificate alone: the
/// issuer CA chains to the root and signed the bundle, the entry (if any) is
/// the bundle's wallet's at its seq and verifies under one of its
/// certificates, and every double-spend proof verifies and is of the wallet.
pub fn verify_bundle(bytes: &[u8], root: &Certificate) -> Result<VerifiedBundle, BundleError> {
    let signed = crate::envelope::Signed::<crate::bundle::EvidenceBundle>::decode(bytes)
        .map_err(BundleError::Decode)?;
    let b = signed.body();
    let issuer = Certificate::from_der(&b.issuer_cert).map_err(BundleError::Certificate)?;
    root.verify_signed_by(root)
        .map_err(BundleError::Certificate)?;
    issuer
        .verify_signed_by(root)
        .map_err(BundleError::Certificate)?;
    if !issuer.is_ca() {
        return Err(BundleError::Certificate(PkiError::NotACa));
    }
    signed
        .verify(issuer.public_key())
        .map_err(|_| BundleError::BadIssuerSignature)?;
    let mut certs = Vec::with_capacity(b.wallet_certs.len());
    for der in &b.wallet_certs {
        let c = Certificate::from_der(der).map_err(BundleError::Certificate)?;
        c.verify_signed_by(&issuer)
            .map_err(BundleError::Certificate)?;
        if c.wallet_id() != Some(b.wallet) {
            return Err(BundleError::Certificate(PkiError::NotAWalletCertificate));
        }
        certs.push(c);
    }
    let entry = if b.entry.is_empty() {
        None
    } else {
        Some(prove_entry(&b.entry, b.wallet, b.seq, &certs)?)
    };
    let mut double_spends = Vec::with_capacity(b.double_spends.len());
    for p in &b.double_spends {
        let d = verify_double_spend_bytes(p, root).map_err(BundleError::DoubleSpend)?;
        if d.payer != b.wallet {
            return Err(BundleError::DoubleSpend(EvidenceError::WalletMismatch));
        }
        double_spends.push(d);
    }
    Ok(VerifiedBundle {
        bundle: b.clone(),
        issuer_serial: issuer.serial(),
        entry,
        double_spends,
    })
}

fn prove_entry(
    bytes: &[u8],
    wallet: WalletId,
    seq: u64,
    certs: &[Certificate],
) -> Result<ProvenEntry, BundleError> {
    let e = ChainEntry::decode(bytes).map_err(BundleError::Decode)?;
    if e.payer() != wallet || e.seq() != seq {
        return Err(BundleError::EntryMismatch);
    }
    let signer = certs
        .iter()
        .find(|c| e.verify(c.public_key()).is_ok())
        .ok_or(BundleError::BadEntrySignature)?;
    Ok(ProvenEntry {
        hash: e.hash(),
        amount: e.amount(),
        payee: match &e {
            ChainEntry::Payment(p) => Some(p.body().payee),
            ChainEntry::Redeem(_) => None,
        },
        time: e.time(),
        payer_serial: signer.serial(),
    })
}

/// What a verified [`RetainedDoubleSpendProof`] establishes: the payer signed
/// `entries[1]`, and the issuer states it recorded `entries[0]` at the same
/// (payer, seq) or with the same prev. The first half rests on the issuer's
/// signature alone (it deleted the entry's bytes by its retention rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenRetainedDoubleSpend {
    /// The wallet.
    pub payer: WalletId,
    /// Serial of its certificate (to revoke).
    pub payer_serial: u64,
    /// The seq the issuer recorded the retained entry at.
    pub seq: u64,
    /// The retained entry's hash (issuer's statement), then the new entry's hash.
    pub entries: [Hash32; 2],
    /// The new entry's amount (the retained entry's is no longer known).
    pub amount: Amount,
    /// Issuer time of the statement.
    pub time: UnixSeconds,
}

/// Verify a retained-entry double-spend proof against the scheme root
/// certificate alone: the issuer CA chains to the root and signed the
/// envelope; the payer certificate was issued by that CA and its key signed
/// the new entry; the entry is of the stated payer, differs from the
/// retained hash and shares its seq or its prev.
pub fn verify_retained_double_spend(
    proof: &Signed<RetainedDoubleSpendProof>,
    root: &Certificate,
) -> Result<ProvenRetainedDoubleSpend, EvidenceError> {
    let p = proof.body();
    let issuer = Certificate::from_der(&p.issuer_cert).map_err(EvidenceError::Certificate)?;
    let payer = Certificate::from_der(&p.payer_cert).map_err(EvidenceError::Certificate)?;
    root.verify_signed_by(root)
        .map_err(EvidenceError::Certificate)?;
    issuer
        .verify_signed_by(root)
        .map_err(EvidenceError::Certificate)?;
    if !issuer.is_ca() {
        return Err(EvidenceError::Certificate(PkiError::NotACa));
    }
    proof
        .verify(issuer.public_key())
        .map_err(|_| EvidenceError::BadIssuerSignature)?;
    payer
        .verify_signed_by(&issuer)
        .map_err(EvidenceError::Certificate)?;
    let wallet = payer
        .wallet_id()
        .ok_or(EvidenceError::Certificate(PkiError::NotAWalletCertificate))?;
    let e = ChainEntry::decode(&p.entry).map_err(EvidenceError::Decode)?;
    if e.payer() != wallet || p.payer != wallet {
        return Err(EvidenceError::WalletMismatch);
    }
    let h = e.hash();
    if h == p.retained_hash {
        return Err(EvidenceError::SameEntry);
    }
    if e.seq() != p.seq && e.prev() != p.retained_prev {
        return Err(EvidenceError::NoConflict);
    }
    e.verify(payer.public_key())
        .map_err(|_| EvidenceError::BadSignature)?;
    Ok(ProvenRetainedDoubleSpend {
        payer: wallet,
        payer_serial: payer.serial(),
        seq: p.seq,
        entries: [p.retained_hash, h],
        amount: e.amount(),
        time: p.time,
    })
}

/// Decode and verify an encoded retained-entry proof.
pub fn verify_retained_double_spend_bytes(
    bytes: &[u8],
    root: &Certificate,
) -> Result<ProvenRetainedDoubleSpend, EvidenceError> {
    let proof = Signed::<RetainedDoubleSpendProof>::decode(bytes).map_err(EvidenceError::Decode)?;
    verify_retained_double_spend(&proof, root)
}
