//! `offpay evidence verify FILE --root ROOT.pem`: check a DoubleSpendProof
//! or a dispute case's EvidenceBundle offline, with nothing but the scheme
//! root certificate.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use offpay_protocol::bundle::EVIDENCE_BUNDLE_BYTES_MAX;
use offpay_protocol::cbor::DecodeError;
use offpay_protocol::envelope::Signed;
use offpay_protocol::evidence::{
    BundleError, EvidenceError, ProvenDoubleSpend, ProvenRetainedDoubleSpend, VerifiedBundle,
    verify_bundle, verify_double_spend_bytes, verify_retained_double_spend_bytes,
};
use offpay_protocol::messages::{
    DOUBLE_SPEND_PROOF_BYTES_MAX, RETAINED_DOUBLE_SPEND_PROOF_BYTES_MAX, RetainedDoubleSpendProof,
};
use offpay_protocol::pki::{CERTIFICATE_BYTES_MAX, Certificate};
use serde_json::json;

use crate::out::{Done, Failure, Outcome};
use crate::walletdir::read_bounded;

#[derive(Args, Debug)]
pub(crate) struct EvidenceArgs {
    #[command(subcommand)]
    cmd: EvidenceCmd,
}

#[derive(Subcommand, Debug)]
enum EvidenceCmd {
    /// Verify a double-spend proof (as written by `offpay admin double-spends
    /// --out-dir`: both entries signed by one certified wallet key, with the
    /// same seq or the same prev) or a case's evidence bundle (`offpay admin
    /// case bundle`: the issuer signed it, the payer signed its entry)
    /// against the scheme root certificate.
    Verify {
        /// The proof or bundle file.
        file: PathBuf,
        /// The scheme root certificate, PEM or DER (`offpay admin pki export`).
        #[arg(long, value_name = "ROOT.pem")]
        root: PathBuf,
    },
}

/// A root certificate from a PEM or DER file.
pub(crate) fn read_root(path: &Path) -> Result<Certificate, Failure> {
    let bytes = read_bounded(path, 4 * CERTIFICATE_BYTES_MAX as u64)
        .map_err(|e| Failure::io(format!("cannot read {}", path.display()), &e))?;
    let parsed = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => Certificate::from_pem(text),
        _ => Certificate::from_der(&bytes),
    };
    parsed.map_err(|e| {
        Failure::refused(
            "bad_root",
            format!("{} is not a certificate: {e}", path.display()),
        )
    })
}

fn evidence_code(e: &EvidenceError) -> &'static str {
    match e {
        EvidenceError::Decode(_) => "proof_malformed",
        EvidenceError::Certificate(_) => "proof_certificate",
        EvidenceError::BadSignature => "proof_bad_signature",
        EvidenceError::WalletMismatch => "proof_wallet_mismatch",
        EvidenceError::SameEntry => "proof_same_entry",
        EvidenceError::NoConflict => "proof_no_conflict",
        EvidenceError::BadIssuerSignature => "proof_bad_issuer_signature",
    }
}

/// The proven facts as JSON fields.
pub(crate) fn proven_json(p: &ProvenDoubleSpend) -> serde_json::Value {
    json!({
        "valid": true,
        "payer": p.payer.to_hex(),
        "payer_serial": crate::show::serial_hex(p.payer_serial),
        "seq": p.seq,
        "entries": p.entries.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        "amounts_minor": p.amounts.iter().map(|a| a.minor).collect::<Vec<_>>(),
        "currency": p.amounts[0].currency.to_string(),
    })
}

/// A certificate that is not a self-signed CA (the issuer certificate, a
/// wallet's) given where the scheme root belongs: said so, before anything
/// is checked against it.
pub(crate) fn require_root(cert: &Certificate, path: &Path) -> Result<(), Failure> {
    let self_signed = cert.subject_cn() == cert.issuer_cn() && cert.verify_signed_by(cert).is_ok();
    if cert.is_ca() && self_signed {
        return Ok(());
    }
    Err(Failure::refused(
        "not_a_root",
        format!(
            "{} is \"{}\", issued by \"{}\": not the scheme root. Pass the root certificate (root.pem from `offpay admin pki export DIR`), not the issuer's or a wallet's",
            path.display(),
            cert.subject_cn(),
            cert.issuer_cn()
        ),
    ))
}

fn bundle_code(e: &BundleError) -> &'static str {
    match e {
        BundleError::Decode(_) => "bundle_malformed",
        BundleError::Certificate(_) => "bundle_certificate",
        BundleError::BadIssuerSignature => "bundle_bad_issuer_signature",
        BundleError::BadEntrySignature => "bundle_bad_entry_signature",
        BundleError::EntryMismatch => "bundle_entry_mismatch",
        BundleError::DoubleSpend(_) => "bundle_double_spend",
    }
}

/// The verified bundle as JSON fields.
fn bundle_json(v: &VerifiedBundle) -> serde_json::Value {
    let b = &v.bundle;
    json!({
        "valid": true,
        "type": "evidence_bundle",
        "case_id": b.case_id,
        "kind": b.kind,
        "state": b.state,
        "decision": b.decision,
        "wallet": b.wallet.to_hex(),
        "seq": b.seq,
        "amount_minor": b.amount_minor,
        "paid_minor": b.paid_minor,
        "currency": b.currency.to_string(),
        "delivery": b.delivery.as_str(),
        "issuer_serial": crate::show::serial_hex(v.issuer_serial),
        "entry_signed_by": v.entry.as_ref().map(|e| crate::show::serial_hex(e.payer_serial)),
        "payment_id": v.entry.as_ref().map(|e| e.hash.to_hex()),
        "double_spends": v.double_spends.len(),
        "statements": v.statements(),
    })
}

fn verify_bundle_file(file: &Path, bytes: &[u8], root: &Certificate) -> Outcome {
    let v = verify_bundle(bytes, root).map_err(|e| {
        Failure::refused(
            bundle_code(&e),
            format!("{} is not a valid evidence bundle: {e}", file.display()),
        )
    })?;
    let mut text = format!(
        "valid evidence bundle of case {}, checked against the root \"{}\" alone:",
        v.bundle.case_id,
        root.subject_cn()
    );
    for s in v.statements() {
        text.push_str("\n  ");
        text.push_str(&s);
    }
    Ok(Done::new(text, bundle_json(&v)))
}

pub(crate) fn run(a: EvidenceArgs) -> Outcome {
    let EvidenceCmd::Verify {
        file,
        root: root_path,
    } = a.cmd;
    let root = read_root(&root_path)?;
    require_root(&root, &root_path)?;
    let max = EVIDENCE_BUNDLE_BYTES_MAX
        .max(DOUBLE_SPEND_PROOF_BYTES_MAX)
        .max(RETAINED_DOUBLE_SPEND_PROOF_BYTES_MAX);
    let bytes = read_bounded(&file, max as u64)
        .map_err(|e| Failure::io(format!("cannot read {}", file.display()), &e))?;
    // A bundle and a proof against a retained entry are COSE_Sign1
    // envelopes (tag 18: 0xd2), told apart by their message type; a
    // double-spend proof is a bare map.
    if bytes.first() == Some(&COSE_SIGN1_TAG_BYTE) {
        let not_retained = matches!(
            Signed::<RetainedDoubleSpendProof>::decode(&bytes),
            Err(DecodeError::WrongMessageType { .. })
        );
        return if not_retained {
            verify_bundle_file(&file, &bytes, &root)
        } else {
            run_retained(&bytes, &file, &root)
        };
    }
    if bytes.len() > DOUBLE_SPEND_PROOF_BYTES_MAX {
        return Err(Failure::refused(
            "proof_malformed",
            format!(
                "{} is neither an evidence bundle nor a double-spend proof (over {DOUBLE_SPEND_PROOF_BYTES_MAX} bytes)",
                file.display()
            ),
        ));
    }
    let proof = bytes;
    let p = verify_double_spend_bytes(&proof, &root).map_err(|e| {
        Failure::refused(
            evidence_code(&e),
            format!("{} is not a valid double-spend proof: {e}", file.display()),
        )
    })?;
    Ok(Done::new(
        format!(
            "valid double-spend proof: wallet {} (certificate serial {}) signed two different entries with seq {}\n  entry {} for {}\n  entry {} for {}\n  checked against the root \"{}\" alone",
            p.payer,
            crate::show::serial_hex(p.payer_serial),
            p.seq,
            p.entries[0],
            p.amounts[0],
            p.entries[1],
            p.amounts[1],
            root.subject_cn()
        ),
        proven_json(&p),
    ))
}

/// The first byte of a COSE_Sign1 envelope (CBOR tag 18): a
/// RetainedDoubleSpendProof; a DoubleSpendProof is a plain map.
const COSE_SIGN1_TAG_BYTE: u8 = 0xd2;

/// The proven facts of a retained-entry proof as JSON fields.
fn proven_retained_json(p: &ProvenRetainedDoubleSpend) -> serde_json::Value {
    json!({
        "valid": true,
        "kind": "retained",
        "payer": p.payer.to_hex(),
        "payer_serial": crate::show::serial_hex(p.payer_serial),
        "seq": p.seq,
        "entries": p.entries.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        "amount_minor": p.amount.minor,
        "currency": p.amount.currency.to_string(),
        "statement_at": p.time.0,
        "rests_on_issuer_signature": true,
    })
}

/// `offpay evidence verify` of a RetainedDoubleSpendProof (the issuer no
/// longer holds the first entry's bytes; its signed statement stands for it).
fn run_retained(proof: &[u8], file: &Path, root: &Certificate) -> Outcome {
    let p = verify_retained_double_spend_bytes(proof, root).map_err(|e| {
        Failure::refused(
            evidence_code(&e),
            format!(
                "{} is not a valid retained double-spend proof: {e}",
                file.display()
            ),
        )
    })?;
    Ok(Done::new(
        format!(
            "valid retained double-spend proof: wallet {} (certificate serial {}) signed entry {} for {} at seq {}, where the issuer states it recorded entry {}\n  the first entry rests on the issuer's signature (its bytes were deleted by the retention rule)\n  checked against the root \"{}\" alone",
            p.payer,
            crate::show::serial_hex(p.payer_serial),
            p.entries[1],
            p.amount,
            p.seq,
            p.entries[0],
            root.subject_cn()
        ),
        proven_retained_json(&p),
    ))
}

/// Whether a stored proof (either kind) verifies against `root`, and a line
/// saying what it shows (`offpay admin double-spends`).
pub(crate) fn proof_check(proof: &[u8], root: &Certificate) -> (bool, String) {
    if proof.first() == Some(&COSE_SIGN1_TAG_BYTE) {
        return match verify_retained_double_spend_bytes(proof, root) {
            Ok(p) => (
                true,
                format!(
                    "verifies against the scheme root (certificate serial {}, new entry {}; the other entry was pruned and rests on the issuer's signed statement)",
                    crate::show::serial_hex(p.payer_serial),
                    p.amount
                ),
            ),
            Err(e) => (false, format!("DOES NOT VERIFY: {e}")),
        };
    }
    match verify_double_spend_bytes(proof, root) {
        Ok(p) => (
            true,
            format!(
                "verifies against the scheme root (certificate serial {}, amounts {} and {})",
                crate::show::serial_hex(p.payer_serial),
                p.amounts[0],
                p.amounts[1]
            ),
        ),
        Err(e) => (false, format!("DOES NOT VERIFY: {e}")),
    }
}
