//! End-to-end offline payments between real wallets: in memory, on sealed
//! vaults on disk, both suites, and 100 hops of transitivity.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{Payment, Receipt};
use offpay_protocol::{Suite, UnixSeconds};
use offpay_test_support::*;
use offpay_wallet::vault::{KdfParams, MemoryVault, SealedFileVault};
use offpay_wallet::{HistoryKind, Wallet};

#[test]
fn offline_payment_in_memory_every_suite() {
    for suite in Suite::ALL {
        let mut s = Scheme::new(suite);
        let mut alice = s.enroll(MemoryVault::new(), suite, T0);
        let mut bob = s.enroll(MemoryVault::new(), suite, T0);
        s.load(&mut alice, 10_000, T0);
        let payment = pay(&mut alice, &mut bob, 2_500, T0.plus(60));
        assert_eq!(alice.balance().unwrap().minor, 7_500);
        assert_eq!(bob.balance().unwrap().minor, 2_500);
        let p = Signed::<Payment>::decode(&payment).unwrap();
        assert_eq!(p.body().seq, 1);
        assert_eq!(p.body().payee, bob.wallet_id());
        assert_eq!(alice.history().last().unwrap().kind, HistoryKind::Paid);
        assert_eq!(bob.history().last().unwrap().kind, HistoryKind::Received);
        // Bob pays part back, offline, at once.
        pay(&mut bob, &mut alice, 1_000, T0.plus(120));
        assert_eq!(alice.balance().unwrap().minor, 8_500);
        assert_eq!(bob.balance().unwrap().minor, 1_500);
    }
}

/// Mixed chains: ML-DSA-44 wallets under an Ed25519 root and issuer, and
/// Ed25519 / P-256 wallets under an ML-DSA-44 root and issuer; a payment and
/// a sync in each.
#[test]
fn offline_payment_mixed_suites_with_ml_dsa() {
    for (ca, payer, payee) in [
        (Suite::Ed25519, Suite::MlDsa44, Suite::MlDsa44),
        (Suite::MlDsa44, Suite::Ed25519, Suite::P256),
        (Suite::MlDsa44, Suite::MlDsa44, Suite::Ed25519),
    ] {
        let mut s = Scheme::new(ca);
        let mut alice = s.enroll(MemoryVault::new(), payer, T0);
        let mut bob = s.enroll(MemoryVault::new(), payee, T0);
        s.load(&mut alice, 10_000, T0);
        let payment = pay(&mut alice, &mut bob, 2_500, T0.plus(60));
        let p = Signed::<Payment>::decode(&payment).unwrap();
        assert_eq!(p.suite(), payer, "{ca}/{payer}/{payee}");
        assert_eq!(alice.balance().unwrap().minor, 7_500);
        assert_eq!(bob.balance().unwrap().minor, 2_500);
        s.sync(&mut alice, T0.plus(120));
        s.sync(&mut bob, T0.plus(120));
        assert!(alice.lock().is_none() && bob.lock().is_none());
        pay(&mut bob, &mut alice, 1_000, T0.plus(180));
        assert_eq!(alice.balance().unwrap().minor, 8_500);
        assert_eq!(bob.balance().unwrap().minor, 1_500);
    }
}

#[test]
fn offline_payment_with_sealed_vaults_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (da, db) = (dir.path().join("alice"), dir.path().join("bob"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let secret = [9u8; 32];
    let mut s = Scheme::new(Suite::Ed25519);
    let alice_id;
    let bob_id;
    {
        let va = SealedFileVault::create(&da, b"1234", &secret, KdfParams::TEST).unwrap();
        let vb = SealedFileVault::create(&db, b"5678", &secret, KdfParams::TEST).unwrap();
        let mut alice = s.enroll(va, Suite::Ed25519, T0);
        let mut bob = s.enroll(vb, Suite::Ed25519, T0);
        alice_id = alice.wallet_id();
        bob_id = bob.wallet_id();
        s.load(&mut alice, 10_000, T0);
        pay(&mut alice, &mut bob, 4_000, T0.plus(10));
    }
    // Reopen both from disk: the payment survived on both sides.
    let mut alice = Wallet::open(SealedFileVault::open(&da, b"1234", &secret).unwrap()).unwrap();
    let mut bob = Wallet::open(SealedFileVault::open(&db, b"5678", &secret).unwrap()).unwrap();
    assert_eq!(alice.wallet_id(), alice_id);
    assert_eq!(bob.wallet_id(), bob_id);
    assert_eq!(alice.balance().unwrap().minor, 6_000);
    assert_eq!(bob.balance().unwrap().minor, 4_000);
    assert!(alice.lock().is_none() && bob.lock().is_none());
    pay(&mut bob, &mut alice, 500, T0.plus(20));
    assert_eq!(alice.balance().unwrap().minor, 6_500);
    // A wrong PIN does not open the vault.
    assert!(SealedFileVault::open(&da, b"0000", &secret).is_err());
}

#[test]
fn transitivity_100_hops_constant_size() {
    for suite in [Suite::Ed25519, Suite::P256] {
        let mut s = Scheme::new(suite);
        let mut wallets: Vec<Wallet<MemoryVault>> = (0..101)
            .map(|_| s.enroll(MemoryVault::new(), suite, T0))
            .collect();
        s.load(&mut wallets[0], 10_000, T0);
        let mut sizes = Vec::new();
        for hop in 0..100 {
            let (a, b) = wallets.split_at_mut(hop + 1);
            let payer = &mut a[hop];
            let payee = &mut b[0];
            // Each hop spends exactly what it just received, still offline.
            let amount = payer.balance().unwrap().minor;
            let payment = pay(payer, payee, amount, T0.plus(hop as u64));
            // Size without the payer's own certificate: what could grow with the hops.
            let p = Signed::<Payment>::decode(&payment).unwrap();
            let cert_len = match &p.body().payer_cert {
                offpay_protocol::messages::CertField::Inline(der) => der.len(),
                offpay_protocol::messages::CertField::Reference(_) => 0,
            };
            sizes.push((payment.len(), payment.len() - cert_len));
            assert_eq!(payer.balance().unwrap().minor, 0);
            assert_eq!(payee.balance().unwrap().minor, 10_000);
        }
        assert_eq!(wallets[100].balance().unwrap().minor, 10_000);
        let total: Vec<usize> = sizes.iter().map(|s| s.0).collect();
        let (min, max) = (*total.iter().min().unwrap(), *total.iter().max().unwrap());
        // Everything but the payer's certificate has exactly the same size at every hop.
        assert!(
            sizes.iter().all(|s| s.1 == sizes[0].1),
            "{suite}: payment sizes (without certificate) vary: {sizes:?}"
        );
        if suite == Suite::Ed25519 {
            // With fixed-width serials, Ed25519 certificates, and so whole Payments, are all the same size.
            assert_eq!(min, max, "payment sizes vary across hops: {total:?}");
        }
        // (P-256: only the DER encoding of the issuer's ECDSA signature inside each certificate varies.)
        eprintln!(
            "{suite}: 100 hops, Payment size {min}..={max} bytes, {} without the certificate",
            sizes[0].1
        );
    }
}

#[test]
fn torn_exchange_resumes_with_the_same_bytes() {
    let mut s = Scheme::new(Suite::Ed25519);
    let mut alice = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    let mut bob = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    s.load(&mut alice, 10_000, T0);
    let req = bob.request(eur(700), 300, T0).unwrap();
    let p1 = alice.pay(&req, T0).unwrap();
    // The payment was lost on the channel; Bob asks again with the same request.
    let p2 = alice.pay(&req, T0.plus(5)).unwrap();
    assert_eq!(p1, p2);
    assert_eq!(alice.balance().unwrap().minor, 9_300, "paid once");
    let r1 = bob.receive(&p1, T0.plus(6)).unwrap();
    // The receipt was lost; Alice sends the payment again.
    let r2 = bob.receive(&p2, T0.plus(7)).unwrap();
    assert_eq!(r1, r2);
    assert_eq!(bob.balance().unwrap().minor, 700, "credited once");
    alice.confirm(&r1).unwrap();
    alice.confirm(&r2).unwrap();
    let r = Signed::<Receipt>::decode(&r1).unwrap();
    assert_eq!(
        r.body().payment_id,
        Signed::<Payment>::decode(&p1).unwrap().payload_hash()
    );
    // Even after a sync, paying the same request again returns the same Payment.
    s.sync(&mut alice, T0.plus(8));
    assert_eq!(alice.pay(&req, T0.plus(9)).unwrap(), p1);
    assert_eq!(alice.balance().unwrap().minor, 9_300);
}

#[test]
fn load_redeem_and_sync() {
    let mut s = Scheme::new(Suite::Ed25519);
    let mut alice = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    let mut bob = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    s.load(&mut alice, 5_000, T0);
    pay(&mut alice, &mut bob, 1_000, T0);
    let redeem = bob.redeem(eur(400), T0.plus(1)).unwrap();
    assert!(!redeem.is_empty());
    assert_eq!(bob.balance().unwrap().minor, 600);
    assert_eq!(bob.chain_head().0, 1);
    // Sync carries the vouchers of a new load too.
    let report = alice.sync_report(T0.plus(2)).unwrap();
    let v = s.voucher(alice.wallet_id(), 2_000, T0.plus(2));
    let resp = s.respond(
        &report,
        T0.plus(2),
        offpay_protocol::messages::WalletCommand::None,
        vec![v],
        None,
    );
    let applied = alice.apply_sync_response(&resp, T0.plus(2)).unwrap();
    assert_eq!(applied.vouchers_applied, vec![2]);
    assert_eq!(alice.balance().unwrap().minor, 6_000);
    assert_eq!(
        alice.status(T0.plus(2)).unsynced_entries,
        1,
        "only the new load is unsynced"
    );
    // The same response applied again is stale.
    assert!(alice.apply_sync_response(&resp, T0.plus(3)).is_err());
    let _ = UnixSeconds(0);
}
