//! One seed replays everything: two runs with the same seed give the same
//! JSON and the same database, byte for byte (ids, keys, proofs and posting
//! ids included), because every random byte comes from the seed.

use offpay_sim::{AttackKind, SimConfig, SimReport, run};

fn config(seed: u64) -> SimConfig {
    SimConfig {
        wallets: 24,
        days: 3,
        seed,
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
fn the_same_seed_gives_the_same_json_and_the_same_database() {
    let a = run(config(7), |_| {}).unwrap();
    let b = run(config(7), |_| {}).unwrap();
    assert!(
        a.invariant_violations.is_empty(),
        "{:#?}",
        a.invariant_violations
    );
    assert!(a.payments > 0 && a.syncs > 0);
    assert_eq!(a.to_json(), b.to_json(), "same seed, same JSON");
    let (da, db) = (dump(&a), dump(&b));
    assert!(da.contains("table postings") && da.contains("table wallets"));
    for table in ["postings", "wallets", "entries", "settlements", "reports"] {
        let header = da
            .lines()
            .find(|l| l.starts_with(&format!("table {table} ")))
            .unwrap();
        assert!(!header.ends_with(": 0 rows"), "{header}");
    }
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
    let c = run(config(8), |_| {}).unwrap();
    assert_ne!(dump(&c), da, "another seed, another database");
}

/// `offpay sim --seed 7 --faults` at small scale: issuer-side faults (failed
/// statements, conflicts, crashes before commit, restarts mid-sync) go
/// through the issuer's retry, savepoint and group-commit fallback paths;
/// every invariant still holds, every double spend that reached the issuer is
/// detected, and the same seed replays the same faults, JSON and database.
#[test]
fn faults_replay_exactly_and_every_invariant_holds() {
    let faulty = |seed| SimConfig {
        faults: true,
        ..config(seed)
    };
    let a = run(faulty(7), |_| {}).unwrap();
    assert!(
        a.invariant_violations.is_empty(),
        "{:#?}",
        a.invariant_violations
    );
    assert_eq!(a.honest_loss_minor, 0);
    assert_eq!(a.double_spends_detected, a.double_spends_injected);
    assert!(
        a.issuer_refusals
            .keys()
            .all(|k| !k.ends_with(":storage") && !k.ends_with(":conflict")),
        "no injected fault reaches a customer: {:?}",
        a.issuer_refusals
    );
    let f = a.faults.clone().unwrap();
    assert!(f.statement_failures > 0, "{f:?}");
    assert!(f.conflicts > 0, "{f:?}");
    assert!(f.crashes_before_commit > 0, "{f:?}");
    assert!(f.restarts_mid_sync > 0, "{f:?}");
    assert!(f.issuer_restarts >= f.crashes_before_commit + f.restarts_mid_sync);
    assert!(f.retries > 0 && f.absorbed > 0, "{f:?}");
    assert!(f.group_commits > 0 && f.group_commits_faulted > 0, "{f:?}");
    let v: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
    assert!(v["faults"]["conflicts"].as_u64().unwrap() > 0);
    let b = run(faulty(7), |_| {}).unwrap();
    assert_eq!(
        a.to_json(),
        b.to_json(),
        "same seed, same faults, same JSON"
    );
    assert!(
        dump(&a) == dump(&b),
        "same seed, same faults, same database"
    );
    // Without faults the JSON has no `faults` field.
    let plain = run(config(7), |_| {}).unwrap();
    assert!(plain.faults.is_none());
    assert!(!plain.to_json().contains("\"faults\""));
}
