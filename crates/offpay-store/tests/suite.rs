//! The backend acceptance suite, run on SQLite and on PostgreSQL.
//!
//! PostgreSQL: `OFFPAY_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test works in its own
//! schema. Without a server the PostgreSQL half is skipped with a printed
//! reason, unless `OFFPAY_REQUIRE_POSTGRES=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_issuer::store::WalletState;
use offpay_issuer::{Issuer, IssuerConfig, IssuerError, LockReason, ReportProblem};
use offpay_protocol::envelope::Signed;
use offpay_protocol::evidence::verify_double_spend_bytes;
use offpay_protocol::messages::{CertField, Payment, SyncReport, SyncResponse};
use offpay_protocol::pki::{self, Crl, WalletProfile};
use offpay_protocol::{Currency, Hash32, Nonce, SigningKey, Suite, UnixSeconds, WalletId};
use offpay_store::AnyStore;
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

use offpay_test_support::postgres::Schema;
use offpay_test_support::{eur, pay};

mod common;
use common::{T0, customer_with_wallet, enrolled_wallet, sync};

const MASTER: [u8; 32] = [42u8; 32];

/// Run `f` on SQLite (a temporary file) and on PostgreSQL (a fresh schema).
fn on_every_backend(name: &str, f: impl Fn(&Issuer<AnyStore>)) {
    let dir = tempfile::tempdir().unwrap();
    let store = offpay_store::open_sqlite(&dir.path().join("offpay.sqlite")).unwrap();
    let issuer = Issuer::init(
        store,
        &MASTER,
        &IssuerConfig::default_for(Currency::new("EUR").unwrap()),
        T0,
    )
    .unwrap();
    eprintln!("[{name}] sqlite");
    f(&issuer);

    let Some(guard) = Schema::fresh(name) else {
        return;
    };
    let store = offpay_store::open_postgres_schema(&guard.url, &guard.name).unwrap();
    let issuer = Issuer::init(
        store,
        &MASTER,
        &IssuerConfig::default_for(Currency::new("EUR").unwrap()),
        T0,
    )
    .unwrap();
    eprintln!("[{name}] postgres schema {}", guard.name);
    f(&issuer);
}

fn sub(issuer: &Issuer<AnyStore>, w: &Wallet<MemoryVault>) -> i64 {
    issuer.wallet_balance(&w.wallet_id()).unwrap()
}

fn assert_invariants(issuer: &Issuer<AnyStore>) {
    let inv = issuer.invariants().unwrap();
    assert!(inv.ok, "invariants violated: {:?}", inv.violations);
}

fn story(issuer: &Issuer<AnyStore>, payee_first: bool) {
    let mut alice = customer_with_wallet(issuer, "alice", 50_000, 10_000);
    let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
    let mut carol = customer_with_wallet(issuer, "carol", 0, 0);
    assert_eq!(issuer.customer_balance("alice").unwrap(), 40_000);
    // Offline: Alice pays Bob, Bob spends it on to Carol at once.
    pay(&mut alice, &mut bob, 2_500, T0.plus(10));
    pay(&mut bob, &mut carol, 2_000, T0.plus(20));
    let order: Vec<&mut Wallet<MemoryVault>> = if payee_first {
        vec![&mut carol, &mut bob, &mut alice]
    } else {
        vec![&mut alice, &mut bob, &mut carol]
    };
    for w in order {
        sync(issuer, w, T0.plus(100));
        assert_invariants(issuer);
    }
    assert_eq!(sub(issuer, &alice), 7_500);
    assert_eq!(sub(issuer, &bob), 500);
    assert_eq!(sub(issuer, &carol), 2_000);
    assert_eq!(alice.balance().unwrap().minor, 7_500);
    // Redeem online, exactly once.
    let redeem = carol.redeem(eur(1_500), T0.plus(200)).unwrap();
    let r1 = issuer.redeem(&redeem, T0.plus(200)).unwrap();
    let r2 = issuer.redeem(&redeem, T0.plus(201)).unwrap();
    assert!(r1.newly_settled && !r2.newly_settled);
    assert_eq!(issuer.customer_balance("carol").unwrap(), 1_500);
    sync(issuer, &mut carol, T0.plus(300));
    assert_eq!(sub(issuer, &carol), 500);
    assert_eq!(
        issuer.customer_balance("carol").unwrap(),
        1_500,
        "the synced redeem does not settle twice"
    );
    assert_invariants(issuer);
    let inv = issuer.invariants().unwrap();
    assert_eq!(inv.supply, 50_000, "money entered only by the deposit");
}

#[test]
fn story_payee_syncs_first() {
    on_every_backend("payee_first", |i| story(i, true));
}

#[test]
fn story_payer_syncs_first() {
    on_every_backend("payer_first", |i| story(i, false));
}

#[test]
fn double_spend_by_a_cloned_wallet() {
    on_every_backend("double_spend", |issuer| {
        // Alice keeps only 1,000 online: the clawback covers part, the guarantee fund the rest.
        let mut alice = customer_with_wallet(issuer, "alice", 6_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let mut carol = customer_with_wallet(issuer, "carol", 0, 0);
        // The attacker copies the whole device (state and counter) before paying.
        let mut clone = Wallet::open(alice.vault().clone()).unwrap();
        pay(&mut alice, &mut bob, 5_000, T0.plus(10));
        pay(&mut clone, &mut carol, 4_000, T0.plus(11));
        let out_b = sync(issuer, &mut bob, T0.plus(100));
        assert!(out_b.double_spends.is_empty());
        let out_c = sync(issuer, &mut carol, T0.plus(101));
        assert_eq!(out_c.double_spends, vec![(alice.wallet_id(), 1)]);
        // Finality: both honest payees are paid in full.
        assert_eq!(sub(issuer, &bob), 5_000);
        assert_eq!(sub(issuer, &carol), 4_000);
        // The payer is revoked, and the proof verifies with the root alone.
        let rec = issuer.wallet(&alice.wallet_id()).unwrap();
        assert_eq!(rec.state, WalletState::Revoked);
        let ds = issuer.double_spends(None, 10).unwrap();
        assert_eq!(ds.len(), 1);
        let proven = verify_double_spend_bytes(&ds[0].proof, issuer.root_certificate()).unwrap();
        assert_eq!(proven.payer, alice.wallet_id());
        let crl = Crl::from_der(&issuer.crl().unwrap()).unwrap();
        assert!(crl.is_revoked(rec.cert_serial).is_some());
        // Loss: 4,000 overspent; 1,000 clawed back online, 3,000 from the guarantee fund.
        assert_eq!(issuer.customer_balance("alice").unwrap(), 0);
        assert_eq!(rec.clawed_back, 1_000);
        assert_eq!(rec.guaranteed, 3_000);
        assert_eq!(sub(issuer, &alice), 0);
        assert_invariants(issuer);
        // The payer's own sync is answered with a lock; payees get the CRL.
        let report = alice.sync_report(T0.plus(200)).unwrap();
        let out = issuer.sync(&report, T0.plus(200)).unwrap();
        let resp = Signed::<SyncResponse>::decode(&out.response).unwrap();
        assert!(matches!(
            resp.body().command,
            offpay_protocol::messages::WalletCommand::Lock { .. }
        ));
        alice
            .apply_sync_response(&out.response, T0.plus(200))
            .unwrap();
        assert!(alice.lock().is_some());
        // Bob syncs again and receives the new CRL; now he refuses the revoked clone offline.
        sync(issuer, &mut bob, T0.plus(250));
        let req = bob.request(eur(10), 300, T0.plus(300)).unwrap();
        assert!(
            clone.pay(&req, T0.plus(300)).is_ok(),
            "the clone does not know it is revoked"
        );
        assert!(matches!(
            bob.receive(&clone.pay(&req, T0.plus(300)).unwrap(), T0.plus(300)),
            Err(offpay_wallet::WalletError::PeerRevoked { .. })
        ));
        assert_invariants(issuer);
    });
}

#[test]
fn torn_payment_settles_exactly_once() {
    on_every_backend("torn", |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 10_000, 3_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let req = bob.request(eur(1_200), 300, T0.plus(5)).unwrap();
        let payment = alice.pay(&req, T0.plus(5)).unwrap();
        // The payment never reached Bob; Alice syncs: Bob is credited from her signature alone.
        sync(issuer, &mut alice, T0.plus(10));
        assert_eq!(sub(issuer, &bob), 1_200);
        // Later the payment reaches Bob after all; he syncs; nothing settles twice.
        bob.receive(&payment, T0.plus(20)).unwrap();
        let out = sync(issuer, &mut bob, T0.plus(30));
        assert_eq!(out.settled, 0);
        assert_eq!(sub(issuer, &bob), 1_200);
        assert_eq!(sub(issuer, &alice), 1_800);
        assert_invariants(issuer);
    });
}

#[test]
fn every_report_processed_twice_gives_identical_results() {
    on_every_backend("idempotent", |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 10_000, 3_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        pay(&mut alice, &mut bob, 700, T0.plus(5));
        for w in [&mut alice, &mut bob] {
            let report = w.sync_report(T0.plus(10)).unwrap();
            let a = issuer.sync(&report, T0.plus(10)).unwrap();
            let totals = issuer.invariants().unwrap().totals;
            let b = issuer.sync(&report, T0.plus(11)).unwrap();
            assert_eq!(a.response, b.response);
            assert!(b.replayed);
            assert_eq!(
                issuer.invariants().unwrap().totals,
                totals,
                "the replay posted nothing"
            );
            w.apply_sync_response(&b.response, T0.plus(11)).unwrap();
        }
        // A load retried with the same key returns the same voucher; another amount is refused.
        let v1 = issuer.load(&alice.wallet_id(), eur(100), "k1", T0).unwrap();
        let v2 = issuer.load(&alice.wallet_id(), eur(100), "k1", T0).unwrap();
        assert_eq!(v1, v2);
        assert!(matches!(
            issuer.load(&alice.wallet_id(), eur(200), "k1", T0),
            Err(IssuerError::IdempotencyKeyReused)
        ));
        assert_eq!(issuer.customer_balance("alice").unwrap(), 6_900);
        assert_invariants(issuer);
    });
}

#[test]
fn rolled_back_wallet_is_locked_until_unlocked() {
    on_every_backend("rollback", |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 10_000, 3_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let old = alice.vault().snapshot();
        pay(&mut alice, &mut bob, 1_000, T0.plus(5));
        sync(issuer, &mut alice, T0.plus(6));
        // Restore the old state (but not the counter): the TA opens locked.
        let mut vault = alice.into_vault();
        vault.restore(&old);
        let mut alice = Wallet::open(vault).unwrap();
        assert!(alice.lock().is_some());
        let out = sync(issuer, &mut alice, T0.plus(10));
        let codes: Vec<&str> = out
            .locked
            .as_ref()
            .map(|r| r.problems().iter().map(|p| p.code()).collect())
            .unwrap_or_default();
        assert!(codes.contains(&"rolled_back"), "{codes:?}");
        assert!(codes.contains(&"self_locked"), "{codes:?}");
        assert_eq!(
            issuer.wallet(&alice.wallet_id()).unwrap().state,
            WalletState::Locked
        );
        // The operator unlocks; the next sync carries the issuer's checkpoint.
        issuer.unlock(&alice.wallet_id()).unwrap();
        let applied = {
            let report = alice.sync_report(T0.plus(20)).unwrap();
            let out = issuer.sync(&report, T0.plus(20)).unwrap();
            alice
                .apply_sync_response(&out.response, T0.plus(20))
                .unwrap()
        };
        assert!(applied.unlocked);
        assert!(alice.lock().is_none());
        assert_eq!(alice.balance().unwrap().minor, 2_000);
        assert_eq!(alice.chain_head().0, 1);
        pay(&mut alice, &mut bob, 500, T0.plus(30));
        sync(issuer, &mut alice, T0.plus(40));
        sync(issuer, &mut bob, T0.plus(41));
        assert_eq!(sub(issuer, &bob), 1_500);
        assert_invariants(issuer);
    });
}

#[test]
fn hundred_wallets_sync_concurrently() {
    on_every_backend("concurrent", |issuer| {
        let mut merchant = customer_with_wallet(issuer, "merchant", 0, 0);
        let mut wallets: Vec<Wallet<MemoryVault>> = (0..100)
            .map(|k| customer_with_wallet(issuer, &format!("c{k}"), 1_000, 500))
            .collect();
        for (k, w) in wallets.iter_mut().enumerate() {
            pay(w, &mut merchant, 100 + k as u64, T0.plus(10));
        }
        let reports: Vec<Vec<u8>> = wallets
            .iter_mut()
            .map(|w| w.sync_report(T0.plus(20)).unwrap())
            .collect();
        let responses: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = reports
                .chunks(10)
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|r| issuer.sync(r, T0.plus(20)).unwrap().response)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        for (w, r) in wallets.iter_mut().zip(&responses) {
            w.apply_sync_response(r, T0.plus(21)).unwrap();
        }
        let total: u64 = (0..100).map(|k| 100 + k as u64).sum();
        assert_eq!(sub(issuer, &merchant), total as i64);
        sync(issuer, &mut merchant, T0.plus(30));
        assert_eq!(sub(issuer, &merchant), total as i64);
        assert_invariants(issuer);
        let _ = WalletId([0; 16]);
    });
}

#[test]
fn savepoints_undo_one_part_of_a_transaction() {
    use offpay_issuer::store::Store;
    on_every_backend("savepoint", |issuer| {
        let store = issuer.store();
        let mut tx = store.begin().unwrap();
        tx.set_setting("sp.kept", b"before").unwrap();
        tx.savepoint().unwrap();
        tx.set_setting("sp.undone", b"x").unwrap();
        tx.set_setting("sp.kept", b"changed").unwrap();
        tx.rollback_to_savepoint().unwrap();
        tx.savepoint().unwrap();
        tx.set_setting("sp.released", b"y").unwrap();
        tx.release_savepoint().unwrap();
        tx.commit().unwrap();
        let mut r = store.begin_read().unwrap();
        assert_eq!(
            r.setting("sp.kept").unwrap().as_deref(),
            Some(&b"before"[..])
        );
        assert_eq!(r.setting("sp.undone").unwrap(), None);
        assert_eq!(
            r.setting("sp.released").unwrap().as_deref(),
            Some(&b"y"[..])
        );
        // A failed statement inside a savepoint leaves the transaction usable
        // once rolled back to it (PostgreSQL aborts the transaction otherwise).
        drop(r);
        let mut tx = store.begin().unwrap();
        tx.create_customer("sp-dup", "first", T0).unwrap();
        tx.savepoint().unwrap();
        assert!(tx.create_customer("sp-dup", "second", T0).is_err());
        tx.rollback_to_savepoint().unwrap();
        tx.set_setting("sp.after_error", b"z").unwrap();
        tx.commit().unwrap();
        let mut r = store.begin_read().unwrap();
        assert_eq!(
            r.setting("sp.after_error").unwrap().as_deref(),
            Some(&b"z"[..])
        );
        assert_eq!(r.customer("sp-dup").unwrap().as_deref(), Some("first"));
    });
}

/// Money the issuer credits to a payee whose TA never held it (a payment
/// received after its request expired, a second payer of one request, a
/// payment file never delivered) is counted exactly, at the payee's sync,
/// and vouchers on their way to the TA are not counted as stranded.
#[test]
fn stranded_money_is_exactly_what_the_payee_never_held() {
    on_every_backend("stranded", |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 10_000, 10_000);
        let mut carol = customer_with_wallet(issuer, "carol", 10_000, 10_000);
        let mut dave = customer_with_wallet(issuer, "dave", 10_000, 10_000);
        let mut bob = customer_with_wallet(issuer, "bob", 5_000, 0);
        let t = T0.plus(10);
        // A normal payment: not stranded.
        pay(&mut alice, &mut bob, 1_000, t);
        // Paid, but received after the request expired: refused by Bob's TA.
        let late = bob.request(eur(350), 60, t).unwrap();
        let p_late = alice.pay(&late, t).unwrap();
        assert!(bob.receive(&p_late, t.plus(61)).is_err());
        // One request paid by two customers: the second payment is refused.
        let shared = bob.request(eur(200), 300, t.plus(100)).unwrap();
        let p1 = alice.pay(&shared, t.plus(100)).unwrap();
        bob.receive(&p1, t.plus(100)).unwrap();
        let p2 = carol.pay(&shared, t.plus(101)).unwrap();
        assert!(bob.receive(&p2, t.plus(101)).is_err());
        // A payment file that never reached Bob.
        let lost = bob.request(eur(25), 300, t.plus(102)).unwrap();
        dave.pay(&lost, t.plus(102)).unwrap();
        // A load on its way to Bob's TA (applied from the sync response).
        issuer
            .load(&bob.wallet_id(), eur(700), "load-bob-2", t.plus(103))
            .unwrap();
        let at = t.plus(200);
        let first = sync(issuer, &mut bob, at);
        assert_eq!(
            first.stranded.minor, 0,
            "nothing stranded before the payers report"
        );
        for w in [&mut alice, &mut carol, &mut dave] {
            sync(issuer, w, at);
        }
        assert_eq!(
            issuer.stranded(&bob.wallet_id()).unwrap().minor,
            0,
            "the figure is as of Bob's last sync"
        );
        let out = sync(issuer, &mut bob, at.plus(1));
        let stranded = 350 + 200 + 25;
        assert_eq!(out.stranded.minor, stranded);
        assert_eq!(issuer.stranded(&bob.wallet_id()).unwrap(), out.stranded);
        assert_eq!(out.stranded.at, at.plus(1));
        // Bob's TA holds 1 000 + 200 received and the 700 loaded.
        assert_eq!(bob.balance().unwrap().minor, 1_900);
        assert_eq!(sub(issuer, &bob), 1_900 + stranded);
        // A replayed report answers the same figure.
        let report = bob.sync_report(at.plus(2)).unwrap();
        let again = issuer.sync(&report, at.plus(2)).unwrap();
        let replay = issuer.sync(&report, at.plus(3)).unwrap();
        assert!(replay.replayed);
        assert_eq!(replay.stranded, again.stranded);
        assert_eq!(again.stranded.minor, stranded);
        // The payers hold nothing stranded.
        for w in [&alice, &carol, &dave] {
            assert_eq!(issuer.stranded(&w.wallet_id()).unwrap().minor, 0);
        }
        assert_invariants(issuer);
    });
}

/// The PIN-locked wallet's request built as its vault would
/// (`offpay_wallet::recovery::locked_request`), from its recovery record.
fn pin_locked_request(
    w: &Wallet<MemoryVault>,
    wallet: WalletId,
    attempts: u64,
    nonce: [u8; 16],
) -> Vec<u8> {
    use offpay_protocol::messages::PinLockedRequest;
    let r = w.pin_recovery().unwrap();
    let key = offpay_protocol::SigningKey::from_seed(Suite::Ed25519, &r.unlock_seed).unwrap();
    Signed::sign(
        PinLockedRequest {
            wallet,
            attempts,
            nonce: offpay_protocol::Nonce(nonce),
            time: T0,
            grant: r.grant,
        },
        &key,
    )
    .into_bytes()
}

#[test]
#[expect(clippy::too_many_lines)] // lint-exception: one table or story, read top to bottom
fn pin_unlock_only_after_the_operator_approves() {
    use offpay_issuer::PinUnlockAnswer;
    use offpay_protocol::messages::PinUnlock;
    on_every_backend("pinunlock", |issuer| {
        let alice = customer_with_wallet(issuer, "alice", 0, 0);
        let bob = customer_with_wallet(issuer, "bob", 0, 0);
        let id = alice.wallet_id();
        // Nothing to approve before the wallet asks.
        assert!(matches!(
            issuer.approve_pin_unlock(&id, T0),
            Err(IssuerError::InvalidInput(_))
        ));
        // Refusals: another wallet's grant, a grant not signed by the
        // wallet key, an unknown wallet, garbage.
        assert!(matches!(
            issuer.pin_locked_request(&pin_locked_request(&bob, id, 5, [1; 16]), T0),
            Err(IssuerError::InvalidInput(_))
        ));
        let forged_grant = {
            use offpay_protocol::messages::{PinLockedRequest, PinUnlockGrant};
            let r = bob.pin_recovery().unwrap();
            let key =
                offpay_protocol::SigningKey::from_seed(Suite::Ed25519, &r.unlock_seed).unwrap();
            let grant = Signed::<PinUnlockGrant>::decode(&r.grant).unwrap();
            // Bob's unlock key, claimed for Alice, signed by the unlock key itself.
            let claimed = Signed::sign(
                PinUnlockGrant {
                    wallet: id,
                    unlock_key: grant.body().unlock_key,
                },
                &key,
            );
            Signed::sign(
                PinLockedRequest {
                    wallet: id,
                    attempts: 5,
                    nonce: offpay_protocol::Nonce([1; 16]),
                    time: T0,
                    grant: claimed.into_bytes(),
                },
                &key,
            )
            .into_bytes()
        };
        assert!(matches!(
            issuer.pin_locked_request(&forged_grant, T0),
            Err(IssuerError::BadSignature(_))
        ));
        let stranger = Wallet::create(
            MemoryVault::new(),
            Suite::Ed25519,
            issuer.root_certificate().der(),
            T0,
        )
        .unwrap();
        assert!(
            stranger.pin_recovery().is_err(),
            "not enrolled: no recovery"
        );
        assert!(matches!(
            issuer.pin_locked_request(b"garbage", T0),
            Err(IssuerError::Malformed(_))
        ));
        assert_eq!(issuer.pin_unlock_request(&id).unwrap(), None);

        // The request waits for the operator; asking again is the same request.
        let req = pin_locked_request(&alice, id, 5, [7; 16]);
        let first = issuer.pin_locked_request(&req, T0.plus(1)).unwrap();
        let PinUnlockAnswer::Pending(p) = first else {
            panic!("{first:?}")
        };
        assert_eq!((p.attempts, p.requested, p.approved), (5, T0.plus(1), None));
        assert_eq!(
            issuer.pin_locked_request(&req, T0.plus(2)).unwrap(),
            PinUnlockAnswer::Pending(p)
        );
        // Approved: the unlock, signed by the issuer CA, bound to the request.
        let approved = issuer.approve_pin_unlock(&id, T0.plus(3)).unwrap();
        assert_eq!(approved.approved, Some(T0.plus(3)));
        let PinUnlockAnswer::Unlocked(bytes) = issuer.pin_locked_request(&req, T0.plus(4)).unwrap()
        else {
            panic!("not unlocked")
        };
        let unlock = Signed::<PinUnlock>::decode(&bytes).unwrap();
        unlock
            .verify(issuer.issuer_certificate().public_key())
            .unwrap();
        assert_eq!(
            unlock.body(),
            &PinUnlock {
                wallet: id,
                attempts: 5,
                nonce: offpay_protocol::Nonce([7; 16]),
                issued: T0.plus(3),
            }
        );
        // A new lockout (new nonce) needs a new approval.
        let next = pin_locked_request(&alice, id, 5, [8; 16]);
        assert!(matches!(
            issuer.pin_locked_request(&next, T0.plus(5)).unwrap(),
            PinUnlockAnswer::Pending(_)
        ));
        // A revoked wallet is not unlocked; no money moved at any point.
        issuer
            .revoke(
                &id,
                offpay_protocol::pki::RevocationReason::KeyCompromise,
                "lost",
                T0.plus(6),
            )
            .unwrap();
        assert!(matches!(
            issuer.approve_pin_unlock(&id, T0.plus(7)),
            Err(IssuerError::WalletNotActive { .. })
        ));
        assert!(matches!(
            issuer.pin_locked_request(&next, T0.plus(7)),
            Err(IssuerError::WalletNotActive { .. })
        ));
        assert_invariants(issuer);
    });
}

// ---- receive-only merchant terminals ------------------------------------------

/// A terminal enrolled for customer `merchant` (a terminal enrollment token).
fn terminal_for(issuer: &Issuer<AnyStore>, merchant: &str) -> Wallet<MemoryVault> {
    issuer.create_customer(merchant, merchant, T0).unwrap();
    let till = enrolled_wallet(issuer, merchant, WalletProfile::Terminal, Suite::Ed25519);
    assert_eq!(till.profile(), WalletProfile::Terminal);
    till
}

#[test]
fn a_terminal_takes_from_many_wallets_and_sweeps_to_the_merchant_at_sync() {
    on_every_backend("terminal_sweep", |issuer| {
        let mut till = terminal_for(issuer, "shop");
        let mut buyers: Vec<_> = (0..6)
            .map(|n| customer_with_wallet(issuer, &format!("buyer{n}"), 5_000, 3_000))
            .collect();
        // A personal token still enrolls a personal wallet.
        assert_eq!(buyers[0].profile(), WalletProfile::Personal);
        let mut taken = 0;
        for (n, buyer) in buyers.iter_mut().enumerate() {
            let amount = 250 + 100 * n as u64;
            pay(buyer, &mut till, amount, T0.plus(10 + n as u64));
            taken += amount;
        }
        // Some payers sync before the terminal, some after: the result is the same.
        for buyer in buyers.iter_mut().take(3) {
            sync(issuer, buyer, T0.plus(50));
        }
        let out = sync(issuer, &mut till, T0.plus(60));
        assert_eq!(out.locked, None);
        for buyer in buyers.iter_mut().skip(3) {
            sync(issuer, buyer, T0.plus(70));
        }
        // The default policy's float is 0: everything went to the shop's account.
        assert_eq!(till.balance().unwrap().minor, 0);
        assert_eq!(issuer.customer_balance("shop").unwrap(), taken as i64);
        assert_eq!(sub(issuer, &till), 0);
        assert_invariants(issuer);
        // The answer to the same report again credits nothing twice.
        let again = till.sync_report(T0.plus(80)).unwrap();
        sync_bytes_twice(issuer, &again, T0.plus(80));
        till.apply_sync_response(
            &issuer.sync(&again, T0.plus(80)).unwrap().response,
            T0.plus(80),
        )
        .unwrap();
        assert_eq!(issuer.customer_balance("shop").unwrap(), taken as i64);
        // Past half its validity the certificate is renewed: still a terminal.
        let later = T0.plus(16 * 86_400);
        sync(issuer, &mut buyers[0], later);
        pay(&mut buyers[0], &mut till, 100, later);
        let old_cert = till.certificate().unwrap().clone();
        sync(issuer, &mut till, T0.plus(16 * 86_400 + 1));
        let renewed = till.certificate().unwrap();
        assert_ne!(renewed, &old_cert);
        assert_eq!(renewed.wallet_profile(), WalletProfile::Terminal);
        assert_eq!(issuer.customer_balance("shop").unwrap(), taken as i64 + 100);
        assert_invariants(issuer);
        let inv = issuer.invariants().unwrap();
        assert_eq!(inv.supply, 6 * 5_000, "money entered only by the deposits");
    });
}

fn sync_bytes_twice(issuer: &Issuer<AnyStore>, report: &[u8], now: UnixSeconds) {
    let first = issuer.sync(report, now).unwrap();
    let second = issuer.sync(report, now).unwrap();
    assert_eq!(first.response, second.response);
    assert!(second.replayed);
}

/// A wallet key held by the test, enrolled at the real issuer with a token
/// of `profile`: it signs what an intact TA never would.
struct RawWallet {
    key: SigningKey,
    id: WalletId,
    cert: Vec<u8>,
}

fn raw_wallet(
    issuer: &Issuer<AnyStore>,
    customer: &str,
    profile: WalletProfile,
    seed: u8,
) -> RawWallet {
    issuer.create_customer(customer, customer, T0).unwrap();
    let token = issuer
        .create_enrollment_token_for(customer, profile, T0)
        .unwrap();
    let key = SigningKey::from_seed(Suite::Ed25519, &[seed; 32]).unwrap();
    let id = WalletId([seed; 16]);
    let e = issuer
        .enroll(&token, &pki::build_csr(&key, id).unwrap(), T0)
        .unwrap();
    RawWallet {
        key,
        id,
        cert: e.certificate,
    }
}

impl RawWallet {
    /// This wallet's first chain entry: a payment of `minor` to `payee`.
    fn payment(&self, issuer: &Issuer<AnyStore>, payee: WalletId, minor: u64) -> Signed<Payment> {
        Signed::sign(
            Payment {
                payer: self.id,
                seq: 1,
                prev: Hash32::ZERO,
                payee,
                amount: eur(minor),
                nonce: Nonce([7; 16]),
                time: T0.plus(5),
                payer_cert: CertField::Inline(self.cert.clone()),
                payee_issuer: issuer.issuer_certificate().subject_issuer_id(),
            },
            &self.key,
        )
    }

    /// Its first report: `outgoing`, `incoming`, the loads 1..=`loads`, the balance.
    fn report(
        &self,
        outgoing: &[&Signed<Payment>],
        incoming: &[&Signed<Payment>],
        loads: u64,
        balance: u64,
    ) -> Vec<u8> {
        let (seq, head) = match outgoing.last() {
            Some(p) => (p.body().seq, p.payload_hash()),
            None => (0, Hash32::ZERO),
        };
        Signed::sign(
            SyncReport {
                csr: None,
                key_generation: 0,
                key_since: 1,
                crl_number: None,
                wallet: self.id,
                report_seq: 1,
                time: T0.plus(6),
                base_checkpoint: 0,
                outgoing: outgoing.iter().map(|p| p.bytes().to_vec()).collect(),
                incoming: incoming.iter().map(|p| p.bytes().to_vec()).collect(),
                loads: (1..=loads).collect(),
                balance: eur(balance),
                seq,
                head,
                load_seq: loads,
                evidence: Vec::new(),
                locked: false,
                directory_version: 0,
            },
            &self.key,
        )
        .into_bytes()
    }
}

/// A terminal key outside any TA pays a (likewise compromised) personal
/// wallet. Whichever reports it first, the payment settles to the payee
/// (finality, from the terminal's own sub-account) and the terminal is
/// locked: by its own report (`terminal_payment`) or by the payee's
/// (`terminal_paid`).
#[test]
fn an_outgoing_payment_of_a_terminal_settles_and_locks_the_terminal() {
    for terminal_first in [true, false] {
        on_every_backend("terminal_payment", |issuer| {
            let till = raw_wallet(issuer, "shop", WalletProfile::Terminal, 0x71);
            let payee = raw_wallet(issuer, "eve", WalletProfile::Personal, 0x72);
            issuer.deposit("shop", eur(1_000), "dep-shop", T0).unwrap();
            issuer.load(&till.id, eur(1_000), "load-shop", T0).unwrap();
            let payment = till.payment(issuer, payee.id, 300);
            let own = till.report(&[&payment], &[], 1, 700);
            let payees = payee.report(&[], &[&payment], 0, 300);
            let (first, second) = if terminal_first {
                (&own, &payees)
            } else {
                (&payees, &own)
            };
            let out = issuer.sync(first, T0.plus(7)).unwrap();
            if terminal_first {
                assert_eq!(
                    out.locked,
                    Some(LockReason::Report(vec![ReportProblem::TerminalPayment {
                        seq: 1
                    }]))
                );
                assert_eq!(
                    out.locked.as_ref().unwrap().problems()[0].code(),
                    "terminal_payment"
                );
            } else {
                assert_eq!(out.locked, None, "the payee is not at fault");
                let rec = issuer.wallet(&till.id).unwrap();
                assert_eq!(rec.state, WalletState::Locked);
                assert_eq!(
                    rec.reason.as_deref(),
                    Some(LockReason::TerminalPaid { seq: 1 }.to_string().as_str())
                );
            }
            issuer.sync(second, T0.plus(8)).unwrap();
            assert_eq!(issuer.wallet(&till.id).unwrap().state, WalletState::Locked);
            assert_eq!(issuer.wallet_balance(&payee.id).unwrap(), 300);
            assert_eq!(issuer.wallet_balance(&till.id).unwrap(), 700);
            assert_eq!(issuer.customer_balance("shop").unwrap(), 0);
            assert_invariants(issuer);
        });
    }
}
