//! Claims between a member issuer and the other issuers of its scheme, and
//! the settlement statements that close them.
//!
//! Every cross-issuer payment this issuer settles is one claim, id = the
//! payment's entry hash, written in the transaction that posts it (a sync,
//! or [`Issuer::apply_scheme_claims`] for payments the scheme brings). The
//! outbox goes to the scheme ([`Issuer::claims_to_submit`],
//! [`Issuer::claims_submitted`]); a root-signed statement of a cycle moves
//! its claims out of the per-issuer accounts into `settlement`
//! ([`Issuer::apply_statement`]). Every call is one transaction and
//! idempotent by claim id or cycle.

use std::collections::{BTreeMap, BTreeSet};

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{ChainEntry, Payment, SettlementStatement, statement_digest};
use offpay_protocol::pki::{Certificate, PkiError};
use offpay_protocol::{Hash32, IssuerId, UnixSeconds};

use crate::error::{IssuerError, SchemeProblem, Signature};
use crate::issuer::Issuer;
use crate::ledger::{Account, posting};
use crate::settle::{RecordStats, Side, Source, record_and_settle, side};
use crate::store::{
    ClaimDirection, ClaimFilter, ClaimRecord, ClaimState, StatementRecord, Store, StoreError, Tx,
};

/// The answer to one claim, ours to the scheme or the scheme's to us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimAck {
    /// Newly accepted (posted here, or recorded at the scheme).
    Accepted,
    /// Already held: nothing changed.
    AlreadyKnown,
    /// Refused, with a stable snake_case code; nothing was posted.
    Refused {
        /// Why.
        code: String,
    },
}

/// What [`Issuer::apply_statement`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementOutcome {
    /// The cycle.
    pub cycle: u64,
    /// False when the cycle was already posted (a replay: nothing changed).
    pub posted: bool,
    /// The statement's net for us: receivable - payable, minor units.
    pub net: i128,
    /// Lines (counterparties).
    pub lines: usize,
    /// Claims it closed.
    pub claims: usize,
}

/// Our position with another issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerPosition {
    /// The other issuer.
    pub peer: IssuerId,
    /// Receivable claims in no posted cycle.
    pub open_receivable: i64,
    /// Payable claims in no posted cycle.
    pub open_payable: i64,
    /// The `issuer:<hex>` account: open payable - open receivable.
    pub account: i64,
    /// Creation time of the oldest claim in no posted cycle.
    pub oldest_open: Option<UnixSeconds>,
}

/// A claim that passed the checks that need no database.
struct Checked {
    entry: ChainEntry,
    side: Side,
}

fn refused(code: &str) -> ClaimAck {
    ClaimAck::Refused { code: code.into() }
}

fn narrow(v: i128) -> Result<i64, IssuerError> {
    i64::try_from(v).map_err(|_| crate::error::InputError::AmountTooLarge.into())
}

impl<S: Store> Issuer<S> {
    fn require_member(&self) -> Result<(), IssuerError> {
        if self.is_member() {
            Ok(())
        } else {
            Err(SchemeProblem::NotAMember.into())
        }
    }

    /// Outbox claims to submit to the scheme, oldest first: (id, payment bytes).
    pub fn claims_to_submit(&self, limit: usize) -> Result<Vec<(Hash32, Vec<u8>)>, IssuerError> {
        self.require_member()?;
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        self.with_tx(|tx| Ok(tx.outbox(limit)?))
    }

    /// The scheme's answers to submitted claims: accepted (or already
    /// known) ones leave the outbox, refused ones are marked disputed with
    /// the scheme's code. One transaction; an unknown id refuses it all.
    pub fn claims_submitted(
        &self,
        results: &[(Hash32, ClaimAck)],
        now: UnixSeconds,
    ) -> Result<(), IssuerError> {
        let _ = now;
        self.require_member()?;
        let ids: Vec<Hash32> = results.iter().map(|(h, _)| *h).collect();
        self.with_tx(|tx| {
            let held: BTreeMap<Hash32, ClaimRecord> = tx
                .claims_by_ids(&ids)?
                .into_iter()
                .map(|c| (c.id, c))
                .collect();
            for (id, ack) in results {
                let c = held
                    .get(id)
                    .ok_or(SchemeProblem::UnknownClaim { id: *id })?;
                match ack {
                    ClaimAck::Accepted | ClaimAck::AlreadyKnown => {
                        if matches!(c.state, ClaimState::Outbox | ClaimState::Refused) {
                            tx.set_claim_state(id, ClaimState::Submitted, None)?;
                        }
                    }
                    ClaimAck::Refused { code } => {
                        if c.state == ClaimState::Outbox {
                            tx.set_claim_state(id, ClaimState::Refused, Some(code))?;
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// Check one claim from the scheme without the database.
    fn check_claim(&self, id: &Hash32, bytes: &[u8]) -> Result<Checked, ClaimAck> {
        let p = Signed::<Payment>::decode(bytes).map_err(|_| refused("malformed_entry"))?;
        if p.payload_hash() != *id {
            return Err(refused("claim_id_mismatch"));
        }
        let installed = self.installed();
        let member = self.member_ctx(&installed, ClaimState::Known);
        let b = p.body();
        if b.amount.currency != self.currency() {
            return Err(refused("currency"));
        }
        let s = side(member.as_ref(), b).map_err(|e| match e {
            IssuerError::Scheme(SchemeProblem::NotAParty) => refused("not_a_party"),
            _ => refused("malformed_entry"),
        })?;
        let der = match &b.payer_cert {
            offpay_protocol::messages::CertField::Inline(d) => d,
            offpay_protocol::messages::CertField::Reference(_) => {
                return Err(refused("malformed_entry"));
            }
        };
        let cert = Certificate::from_der(der).map_err(|_| refused("malformed_entry"))?;
        let certified = match s {
            Side::Local => return Err(refused("not_cross_issuer")),
            Side::PayerHere { .. } => {
                cert.verify_signed_by(&self.ca.issuer)
                    .map_err(|_| refused("bad_signature"))?;
                cert.wallet_id()
            }
            Side::PayeeHere { .. } => {
                let trust = installed
                    .as_deref()
                    .map(|d| &d.trust)
                    .ok_or_else(|| refused("unknown_issuer"))?;
                match trust.verify_wallet_signed(&cert) {
                    Ok((w, _)) => Some(w),
                    Err(PkiError::UnknownIssuer) => return Err(refused("unknown_issuer")),
                    Err(_) => return Err(refused("bad_signature")),
                }
            }
        };
        if certified != Some(b.payer) {
            return Err(refused("bad_signature"));
        }
        p.verify(cert.public_key())
            .map_err(|_| refused("bad_signature"))?;
        Ok(Checked {
            entry: ChainEntry::Payment(p),
            side: s,
        })
    }

    /// Apply claims the scheme brings (payments of which we are the payer's
    /// or the payee's issuer, submitted by the other party), in one
    /// transaction. Payer's side: the entry is recorded under (payer, seq)
    /// exactly as the wallet's own report would (a second entry at that seq
    /// is a double spend: proof, revocation, lock, losses covered) and
    /// settled once. Payee's side: the payee is credited (finality). Each
    /// accepted claim is held in state `known`. Refusals are specific,
    /// recorded (`claim_refusals`) and post nothing; a refused claim is
    /// checked afresh when it comes again (a directory installed meanwhile
    /// may admit its payer's issuer). The same claims again change nothing.
    pub fn apply_scheme_claims(
        &self,
        claims: &[(Hash32, Vec<u8>)],
        now: UnixSeconds,
    ) -> Result<Vec<(Hash32, ClaimAck)>, IssuerError> {
        self.require_member()?;
        let checked: Vec<Result<Checked, ClaimAck>> = claims
            .iter()
            .map(|(id, bytes)| self.check_claim(id, bytes))
            .collect();
        let installed = self.installed();
        let member = self.member_ctx(&installed, ClaimState::Known);
        self.with_tx(|tx| {
            let ids: Vec<Hash32> = claims.iter().map(|(h, _)| *h).collect();
            let mut held: BTreeMap<Hash32, ClaimState> = tx
                .claims_by_ids(&ids)?
                .into_iter()
                .map(|c| (c.id, c.state))
                .collect();
            let mut out = Vec::with_capacity(claims.len());
            for ((id, bytes), c) in claims.iter().zip(&checked) {
                if let Some(state) = held.get(id) {
                    if *state == ClaimState::Outbox {
                        // The other party submitted it: acknowledging it is holding it.
                        tx.set_claim_state(id, ClaimState::Known, None)?;
                        held.insert(*id, ClaimState::Known);
                    }
                    out.push((*id, ClaimAck::AlreadyKnown));
                    continue;
                }
                let c = match c {
                    Ok(c) => c,
                    Err(ack) => {
                        // Only a claim whose id is its payload is recorded (a
                        // wrong id must not block the right one later).
                        if let (ClaimAck::Refused { code }, Ok(p)) =
                            (ack, Signed::<Payment>::decode(bytes))
                            && p.payload_hash() == *id
                        {
                            tx.insert_claim_refusal(id, code, bytes, now)?;
                        }
                        out.push((*id, ack.clone()));
                        continue;
                    }
                };
                let refusal = self.apply_one_claim(tx, member.as_ref(), c, now)?;
                match refusal {
                    None => {
                        held.insert(*id, ClaimState::Known);
                        out.push((*id, ClaimAck::Accepted));
                    }
                    Some(code) => {
                        tx.insert_claim_refusal(id, &code, bytes, now)?;
                        out.push((*id, ClaimAck::Refused { code }));
                    }
                }
            }
            Ok(out)
        })
    }

    /// One checked claim inside a savepoint: `Some(code)` if refused (rolled back).
    fn apply_one_claim(
        &self,
        tx: &mut dyn Tx,
        member: Option<&crate::settle::Member<'_>>,
        c: &Checked,
        now: UnixSeconds,
    ) -> Result<Option<String>, IssuerError> {
        let ChainEntry::Payment(p) = &c.entry else {
            return Ok(Some("malformed_entry".into()));
        };
        let (wallet, source, missing) = match c.side {
            Side::PayerHere { .. } => (p.body().payer, Source::Own, "unknown_payer"),
            Side::PayeeHere { .. } => (p.body().payee, Source::Payee, "unknown_payee"),
            Side::Local => return Ok(Some("not_cross_issuer".into())),
        };
        // The wallet's row lock serializes this with its syncs.
        if tx.wallet(&wallet, true)?.is_none() {
            return Ok(Some(missing.into()));
        }
        tx.savepoint()?;
        let mut stats = RecordStats::default();
        match record_and_settle(
            &self.ca,
            member,
            tx,
            &[(c.entry.clone(), source)],
            now,
            &mut stats,
        ) {
            Ok(_) => {
                tx.release_savepoint()?;
                Ok(None)
            }
            Err(e) if e.is_client_error() => {
                tx.rollback_to_savepoint()?;
                Ok(Some(e.detail().unwrap_or(e.code()).to_string()))
            }
            Err(e) => {
                tx.rollback_to_savepoint()?;
                Err(e)
            }
        }
    }

    /// Post a root-signed settlement statement of a cycle: it must be
    /// addressed to us, in our currency, and every line must match our own
    /// claims with that counterparty in `claim_ids` (count, digest,
    /// receivable and payable sums), none of them in a posted cycle. Each
    /// line's net moves between `issuer:<hex>` and `settlement`; the claims
    /// get the cycle. The same statement again changes nothing; another one
    /// for a posted cycle is refused. A mismatch posts nothing.
    pub fn apply_statement(
        &self,
        signed_statement: &[u8],
        claim_ids: &[Hash32],
        now: UnixSeconds,
    ) -> Result<StatementOutcome, IssuerError> {
        self.require_member()?;
        let signed = Signed::<SettlementStatement>::decode(signed_statement)?;
        signed
            .verify(self.ca.root.public_key())
            .map_err(|_| IssuerError::BadSignature(Signature::Statement))?;
        let st = signed.body().clone();
        let hash = signed.payload_hash();
        if st.issuer != self.issuer_id() {
            return Err(SchemeProblem::StatementNotOurs.into());
        }
        if st.currency != self.currency() {
            return Err(SchemeProblem::Currency.into());
        }
        let net: i128 = st
            .lines
            .iter()
            .map(|l| i128::from(l.receivable_minor) - i128::from(l.payable_minor))
            .sum();
        let mismatch = |counterparty: Option<IssuerId>, what: &'static str| -> IssuerError {
            SchemeProblem::StatementMismatch { counterparty, what }.into()
        };
        let unique: BTreeSet<Hash32> = claim_ids.iter().copied().collect();
        if unique.len() != claim_ids.len() {
            return Err(mismatch(None, "a claim id is listed twice"));
        }
        let reference = format!("cycle:{}", st.cycle);
        let post = || {
            self.with_tx(|tx| {
                if let Some(done) = tx.statement(st.cycle)? {
                    if done.hash == hash {
                        return Ok(StatementOutcome {
                            cycle: st.cycle,
                            posted: false,
                            net: i128::from(done.net),
                            lines: st.lines.len(),
                            claims: claim_ids.len(),
                        });
                    }
                    return Err(SchemeProblem::StatementConflict { cycle: st.cycle }.into());
                }
                let held = tx.claims_by_ids(claim_ids)?;
                let postings = statement_postings(&st, &held, claim_ids.len(), &reference, now)?;
                let s = Account::Settlement;
                tx.create_account(&s.to_string(), s.book(), s.kind(), now)?;
                tx.post(&postings)?;
                tx.set_claims_cycle(claim_ids, st.cycle)?;
                tx.insert_statement(&StatementRecord {
                    cycle: st.cycle,
                    hash,
                    net: narrow(net)?,
                    bytes: signed_statement.to_vec(),
                    posted: now,
                })?;
                Ok(StatementOutcome {
                    cycle: st.cycle,
                    posted: true,
                    net,
                    lines: st.lines.len(),
                    claims: claim_ids.len(),
                })
            })
        };
        match post() {
            // The same cycle posted concurrently: the second attempt sees it.
            Err(IssuerError::Store(StoreError::Duplicate(_))) => post(),
            r => r,
        }
    }

    /// The highest settlement cycle posted (0: none).
    pub fn last_statement_cycle(&self) -> Result<u64, IssuerError> {
        self.with_tx(|tx| Ok(tx.statement_totals()?.0))
    }

    /// Claims matching a filter, oldest first.
    pub fn claims(&self, filter: &ClaimFilter) -> Result<Vec<ClaimRecord>, IssuerError> {
        self.with_tx(|tx| Ok(tx.claims(filter)?))
    }

    /// Our position with every issuer we hold claims with.
    pub fn peer_positions(&self) -> Result<Vec<PeerPosition>, IssuerError> {
        self.with_tx(|tx| {
            let balances: BTreeMap<String, i64> =
                tx.balances_of_kind("peer")?.into_iter().collect();
            tx.claim_sums()?
                .into_iter()
                .map(|s| {
                    Ok(PeerPosition {
                        peer: s.counterparty,
                        open_receivable: narrow(s.open_receivable)?,
                        open_payable: narrow(s.open_payable)?,
                        account: balances
                            .get(&Account::Peer(s.counterparty).to_string())
                            .copied()
                            .unwrap_or(0),
                        oldest_open: s.oldest_open,
                    })
                })
                .collect()
        })
    }
}

/// Check every line of a statement against our claims (`held`, the
/// `listed` ids found) and give the postings that close them.
fn statement_postings(
    st: &SettlementStatement,
    held: &[ClaimRecord],
    listed: usize,
    reference: &str,
    now: UnixSeconds,
) -> Result<Vec<crate::store::Posting>, IssuerError> {
    let mismatch = |counterparty: Option<IssuerId>, what: &'static str| -> IssuerError {
        SchemeProblem::StatementMismatch { counterparty, what }.into()
    };
    if held.len() != listed {
        return Err(mismatch(None, "a claim is not ours"));
    }
    let mut by_peer: BTreeMap<IssuerId, Vec<&ClaimRecord>> = BTreeMap::new();
    for c in held {
        if c.cycle.is_some() {
            return Err(mismatch(
                Some(c.counterparty),
                "a claim is in a posted cycle",
            ));
        }
        by_peer.entry(c.counterparty).or_default().push(c);
    }
    let mut postings = Vec::new();
    let mut lined = BTreeSet::new();
    for l in &st.lines {
        let peer = l.counterparty;
        if !lined.insert(peer) {
            return Err(mismatch(Some(peer), "two lines for one counterparty"));
        }
        let ours = by_peer.get(&peer).map(Vec::as_slice).unwrap_or(&[]);
        let sum = |d: ClaimDirection| -> i128 {
            ours.iter()
                .filter(|c| c.direction == d)
                .map(|c| i128::from(c.amount))
                .sum()
        };
        if ours.len() as u64 != l.claims {
            return Err(mismatch(Some(peer), "claim count"));
        }
        if sum(ClaimDirection::Receivable) != i128::from(l.receivable_minor) {
            return Err(mismatch(Some(peer), "receivable sum"));
        }
        if sum(ClaimDirection::Payable) != i128::from(l.payable_minor) {
            return Err(mismatch(Some(peer), "payable sum"));
        }
        let mut ids: Vec<Hash32> = ours.iter().map(|c| c.id).collect();
        if statement_digest(&mut ids) != l.digest {
            return Err(mismatch(Some(peer), "claim digest"));
        }
        // issuer:<peer> holds payable - receivable for these claims: move it to settlement.
        let owed = i128::from(l.payable_minor) - i128::from(l.receivable_minor);
        let (debit, credit, amount) = if owed >= 0 {
            (Account::Peer(peer), Account::Settlement, owed)
        } else {
            (Account::Settlement, Account::Peer(peer), -owed)
        };
        if amount > 0 {
            postings.push(posting(
                &debit,
                &credit,
                narrow(amount)?,
                "settlement",
                reference.to_string(),
                now,
            )?);
        }
    }
    if let Some(peer) = by_peer.keys().find(|p| !lined.contains(*p)) {
        return Err(mismatch(Some(*peer), "claims without a line"));
    }
    Ok(postings)
}
