//! Dispute cases: what a customer says about a payment (or a wallet), the
//! system's own evidence, a decision by the liability rules, and a
//! resolution in balanced postings (docs/LIABILITY.md states the rules for
//! operators).
//!
//! A case is opened on a payment (payer, seq), or, for `not_my_payment`, on
//! a wallet; opening attaches the evidence (the payer's signed entry, the
//! settlement and its delivery state, the checkpoints of both sides, the CRL
//! state at the payment's time, the double spends touching it) as the
//! issuer's signed [`EvidenceBundle`], re-signed at every state change:
//! open -> decided -> resolved (or rejected). Every change is a
//! [`CaseEvent`] row.
//!
//! The cases fit the lifecycle rules (`lifecycle.rs`), never duplicate them:
//!
//! - A payment the payee's TA reported is the payee's: a claim that it was
//!   not received (or refused) is rejected.
//! - A payment the lifecycle returned (rule 2) is recorded as returned: the
//!   case pays nothing again.
//! - While a case is open or decided, the lifecycle does not return its
//!   payment at a payee sync; it notes on the case that the payee's window
//!   closed, and the case returns it instead (the same postings as rule 2,
//!   marking the settlement returned: a later delivery is credited from the
//!   guarantee fund exactly as after a lifecycle return).
//! - A payment validly signed by the payer's key is the customer's, unless
//!   the wallet was revoked (reported lost or retired) before the payment's
//!   time: then the guarantee fund refunds it (not where the scheme does not
//!   refund lost wallets). A payment is refunded by a case at most once
//!   (`case_refunds` is keyed by the payment).
//! - A double spend of the wallet is settled by the clawback rules already
//!   (`settle.rs`): the case rejects the claim and points at the proof.

use offpay_protocol::bundle::{
    BUNDLE_CERTS_MAX, BUNDLE_CHECKPOINTS_MAX, BUNDLE_PROOFS_MAX, BundleCheckpoint, BundleDelivery,
    EvidenceBundle,
};
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::ChainEntry;
use offpay_protocol::pki::Certificate;
use offpay_protocol::{Currency, UnixSeconds, WalletId};

use crate::ca::CertificateFactory;
use crate::error::{CaseProblem, IssuerError};
use crate::issuer::Issuer;
use crate::ledger::{Account, posting};
use crate::lifecycle::{self, LifecycleRules};
use crate::store::{
    CaseEvent, CaseKind, CaseRecord, CaseState, CheckpointRecord, Delivery, DoubleSpendRecord,
    EntryRecord, PendingSettlement, Retirement, SettlementRecord, Store, Tx, WalletRecord,
};

/// Longest operator name.
pub const CASE_ACTOR_BYTES_MAX: usize = 64;
/// Longest note.
pub const CASE_NOTE_BYTES_MAX: usize = 256;
/// Payments of a wallet a wallet case considers at most.
pub const WALLET_CASE_ENTRIES_MAX: u32 = 256;
/// Cases listed at most per call.
pub const CASES_LISTED_MAX: u32 = 1_000;
/// Double spends read per case at most.
const DOUBLE_SPENDS_READ_MAX: u32 = 64;

/// What the liability rules decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    /// The payee's TA reported the payment: the payee holds it; the claim is rejected.
    PayeeHolds,
    /// The payee is a wallet of another issuer, which holds the payment: rejected here.
    OtherIssuer,
    /// The lifecycle already returned the payment to the payer (rule 2): nothing more to pay.
    ReturnedByRule,
    /// The payee's window closed without its TA reporting the payment: returned to the payer now.
    ReturnToPayer,
    /// The payer's key signed it and the wallet was not revoked before: the customer's liability.
    PayerSigned,
    /// Signed after the wallet was revoked (reported lost or retired): the guarantee fund refunds.
    GuaranteeRefund,
    /// No wallet certificate verifies the entry: the issuer's fault; the guarantee fund refunds.
    SignatureInvalid,
    /// A lost wallet where the scheme does not refund lost wallets: rejected.
    NoRefundRule,
    /// The wallet double-spent: the clawback rules settled it already; rejected.
    DoubleSpendRules,
    /// A case refunded this payment before: nothing is paid twice.
    AlreadyRefunded,
    /// A wallet case with no payment after the revocation left to refund: rejected.
    NothingToRefund,
}

impl Decision {
    /// Every decision.
    pub const ALL: [Decision; 11] = [
        Decision::PayeeHolds,
        Decision::OtherIssuer,
        Decision::ReturnedByRule,
        Decision::ReturnToPayer,
        Decision::PayerSigned,
        Decision::GuaranteeRefund,
        Decision::SignatureInvalid,
        Decision::NoRefundRule,
        Decision::DoubleSpendRules,
        Decision::AlreadyRefunded,
        Decision::NothingToRefund,
    ];
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::PayeeHolds => "payee_holds",
            Decision::OtherIssuer => "other_issuer",
            Decision::ReturnedByRule => "returned_by_rule",
            Decision::ReturnToPayer => "return_to_payer",
            Decision::PayerSigned => "payer_signed",
            Decision::GuaranteeRefund => "guarantee_refund",
            Decision::SignatureInvalid => "signature_invalid",
            Decision::NoRefundRule => "no_refund_rule",
            Decision::DoubleSpendRules => "double_spend_rules",
            Decision::AlreadyRefunded => "already_refunded",
            Decision::NothingToRefund => "nothing_to_refund",
        }
    }
    /// From the stored name.
    pub fn parse(s: &str) -> Option<Decision> {
        Decision::ALL.into_iter().find(|d| d.as_str() == s)
    }
    /// The state resolving it leads to: resolved, or rejected (the claim refused).
    pub fn final_state(self) -> CaseState {
        match self {
            Decision::ReturnedByRule
            | Decision::ReturnToPayer
            | Decision::GuaranteeRefund
            | Decision::SignatureInvalid
            | Decision::AlreadyRefunded => CaseState::Resolved,
            Decision::PayeeHolds
            | Decision::OtherIssuer
            | Decision::PayerSigned
            | Decision::NoRefundRule
            | Decision::DoubleSpendRules
            | Decision::NothingToRefund => CaseState::Rejected,
        }
    }
}

/// A case to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseOpening {
    /// What the customer says.
    pub kind: CaseKind,
    /// The payer of the payment, or the wallet.
    pub payer: WalletId,
    /// The payment's seq (None: a case on the wallet, `not_my_payment` only).
    pub seq: Option<u64>,
    /// The operator.
    pub opened_by: String,
    /// The customer's words.
    pub note: String,
}

/// Counts of cases, for the simulator and the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseCounts {
    /// Cases opened.
    pub opened: u64,
    /// Cases resolved (postings made or nothing owed).
    pub resolved: u64,
    /// Cases rejected by the rules.
    pub rejected: u64,
    /// (kind, state, count), rows with a count of 0 left out.
    pub by_kind_state: Vec<(CaseKind, CaseState, u64)>,
}

/// A payment of the case with what the rules need about it.
#[derive(Clone, Debug)]
struct PaymentFacts {
    entry: EntryRecord,
    settlement: Option<SettlementRecord>,
    /// The payee is a wallet of this issuer.
    payee_ours: bool,
    /// The serial of the certificate whose key signed it (None: none verifies).
    signed_by: Option<u64>,
    /// A case refunded it before.
    refunded_by: Option<u64>,
}

/// Everything the rules and the bundle need, read in the case's transaction.
#[derive(Clone, Debug)]
struct Evidence {
    wallet: WalletRecord,
    /// The case's payment (None: a wallet case).
    payment: Option<PaymentFacts>,
    /// A wallet case: its payments timed at or after the revocation.
    after_revocation: Vec<PaymentFacts>,
    /// The first revocation of the wallet: (time, first CRL listing it or 0).
    revoked: Option<(UnixSeconds, u64)>,
    double_spends: Vec<DoubleSpendRecord>,
    checkpoints: Vec<BundleCheckpoint>,
    certs: Vec<(u64, Vec<u8>)>,
}

fn check_text(s: &str, field: &'static str, min: usize, max: usize) -> Result<(), CaseProblem> {
    if s.len() < min || s.len() > max || s.chars().any(char::is_control) {
        return Err(CaseProblem::Text { field });
    }
    Ok(())
}

fn bundle_checkpoint(c: &CheckpointRecord) -> BundleCheckpoint {
    BundleCheckpoint {
        wallet: c.wallet,
        number: c.number,
        seq: c.seq,
        head: c.head,
        balance_minor: c.balance,
        time: c.time,
    }
}

/// The serial of the wallet certificate whose key signed `bytes` (None: none does).
fn signer_of(bytes: &[u8], certs: &[(u64, Vec<u8>)]) -> Option<u64> {
    let entry = ChainEntry::decode(bytes).ok()?;
    certs.iter().find_map(|(serial, der)| {
        let c = Certificate::from_der(der).ok()?;
        entry.verify(c.public_key()).ok().map(|()| *serial)
    })
}

fn payment_facts(
    tx: &mut dyn Tx,
    entry: EntryRecord,
    certs: &[(u64, Vec<u8>)],
) -> Result<PaymentFacts, IssuerError> {
    let settlement = tx.settlement(&entry.payer, &entry.hash)?;
    let payee_ours = match entry.payee {
        Some(p) => tx.wallet(&p, false)?.is_some(),
        None => false,
    };
    let refunded_by = tx.case_refund(&entry.payer, entry.seq)?;
    Ok(PaymentFacts {
        signed_by: signer_of(&entry.bytes, certs),
        settlement,
        payee_ours,
        refunded_by,
        entry,
    })
}

/// The last checkpoint of a wallet (None: never synced).
fn last_checkpoint(
    tx: &mut dyn Tx,
    w: &WalletRecord,
) -> Result<Option<CheckpointRecord>, IssuerError> {
    if w.checkpoint == 0 {
        return Ok(None);
    }
    Ok(tx.checkpoint(&w.id, w.checkpoint)?)
}

fn checkpoints_of(
    tx: &mut dyn Tx,
    w: &WalletRecord,
    payment: Option<&PaymentFacts>,
) -> Result<Vec<BundleCheckpoint>, IssuerError> {
    let mut out: Vec<CheckpointRecord> = Vec::new();
    if let Some(p) = payment {
        out.extend(tx.checkpoint_covering(&w.id, p.entry.seq)?);
    }
    out.extend(last_checkpoint(tx, w)?);
    if let Some(payee) = payment.and_then(|p| p.entry.payee)
        && let Some(pw) = tx.wallet(&payee, false)?
    {
        out.extend(last_checkpoint(tx, &pw)?);
    }
    out.dedup_by(|a, b| a.wallet == b.wallet && a.number == b.number);
    Ok(out
        .iter()
        .take(BUNDLE_CHECKPOINTS_MAX)
        .map(bundle_checkpoint)
        .collect())
}

fn gather(tx: &mut dyn Tx, c: &CaseOpening) -> Result<Evidence, IssuerError> {
    let wallet = tx
        .wallet(&c.payer, false)?
        .ok_or(IssuerError::UnknownWallet)?;
    let mut certs = tx.certificates_of(&c.payer)?;
    certs.sort_by_key(|(serial, _)| *serial);
    let revoked = tx
        .revocations_of(&c.payer)?
        .into_iter()
        .min_by_key(|r| (r.time, r.serial))
        .map(|r| (r.time, r.crl_added.unwrap_or(0)));
    let payment = match c.seq {
        Some(seq) => {
            let entry = tx.entries_at(&c.payer, &[seq])?.into_iter().next().ok_or(
                CaseProblem::UnknownPayment {
                    payer: c.payer,
                    seq,
                },
            )?;
            if entry.payee.is_none() {
                return Err(CaseProblem::NotAPayment.into());
            }
            Some(payment_facts(tx, entry, &certs)?)
        }
        None => None,
    };
    let mut after_revocation = Vec::new();
    if c.seq.is_none()
        && let Some((at, _)) = revoked
    {
        for e in tx.entries_from(&c.payer, at, WALLET_CASE_ENTRIES_MAX)? {
            if e.payee.is_some() {
                after_revocation.push(payment_facts(tx, e, &certs)?);
            }
        }
    }
    let double_spends = tx
        .double_spends(Some(&c.payer), DOUBLE_SPENDS_READ_MAX)?
        .into_iter()
        .filter(|d| payment.as_ref().is_none_or(|p| d.seq == p.entry.seq))
        .collect();
    let checkpoints = checkpoints_of(tx, &wallet, payment.as_ref())?;
    Ok(Evidence {
        wallet,
        payment,
        after_revocation,
        revoked,
        double_spends,
        checkpoints,
        certs,
    })
}

/// The rules for a payment the payer's key signed ("not my payment").
fn signature_rules(ev: &Evidence, p: &PaymentFacts, rules: &LifecycleRules) -> Decision {
    if p.signed_by.is_none() {
        return Decision::SignatureInvalid;
    }
    if !ev.double_spends.is_empty() {
        return Decision::DoubleSpendRules;
    }
    match ev.revoked {
        Some((at, _)) if at <= p.entry.time => {
            if ev.wallet.retired == Some(Retirement::Lost) && !rules.refund_lost {
                Decision::NoRefundRule
            } else {
                Decision::GuaranteeRefund
            }
        }
        _ => Decision::PayerSigned,
    }
}

fn decide_payment(
    kind: CaseKind,
    ev: &Evidence,
    p: &PaymentFacts,
    window_closed: bool,
    rules: &LifecycleRules,
) -> Result<Decision, CaseProblem> {
    if p.refunded_by.is_some() {
        return Ok(Decision::AlreadyRefunded);
    }
    let delivery = p.settlement.as_ref().map(|s| s.delivery);
    match delivery {
        Some(Delivery::Returned) => Ok(Decision::ReturnedByRule),
        Some(Delivery::Pending) if window_closed => Ok(Decision::ReturnToPayer),
        Some(Delivery::Pending) | None => Err(CaseProblem::AwaitingPayee),
        Some(Delivery::Delivered) => Ok(match kind {
            CaseKind::NotMyPayment => signature_rules(ev, p, rules),
            _ if !p.payee_ours => Decision::OtherIssuer,
            CaseKind::PaidNotReceived | CaseKind::RefusedButDebited => Decision::PayeeHolds,
        }),
    }
}

/// The payments a wallet case refunds: delivered, timed at or after the
/// revocation, validly signed, not refunded before.
fn wallet_refunds(ev: &Evidence) -> Vec<&PaymentFacts> {
    ev.after_revocation
        .iter()
        .filter(|p| {
            p.refunded_by.is_none()
                && p.signed_by.is_some()
                && p.settlement
                    .as_ref()
                    .is_some_and(|s| s.delivery == Delivery::Delivered)
        })
        .collect()
}

fn decide_wallet(ev: &Evidence, rules: &LifecycleRules) -> Decision {
    if ev.revoked.is_none() {
        return Decision::PayerSigned;
    }
    if !ev.double_spends.is_empty() {
        return Decision::DoubleSpendRules;
    }
    if ev.wallet.retired == Some(Retirement::Lost) && !rules.refund_lost {
        return Decision::NoRefundRule;
    }
    if wallet_refunds(ev).is_empty() {
        Decision::NothingToRefund
    } else {
        Decision::GuaranteeRefund
    }
}

/// The rules: the evidence decides (docs/LIABILITY.md).
fn decide(c: &CaseRecord, ev: &Evidence, rules: &LifecycleRules) -> Result<Decision, CaseProblem> {
    match &ev.payment {
        Some(p) => decide_payment(c.kind, ev, p, c.window_closed_at.is_some(), rules),
        None => Ok(decide_wallet(ev, rules)),
    }
}

/// What a decision pays the customer (minor units).
fn paid_by(d: Decision, ev: &Evidence) -> Result<i64, IssuerError> {
    Ok(match (d, &ev.payment) {
        (
            Decision::ReturnToPayer | Decision::GuaranteeRefund | Decision::SignatureInvalid,
            Some(p),
        ) => p.entry.amount,
        (Decision::GuaranteeRefund, None) => {
            wallet_refunds(ev).iter().try_fold(0i64, |sum, p| {
                sum.checked_add(p.entry.amount)
                    .ok_or(crate::error::Invariant::DeficitOverflow)
            })?
        }
        _ => 0,
    })
}

/// The disputed amount: the payment's, or a wallet case's payments after the revocation.
fn disputed(ev: &Evidence) -> Result<i64, IssuerError> {
    match &ev.payment {
        Some(p) => Ok(p.entry.amount),
        None => Ok(ev.after_revocation.iter().try_fold(0i64, |sum, p| {
            sum.checked_add(p.entry.amount)
                .ok_or(crate::error::Invariant::DeficitOverflow)
        })?),
    }
}

fn delivery_of(ev: &Evidence) -> BundleDelivery {
    match ev.payment.as_ref().and_then(|p| p.settlement.as_ref()) {
        Some(s) => match s.delivery {
            Delivery::Pending => BundleDelivery::Pending,
            Delivery::Delivered => BundleDelivery::Delivered,
            Delivery::Returned => BundleDelivery::Returned,
        },
        None => BundleDelivery::None,
    }
}

fn minor(v: i64) -> Result<u64, IssuerError> {
    u64::try_from(v).map_err(|_| crate::error::Invariant::DeficitOverflow.into())
}

/// Sign the bundle of `c` as it is now.
fn sign_bundle(
    ca: &CertificateFactory,
    currency: Currency,
    c: &CaseRecord,
    ev: &Evidence,
    now: UnixSeconds,
) -> Result<Vec<u8>, IssuerError> {
    let body = EvidenceBundle {
        case_id: c.id,
        kind: c.kind.as_str().to_string(),
        state: c.state.as_str().to_string(),
        decision: c.decision.clone().unwrap_or_default(),
        time: now,
        wallet: c.payer,
        seq: c.seq.unwrap_or(0),
        amount_minor: minor(c.amount)?,
        currency,
        paid_minor: minor(c.paid)?,
        entry: ev
            .payment
            .as_ref()
            .map(|p| p.entry.bytes.clone())
            .unwrap_or_default(),
        delivery: delivery_of(ev),
        window_closed_at: c.window_closed_at.unwrap_or(UnixSeconds(0)),
        revoked_at: ev.revoked.map_or(UnixSeconds(0), |(at, _)| at),
        crl_number: ev.revoked.map_or(0, |(_, n)| n),
        retired: ev
            .wallet
            .retired
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        checkpoints: ev.checkpoints.clone(),
        double_spends: ev
            .double_spends
            .iter()
            .take(BUNDLE_PROOFS_MAX)
            .map(|d| d.proof.clone())
            .collect(),
        wallet_certs: ev
            .certs
            .iter()
            .rev()
            .take(BUNDLE_CERTS_MAX)
            .map(|(_, der)| der.clone())
            .collect(),
        issuer_cert: ca.issuer.der().to_vec(),
    };
    let bytes = Signed::try_sign(body, ca.signer())?.into_bytes();
    // Every field is bounded by what the decoder accepts: the bundle reads back.
    debug_assert!(
        Signed::<EvidenceBundle>::decode(&bytes).is_ok(),
        "the bundle of case {} does not decode",
        c.id
    );
    Ok(bytes)
}

fn opening_of(c: &CaseRecord) -> CaseOpening {
    CaseOpening {
        kind: c.kind,
        payer: c.payer,
        seq: c.seq,
        opened_by: c.opened_by.clone(),
        note: c.note.clone(),
    }
}

/// Append the event of `c`'s change from `from` (None: its opening).
fn record_event(
    tx: &mut dyn Tx,
    c: &CaseRecord,
    from: Option<CaseState>,
    actor: &str,
    note: &str,
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    let n = tx.case_events(c.id)?.len() as u64 + 1;
    tx.insert_case_event(&CaseEvent {
        case_id: c.id,
        n,
        at: now,
        from,
        to: c.state,
        actor: actor.to_string(),
        note: note.to_string(),
    })?;
    Ok(())
}

/// Open a case: check the request, gather the evidence, store and sign.
pub(crate) fn open(
    ca: &CertificateFactory,
    currency: Currency,
    tx: &mut dyn Tx,
    req: &CaseOpening,
    now: UnixSeconds,
) -> Result<CaseRecord, IssuerError> {
    check_text(&req.opened_by, "opened_by", 1, CASE_ACTOR_BYTES_MAX)?;
    check_text(&req.note, "note", 0, CASE_NOTE_BYTES_MAX)?;
    if req.seq.is_none() && req.kind != CaseKind::NotMyPayment {
        return Err(CaseProblem::KindNeedsPayment.into());
    }
    let ev = gather(tx, req)?;
    if let Some(id) = tx.active_case_on(&req.payer, req.seq)? {
        return Err(CaseProblem::AlreadyOpen { id }.into());
    }
    let mut c = CaseRecord {
        id: tx.next_counter("case")?,
        kind: req.kind,
        state: CaseState::Open,
        payer: req.payer,
        seq: req.seq,
        entry: ev.payment.as_ref().map(|p| p.entry.hash),
        opened_at: now,
        opened_by: req.opened_by.clone(),
        note: req.note.clone(),
        decision: None,
        resolved_at: None,
        amount: disputed(&ev)?,
        paid: 0,
        window_closed_at: None,
        bundle: Vec::new(),
    };
    c.bundle = sign_bundle(ca, currency, &c, &ev, now)?;
    tx.insert_case(&c)?;
    record_event(tx, &c, None, &req.opened_by, &req.note, now)?;
    Ok(c)
}

fn locked_case(tx: &mut dyn Tx, id: u64) -> Result<CaseRecord, IssuerError> {
    Ok(tx.case(id, true)?.ok_or(CaseProblem::UnknownCase { id })?)
}

/// Decide an open (or again a decided) case by the rules, on the evidence as it is now.
pub(crate) fn decide_case(
    ca: &CertificateFactory,
    currency: Currency,
    tx: &mut dyn Tx,
    id: u64,
    actor: &str,
    note: &str,
    now: UnixSeconds,
) -> Result<CaseRecord, IssuerError> {
    check_text(actor, "actor", 1, CASE_ACTOR_BYTES_MAX)?;
    check_text(note, "note", 0, CASE_NOTE_BYTES_MAX)?;
    let mut c = locked_case(tx, id)?;
    if !c.state.holds() {
        return Err(CaseProblem::WrongState {
            state: c.state,
            action: "decide",
        }
        .into());
    }
    let ev = gather(tx, &opening_of(&c))?;
    let rules = lifecycle::rules(tx)?;
    let d = decide(&c, &ev, &rules)?;
    let from = c.state;
    c.state = CaseState::Decided;
    c.decision = Some(d.as_str().to_string());
    c.amount = disputed(&ev)?;
    c.bundle = sign_bundle(ca, currency, &c, &ev, now)?;
    tx.update_case(&c)?;
    record_event(tx, &c, Some(from), actor, note, now)?;
    Ok(c)
}

/// The postings of a refund from the guarantee fund to the payer's customer,
/// each payment recorded in `case_refunds` (refused if refunded before).
fn refund_from_guarantee(
    tx: &mut dyn Tx,
    c: &CaseRecord,
    ev: &Evidence,
    payments: &[&PaymentFacts],
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    let mut postings = Vec::with_capacity(payments.len());
    for p in payments {
        if !tx.insert_case_refund(&p.entry.payer, p.entry.seq, c.id, p.entry.amount)? {
            let by = tx.case_refund(&p.entry.payer, p.entry.seq)?.unwrap_or(0);
            return Err(CaseProblem::AlreadyRefunded { by }.into());
        }
        postings.push(posting(
            &Account::Guarantee,
            &Account::Customer(ev.wallet.customer.clone()),
            p.entry.amount,
            "case_refund",
            format!("case:{}:{}", c.id, p.entry.hash.to_hex()),
            now,
        )?);
    }
    if !postings.is_empty() {
        tx.post(&postings)?;
    }
    Ok(())
}

/// Make the decision's postings (or none).
fn apply(
    tx: &mut dyn Tx,
    c: &CaseRecord,
    d: Decision,
    ev: &Evidence,
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    match (d, &ev.payment) {
        (Decision::ReturnToPayer, Some(p)) => {
            let s = p.settlement.as_ref().ok_or(CaseProblem::AwaitingPayee)?;
            let payee = s.payee.ok_or(CaseProblem::NotAPayment)?;
            let item = PendingSettlement {
                payer: s.payer,
                hash: s.hash,
                payee,
                amount: s.amount,
                time: s.time,
            };
            lifecycle::return_pending(tx, &[item], now)?;
        }
        (Decision::GuaranteeRefund | Decision::SignatureInvalid, Some(p)) => {
            refund_from_guarantee(tx, c, ev, &[p], now)?;
        }
        (Decision::GuaranteeRefund, None) => {
            let payments = wallet_refunds(ev);
            refund_from_guarantee(tx, c, ev, &payments, now)?;
        }
        _ => {}
    }
    Ok(())
}

/// Resolve a decided case: the evidence must still lead to the decision
/// taken; its postings are made and the case is resolved (or rejected).
pub(crate) fn resolve_case(
    ca: &CertificateFactory,
    currency: Currency,
    tx: &mut dyn Tx,
    id: u64,
    actor: &str,
    note: &str,
    now: UnixSeconds,
) -> Result<CaseRecord, IssuerError> {
    check_text(actor, "actor", 1, CASE_ACTOR_BYTES_MAX)?;
    check_text(note, "note", 0, CASE_NOTE_BYTES_MAX)?;
    let mut c = locked_case(tx, id)?;
    if c.state != CaseState::Decided {
        return Err(CaseProblem::WrongState {
            state: c.state,
            action: "resolve",
        }
        .into());
    }
    let ev = gather(tx, &opening_of(&c))?;
    let rules = lifecycle::rules(tx)?;
    let d = decide(&c, &ev, &rules)?;
    if c.decision.as_deref() != Some(d.as_str()) {
        return Err(CaseProblem::EvidenceChanged {
            decided: c.decision.clone().unwrap_or_default(),
            now: d.as_str(),
        }
        .into());
    }
    let paid = paid_by(d, &ev)?;
    apply(tx, &c, d, &ev, now)?;
    c.state = d.final_state();
    c.paid = paid;
    // A wallet case's payments may have grown since the decision.
    c.amount = disputed(&ev)?;
    debug_assert!(
        (0..=c.amount).contains(&c.paid),
        "case {} pays {} of {} in dispute",
        c.id,
        c.paid,
        c.amount
    );
    c.resolved_at = Some(now);
    // The bundle shows the evidence as resolved (a return marks it returned).
    let ev = gather(tx, &opening_of(&c))?;
    c.bundle = sign_bundle(ca, currency, &c, &ev, now)?;
    tx.update_case(&c)?;
    record_event(tx, &c, Some(CaseState::Decided), actor, note, now)?;
    Ok(c)
}

/// Counts of cases by kind and state.
pub(crate) fn counts(tx: &mut dyn Tx) -> Result<CaseCounts, IssuerError> {
    let rows = tx.case_counts()?;
    let mut out = CaseCounts::default();
    for (_, state, n) in &rows {
        out.opened += n;
        match state {
            CaseState::Resolved => out.resolved += n,
            CaseState::Rejected => out.rejected += n,
            CaseState::Open | CaseState::Decided => {}
        }
    }
    out.by_kind_state = rows;
    Ok(out)
}

impl<S: Store> Issuer<S> {
    /// Open a dispute case on a payment (or, for `not_my_payment`, a
    /// wallet), its evidence attached. Refused, with nothing written, for an
    /// unknown wallet or payment, a kind that needs a payment, a case already
    /// open on it, or a bad operator name or note.
    pub fn open_case(
        &self,
        req: &CaseOpening,
        now: UnixSeconds,
    ) -> Result<CaseRecord, IssuerError> {
        let currency = self.currency();
        self.with_tx(|tx| open(&self.ca, currency, tx, req, now))
    }

    /// Decide a case by the liability rules on the evidence as it is now.
    pub fn decide_case(
        &self,
        id: u64,
        actor: &str,
        note: &str,
        now: UnixSeconds,
    ) -> Result<CaseRecord, IssuerError> {
        let currency = self.currency();
        self.with_tx(|tx| decide_case(&self.ca, currency, tx, id, actor, note, now))
    }

    /// Resolve a decided case: its postings (if any), then resolved or rejected.
    pub fn resolve_case(
        &self,
        id: u64,
        actor: &str,
        note: &str,
        now: UnixSeconds,
    ) -> Result<CaseRecord, IssuerError> {
        let currency = self.currency();
        self.with_tx(|tx| resolve_case(&self.ca, currency, tx, id, actor, note, now))
    }

    /// A case and its events.
    pub fn case(&self, id: u64) -> Result<(CaseRecord, Vec<CaseEvent>), IssuerError> {
        self.with_tx(|tx| {
            let c = tx.case(id, false)?.ok_or(CaseProblem::UnknownCase { id })?;
            let events = tx.case_events(id)?;
            Ok((c, events))
        })
    }

    /// Cases, optionally in one state, by id after `after`, at most `limit`
    /// (capped at [`CASES_LISTED_MAX`]).
    pub fn cases(
        &self,
        state: Option<CaseState>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<CaseRecord>, IssuerError> {
        let limit = limit.clamp(1, CASES_LISTED_MAX);
        self.with_tx(|tx| Ok(tx.cases(state, after, limit)?))
    }

    /// Counts of cases by kind and state (the simulator's report).
    pub fn case_counts(&self) -> Result<CaseCounts, IssuerError> {
        self.with_tx(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_and_their_names_round_trip_and_each_leads_to_a_final_state() {
        for d in Decision::ALL {
            assert_eq!(Decision::parse(d.as_str()), Some(d));
            assert!(matches!(
                d.final_state(),
                CaseState::Resolved | CaseState::Rejected
            ));
        }
        assert_eq!(Decision::parse("refund"), None);
        for k in CaseKind::ALL {
            assert_eq!(CaseKind::parse(k.as_str()), Some(k));
        }
        for s in CaseState::ALL {
            assert_eq!(CaseState::parse(s.as_str()), Some(s));
        }
    }

    fn wallet(retired: Option<Retirement>) -> WalletRecord {
        WalletRecord {
            id: WalletId([1; 16]),
            customer: "alice".into(),
            cert_der: Vec::new(),
            cert_serial: 5,
            cert_not_after: UnixSeconds(2_000),
            state: crate::store::WalletState::Active,
            reason: None,
            load_seq: 0,
            checkpoint: 0,
            report_seq: 0,
            policy_epoch: 0,
            unlock_pending: false,
            clawed_back: 0,
            guaranteed: 0,
            created: UnixSeconds(0),
            key_generation: 0,
            prev_cert_der: None,
            rekey_suite: None,
            retired,
            closed_at: None,
        }
    }

    fn payment(delivery: Delivery, payee_ours: bool, signed: bool) -> PaymentFacts {
        let entry = EntryRecord {
            payer: WalletId([1; 16]),
            seq: 3,
            hash: offpay_protocol::Hash32([7; 32]),
            prev: offpay_protocol::Hash32([6; 32]),
            kind: "payment",
            payee: Some(WalletId([2; 16])),
            amount: 400,
            time: UnixSeconds(1_000),
            bytes: Vec::new(),
            recorded: UnixSeconds(1_010),
        };
        PaymentFacts {
            settlement: Some(SettlementRecord {
                payer: entry.payer,
                hash: entry.hash,
                payee: entry.payee,
                amount: 400,
                time: UnixSeconds(1_010),
                delivery,
                pruned: false,
            }),
            entry,
            payee_ours,
            signed_by: signed.then_some(5),
            refunded_by: None,
        }
    }

    fn evidence(p: PaymentFacts, revoked: Option<u64>, retired: Option<Retirement>) -> Evidence {
        Evidence {
            wallet: wallet(retired),
            payment: Some(p),
            after_revocation: Vec::new(),
            revoked: revoked.map(|t| (UnixSeconds(t), 2)),
            double_spends: Vec::new(),
            checkpoints: Vec::new(),
            certs: Vec::new(),
        }
    }

    fn decided(
        kind: CaseKind,
        ev: &Evidence,
        window_closed: bool,
        refund_lost: bool,
    ) -> Result<Decision, CaseProblem> {
        let rules = LifecycleRules {
            refund_lost,
            ..LifecycleRules::default()
        };
        let p = ev.payment.as_ref().expect("a payment case");
        decide_payment(kind, ev, p, window_closed, &rules)
    }

    /// Each path of the rules for a case on a payment, from the evidence alone.
    #[test]
    fn the_evidence_decides_each_path() {
        use CaseKind::*;
        use Delivery::*;
        let ev = |d, ours, signed| evidence(payment(d, ours, signed), None, None);
        assert_eq!(
            decided(PaidNotReceived, &ev(Delivered, true, true), false, true),
            Ok(Decision::PayeeHolds)
        );
        assert_eq!(
            decided(RefusedButDebited, &ev(Delivered, false, true), false, true),
            Ok(Decision::OtherIssuer)
        );
        assert_eq!(
            decided(PaidNotReceived, &ev(Returned, true, true), false, true),
            Ok(Decision::ReturnedByRule)
        );
        assert_eq!(
            decided(RefusedButDebited, &ev(Pending, true, true), true, true),
            Ok(Decision::ReturnToPayer)
        );
        assert_eq!(
            decided(NotMyPayment, &ev(Pending, true, true), false, true),
            Err(CaseProblem::AwaitingPayee)
        );
        assert_eq!(
            decided(NotMyPayment, &ev(Delivered, true, true), false, true),
            Ok(Decision::PayerSigned)
        );
        assert_eq!(
            decided(NotMyPayment, &ev(Delivered, true, false), false, true),
            Ok(Decision::SignatureInvalid)
        );
        // Revoked before the payment's time (1,000): the fund refunds; not after.
        let lost = |at| {
            evidence(
                payment(Delivered, true, true),
                Some(at),
                Some(Retirement::Lost),
            )
        };
        assert_eq!(
            decided(NotMyPayment, &lost(900), false, true),
            Ok(Decision::GuaranteeRefund)
        );
        assert_eq!(
            decided(NotMyPayment, &lost(1_000), false, true),
            Ok(Decision::GuaranteeRefund)
        );
        assert_eq!(
            decided(NotMyPayment, &lost(1_001), false, true),
            Ok(Decision::PayerSigned)
        );
        assert_eq!(
            decided(NotMyPayment, &lost(900), false, false),
            Ok(Decision::NoRefundRule)
        );
        let broken = evidence(
            payment(Delivered, true, true),
            Some(900),
            Some(Retirement::Broken),
        );
        assert_eq!(
            decided(NotMyPayment, &broken, false, false),
            Ok(Decision::GuaranteeRefund)
        );
        let mut refunded = ev(Delivered, true, true);
        if let Some(p) = refunded.payment.as_mut() {
            p.refunded_by = Some(9);
        }
        assert_eq!(
            decided(NotMyPayment, &refunded, false, true),
            Ok(Decision::AlreadyRefunded)
        );
        assert_eq!(paid_by(Decision::GuaranteeRefund, &lost(900)), Ok(400));
        assert_eq!(paid_by(Decision::PayeeHolds, &lost(900)), Ok(0));
    }

    #[test]
    fn texts_are_bounded_and_printable() {
        assert!(check_text("ops", "actor", 1, 64).is_ok());
        assert!(check_text("", "actor", 1, 64).is_err());
        assert!(check_text(&"x".repeat(65), "actor", 1, 64).is_err());
        assert!(check_text("a\nb", "note", 0, 256).is_err());
        assert!(check_text("", "note", 0, 256).is_ok());
    }
}
