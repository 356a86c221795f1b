//! The receive-only terminal end to end at the TA: takings from many
//! wallets, the sweep at sync (a redeem entry in the report, debited in the
//! report's own commit), and conservation across the whole population.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_protocol::Suite;
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{ChainEntry, RiskPolicy, SyncReport, TerminalLimits};
use offpay_test_support::*;
use offpay_wallet::vault::MemoryVault;
use offpay_wallet::{HistoryKind, Wallet};

const ED: Suite = Suite::Ed25519;

fn policy(float: u64) -> RiskPolicy {
    RiskPolicy {
        terminal: Some(TerminalLimits {
            max_receive_payments: 100,
            max_receive_minor: 50_000,
            sweep_float_minor: float,
        }),
        ..default_policy()
    }
}

fn total(wallets: &[&Wallet<MemoryVault>]) -> u64 {
    wallets.iter().map(|w| w.balance().unwrap().minor).sum()
}

#[test]
fn a_terminal_takes_from_many_and_sweeps_above_its_float_at_sync() {
    let mut scheme = Scheme::with_policy(ED, policy(250));
    let mut till = scheme.enroll_terminal(MemoryVault::new(), ED, T0);
    let mut customers: Vec<_> = (0..5)
        .map(|_| {
            let mut wallet = scheme.enroll(MemoryVault::new(), ED, T0);
            scheme.load(&mut wallet, 2_000, T0);
            wallet
        })
        .collect();
    let mut taken = 0;
    for (i, customer) in customers.iter_mut().enumerate() {
        let amount = 100 * (i as u64 + 1);
        pay(customer, &mut till, amount, T0.plus(i as u64));
        taken += amount;
    }
    assert_eq!(till.balance().unwrap().minor, taken);
    assert_eq!(till.sweep_due_minor(), taken - 250);

    let report = till.sync_report(T0.plus(60)).unwrap();
    // The report carries the sweep: one redeem entry, the terminal's only
    // outgoing entry, and the balance after it.
    let decoded = Signed::<SyncReport>::decode(&report).unwrap();
    let r = decoded.body();
    assert_eq!(r.outgoing.len(), 1);
    match ChainEntry::decode(&r.outgoing[0]).unwrap() {
        ChainEntry::Redeem(e) => {
            assert_eq!(e.body().amount, eur(taken - 250));
            assert_eq!(e.body().seq, 1);
        }
        ChainEntry::Payment(_) => panic!("a terminal's report holds a payment"),
    }
    assert_eq!(r.incoming.len(), 5);
    assert_eq!(r.balance, eur(250));
    assert_eq!(till.balance().unwrap().minor, 250);
    assert_eq!(till.history().last().unwrap().kind, HistoryKind::Redeemed);
    // Asking again (a lost answer) sweeps nothing more: the same entry is reported.
    assert_eq!(till.sweep_due_minor(), 0);
    let again = till.sync_report(T0.plus(61)).unwrap();
    let again = Signed::<SyncReport>::decode(&again).unwrap();
    assert_eq!(again.body().outgoing, r.outgoing);
    assert_eq!(again.body().balance, eur(250));

    let resp = scheme.respond(
        &till.sync_report(T0.plus(62)).unwrap(),
        T0.plus(62),
        offpay_protocol::messages::WalletCommand::None,
        Vec::new(),
        None,
    );
    till.apply_sync_response(&resp, T0.plus(62)).unwrap();
    assert_eq!(till.status(T0.plus(62)).unsynced_entries, 0);
    // Offline money now: the customers' rest and the float; the sweep left
    // the offline book as a redeem (to the merchant's online account).
    let all: Vec<&Wallet<MemoryVault>> = customers.iter().chain([&till]).collect();
    assert_eq!(total(&all) + (taken - 250), 5 * 2_000);

    // Under the float: no sweep, no outgoing entry.
    pay(&mut customers[0], &mut till, 1, T0.plus(70));
    assert_eq!(till.sweep_due_minor(), 1);
    let mut scheme = Scheme::with_policy(ED, policy(10_000));
    let mut small = scheme.enroll_terminal(MemoryVault::new(), ED, T0);
    let mut customer = scheme.enroll(MemoryVault::new(), ED, T0);
    scheme.load(&mut customer, 500, T0);
    pay(&mut customer, &mut small, 500, T0);
    let rep = small.sync_report(T0.plus(1)).unwrap();
    assert!(
        Signed::<SyncReport>::decode(&rep)
            .unwrap()
            .body()
            .outgoing
            .is_empty()
    );
}

#[test]
fn without_terminal_limits_a_terminal_sweeps_everything_and_a_person_nothing() {
    let mut scheme = Scheme::new(ED);
    assert!(scheme.policy.terminal.is_none());
    let mut till = scheme.enroll_terminal(MemoryVault::new(), ED, T0);
    let mut person = scheme.enroll(MemoryVault::new(), ED, T0);
    let mut payer = scheme.enroll(MemoryVault::new(), ED, T0);
    scheme.load(&mut payer, 1_000, T0);
    pay(&mut payer, &mut till, 400, T0);
    pay(&mut payer, &mut person, 300, T0);
    assert_eq!(till.sweep_due_minor(), 400);
    assert_eq!(person.sweep_due_minor(), 0);
    scheme.sync(&mut till, T0.plus(5));
    scheme.sync(&mut person, T0.plus(5));
    assert_eq!(till.balance().unwrap().minor, 0);
    assert_eq!(person.balance().unwrap().minor, 300);
    // A sync with nothing to sweep adds no entry.
    let rep = till.sync_report(T0.plus(6)).unwrap();
    assert!(
        Signed::<SyncReport>::decode(&rep)
            .unwrap()
            .body()
            .outgoing
            .is_empty()
    );
}

#[test]
fn the_sweep_survives_a_crash_at_every_point_of_the_report_commit() {
    use offpay_wallet::WalletError;
    use offpay_wallet::vault::{CrashPoint, VaultError};
    for point in [
        CrashPoint::BeforeWrite,
        CrashPoint::AfterStateWrite,
        CrashPoint::AfterCounter,
    ] {
        let mut scheme = Scheme::with_policy(ED, policy(100));
        let mut till = scheme.enroll_terminal(MemoryVault::new(), ED, T0);
        let mut customer = scheme.enroll(MemoryVault::new(), ED, T0);
        scheme.load(&mut customer, 1_000, T0);
        pay(&mut customer, &mut till, 700, T0);
        let mut vault = till.into_vault();
        vault.fail_commit_at_with(0, point);
        let mut till = Wallet::open(vault).unwrap();
        assert_eq!(
            till.sync_report(T0.plus(1)),
            Err(WalletError::Vault(VaultError::Crashed)),
            "{point:?}"
        );
        let mut vault = till.into_vault();
        vault.restart();
        let mut till = Wallet::open(vault).unwrap();
        assert!(till.lock().is_none(), "{point:?}");
        // Either the sweep was committed whole (balance at the float, the
        // redeem on the chain) or not at all (the takings, no entry): the
        // next report then carries exactly one redeem of 600 either way.
        let before_crash = point == CrashPoint::BeforeWrite;
        assert_eq!(
            till.balance().unwrap().minor,
            if before_crash { 700 } else { 100 },
            "{point:?}"
        );
        let report = till.sync_report(T0.plus(2)).unwrap();
        let decoded = Signed::<SyncReport>::decode(&report).unwrap();
        let redeems: Vec<u64> = decoded
            .body()
            .outgoing
            .iter()
            .map(|bytes| match ChainEntry::decode(bytes).unwrap() {
                ChainEntry::Redeem(e) => e.body().amount.minor,
                ChainEntry::Payment(_) => panic!("payment from a terminal"),
            })
            .collect();
        assert_eq!(redeems, vec![600], "{point:?}");
        assert_eq!(decoded.body().balance, eur(100), "{point:?}");
        assert_eq!(till.chain_head().0, 1, "{point:?}");
    }
}
