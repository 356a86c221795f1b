//! Cross-issuer claims: submission (every refusal recorded, nothing else
//! changed), the inbox of claims an issuer does not hold yet, and its
//! acknowledgements. A claim is the payer's signed payment entry; its id is
//! the entry hash, so every step is idempotent.

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{CertField, PAYMENT_BYTES_MAX, Payment};
use offpay_protocol::pki::{Certificate, PkiError, SchemeTrust};
use offpay_protocol::{Hash32, IssuerId, UnixSeconds};

use crate::error::SchemeError;
use crate::scheme::Scheme;
use crate::store::{ClaimRecord, Party, RefusalRecord, SchemeStore, SchemeTx, Side};

/// Entries per `submit_claims` call.
pub const SUBMIT_CLAIMS_MAX: usize = 1024;
/// Claims per `inbox` page.
pub const INBOX_MAX: usize = 1024;
/// Acknowledgements per `ack` call.
pub const ACK_MAX: usize = 1024;

/// The outcome of one submitted (or acknowledged) claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimResult {
    /// New for this party: it now holds the claim.
    Accepted,
    /// This party already held it: nothing changed.
    AlreadyKnown,
    /// Refused, with a stable snake_case code (see [`ClaimResult::REFUSAL_CODES`]).
    Refused {
        /// Why.
        code: &'static str,
    },
}

impl ClaimResult {
    /// Every refusal code the scheme gives (`submit_claims`) or understands
    /// from an issuer's acknowledgement (`ack`). An issuer's other codes are
    /// kept as `refused_by_issuer`.
    pub const REFUSAL_CODES: &'static [&'static str] = &[
        "malformed_entry",
        "bad_signature",
        "unknown_issuer",
        "not_cross_issuer",
        "not_a_party",
        "currency",
        "unknown_payee",
        "wrong_payee_issuer",
        "refused_by_issuer",
    ];

    /// The result's code: `accepted`, `already_known` or the refusal's.
    pub fn code(&self) -> &'static str {
        match self {
            ClaimResult::Accepted => "accepted",
            ClaimResult::AlreadyKnown => "already_known",
            ClaimResult::Refused { code } => code,
        }
    }

    /// From a code (an issuer's acknowledgement over HTTP): `accepted`,
    /// `already_known`, or a refusal (unknown refusal codes become
    /// `refused_by_issuer`). `None` for an empty or non-snake_case code.
    pub fn from_code(code: &str) -> Option<ClaimResult> {
        if code.is_empty()
            || code.len() > 64
            || !code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return None;
        }
        Some(match code {
            "accepted" => ClaimResult::Accepted,
            "already_known" => ClaimResult::AlreadyKnown,
            c => ClaimResult::Refused {
                code: Self::REFUSAL_CODES
                    .iter()
                    .find(|k| **k == c)
                    .copied()
                    .unwrap_or("refused_by_issuer"),
            },
        })
    }
}

/// A submitted entry that passed every check.
struct Valid {
    claim: ClaimRecord,
    party: Party,
}

/// Why an entry is refused: (code, detail).
type Refusal = (&'static str, String);

fn pki_refusal(e: &PkiError) -> Refusal {
    match e {
        PkiError::UnknownIssuer => ("unknown_issuer", e.to_string()),
        _ => ("bad_signature", format!("payer certificate: {e}")),
    }
}

impl<S: SchemeStore> Scheme<S> {
    /// Check one submitted entry: a payment (bounded, strict), its payer
    /// certificate inline and certified by an admitted issuer (whatever its
    /// status: payments made before a suspension stay owed), its signature,
    /// its payee's issuer admitted, the two issuers different, the submitter
    /// one of them, the scheme's currency.
    fn check_entry(
        &self,
        trust: &SchemeTrust,
        admitted: &dyn Fn(&IssuerId) -> bool,
        from: &IssuerId,
        bytes: &[u8],
        now: UnixSeconds,
    ) -> Result<Valid, (Option<Hash32>, Refusal)> {
        if bytes.len() > PAYMENT_BYTES_MAX {
            return Err((
                None,
                (
                    "malformed_entry",
                    format!("{} bytes, over {PAYMENT_BYTES_MAX}", bytes.len()),
                ),
            ));
        }
        let signed = Signed::<Payment>::decode(bytes)
            .map_err(|e| (None, ("malformed_entry", e.to_string())))?;
        let id = signed.payload_hash();
        let refuse = |r: Refusal| (Some(id), r);
        let p = signed.body();
        let der = match &p.payer_cert {
            CertField::Inline(der) => der,
            CertField::Reference(_) => {
                return Err(refuse((
                    "malformed_entry",
                    "the payer certificate must be inline".into(),
                )));
            }
        };
        let cert = Certificate::from_der(der)
            .map_err(|e| refuse(("malformed_entry", format!("payer certificate: {e}"))))?;
        let (wallet, payer_issuer) = trust
            .verify_wallet_signed(&cert)
            .map_err(|e| refuse(pki_refusal(&e)))?;
        if wallet != p.payer {
            return Err(refuse((
                "malformed_entry",
                format!(
                    "the certificate is of wallet {wallet}, the payment of {}",
                    p.payer
                ),
            )));
        }
        signed
            .verify(cert.public_key())
            .map_err(|e| refuse(("bad_signature", e.to_string())))?;
        if p.amount.currency != self.currency {
            return Err(refuse((
                "currency",
                format!(
                    "{}, the scheme settles {}",
                    p.amount.currency, self.currency
                ),
            )));
        }
        let amount = i64::try_from(p.amount.minor)
            .ok()
            .filter(|a| *a > 0)
            .ok_or_else(|| refuse(("malformed_entry", "amount out of range".into())))?;
        if !admitted(&p.payee_issuer) {
            return Err(refuse((
                "unknown_issuer",
                format!("payee issuer {} is not admitted", p.payee_issuer),
            )));
        }
        if payer_issuer == p.payee_issuer {
            return Err(refuse((
                "not_cross_issuer",
                format!("payer and payee are both of issuer {payer_issuer}"),
            )));
        }
        let party = if *from == payer_issuer {
            Party::Payer
        } else if *from == p.payee_issuer {
            Party::Payee
        } else {
            return Err(refuse((
                "not_a_party",
                "an issuer can only claim as itself".into(),
            )));
        };
        let (payer_side, payee_side) = match party {
            Party::Payer => (Side::Submitted, Side::None),
            Party::Payee => (Side::None, Side::Submitted),
        };
        Ok(Valid {
            claim: ClaimRecord {
                id,
                payer_issuer,
                payee_issuer: p.payee_issuer,
                payer: p.payer,
                seq: p.seq,
                payee: p.payee,
                amount,
                time: p.time,
                bytes: bytes.to_vec(),
                payer_side,
                payee_side,
                payer_refusal: None,
                payee_refusal: None,
                cycle: None,
                created: now,
                updated: now,
            },
            party,
        })
    }

    /// Submit claims as issuer `from` (authenticated): one result per entry,
    /// in order, all in one transaction. A refused entry is recorded in
    /// `claim_refusals` and changes nothing else; the same claim again from
    /// the same issuer is `AlreadyKnown`; from the other party, it now holds
    /// both sides.
    pub fn submit_claims(
        &self,
        from: &IssuerId,
        entries: &[Vec<u8>],
        now: UnixSeconds,
    ) -> Result<Vec<(Hash32, ClaimResult)>, SchemeError> {
        if entries.len() > SUBMIT_CLAIMS_MAX {
            return Err(SchemeError::TooLarge("claims", SUBMIT_CLAIMS_MAX));
        }
        self.with_tx(|tx| {
            let issuers = tx.issuers()?;
            if !issuers.iter().any(|r| r.id == *from) {
                return Err(SchemeError::UnknownIssuer);
            }
            let trust = self.trust(&issuers)?;
            let admitted = |id: &IssuerId| issuers.iter().any(|r| r.id == *id);
            let mut out: Vec<(Hash32, ClaimResult)> = Vec::with_capacity(entries.len());
            let mut valid = Vec::new();
            for (k, bytes) in entries.iter().enumerate() {
                match self.check_entry(&trust, &admitted, from, bytes, now) {
                    Ok(v) => {
                        out.push((v.claim.id, ClaimResult::AlreadyKnown));
                        valid.push((k, v));
                    }
                    Err((claim, (code, detail))) => {
                        tx.insert_refusal(&RefusalRecord {
                            id: String::new(),
                            submitter: *from,
                            claim,
                            bytes_hash: Hash32::digest(bytes),
                            bytes_len: bytes.len() as u64,
                            code: code.to_string(),
                            detail,
                            time: now,
                        })?;
                        out.push((
                            claim.unwrap_or_else(|| Hash32::digest(bytes)),
                            ClaimResult::Refused { code },
                        ));
                    }
                }
            }
            // Rows are written in claim id order, whatever the order of the
            // batch: concurrent transactions lock them in one order (no
            // deadlock). The same claim twice in a batch: the first is
            // Accepted (if new), the next AlreadyKnown.
            valid.sort_by_key(|(k, v)| (v.claim.id, *k));
            for (k, v) in valid {
                out[k].1 = hold(tx, v, now)?;
            }
            Ok(out)
        })
    }

    /// The claims `issuer` is a party to and neither submitted nor
    /// acknowledged, oldest first: (id, the signed payment).
    pub fn inbox(
        &self,
        issuer: &IssuerId,
        limit: usize,
    ) -> Result<Vec<(Hash32, Vec<u8>)>, SchemeError> {
        let limit = limit.min(INBOX_MAX);
        self.with_read(|tx| {
            Ok(tx
                .inbox(issuer, limit)?
                .into_iter()
                .map(|c| (c.id, c.bytes))
                .collect())
        })
    }

    /// Acknowledge inbox claims: `Accepted`/`AlreadyKnown` = the issuer holds
    /// it, `Refused` = it disputes it (never netted; listed for operators).
    /// Every id must be a claim `issuer` is a party to
    /// ([`SchemeError::UnknownClaim`] and nothing changes otherwise); an
    /// acknowledgement of a claim it already holds or refused changes nothing.
    pub fn ack(
        &self,
        issuer: &IssuerId,
        acks: &[(Hash32, ClaimResult)],
        now: UnixSeconds,
    ) -> Result<(), SchemeError> {
        if acks.len() > ACK_MAX {
            return Err(SchemeError::TooLarge("acks", ACK_MAX));
        }
        // In claim id order (one lock order for concurrent transactions); for
        // an id given twice, the first acknowledgement counts.
        let mut sorted = acks.to_vec();
        sorted.sort_by_key(|(id, _)| *id);
        let ids: Vec<Hash32> = sorted.iter().map(|(id, _)| *id).collect();
        self.with_tx(|tx| {
            let claims = tx.claims_by_id(&ids)?;
            for (id, result) in &sorted {
                let party = claims
                    .iter()
                    .find(|c| c.id == *id)
                    .and_then(|c| c.party(issuer))
                    .ok_or(SchemeError::UnknownClaim)?;
                let (to, refusal) = match result {
                    ClaimResult::Accepted | ClaimResult::AlreadyKnown => (Side::Acked, None),
                    ClaimResult::Refused { code } => (Side::Refused, Some(*code)),
                };
                tx.set_side(id, party, Side::None, to, refusal, now)?;
            }
            Ok(())
        })
    }

    /// Refused submissions, newest first (of one submitter, or all).
    pub fn refusals(
        &self,
        submitter: Option<&IssuerId>,
        limit: usize,
    ) -> Result<Vec<RefusalRecord>, SchemeError> {
        let limit = limit.min(INBOX_MAX);
        self.with_read(|tx| Ok(tx.refusals(submitter, limit)?))
    }

    /// Claims as asked (at most [`INBOX_MAX`]).
    pub fn claims(
        &self,
        query: &crate::store::ClaimQuery,
    ) -> Result<Vec<crate::scheme::ClaimInfo>, SchemeError> {
        let mut q = query.clone();
        q.limit = q.limit.clamp(1, INBOX_MAX);
        self.with_read(|tx| Ok(tx.claims(&q)?))
    }
}

/// Record that `v.party` holds the claim.
fn hold(tx: &mut dyn SchemeTx, v: Valid, now: UnixSeconds) -> Result<ClaimResult, SchemeError> {
    let existing = tx.claims_by_id(&[v.claim.id])?;
    let Some(c) = existing.first() else {
        tx.insert_claim(&v.claim)?;
        return Ok(ClaimResult::Accepted);
    };
    match c.side(v.party) {
        Side::Submitted | Side::Acked => Ok(ClaimResult::AlreadyKnown),
        // It was in the party's inbox, or the party refused it on ack and
        // now claims it after all (e.g. its payee became known): it holds it.
        from @ (Side::None | Side::Refused) => {
            if tx.set_side(&c.id, v.party, from, Side::Submitted, None, now)? {
                Ok(ClaimResult::Accepted)
            } else {
                // Already in a cycle (cannot be for a side not held) or changed concurrently.
                Err(SchemeError::Store(
                    crate::store::SchemeStoreError::Conflict(
                        "claim side changed concurrently".into(),
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_refusals_are_kept_generic() {
        for r in [
            ClaimResult::Accepted,
            ClaimResult::AlreadyKnown,
            ClaimResult::Refused {
                code: "unknown_payee",
            },
        ] {
            assert_eq!(ClaimResult::from_code(r.code()), Some(r));
        }
        for c in ClaimResult::REFUSAL_CODES {
            assert_eq!(
                ClaimResult::from_code(c),
                Some(ClaimResult::Refused { code: c })
            );
        }
        assert_eq!(
            ClaimResult::from_code("double_spend_seen"),
            Some(ClaimResult::Refused {
                code: "refused_by_issuer"
            })
        );
        for bad in ["", "Unknown", "a b", "x-y", &"a".repeat(65)] {
            assert_eq!(ClaimResult::from_code(bad), None, "{bad}");
        }
    }
}
