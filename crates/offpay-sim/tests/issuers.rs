//! Runs with several issuers under one scheme: the same seed gives the same
//! JSON and the same databases (every issuer's and the scheme's); every
//! check across issuers holds with the attacks on (clones forking across
//! issuers proven at the payer's issuer, statements equal to each issuer's
//! ledger, every pair agreeing at quiescence, positions summing to zero);
//! and a link broken on purpose makes the auditor fail.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_sim::{AttackKind, Sabotage, SimConfig, SimReport, run};

fn three(seed: u64) -> SimConfig {
    SimConfig {
        wallets: 36,
        days: 3,
        seed,
        issuers: 3,
        cycle_hours: 6,
        attacks: AttackKind::ALL
            .iter()
            .map(|&k| {
                (
                    k,
                    if k.rate_unit() == "payment" {
                        0.05
                    } else {
                        0.03
                    },
                )
            })
            .collect(),
        full_check_hours: 6,
        dump_store: true,
        ..SimConfig::default()
    }
}

fn dump(r: &SimReport) -> &str {
    r.store_dump.as_deref().unwrap_or_default()
}

#[test]
fn three_issuers_replay_byte_for_byte_and_every_check_holds() {
    let a = run(three(7), |_| {}).unwrap();
    assert!(
        a.invariant_violations.is_empty(),
        "{:#?}",
        a.invariant_violations
    );
    assert_eq!(a.honest_loss_minor, 0);
    assert_eq!(a.double_spends_detected, a.double_spends_injected);
    assert_eq!(a.double_spend_proofs_verified, a.double_spends_detected);
    let s = a.scheme.as_ref().expect("a run with a scheme reports it");
    assert_eq!(s.issuers.len(), 3);
    assert!(s.cross_issuer_payments > 0, "payments crossed issuers");
    assert!(!s.cycles.is_empty(), "cycles were closed");
    for c in &s.cycles {
        assert_eq!(c.positions.values().sum::<i64>(), 0, "cycle {}", c.cycle);
    }
    assert!(s.issuers.iter().all(|i| i.statements_posted > 0));
    assert!(
        s.issuers
            .iter()
            .all(|i| i.claims_submitted > 0 && i.claims_received > 0)
    );
    assert!(a.daily.iter().all(|d| d.issuers.len() == 3));
    // Every issuer's settled positions over the run sum to zero too.
    assert_eq!(s.issuers.iter().map(|i| i.settled_minor).sum::<i64>(), 0);
    let supply: i64 = s.issuers.iter().map(|i| i.supply_minor).sum();
    assert_eq!(supply, a.ledger.supply_minor);

    let b = run(three(7), |_| {}).unwrap();
    assert_eq!(a.to_json(), b.to_json(), "same seed, same JSON");
    let (da, db) = (dump(&a), dump(&b));
    assert!(da.contains("database of issuer bank-2") && da.contains("database of the scheme"));
    if da != db {
        let at = da
            .lines()
            .zip(db.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(0);
        panic!(
            "same seed, different databases; first difference at line {at}:\n{}\n{}",
            da.lines().nth(at).unwrap_or(""),
            db.lines().nth(at).unwrap_or("")
        );
    }
}

/// Clones pay merchants of every issuer: forks split across issuers reach
/// the payer's issuer through the scheme and are proven there.
#[test]
fn clones_fork_across_issuers_and_are_proven_at_the_payers_issuer() {
    let mut across = 0;
    let mut injected = 0;
    for seed in [1, 2, 3] {
        let r = run(
            SimConfig {
                wallets: 36,
                days: 3,
                seed,
                issuers: 3,
                attacks: vec![(AttackKind::Clone, 0.06)],
                full_check_hours: 3,
                ..SimConfig::default()
            },
            |_| {},
        )
        .unwrap();
        assert!(
            r.invariant_violations.is_empty(),
            "seed {seed}: {:#?}",
            r.invariant_violations
        );
        assert_eq!(r.honest_loss_minor, 0, "seed {seed}");
        assert_eq!(
            r.double_spends_detected, r.double_spends_injected,
            "seed {seed}"
        );
        let s = r.scheme.unwrap();
        across += s.double_spends_across_issuers;
        injected += r.double_spends_injected;
        let proven: u64 = s.issuers.iter().map(|i| i.double_spends_proven).sum();
        assert_eq!(
            proven, r.double_spends_detected,
            "seed {seed}: proven at the payer's issuer"
        );
    }
    assert!(injected > 0, "clones double-spent");
    assert!(across > 0, "some forks went to payees of different issuers");
}

/// Faults on every issuer's store: the claim exchange retries and stays exactly once.
#[test]
fn faults_across_issuers_keep_every_check() {
    let r = run(
        SimConfig {
            faults: true,
            dump_store: false,
            ..three(5)
        },
        |_| {},
    )
    .unwrap();
    assert!(
        r.invariant_violations.is_empty(),
        "{:#?}",
        r.invariant_violations
    );
    let f = r.faults.unwrap();
    assert!(f.retries > 0 && f.issuer_restarts > 0, "{f:?}");
}

/// A link that acknowledges a claim it never applied: the auditor sees the
/// two issuers disagree (and the statement not match the issuer's ledger).
#[test]
fn a_claim_acked_and_never_applied_fails_the_auditor() {
    let r = run(
        SimConfig {
            sabotage: Some(Sabotage::AckWithoutApplying),
            attacks: Vec::new(),
            dump_store: false,
            ..three(7)
        },
        |_| {},
    )
    .unwrap();
    assert!(!r.invariant_violations.is_empty(), "the auditor must fail");
    let all = r.invariant_violations.join("\n");
    assert!(
        all.contains("at quiescence") || all.contains("statement of cycle"),
        "{all}"
    );
    // The same run without the bug is clean.
    let clean = run(
        SimConfig {
            attacks: Vec::new(),
            dump_store: false,
            ..three(7)
        },
        |_| {},
    )
    .unwrap();
    assert!(
        clean.invariant_violations.is_empty(),
        "{:#?}",
        clean.invariant_violations
    );
}

#[test]
fn one_issuer_has_no_scheme_in_its_report() {
    let r = run(
        SimConfig {
            wallets: 12,
            days: 1,
            ..SimConfig::default()
        },
        |_| {},
    )
    .unwrap();
    assert!(r.scheme.is_none());
    let j = r.to_json();
    assert!(!j.contains("\"scheme\"") && !j.contains("\"issuers\"") && !j.contains("cycle_hours"));
}
