//! Small simulations of every attack kind over several seeds: every invariant
//! holds, every double spend that reached the issuer is detected with a proof
//! that verifies, honest parties lose nothing; the same seed gives the same
//! JSON byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_sim::{AttackKind, PolicyOverrides, SimConfig, SimReport, StoreChoice, run};

const SEEDS: [u64; 3] = [1, 2, 3];

fn small(seed: u64, attacks: Vec<(AttackKind, f64)>) -> SimConfig {
    SimConfig {
        wallets: 40,
        days: 4,
        seed,
        attacks,
        full_check_hours: 1,
        ..SimConfig::default()
    }
}

fn rate(kind: AttackKind) -> f64 {
    if kind.rate_unit() == "payment" {
        0.1
    } else {
        0.04
    }
}

fn assert_clean(r: &SimReport, what: &str) {
    assert!(
        r.invariant_violations.is_empty(),
        "{what}: invariant violations: {:#?}",
        r.invariant_violations
    );
    assert_eq!(r.honest_loss_minor, 0, "{what}: honest loss");
    assert_eq!(
        r.double_spends_detected, r.double_spends_injected,
        "{what}: every double spend that reached the issuer is detected"
    );
    assert_eq!(
        r.double_spend_proofs_verified, r.double_spends_detected,
        "{what}: one verified proof per detected double spend"
    );
    assert!(r.payments > 0, "{what}: payments happened");
    assert!(
        r.max_loss_per_attacker_minor <= r.limits.loss_bound_per_wallet_minor,
        "{what}: loss within the bound"
    );
}

/// Run `kind` alone over the seeds; returns (attacks injected, double spends injected).
fn run_kind(kind: AttackKind) -> (u64, u64) {
    let mut injected = 0;
    let mut ds = 0;
    for seed in SEEDS {
        let r = run(small(seed, vec![(kind, rate(kind))]), |_| {}).unwrap();
        assert_clean(&r, &format!("{kind} seed {seed}"));
        injected += r.attacks[kind.name()].injected;
        ds += r.double_spends_injected;
        if !kind.double_spends() {
            assert_eq!(r.double_spends_injected, 0, "{kind} does not double-spend");
            assert_eq!(r.guarantee_loss_minor, 0, "{kind}: no guarantee loss");
        }
    }
    assert!(injected > 0, "{kind}: the attack happened");
    (injected, ds)
}

#[test]
fn rollback() {
    let (_, ds) = run_kind(AttackKind::Rollback);
    assert!(ds > 0, "rollbacks double-spent");
}

#[test]
fn clone() {
    let (_, ds) = run_kind(AttackKind::Clone);
    assert!(ds > 0, "clones double-spent");
}

#[test]
fn replay() {
    run_kind(AttackKind::Replay);
}

#[test]
fn tamper() {
    for seed in SEEDS {
        let r = run(small(seed, vec![(AttackKind::Tamper, 0.04)]), |_| {}).unwrap();
        assert_clean(&r, "tamper");
        let s = &r.attacks["tamper"];
        let refused = s
            .outcomes
            .get("refused:Vault(Tampered)")
            .copied()
            .unwrap_or(0)
            + s.outcomes.get("refused:Tampered").copied().unwrap_or(0);
        assert_eq!(refused, s.injected, "every tampered state file is refused");
    }
    run_kind(AttackKind::Tamper);
}

#[test]
fn unknown_ca() {
    run_kind(AttackKind::UnknownCa);
    let r = run(small(9, vec![(AttackKind::UnknownCa, 0.1)]), |_| {}).unwrap();
    let s = &r.attacks["unknown-ca"];
    let refused: u64 = s
        .outcomes
        .iter()
        .filter(|(k, _)| k.starts_with("refused:PeerCertificate"))
        .map(|(_, n)| n)
        .sum();
    let unserved: u64 = ["no_payee", "no_request"]
        .iter()
        .filter_map(|k| s.outcomes.get(*k))
        .sum();
    assert!(refused > 0, "foreign payments were refused");
    assert_eq!(
        refused + unserved,
        s.outcomes.values().sum::<u64>(),
        "no foreign payment was accepted: {:?}",
        s.outcomes
    );
}

#[test]
fn revoked_pay() {
    run_kind(AttackKind::RevokedPay);
}

#[test]
fn torn() {
    run_kind(AttackKind::Torn);
}

#[test]
fn lost_device() {
    run_kind(AttackKind::LostDevice);
}

/// The scheme's rule for lost wallets decides only where their money goes
/// at close: with a refund it is paid out to the customer, without one it
/// is forfeited to the reserve, the same amount on the same seed; in both
/// nothing is left unclaimed or stranded and every check holds.
#[test]
fn lost_wallets_are_paid_out_or_forfeited_by_the_scheme_rule() {
    for seed in SEEDS {
        let lost = vec![(AttackKind::LostDevice, 0.08)];
        let refund = run(small(seed, lost.clone()), |_| {}).unwrap();
        let forfeit = run(
            SimConfig {
                refund_lost: false,
                ..small(seed, lost)
            },
            |_| {},
        )
        .unwrap();
        for (r, what) in [(&refund, "refund"), (&forfeit, "no refund")] {
            assert_clean(r, what);
            assert_eq!(r.unclaimed_minor, 0, "{what} seed {seed}: unclaimed");
            assert_eq!(r.stranded_minor, 0, "{what} seed {seed}: stranded");
            assert!(r.lifecycle.retired_lost > 0, "{what} seed {seed}: lost");
            assert_eq!(r.lifecycle.closed, r.lifecycle.retired_lost, "{what}");
        }
        assert_eq!(refund.lifecycle.forfeited_to_reserve_minor, 0);
        assert_eq!(forfeit.lifecycle.paid_out_minor, 0);
        assert_eq!(
            refund.lifecycle.paid_out_minor, forfeit.lifecycle.forfeited_to_reserve_minor,
            "seed {seed}: the same money, another destination"
        );
        assert!(refund.lifecycle.paid_out_minor > 0, "seed {seed}");
        assert_eq!(
            forfeit.lifecycle.reserve_minor, forfeit.lifecycle.forfeited_to_reserve_minor as i64,
            "seed {seed}: the reserve holds what was forfeited"
        );
    }
}

/// Honest payers dispute the payments their payees never accepted, and lost
/// devices' customers dispute what the lost wallet may pay: every case is
/// closed by the end, each payment case brought the money back to its payer
/// (decided now or returned by the lifecycle rule before), each lost-wallet
/// case found nothing to refund (nothing was paid after the report), the
/// issuer's counts equal the simulation's, and every check holds.
#[test]
fn disputes_are_opened_decided_and_closed_by_the_rules() {
    let mut opened = 0;
    for seed in SEEDS {
        let r = run(
            SimConfig {
                dispute_rate: 0.8,
                ..small(
                    seed,
                    vec![(AttackKind::Torn, 0.1), (AttackKind::LostDevice, 0.04)],
                )
            },
            |_| {},
        )
        .unwrap();
        assert_clean(&r, &format!("disputes seed {seed}"));
        let c = &r.cases;
        assert_eq!(c.open_at_end, 0, "seed {seed}");
        assert_eq!(c.opened, c.resolved + c.rejected, "seed {seed}: {c:?}");
        for (d, n) in &c.by_decision {
            assert!(
                ["return_to_payer", "returned_by_rule", "nothing_to_refund"].contains(&d.as_str()),
                "seed {seed}: {n} cases decided {d}"
            );
        }
        assert_eq!(
            c.rejected,
            c.by_decision.get("nothing_to_refund").copied().unwrap_or(0),
            "seed {seed}: only the lost-wallet cases are rejected"
        );
        assert_eq!(r.stranded_minor, 0, "seed {seed}");
        opened += c.opened;
    }
    assert!(opened > 0, "cases were opened");
}

#[test]
fn crash() {
    let mut recovered = 0;
    for seed in SEEDS {
        let r = run(small(seed, vec![(AttackKind::Crash, 0.1)]), |_| {}).unwrap();
        assert_clean(&r, "crash");
        recovered += r.attacks["crash"]
            .outcomes
            .get("crashed_and_recovered")
            .copied()
            .unwrap_or(0);
    }
    assert!(recovered > 0, "crashes struck and were recovered from");
}

fn everything(seed: u64) -> SimConfig {
    SimConfig {
        wallets: 60,
        days: 5,
        seed,
        attacks: AttackKind::ALL
            .iter()
            .map(|&k| (k, rate(k) / 2.0))
            .collect(),
        full_check_hours: 2,
        ..SimConfig::default()
    }
}

#[test]
#[expect(clippy::many_single_char_names)] // lint-exception: short names follow the fixtures and formulas
fn every_attack_at_once_and_the_same_seed_gives_the_same_json() {
    let a = run(everything(5), |_| {}).unwrap();
    assert_clean(&a, "all attacks");
    assert!(a.double_spends_injected > 0);
    let b = run(everything(5), |_| {}).unwrap();
    assert_eq!(a.to_json(), b.to_json(), "same seed, same JSON");
    let c = run(everything(6), |_| {}).unwrap();
    assert_clean(&c, "all attacks, seed 6");
    assert_ne!(a.to_json(), c.to_json(), "another seed, another run");
    // The JSON round-trips and carries the documented fields.
    let v: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
    for f in [
        "invariant_violations",
        "double_spends_injected",
        "double_spends_detected",
        "honest_loss_minor",
        "guarantee_loss_minor",
        "detection_delay_s",
        "refusals",
        "daily",
        "limits",
    ] {
        assert!(v.get(f).is_some(), "field {f}");
    }
    let back: SimReport = serde_json::from_str(&a.to_json()).unwrap();
    assert_eq!(back.to_json(), a.to_json());
    // SQLite's own in-memory database gives the same report.
    let mut cfg = everything(5);
    cfg.store = StoreChoice::SqliteMemory;
    let d = run(cfg, |_| {}).unwrap();
    assert_eq!(d.config.store, "sqlite-memory");
    let mut d2 = d.clone();
    d2.config.store = a.config.store.clone();
    assert_eq!(d2.to_json(), a.to_json());
}

#[test]
fn a_file_store_and_a_smaller_holding_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small(4, vec![(AttackKind::Clone, 0.06)]);
    cfg.store = StoreChoice::File(dir.path().join("issuer.sqlite"));
    cfg.policy = PolicyOverrides {
        holding_limit_minor: Some(20_000),
        ..PolicyOverrides::default()
    };
    let r = run(cfg, |_| {}).unwrap();
    assert_clean(&r, "file store");
    assert!(dir.path().join("issuer.sqlite").exists());
    assert_eq!(r.limits.holding_limit_minor, 20_000);
    assert!(r.double_spends_injected > 0);
    for a in &r.attackers {
        assert!(
            a.loss_minor <= 20_000,
            "a clone cannot overspend more than it held: {a:?}"
        );
    }
}

#[test]
fn progress_is_reported_every_hour() {
    let mut hours = Vec::new();
    let r = run(
        SimConfig {
            wallets: 12,
            days: 1,
            seed: 3,
            ..SimConfig::default()
        },
        |p| hours.push((p.hour, p.finishing)),
    )
    .unwrap();
    assert!(r.invariant_violations.is_empty());
    assert_eq!(hours.len(), 25);
    assert_eq!(hours[23], (24, false));
    assert_eq!(hours[24], (24, true));
}

#[test]
fn a_bad_configuration_is_refused() {
    let bad = SimConfig {
        wallets: 2,
        ..SimConfig::default()
    };
    assert!(run(bad, |_| {}).is_err());
    let bad = SimConfig {
        attacks: vec![(AttackKind::Clone, 2.0)],
        ..SimConfig::default()
    };
    assert!(run(bad, |_| {}).is_err());
}

#[cfg(feature = "plots")]
#[test]
fn plots_are_pngs() {
    let r = run(small(2, vec![(AttackKind::Clone, 0.06)]), |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = offpay_sim::write_plots(&r, dir.path()).unwrap();
    assert_eq!(files.len(), 3);
    for f in files {
        let b = std::fs::read(&f).unwrap();
        assert!(
            b.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is a PNG",
            f.display()
        );
        assert!(b.len() > 5_000, "{} has content", f.display());
    }
}
