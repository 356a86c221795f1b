//! Settlement: record chain entries once under (payer, seq), settle every
//! payment and redeem once, turn two entries at one (payer, seq) into a
//! double-spend proof and a revocation, and cover the losses of revoked
//! payers. Used by the online redeem and by every sync.

use std::collections::{BTreeSet, HashMap};

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{
    CertField, ChainEntry, DoubleSpendProof, Payment, RetainedDoubleSpendProof,
};
use offpay_protocol::pki::{Certificate, RevocationReason, SchemeTrust};
use offpay_protocol::{Hash32, IssuerId, UnixSeconds, WalletId};

use crate::ca::CertificateFactory;
use crate::certificates;
use crate::error::{InputError, Invariant, IssuerError, SchemeProblem};
use crate::ledger::{Account, posting, to_i64};
use crate::store::{
    ClaimDirection, ClaimRecord, ClaimState, DoubleSpendRecord, EntryRecord, PendingSettlement, Tx,
};

/// What settlement needs to know at a member issuer: who we are, the
/// installed directory (the other issuers' CA certificates, for proofs),
/// and the state new claims start in.
pub(crate) struct Member<'a> {
    /// This issuer.
    pub(crate) us: IssuerId,
    /// The installed directory, if any.
    pub(crate) trust: Option<&'a SchemeTrust>,
    /// The state of the claims this settlement writes.
    pub(crate) claim_state: ClaimState,
}

/// Where a payment's two wallets are, seen from this issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// Payer and payee are our wallets (always so at a standalone issuer).
    Local,
    /// Our wallet paid a wallet of `to`.
    PayerHere { to: IssuerId },
    /// A wallet of `from` paid our wallet.
    PayeeHere { from: IssuerId },
}

/// The issuer of a payment's payer: its inline certificate's issuer (a
/// referenced certificate is one of ours: only we hand out references).
pub(crate) fn payer_issuer(p: &Payment, us: IssuerId) -> Result<IssuerId, IssuerError> {
    match &p.payer_cert {
        CertField::Inline(der) => Ok(Certificate::from_der(der)?.issuer_id()),
        CertField::Reference(_) => Ok(us),
    }
}

/// A payment's [`Side`]; a payment between two other issuers is refused.
pub(crate) fn side(m: Option<&Member<'_>>, p: &Payment) -> Result<Side, IssuerError> {
    let Some(m) = m else {
        return Ok(Side::Local);
    };
    let from = payer_issuer(p, m.us)?;
    match (from == m.us, p.payee_issuer == m.us) {
        (true, true) => Ok(Side::Local),
        (true, false) => Ok(Side::PayerHere { to: p.payee_issuer }),
        (false, true) => Ok(Side::PayeeHere { from }),
        (false, false) => Err(SchemeProblem::NotAParty.into()),
    }
}

/// Where an entry came from in a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The payer's own outgoing chain: settles.
    Own,
    /// A payee's accepted incoming payment: settles (finality).
    Payee,
    /// A payment a payee refused as a rollback: recorded as evidence, never settled.
    Evidence,
}

#[derive(Default, Debug)]
pub(crate) struct RecordStats {
    pub recorded: usize,
    pub settled: usize,
    pub double_spends: Vec<(WalletId, u64)>,
    /// Claims on other issuers newly written (member issuers).
    pub claims: usize,
}

fn entry_record(e: &ChainEntry, now: UnixSeconds) -> Result<EntryRecord, IssuerError> {
    let (kind, payee) = match e {
        ChainEntry::Payment(p) => ("payment", Some(p.body().payee)),
        ChainEntry::Redeem(_) => ("redeem", None),
    };
    Ok(EntryRecord {
        payer: e.payer(),
        seq: e.seq(),
        hash: e.hash(),
        prev: e.prev(),
        kind,
        payee,
        amount: to_i64(e.amount().minor)?,
        time: e.time(),
        bytes: e.bytes().to_vec(),
        recorded: now,
    })
}

/// Record entries under (payer, seq), detect conflicts, settle each payment
/// and redeem once, and cover the losses of revoked payers. Returns the
/// number of entries newly settled. A constant number of round trips per
/// call, whatever the number of entries and payers.
pub(crate) fn record_and_settle(
    ca: &CertificateFactory,
    member: Option<&Member<'_>>,
    tx: &mut dyn Tx,
    batch: &[(ChainEntry, Source)],
    now: UnixSeconds,
    stats: &mut RecordStats,
) -> Result<usize, IssuerError> {
    // 1. What is already recorded at these keys, and (for new keys) at these prevs.
    let mut keys: Vec<(WalletId, u64)> = batch.iter().map(|(e, _)| (e.payer(), e.seq())).collect();
    keys.sort();
    keys.dedup();
    let mut known: HashMap<(WalletId, u64), EntryRecord> = tx
        .entries_at_keys(&keys)?
        .into_iter()
        .map(|e| ((e.payer, e.seq), e))
        .collect();
    let mut prevs: Vec<(WalletId, Hash32)> = batch
        .iter()
        .filter(|(e, _)| !known.contains_key(&(e.payer(), e.seq())))
        .map(|(e, _)| (e.payer(), e.prev()))
        .collect();
    prevs.sort();
    prevs.dedup();
    let mut by_prev: HashMap<(WalletId, Hash32), EntryRecord> = tx
        .entries_by_prevs(&prevs)?
        .into_iter()
        .map(|e| ((e.payer, e.prev), e))
        .collect();

    // 2. Classify: known, new, or in conflict (a double spend; against a
    // pruned entry, by its retained hash: retention.rs).
    let mut new_entries: Vec<EntryRecord> = Vec::new();
    let mut conflicts: Vec<Conflict> = Vec::new();
    for (e, _) in batch {
        let (payer, h) = (e.payer(), e.hash());
        match known.get(&(payer, e.seq())) {
            Some(k) if k.hash == h => {}
            Some(k) => conflicts.push(Conflict::new(k, e)),
            None => {
                if let Some(k) = by_prev.get(&(payer, e.prev()))
                    && k.hash != h
                {
                    conflicts.push(Conflict::new(k, e));
                    continue;
                }
                let rec = entry_record(e, now)?;
                known.insert((payer, rec.seq), rec.clone());
                by_prev.insert((payer, rec.prev), rec.clone());
                new_entries.push(rec);
            }
        }
    }
    stats.recorded += new_entries.len();
    tx.insert_entries(&new_entries)?;

    // 3. Settle payments and redeems seen by their payer or payee, once each.
    let settled_total = settle_once(member, tx, batch, now, stats)?;

    // 4. Double spends: keep the proof, revoke and lock the payer (ours only:
    // a wallet of another issuer is revoked by its issuer, which gets the claims).
    prove_double_spends(ca, member, tx, conflicts, now, stats)?;

    // 5. Cover the losses (or refund the cover) of every revoked wallet
    // touched, payer or payee, and keep every closed wallet touched at zero
    // (lifecycle.rs).
    let mut touched: Vec<WalletId> = keys.iter().map(|(p, _)| *p).collect();
    touched.extend(batch.iter().filter_map(|(e, _)| match e {
        ChainEntry::Payment(p) => Some(p.body().payee),
        ChainEntry::Redeem(_) => None,
    }));
    touched.sort();
    touched.dedup();
    for w in tx.revoked_among(&touched)? {
        cover_losses(tx, &w, now)?;
    }
    if settled_total > 0 {
        crate::lifecycle::sweep_closed(tx, &touched, now)?;
    }
    stats.settled += settled_total;
    Ok(settled_total)
}

/// Settle the batch's payments and redeems (not its evidence) that are not
/// settled yet, once each; returns how many were.
fn settle_once(
    member: Option<&Member<'_>>,
    tx: &mut dyn Tx,
    batch: &[(ChainEntry, Source)],
    now: UnixSeconds,
    stats: &mut RecordStats,
) -> Result<usize, IssuerError> {
    let mut to_settle: Vec<&ChainEntry> = Vec::new();
    let mut seen = BTreeSet::new();
    // Entries a report of their payee carried: the payee's TA holds them.
    let held: BTreeSet<(WalletId, Hash32)> = batch
        .iter()
        .filter(|(_, s)| *s == Source::Payee)
        .map(|(e, _)| (e.payer(), e.hash()))
        .collect();
    for (e, s) in batch {
        if *s != Source::Evidence && seen.insert((e.payer(), e.hash())) {
            to_settle.push(e);
        }
    }
    let settle_keys: Vec<(WalletId, Hash32)> =
        to_settle.iter().map(|e| (e.payer(), e.hash())).collect();
    let already: BTreeSet<(WalletId, Hash32)> =
        tx.settled_keys(&settle_keys)?.into_iter().collect();
    deliver_reported(tx, batch, &already, &held, now)?;
    let to_settle: Vec<&ChainEntry> = to_settle
        .into_iter()
        .filter(|e| !already.contains(&(e.payer(), e.hash())))
        .collect();
    let mut sides: Vec<Side> = Vec::with_capacity(to_settle.len());
    for e in &to_settle {
        sides.push(match e {
            ChainEntry::Payment(p) => side(member, p.body())?,
            ChainEntry::Redeem(_) => Side::Local,
        });
    }
    check_payees(tx, &to_settle, &sides)?;
    open_peer_accounts(tx, &sides, now)?;
    let mut owners: HashMap<WalletId, String> = HashMap::new();
    let mut postings = Vec::with_capacity(to_settle.len());
    let mut settlements = Vec::with_capacity(to_settle.len());
    let mut claims = Vec::new();
    for (e, side) in to_settle.into_iter().zip(sides) {
        let (payer, h) = (e.payer(), e.hash());
        let amount = to_i64(e.amount().minor)?;
        let reference = h.to_hex();
        match e {
            ChainEntry::Payment(p) => {
                let payee = p.body().payee;
                let claim =
                    payment_postings(side, payer, payee, amount, reference, now, &mut postings)?;
                // Only a payment between two of our wallets can be returned.
                let delivered = side != Side::Local || held.contains(&(payer, h));
                settlements.push((h, payer, Some(payee), amount, delivered));
                if let Some((counterparty, direction)) = claim {
                    claims.push((
                        ClaimRecord {
                            id: h,
                            counterparty,
                            direction,
                            amount,
                            state: member.map_or(ClaimState::Outbox, |m| m.claim_state),
                            refusal: None,
                            cycle: None,
                            payer,
                            seq: e.seq(),
                            created: now,
                        },
                        e.bytes().to_vec(),
                    ));
                }
            }
            ChainEntry::Redeem(_) => {
                let owner = match owners.entry(payer) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => v.insert(
                        tx.wallet(&payer, false)?
                            .ok_or(IssuerError::UnknownWallet)?
                            .customer,
                    ),
                };
                let customer = Account::Customer(owner.clone());
                postings.push(posting(
                    &Account::Pool,
                    &customer,
                    amount,
                    "redeem",
                    reference.clone(),
                    now,
                )?);
                postings.push(posting(
                    &Account::Wallet(payer),
                    &Account::Issuance,
                    amount,
                    "redeem",
                    reference,
                    now,
                )?);
                settlements.push((h, payer, None, amount, true));
            }
        }
    }
    tx.post(&postings)?;
    tx.insert_settlements(&settlements, now)?;
    if !claims.is_empty() {
        stats.claims += tx.insert_claims(&claims)?.len();
    }
    let settled_total = settlements.len();
    Ok(settled_total)
}

/// Settled before from their payer's report, now carried by their payee's:
/// mark them delivered (and credit again any returned meanwhile).
fn deliver_reported(
    tx: &mut dyn Tx,
    batch: &[(ChainEntry, Source)],
    already: &BTreeSet<(WalletId, Hash32)>,
    held: &BTreeSet<(WalletId, Hash32)>,
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    let delivered_now: Vec<(WalletId, Hash32)> = already.intersection(held).copied().collect();
    if !delivered_now.is_empty() {
        // A returned payment pruned since keeps no payee or amount: the
        // payee's report carries the payer-signed entry, which has both.
        let pruned: BTreeSet<(WalletId, Hash32)> =
            tx.pruned_returned(&delivered_now)?.into_iter().collect();
        let mut late = tx.deliver(&delivered_now)?;
        for (e, _) in batch.iter().filter(|(_, s)| *s == Source::Payee) {
            if let ChainEntry::Payment(p) = e
                && pruned.contains(&(e.payer(), e.hash()))
                && !late
                    .iter()
                    .any(|l| (l.payer, l.hash) == (e.payer(), e.hash()))
            {
                late.push(PendingSettlement {
                    payer: e.payer(),
                    hash: e.hash(),
                    payee: p.body().payee,
                    amount: to_i64(e.amount().minor)?,
                    time: now,
                });
            }
        }
        crate::lifecycle::credit_late_deliveries(tx, &late, now)?;
    }
    Ok(())
}

/// Every payee credited here (not those of other issuers) has a sub-account.
fn check_payees(
    tx: &mut dyn Tx,
    to_settle: &[&ChainEntry],
    sides: &[Side],
) -> Result<(), IssuerError> {
    let mut payees: Vec<WalletId> = to_settle
        .iter()
        .zip(sides)
        .filter_map(|(e, s)| match (e, s) {
            (ChainEntry::Payment(_), Side::PayerHere { .. }) => None,
            (ChainEntry::Payment(p), _) => Some(p.body().payee),
            (ChainEntry::Redeem(_), _) => None,
        })
        .collect();
    payees.sort();
    payees.dedup();
    let payee_accounts: Vec<String> = payees
        .iter()
        .map(|w| Account::Wallet(*w).to_string())
        .collect();
    let existing: BTreeSet<String> = tx.existing_accounts(&payee_accounts)?.into_iter().collect();
    if let Some((payee, _)) = payees
        .iter()
        .zip(&payee_accounts)
        .find(|(_, a)| !existing.contains(*a))
    {
        return Err(InputError::UnknownPayee { payee: *payee }.into());
    }
    Ok(())
}

/// The `issuer:` and `foreign:` accounts of every other issuer in `sides` (no-op where they exist).
fn open_peer_accounts(
    tx: &mut dyn Tx,
    sides: &[Side],
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    let mut peers: Vec<IssuerId> = sides
        .iter()
        .filter_map(|s| match s {
            Side::Local => None,
            Side::PayerHere { to } => Some(*to),
            Side::PayeeHere { from } => Some(*from),
        })
        .collect();
    peers.sort();
    peers.dedup();
    for peer in peers {
        for a in [Account::Peer(peer), Account::Foreign(peer)] {
            tx.create_account(&a.to_string(), a.book(), a.kind(), now)?;
        }
    }
    Ok(())
}

/// The postings of one payment by its [`Side`] (see `ledger.rs` for the
/// signs), and the claim it makes on another issuer, if any.
fn payment_postings(
    side: Side,
    payer: WalletId,
    payee: WalletId,
    amount: i64,
    reference: String,
    now: UnixSeconds,
    postings: &mut Vec<crate::store::Posting>,
) -> Result<Option<(IssuerId, ClaimDirection)>, IssuerError> {
    let (from, to, claim) = match side {
        Side::Local => (Account::Wallet(payer), Account::Wallet(payee), None),
        Side::PayerHere { to } => {
            postings.push(posting(
                &Account::Pool,
                &Account::Peer(to),
                amount,
                "settle",
                reference.clone(),
                now,
            )?);
            (
                Account::Wallet(payer),
                Account::Foreign(to),
                Some((to, ClaimDirection::Payable)),
            )
        }
        Side::PayeeHere { from } => {
            postings.push(posting(
                &Account::Peer(from),
                &Account::Pool,
                amount,
                "settle",
                reference.clone(),
                now,
            )?);
            (
                Account::Foreign(from),
                Account::Wallet(payee),
                Some((from, ClaimDirection::Receivable)),
            )
        }
    };
    postings.push(posting(&from, &to, amount, "settle", reference, now)?);
    Ok(claim)
}

/// A new entry in conflict with a recorded one (same seq or same prev).
struct Conflict {
    payer: WalletId,
    /// The recorded entry (its bytes empty when pruned by the retention rule).
    recorded: EntryRecord,
    /// The new entry's bytes.
    new: Vec<u8>,
    /// The new entry's seq.
    seq: u64,
}

impl Conflict {
    fn new(recorded: &EntryRecord, e: &ChainEntry) -> Conflict {
        Conflict {
            payer: e.payer(),
            recorded: recorded.clone(),
            new: e.bytes().to_vec(),
            seq: e.seq(),
        }
    }
}

/// Two entries at one (payer, seq): keep the proof, revoke the payer (once).
/// Against a pruned entry the proof is a [`RetainedDoubleSpendProof`]: the
/// new entry and the issuer's signed statement of the retained hash.
fn prove_double_spends(
    ca: &CertificateFactory,
    member: Option<&Member<'_>>,
    tx: &mut dyn Tx,
    conflicts: Vec<Conflict>,
    now: UnixSeconds,
    stats: &mut RecordStats,
) -> Result<(), IssuerError> {
    for c in conflicts {
        let (payer, seq) = (c.payer, c.seq);
        let (proof, ours) = if c.recorded.is_pruned() {
            build_retained_proof(ca, tx, &c.recorded, &c.new, now)?
        } else {
            build_proof(ca, member, tx, &payer, &c.recorded.bytes, &c.new)?
        };
        let ea = c.recorded.hash;
        let eb = ChainEntry::decode(&c.new)?.hash();
        let entries = if ea <= eb { [ea, eb] } else { [eb, ea] };
        let fresh = tx.insert_double_spend(&DoubleSpendRecord {
            payer,
            seq,
            entries,
            proof,
            detected: now,
        })?;
        if fresh {
            stats.double_spends.push((payer, seq));
            if !ours {
                // Another issuer's wallet: the proof is kept (and both entries
                // go out as claims); its issuer revokes it.
                continue;
            }
            let mut w = tx.wallet(&payer, true)?.ok_or(IssuerError::UnknownWallet)?;
            certificates::revoke(
                ca,
                tx,
                &mut w,
                RevocationReason::KeyCompromise,
                &format!("double spend at seq {seq}"),
                now,
            )?;
            tx.update_wallet(&w)?;
        }
    }
    Ok(())
}

/// The certificate of `payer` whose key signed `entry`: its inline one, or
/// one of those the issuer issued to it.
fn signing_certificate(
    tx: &mut dyn Tx,
    payer: &WalletId,
    entry: &ChainEntry,
) -> Result<Vec<u8>, IssuerError> {
    if let ChainEntry::Payment(p) = entry
        && let CertField::Inline(der) = &p.body().payer_cert
    {
        return Ok(der.clone());
    }
    for (_, der) in tx.certificates_of(payer)? {
        let c = Certificate::from_der(&der)?;
        if entry.verify(c.public_key()).is_ok() {
            return Ok(der);
        }
    }
    Err(Invariant::NoCertificateVerifies { payer: *payer }.into())
}

/// The proof against a pruned entry of one of our wallets: the new entry,
/// its certificate, and the issuer CA's signed statement of what it
/// retained at (payer, seq). Always one of ours: only our wallets' payments
/// are pruned.
fn build_retained_proof(
    ca: &CertificateFactory,
    tx: &mut dyn Tx,
    retained: &EntryRecord,
    new: &[u8],
    now: UnixSeconds,
) -> Result<(Vec<u8>, bool), IssuerError> {
    let entry = ChainEntry::decode(new)?;
    let payer_cert = signing_certificate(tx, &retained.payer, &entry)?;
    let proof = Signed::try_sign(
        RetainedDoubleSpendProof {
            entry: new.to_vec(),
            payer_cert,
            issuer_cert: ca.issuer.der().to_vec(),
            payer: retained.payer,
            seq: retained.seq,
            retained_hash: retained.hash,
            retained_prev: retained.prev,
            time: now,
        },
        ca.signer(),
    )?;
    Ok((proof.into_bytes(), true))
}

/// The proof for two entries of `payer`, with the certificate whose key
/// signed them and its issuer's CA certificate; and whether the payer is ours.
fn build_proof(
    ca: &CertificateFactory,
    member: Option<&Member<'_>>,
    tx: &mut dyn Tx,
    payer: &WalletId,
    a: &[u8],
    b: &[u8],
) -> Result<(Vec<u8>, bool), IssuerError> {
    let ea = ChainEntry::decode(a)?;
    let cert_der = signing_certificate(tx, payer, &ea)?;
    let mut issuer_der = ca.issuer.der().to_vec();
    let mut ours = true;
    if let Some(m) = member {
        let of = Certificate::from_der(&cert_der)?.issuer_id();
        if of != m.us {
            ours = false;
            issuer_der = m
                .trust
                .and_then(|t| t.issuer(&of))
                .ok_or(SchemeProblem::UnknownIssuer { issuer: of })?
                .der()
                .to_vec();
        }
    }
    Ok((
        DoubleSpendProof::new(a.to_vec(), b.to_vec(), cert_der, issuer_der).encode(),
        ours,
    ))
}

/// A revoked payer whose sub-account is negative has spent money it did not
/// have: claw it back from its customer's online account, and charge the rest
/// to the guarantee fund. If later settlements bring it back above zero, the
/// guarantee fund is refunded first, then the customer (`clawed_back` and
/// `guaranteed` count what is still outstanding).
fn cover_losses(tx: &mut dyn Tx, payer: &WalletId, now: UnixSeconds) -> Result<(), IssuerError> {
    let mut w = tx.wallet(payer, true)?.ok_or(IssuerError::UnknownWallet)?;
    let sub_account = Account::Wallet(*payer);
    let sub = tx
        .balance(&sub_account.to_string())?
        .ok_or(IssuerError::UnknownWallet)?;
    let reference = format!("cover:{}", payer.to_hex());
    let mut postings = Vec::new();
    if sub < 0 {
        let deficit = sub.checked_neg().ok_or(Invariant::DeficitOverflow)?;
        let customer = Account::Customer(w.customer.clone());
        let online = tx.balance(&customer.to_string())?.unwrap_or(0).max(0);
        let claw = deficit.min(online);
        if claw > 0 {
            postings.push(posting(
                &customer,
                &Account::Pool,
                claw,
                "clawback",
                reference.clone(),
                now,
            )?);
            postings.push(posting(
                &Account::Issuance,
                &sub_account,
                claw,
                "clawback",
                reference.clone(),
                now,
            )?);
            w.clawed_back += claw;
        }
        let rest = deficit - claw;
        if rest > 0 {
            postings.push(posting(
                &Account::Guarantee,
                &Account::Pool,
                rest,
                "guarantee",
                reference.clone(),
                now,
            )?);
            postings.push(posting(
                &Account::Issuance,
                &sub_account,
                rest,
                "guarantee",
                reference,
                now,
            )?);
            w.guaranteed += rest;
        }
    } else if sub > 0 && (w.guaranteed > 0 || w.clawed_back > 0) {
        // Later settlements brought it back above zero: refund the guarantee
        // fund first, then the customer what was clawed back.
        let to_fund = sub.min(w.guaranteed);
        let to_customer = (sub - to_fund).min(w.clawed_back);
        let customer = Account::Customer(w.customer.clone());
        for (to, amount) in [(&Account::Guarantee, to_fund), (&customer, to_customer)] {
            if amount == 0 {
                continue;
            }
            postings.push(posting(
                &Account::Pool,
                to,
                amount,
                "refund",
                reference.clone(),
                now,
            )?);
            postings.push(posting(
                &sub_account,
                &Account::Issuance,
                amount,
                "refund",
                reference.clone(),
                now,
            )?);
        }
        w.guaranteed -= to_fund;
        w.clawed_back -= to_customer;
    }
    if !postings.is_empty() {
        tx.post(&postings)?;
        tx.update_wallet(&w)?;
    }
    Ok(())
}
