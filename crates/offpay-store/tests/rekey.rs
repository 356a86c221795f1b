//! Re-keying at sync, on SQLite and on PostgreSQL: the issuer tells wallets
//! to make a new key (the policy's required suite, or an operator's
//! request), the wallet sends its CSR in the next report and gets the new
//! certificate in that report's response; its chain continues under the new
//! key, and every entry verifies under the certificate of the key that
//! signed it.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_issuer::{Issuer, IssuerConfig, IssuerError};
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{Payment, SuiteRequirement};
use offpay_protocol::pki::Certificate;
use offpay_protocol::{Currency, Suite, UnixSeconds};
use offpay_store::AnyStore;
use offpay_test_support::postgres::Schema;
use offpay_test_support::{eur, pay};
use offpay_wallet::vault::MemoryVault;
use offpay_wallet::{Wallet, WalletError};

mod common;
use common::{T0, customer_with_wallet, sync};

const MASTER: [u8; 32] = [7u8; 32];
/// From this time keys of another suite than ML-DSA-44 neither pay nor are accepted.
const CUTOVER: UnixSeconds = UnixSeconds(T0.0 + 10_000);

fn config(required: Option<SuiteRequirement>) -> IssuerConfig {
    let mut c = IssuerConfig::default_for(Currency::new("EUR").unwrap());
    c.policy.required_suite = required;
    c
}

/// Run `f` on SQLite (a temporary file) and on PostgreSQL (a fresh schema).
fn on_every_backend(name: &str, cfg: &IssuerConfig, f: impl Fn(&Issuer<AnyStore>)) {
    let dir = tempfile::tempdir().unwrap();
    let store = offpay_store::open_sqlite(&dir.path().join("offpay.sqlite")).unwrap();
    let issuer = Issuer::init(store, &MASTER, cfg, T0).unwrap();
    eprintln!("[{name}] sqlite");
    f(&issuer);
    let Some(guard) = Schema::fresh(name) else {
        return;
    };
    let store = offpay_store::open_postgres_schema(&guard.url, &guard.name).unwrap();
    let issuer = Issuer::init(store, &MASTER, cfg, T0).unwrap();
    eprintln!("[{name}] postgres schema {}", guard.name);
    f(&issuer);
}

fn assert_books<'a>(
    issuer: &Issuer<AnyStore>,
    wallets: impl IntoIterator<Item = &'a Wallet<MemoryVault>>,
) {
    let inv = issuer.invariants().unwrap();
    assert!(inv.ok, "invariants violated: {:?}", inv.violations);
    for w in wallets {
        assert_eq!(
            issuer.wallet_balance(&w.wallet_id()).unwrap(),
            w.balance().unwrap().minor as i64,
            "issuer and wallet agree"
        );
    }
}

fn cert_of(w: &Wallet<MemoryVault>) -> Certificate {
    w.certificate().unwrap().clone()
}

/// A population of Ed25519 wallets moves to ML-DSA-44 across two syncs
/// while it keeps paying: the first sync asks for the key, the second
/// carries the CSR and brings the certificate. One wallet pays between
/// making its report and applying the response (its old key signs that
/// entry). The new key's first entry links to the old key's last; each
/// verifies under its own certificate; every payment settles once and the
/// books balance. After the cut-over date a wallet still on Ed25519 can
/// neither pay nor be paid.
#[test]
fn a_population_moves_from_ed25519_to_ml_dsa_while_it_pays() {
    let cfg = config(Some(SuiteRequirement {
        suite: Suite::MlDsa44,
        from: CUTOVER,
    }));
    on_every_backend("rekey_population", &cfg, |issuer| {
        const N: usize = 4;
        let mut ws: Vec<Wallet<MemoryVault>> = (0..N)
            .map(|i| customer_with_wallet(issuer, &format!("c{i}"), 20_000, 20_000))
            .collect();
        // A straggler that never syncs during the migration.
        let mut late = customer_with_wallet(issuer, "late", 5_000, 5_000);
        let ring = |ws: &mut Vec<Wallet<MemoryVault>>, minor: u64, t: UnixSeconds| {
            let mut out = Vec::new();
            for i in 0..N {
                let (a, b) = (i, (i + 1) % N);
                let (pa, pb) = if a < b {
                    let (l, r) = ws.split_at_mut(b);
                    (&mut l[a], &mut r[0])
                } else {
                    let (l, r) = ws.split_at_mut(a);
                    (&mut r[0], &mut l[b])
                };
                out.push(pay(pa, pb, minor, t));
            }
            out
        };
        // Round 1: pay, then sync: every response asks for an ML-DSA-44 key.
        ring(&mut ws, 100, T0.plus(100));
        for w in &mut ws {
            let report = w.sync_report(T0.plus(110)).unwrap();
            let out = issuer.sync(&report, T0.plus(110)).unwrap();
            let applied = w.apply_sync_response(&out.response, T0.plus(110)).unwrap();
            assert_eq!(applied.rekey_started, Some(Suite::MlDsa44));
            assert_eq!(applied.rekeyed, None);
            assert_eq!(
                w.public_key().suite(),
                Suite::Ed25519,
                "keeps its key meanwhile"
            );
        }
        // Round 2: still Ed25519 payments; the sync carries the CSR.
        let old_certs: Vec<Certificate> = ws.iter().map(cert_of).collect();
        let last_old = ring(&mut ws, 200, T0.plus(200));
        let mut between = None;
        for i in 0..N {
            let report = ws[i].sync_report(T0.plus(210)).unwrap();
            if i == 0 {
                // Wallet 0 pays wallet 1 after making its report: that entry
                // is signed by the old key, after the report's seq.
                let (l, r) = ws.split_at_mut(1);
                between = Some(pay(&mut l[0], &mut r[0], 50, T0.plus(205)));
            }
            let out = issuer.sync(&report, T0.plus(210)).unwrap();
            let applied = ws[i]
                .apply_sync_response(&out.response, T0.plus(210))
                .unwrap();
            assert_eq!(applied.rekeyed, Some(Suite::MlDsa44), "wallet {i}");
            assert_eq!(ws[i].public_key().suite(), Suite::MlDsa44);
            assert_eq!(cert_of(&ws[i]).suite(), Suite::MlDsa44);
            let rec = issuer.wallet(&ws[i].wallet_id()).unwrap();
            assert_eq!(rec.key_generation, 1);
            assert_eq!(rec.rekey_suite, None);
        }
        // Round 3: the new keys pay; the chains continue.
        let first_new = ring(&mut ws, 300, T0.plus(300));
        for i in 0..N {
            let old = Signed::<Payment>::decode(if i == 0 {
                between.as_ref().unwrap()
            } else {
                &last_old[i]
            })
            .unwrap();
            let new = Signed::<Payment>::decode(&first_new[i]).unwrap();
            assert_eq!(new.body().seq, old.body().seq + 1, "wallet {i}");
            assert_eq!(
                new.body().prev,
                old.payload_hash(),
                "linked to the old key's last"
            );
            old.verify(old_certs[i].public_key()).unwrap();
            new.verify(cert_of(&ws[i]).public_key()).unwrap();
            assert!(new.verify(old_certs[i].public_key()).is_err());
        }
        for w in &mut ws {
            let out = sync(issuer, w, T0.plus(400));
            assert!(out.double_spends.is_empty());
        }
        // A second round of syncs settles what the payees reported first.
        for w in &mut ws {
            sync(issuer, w, T0.plus(500));
        }
        assert_books(issuer, &ws);

        after_the_cutover(issuer, &mut ws, &mut late);
    });
}

/// After the cut-over the straggler (still Ed25519) can neither pay nor be
/// paid; its next two syncs re-key it and it pays again.
fn after_the_cutover(
    issuer: &Issuer<AnyStore>,
    ws: &mut [Wallet<MemoryVault>],
    late: &mut Wallet<MemoryVault>,
) {
    // After the cut-over the straggler (still Ed25519) cannot pay...
    let req = ws[0].request(eur(10), 60, CUTOVER.plus(1)).unwrap();
    let before = late.balance().unwrap();
    assert_eq!(
        late.pay(&req, CUTOVER.plus(1)).unwrap_err(),
        WalletError::SuiteRetired {
            suite: Suite::Ed25519,
            required: Suite::MlDsa44,
        }
    );
    assert_eq!(late.balance().unwrap(), before, "nothing moved");
    // ...and a payment it made just before is refused after it, with the
    // payee unchanged.
    let req = ws[1]
        .request(eur(10), 60, UnixSeconds(CUTOVER.0 - 30))
        .unwrap();
    let p = late.pay(&req, UnixSeconds(CUTOVER.0 - 20)).unwrap();
    let payee_before = ws[1].balance().unwrap();
    assert_eq!(
        ws[1].receive(&p, CUTOVER.plus(5)).unwrap_err(),
        WalletError::SuiteRetired {
            suite: Suite::Ed25519,
            required: Suite::MlDsa44,
        }
    );
    assert_eq!(ws[1].balance().unwrap(), payee_before);
    // Its next sync asks it to re-key too.
    let report = late.sync_report(CUTOVER.plus(10)).unwrap();
    let out = issuer.sync(&report, CUTOVER.plus(10)).unwrap();
    let applied = late
        .apply_sync_response(&out.response, CUTOVER.plus(10))
        .unwrap();
    assert_eq!(applied.rekey_started, Some(Suite::MlDsa44));
    let report = late.sync_report(CUTOVER.plus(20)).unwrap();
    let out = issuer.sync(&report, CUTOVER.plus(20)).unwrap();
    let applied = late
        .apply_sync_response(&out.response, CUTOVER.plus(20))
        .unwrap();
    assert_eq!(applied.rekeyed, Some(Suite::MlDsa44));
    pay(late, &mut ws[2], 10, CUTOVER.plus(30));
    let mut stranded = 0;
    for w in ws.iter_mut().chain(std::iter::once(&mut *late)) {
        stranded += sync(issuer, w, CUTOVER.plus(100)).stranded.minor;
    }
    // The refused payment settles to its payee at the issuer (the payer's
    // chain carries it; its payee's TA never held it): exactly that
    // amount is stranded (issue 15 returns it), and the rest agrees.
    assert_eq!(stranded, 10);
    let inv = issuer.invariants().unwrap();
    assert!(inv.ok, "invariants violated: {:?}", inv.violations);
    for (i, w) in ws.iter().chain(std::iter::once(&*late)).enumerate() {
        let gap = if i == 1 { 10 } else { 0 };
        assert_eq!(
            issuer.wallet_balance(&w.wallet_id()).unwrap(),
            w.balance().unwrap().minor as i64 + gap,
            "wallet {i}"
        );
    }
}

/// An operator asks one wallet for a new key in the same suite. The old
/// key's report that carried the CSR replays to the same response; the
/// re-keyed wallet pays and redeems under its new key.
#[test]
fn an_operator_re_keys_a_wallet_in_the_same_suite() {
    on_every_backend("rekey_operator", &config(None), |issuer| {
        let mut a = customer_with_wallet(issuer, "a", 10_000, 10_000);
        let mut b = customer_with_wallet(issuer, "b", 0, 0);
        pay(&mut a, &mut b, 1_000, T0.plus(10));
        let applied_none = sync(issuer, &mut a, T0.plus(20));
        assert!(applied_none.double_spends.is_empty());
        let old_key = a.public_key();
        issuer
            .request_rekey(&a.wallet_id(), Some(Suite::Ed25519))
            .unwrap();
        let report = a.sync_report(T0.plus(30)).unwrap();
        let out = issuer.sync(&report, T0.plus(30)).unwrap();
        let applied = a.apply_sync_response(&out.response, T0.plus(30)).unwrap();
        assert_eq!(applied.rekey_started, Some(Suite::Ed25519));
        pay(&mut a, &mut b, 500, T0.plus(35));
        let report = a.sync_report(T0.plus(40)).unwrap();
        let out = issuer.sync(&report, T0.plus(40)).unwrap();
        // The same report again: the same response (the certificate in it).
        let again = issuer.sync(&report, T0.plus(41)).unwrap();
        assert!(again.replayed);
        assert_eq!(again.response, out.response);
        let applied = a.apply_sync_response(&out.response, T0.plus(40)).unwrap();
        assert_eq!(applied.rekeyed, Some(Suite::Ed25519));
        assert_ne!(a.public_key(), old_key);
        let rec = issuer.wallet(&a.wallet_id()).unwrap();
        assert_eq!(rec.key_generation, 1);
        assert!(rec.prev_cert_der.is_some());
        // The re-keyed wallet pays and redeems under its new key.
        pay(&mut a, &mut b, 700, T0.plus(50));
        let r = a.redeem(eur(100), T0.plus(55)).unwrap();
        issuer.redeem(&r, T0.plus(55)).unwrap();
        sync(issuer, &mut a, T0.plus(60));
        sync(issuer, &mut b, T0.plus(60));
        assert_books(issuer, [&a, &b]);
    });
}

/// The issuer refuses a report whose key generation it does not hold, with
/// a specific error, and records nothing.
#[test]
fn a_report_of_an_unknown_key_generation_is_refused() {
    on_every_backend("rekey_unknown_generation", &config(None), |issuer| {
        let mut alice = customer_with_wallet(issuer, "a", 10_000, 10_000);
        let mut bob = customer_with_wallet(issuer, "b", 0, 0);
        pay(&mut alice, &mut bob, 1_000, T0.plus(10));
        let report = alice.sync_report(T0.plus(20)).unwrap();
        let mut r = Signed::<offpay_protocol::messages::SyncReport>::decode(&report)
            .unwrap()
            .body()
            .clone();
        r.key_generation = 3;
        // Signed with a key the issuer never certified: refused on the generation first.
        let key = offpay_protocol::SigningKey::generate(Suite::Ed25519).unwrap();
        let forged = Signed::sign(r, &key).into_bytes();
        match issuer.sync(&forged, T0.plus(20)) {
            Err(e @ IssuerError::InvalidInput(_)) => {
                assert!(e.to_string().contains("key generation 3"), "{e}");
            }
            other => panic!("expected the key generation refusal, got {other:?}"),
        }
        assert_eq!(issuer.wallet(&alice.wallet_id()).unwrap().report_seq, 0);
        let out = issuer.sync(&report, T0.plus(21)).unwrap();
        alice
            .apply_sync_response(&out.response, T0.plus(21))
            .unwrap();
        assert_books(issuer, [&alice]);
    });
}

/// A crash at each point of the commit that installs the new key (and of
/// the one that makes it), then a restart and a reopen of the wallet: the
/// wallet is either before the step (its report still pending, the same
/// response applies again) or after it, never in between; its pending key
/// survives the reopen (the CSR certifies the key it then signs with); it
/// pays under its new key and the books balance.
#[test]
fn a_crash_while_re_keying_leaves_the_old_key_or_the_new_one() {
    use offpay_wallet::vault::CrashPoint;
    on_every_backend("rekey_crash", &config(None), |issuer| {
        let points = [
            CrashPoint::BeforeWrite,
            CrashPoint::AfterStateWrite,
            CrashPoint::AfterCounter,
        ];
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        for (n, point) in points.into_iter().enumerate() {
            let name = format!("w{n}");
            let t = T0.plus(1_000 * n as u64);
            let mut w = customer_with_wallet(issuer, &name, 5_000, 5_000);
            pay(&mut w, &mut bob, 100, t.plus(1));
            issuer
                .request_rekey(&w.wallet_id(), Some(Suite::MlDsa44))
                .unwrap();
            let old_key = w.public_key();
            // 1. The response that asks for the key: crash while applying it.
            let report = w.sync_report(t.plus(2)).unwrap();
            let out = issuer.sync(&report, t.plus(2)).unwrap();
            let mut vault = w.into_vault();
            vault.fail_commit_at_with(0, point);
            let mut w = Wallet::open(vault).unwrap();
            assert!(w.apply_sync_response(&out.response, t.plus(2)).is_err());
            let mut vault = w.into_vault();
            vault.restart();
            let mut w = Wallet::open(vault).unwrap();
            if point == CrashPoint::BeforeWrite {
                let applied = w.apply_sync_response(&out.response, t.plus(2)).unwrap();
                assert_eq!(applied.rekey_started, Some(Suite::MlDsa44));
            }
            // 2. The CSR goes out; the response with the certificate crashes.
            let report = w.sync_report(t.plus(3)).unwrap();
            let out = issuer.sync(&report, t.plus(3)).unwrap();
            let mut vault = w.into_vault();
            vault.fail_commit_at_with(0, point);
            let mut w = Wallet::open(vault).unwrap();
            assert!(w.apply_sync_response(&out.response, t.plus(3)).is_err());
            assert_eq!(
                w.public_key(),
                old_key,
                "{point:?}: no switch before the commit"
            );
            let mut vault = w.into_vault();
            vault.restart();
            let mut w = Wallet::open(vault).unwrap();
            if point == CrashPoint::BeforeWrite {
                assert_eq!(w.public_key(), old_key);
                let applied = w.apply_sync_response(&out.response, t.plus(3)).unwrap();
                assert_eq!(applied.rekeyed, Some(Suite::MlDsa44));
            }
            assert_eq!(w.public_key().suite(), Suite::MlDsa44, "{point:?}");
            assert_eq!(
                w.public_key(),
                *cert_of(&w).public_key(),
                "{point:?}: signs with the certified key"
            );
            pay(&mut w, &mut bob, 200, t.plus(4));
            sync(issuer, &mut w, t.plus(5));
            sync(issuer, &mut bob, t.plus(5));
            assert_books(issuer, [&w, &bob]);
        }
    });
}
