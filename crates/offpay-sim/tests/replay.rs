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
