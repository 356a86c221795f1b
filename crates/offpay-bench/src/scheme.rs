//! Claim throughput through a scheme of two issuers, next to the sync
//! throughput of one issuer, in the same run and on the same data.
//!
//! A scheme (offpay-scheme, SQLite file) admits two member issuers
//! (offpay-issuer, one SQLite file each) from their CSRs; `wallets / 2`
//! payers at bank A pay `wallets / 2` payees at bank B, `payments` payments
//! in all, in rounds. After each round:
//!
//! 1. the payees sync at bank B (timed: **one issuer's sync throughput**,
//!    member mode: each incoming payment of another issuer's wallet is
//!    verified against the directory, settled and written as a claim);
//! 2. the claims travel (timed: **claim throughput**): bank B's outbox is
//!    submitted to the scheme, bank A takes its inbox, applies it (records
//!    each entry under (payer, seq) as its own wallets' reports would) and
//!    acks it, the scheme closes a cycle, and both banks post their
//!    statements;
//! 3. the payers sync at bank A (untimed; their entries are already known).
//!
//! Everything is in this process and goes through the domain APIs directly
//! (the same calls the HTTP servers make), in batches of [`CLAIM_BATCH`].
//! Every run checks: every claim accepted once at the scheme and at bank A,
//! the positions of every cycle sum to zero and equal the payments' sum,
//! each bank's peer account is back to zero after its statements, and the
//! invariants of the three ledgers hold.

use std::path::Path;
use std::time::Instant;

use offpay_issuer::{ClaimAck, Issuer};
use offpay_protocol::{Amount, OsEntropy, Suite};
use offpay_scheme::{ClaimResult, Scheme, SchemeConfig};
use offpay_store::{AnyStore, SchemeDb};
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

use crate::setup::{self, MASTER_KEY, err};
use crate::sys;

/// Claims per submit, inbox page and ack (as the issuer link sends them).
pub const CLAIM_BATCH: usize = 256;
/// The largest payment, in minor units (amounts are 1 to this).
pub const AMOUNT_MINOR_MAX: u64 = 50;
/// Validity of the payment requests (see `reconcile::REQUEST_SECONDS`).
pub const REQUEST_SECONDS: u64 = 10;
/// Payments each payee receives between two syncs, on average.
pub const PER_ROUND: usize = 50;

/// What the scheme run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct SchemeRun {
    /// Wallets (half payers at bank A, half payees at bank B).
    pub wallets: usize,
    /// Claims carried (one per payment).
    pub claims: u64,
    /// Settlement cycles closed (one per round).
    pub cycles: u64,
    /// Claims per second of claim time (submit, deliver, cycle, statements).
    pub claims_per_s: f64,
    /// Seconds of claim time.
    pub claim_seconds: f64,
    /// Of which: bank B's outbox to the scheme (`claims_to_submit`, `submit_claims`, `claims_submitted`).
    pub submit_seconds: f64,
    /// Of which: the scheme's inbox to bank A (`inbox`, `apply_scheme_claims`, `ack`).
    pub deliver_seconds: f64,
    /// Of which: `close_cycle`, then `statements`, `cycle_claims` and `apply_statement` at both banks.
    pub cycle_seconds: f64,
    /// Payments settled per second of bank B's payee syncs.
    pub sync_payments_per_s: f64,
    /// Seconds of those syncs.
    pub sync_seconds: f64,
    /// Payments bank B settled in them (always `claims`).
    pub settled: u64,
}

/// xorshift64: a fixed, reproducible sequence of payments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn is_ok(r: &ClaimResult) -> bool {
    matches!(r, ClaimResult::Accepted | ClaimResult::AlreadyKnown)
}

/// A member issuer `code` on a SQLite file in `dir`, admitted by `scheme`.
fn member(
    scheme: &Scheme<SchemeDb>,
    dir: &Path,
    code: &str,
    now: offpay_protocol::UnixSeconds,
) -> Result<Issuer<AnyStore>, String> {
    let config = setup::issuer_config(Suite::Ed25519);
    let store = offpay_store::open_sqlite(&dir.join(format!("{code}.sqlite")))
        .map_err(err(format!("{code}: open SQLite")))?;
    let csr = Issuer::member_csr(&store, &MASTER_KEY, &config, code, OsEntropy::shared())
        .map_err(err(format!("{code}: CSR")))?;
    let adm = scheme
        .admit(code, &csr, now)
        .map_err(err(format!("admit {code}")))?;
    let issuer = Issuer::init_member(
        store,
        &MASTER_KEY,
        &config,
        &adm.root_cert,
        &adm.ca_cert,
        now,
        OsEntropy::shared(),
    )
    .map_err(err(format!("{code}: join")))?;
    Ok(issuer)
}

/// Bank B's outbox to the scheme, in batches, until empty; claims sent.
fn submit(scheme: &Scheme<SchemeDb>, from: &Issuer<AnyStore>) -> Result<usize, String> {
    let id = from.issuer_id();
    let mut sent = 0;
    loop {
        let batch = from
            .claims_to_submit(CLAIM_BATCH)
            .map_err(err("claims to submit"))?;
        if batch.is_empty() {
            return Ok(sent);
        }
        let entries: Vec<Vec<u8>> = batch.iter().map(|(_, e)| e.clone()).collect();
        let results = scheme
            .submit_claims(&id, &entries, sys::now())
            .map_err(err("submit claims"))?;
        let mut acks = Vec::with_capacity(results.len());
        for (claim, r) in results {
            if !is_ok(&r) {
                return Err(format!("the scheme refused claim {claim:?}: {r:?}"));
            }
            acks.push((
                claim,
                match r {
                    ClaimResult::AlreadyKnown => ClaimAck::AlreadyKnown,
                    _ => ClaimAck::Accepted,
                },
            ));
        }
        from.claims_submitted(&acks, sys::now())
            .map_err(err("claims submitted"))?;
        sent += batch.len();
    }
}

/// The scheme's inbox for `to`, applied and acked, until empty; claims applied.
fn deliver(scheme: &Scheme<SchemeDb>, to: &Issuer<AnyStore>) -> Result<usize, String> {
    let id = to.issuer_id();
    let mut applied = 0;
    loop {
        let inbox = scheme.inbox(&id, CLAIM_BATCH).map_err(err("inbox"))?;
        if inbox.is_empty() {
            return Ok(applied);
        }
        let acks = to
            .apply_scheme_claims(&inbox, sys::now())
            .map_err(err("apply scheme claims"))?;
        let mut back = Vec::with_capacity(acks.len());
        for (claim, a) in acks {
            back.push((
                claim,
                match a {
                    ClaimAck::Accepted => ClaimResult::Accepted,
                    ClaimAck::AlreadyKnown => ClaimResult::AlreadyKnown,
                    ClaimAck::Refused { code } => {
                        return Err(format!("bank A refused claim {claim:?}: {code}"));
                    }
                },
            ));
        }
        scheme.ack(&id, &back, sys::now()).map_err(err("ack"))?;
        applied += inbox.len();
    }
}

/// Post every statement of `issuer` it has not posted yet; statements posted.
fn post_statements(scheme: &Scheme<SchemeDb>, issuer: &Issuer<AnyStore>) -> Result<usize, String> {
    let id = issuer.issuer_id();
    let after = issuer
        .last_statement_cycle()
        .map_err(err("last statement cycle"))?;
    let statements = scheme.statements(&id, after).map_err(err("statements"))?;
    for (cycle, signed) in &statements {
        let claims = scheme
            .cycle_claims(&id, *cycle)
            .map_err(err("cycle claims"))?;
        issuer
            .apply_statement(signed, &claims, sys::now())
            .map_err(err(format!("apply statement {cycle}")))?;
    }
    Ok(statements.len())
}

fn balance(w: &Wallet<MemoryVault>) -> u64 {
    w.balance().map(|a| a.minor).unwrap_or(0)
}

/// The scheme, its two member banks and their wallets.
struct World {
    scheme: Scheme<SchemeDb>,
    bank_a: Issuer<AnyStore>,
    bank_b: Issuer<AnyStore>,
    payers: Vec<Wallet<MemoryVault>>,
    payees: Vec<Wallet<MemoryVault>>,
}

/// A scheme and two member banks in `dir`, `half` wallets at each, every
/// wallet synced once (which brings it the directory).
fn world(half: usize, dir: &Path) -> Result<World, String> {
    let now = sys::now();
    let scheme_store =
        SchemeDb::open_sqlite(&dir.join("scheme.sqlite")).map_err(err("scheme: open SQLite"))?;
    let scheme = Scheme::init(
        scheme_store,
        &MASTER_KEY,
        &SchemeConfig {
            suite: Suite::Ed25519,
            root_cn: "offpay bench scheme".into(),
            currency: setup::eur(),
        },
        now,
        OsEntropy::shared(),
    )
    .map_err(err("scheme init"))?;
    let bank_a = member(&scheme, dir, "bank-a", now)?;
    let bank_b = member(&scheme, dir, "bank-b", now)?;
    let directory = scheme.directory().map_err(err("directory"))?;
    bank_a
        .install_directory(&directory, now)
        .map_err(err("bank-a: directory"))?;
    bank_b
        .install_directory(&directory, now)
        .map_err(err("bank-b: directory"))?;
    let mut payers = Vec::with_capacity(half);
    let mut payees = Vec::with_capacity(half);
    for k in 0..half {
        let mut w = setup::wallet(
            &bank_a,
            MemoryVault::new(),
            Suite::Ed25519,
            &format!("a{k}"),
            sys::now(),
        )?;
        setup::sync(&bank_a, &mut w, sys::now())?;
        payers.push(w);
        let mut w = setup::wallet(
            &bank_b,
            MemoryVault::new(),
            Suite::Ed25519,
            &format!("b{k}"),
            sys::now(),
        )?;
        setup::sync(&bank_b, &mut w, sys::now())?;
        payees.push(w);
    }
    Ok(World {
        scheme,
        bank_a,
        bank_b,
        payers,
        payees,
    })
}

/// `n` payments of bank A's payers to bank B's payees (untimed); their sum.
fn pay_round(world: &mut World, rng: &mut Rng, round: usize, count: usize) -> Result<u128, String> {
    let eur = setup::eur();
    let half = world.payers.len() as u64;
    let mut total = 0;
    for _ in 0..count {
        let r = rng.next();
        let payer = (r % half) as usize;
        let payee = ((r >> 20) % half) as usize;
        let mut minor = 1 + (r >> 40) % AMOUNT_MINOR_MAX;
        if balance(&world.payers[payer]) < minor {
            // A payer that ran dry is loaded again.
            let voucher = world
                .bank_a
                .load(
                    &world.payers[payer].wallet_id(),
                    Amount::new(setup::LOAD_MINOR, eur),
                    &format!("reload-{round}-{payer}"),
                    sys::now(),
                )
                .map_err(err("reload"))?;
            world.payers[payer]
                .apply_voucher(&voucher, sys::now())
                .map_err(err("apply voucher"))?;
            minor = minor.min(balance(&world.payers[payer]));
        }
        setup::pay_within(
            &mut world.payers[payer],
            &mut world.payees[payee],
            Amount::new(minor, eur),
            REQUEST_SECONDS,
            sys::now(),
        )?;
        total += u128::from(minor);
    }
    Ok(total)
}

/// The round's claims through the scheme (timed into `run`), checked to be
/// `n`, each once; the seconds they took.
fn claims_round(w: &World, run: &mut SchemeRun, round: usize, n: usize) -> Result<f64, String> {
    let t0 = Instant::now();
    let sent = submit(&w.scheme, &w.bank_b)?;
    let t1 = Instant::now();
    let applied = deliver(&w.scheme, &w.bank_a)?;
    let t2 = Instant::now();
    let cycle = w
        .scheme
        .close_cycle(sys::now())
        .map_err(err("close cycle"))?;
    post_statements(&w.scheme, &w.bank_a)?;
    post_statements(&w.scheme, &w.bank_b)?;
    let t3 = Instant::now();
    run.submit_seconds += (t1 - t0).as_secs_f64();
    run.deliver_seconds += (t2 - t1).as_secs_f64();
    run.cycle_seconds += (t3 - t2).as_secs_f64();
    run.claim_seconds += (t3 - t0).as_secs_f64();
    if sent != n || applied != n || cycle.claims as usize != n {
        return Err(format!(
            "round {}: {n} payments but {sent} claims submitted, {applied} applied, {} netted",
            round + 1,
            cycle.claims
        ));
    }
    let sum: i128 = cycle.positions.iter().map(|(_, net)| *net).sum();
    if sum != 0 {
        return Err(format!("cycle {}: positions sum to {sum}", cycle.cycle));
    }
    run.claims += sent as u64;
    run.cycles += 1;
    Ok((t3 - t0).as_secs_f64())
}

/// Correctness, not timing: every payment settled and claimed once, nothing
/// left open between the banks, every ledger's invariants, every cent at
/// the payees.
fn check_end(w: &World, run: &SchemeRun, payments: usize, paid: u128) -> Result<(), String> {
    if run.settled != payments as u64 || run.claims != payments as u64 {
        return Err(format!(
            "{payments} payments: bank B settled {}, the scheme carried {} claims",
            run.settled, run.claims
        ));
    }
    for (name, issuer, peer) in [
        ("bank-a", &w.bank_a, w.bank_b.issuer_id()),
        ("bank-b", &w.bank_b, w.bank_a.issuer_id()),
    ] {
        setup::check_invariants(issuer).map_err(|e| format!("{name}: {e}"))?;
        let open = issuer
            .peer_positions()
            .map_err(err("peer positions"))?
            .into_iter()
            .find(|p| p.peer == peer)
            .map_or(0, |p| p.account);
        if open != 0 {
            return Err(format!(
                "{name}: {open} still open with its peer after every statement"
            ));
        }
    }
    let inv = w.scheme.invariants().map_err(err("scheme invariants"))?;
    if !inv.ok {
        return Err(format!(
            "scheme invariants violated: {}",
            inv.violations.join("; ")
        ));
    }
    let received: u128 = w.payees.iter().map(|p| u128::from(balance(p))).sum();
    let loaded = u128::from(setup::LOAD_MINOR) * w.payees.len() as u128;
    if received != loaded + paid {
        return Err(format!(
            "bank B's payees hold {received}, expected {}",
            loaded + paid
        ));
    }
    Ok(())
}

/// The run: `wallets` wallets (at least 2), `payments` cross-issuer payments,
/// every file in a fresh directory under `base`.
pub fn measure(
    wallets: usize,
    payments: usize,
    base: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<SchemeRun, String> {
    let dir = tempfile::Builder::new()
        .prefix("offpay-bench-scheme-")
        .tempdir_in(base)
        .map_err(err("temporary directory"))?;
    let clock = Instant::now();
    let half = (wallets / 2).max(1);
    let mut w = world(half, dir.path())?;
    progress(&format!(
        "scheme: a scheme, two member banks, {half} wallets each, in {:.1} s",
        clock.elapsed().as_secs_f64()
    ));
    let mut run = SchemeRun {
        wallets: 2 * half,
        claims: 0,
        cycles: 0,
        claims_per_s: 0.0,
        claim_seconds: 0.0,
        submit_seconds: 0.0,
        deliver_seconds: 0.0,
        cycle_seconds: 0.0,
        sync_payments_per_s: 0.0,
        sync_seconds: 0.0,
        settled: 0,
    };
    let per_round = half * PER_ROUND;
    let rounds = payments.div_ceil(per_round).max(1);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut made, mut paid) = (0, 0u128);
    for round in 0..rounds {
        let n = (payments - made).min(per_round);
        paid += pay_round(&mut w, &mut rng, round, n)?;
        made += n;
        // 1. One issuer's syncs: the payees at bank B.
        let clock = Instant::now();
        for p in &mut w.payees {
            run.settled += setup::sync(&w.bank_b, p, sys::now())? as u64;
        }
        let sync_secs = clock.elapsed().as_secs_f64();
        run.sync_seconds += sync_secs;
        // 2. The claims through the scheme.
        let claim_secs = claims_round(&w, &mut run, round, n)?;
        // 3. The payers report at bank A (untimed).
        for p in &mut w.payers {
            setup::sync(&w.bank_a, p, sys::now())?;
        }
        progress(&format!(
            "scheme: round {}/{rounds}: {n} payments; bank B synced them in {sync_secs:.2} s ({:.0}/s); claims through the scheme in {claim_secs:.2} s ({:.0}/s)",
            round + 1,
            n as f64 / sync_secs,
            n as f64 / claim_secs
        ));
    }
    run.claims_per_s = run.claims as f64 / run.claim_seconds;
    run.sync_payments_per_s = run.settled as f64 / run.sync_seconds;
    check_end(&w, &run, payments, paid)?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_claim_goes_through_once_per_round() {
        let dir = tempfile::tempdir().unwrap();
        // One payer, one payee: 50 payments a round, so 120 make three rounds.
        let r = measure(2, 120, dir.path(), &mut |_| {}).unwrap();
        assert_eq!((r.wallets, r.claims, r.cycles, r.settled), (2, 120, 3, 120));
        assert!(r.claims_per_s > 0.0 && r.sync_payments_per_s > 0.0, "{r:?}");
        let parts = r.submit_seconds + r.deliver_seconds + r.cycle_seconds;
        assert!((parts - r.claim_seconds).abs() < 1e-6, "{r:?}");
    }
}
