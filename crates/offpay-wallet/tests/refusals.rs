//! Every refusal path of the TA: each test asserts the exact [`WalletError`]
//! and that nothing changed — the vault was not written (same stored bytes,
//! same version) and the status, chain head, history, evidence and unsynced
//! log are what they were. The one exception is
//! [`WalletError::PayerRolledBack`], which by design stores the refused
//! payment as evidence (and changes nothing else).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

offpay_test_support::refusal_suite!(offpay_test_support::refusals::MemoryKind);

// The memory vault's own crash injection.
#[test]
fn vault_failure_commits_nothing() {
    let (_s, alice, mut bob) = world();
    let mut v = alice.into_vault();
    v.fail_commit_at(0);
    let mut alice = Wallet::open(v).unwrap();
    let req = bob.request(eur(100), 300, T0).unwrap();
    refuses(&mut alice, WalletError::Vault(VaultError::Crashed), |w| {
        w.pay(&req, T0)
    });
    // After a restart the state is the old one, and the payment goes through.
    let mut v = alice.into_vault();
    v.restart();
    let mut alice = Wallet::open(v).unwrap();
    assert_eq!(alice.balance(), Some(eur(10_000)));
    assert_eq!(alice.chain_head().0, 0);
    pay_with(&mut alice, &mut bob, &req, T0);
}
