//! Compact revocation on SQLite and on PostgreSQL: a sync answers the CRL
//! number the wallet holds with a delta CRL of exactly what changed since
//! (nothing when nothing did, the complete CRL when the wallet holds none or
//! asks for it), a revoked certificate leaves the CRL once it has expired,
//! and a payee that only ever got deltas still refuses a revoked payer.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_issuer::{Issuer, IssuerConfig};
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{SyncReport, SyncResponse};
use offpay_protocol::pki::{CRL_DELTAS_HELD_MAX, Crl, DeltaCrl, RevocationReason, WalletProfile};
use offpay_protocol::{Currency, Suite, UnixSeconds};
use offpay_store::AnyStore;
use offpay_test_support::postgres::Schema;
use offpay_test_support::{eur, pay};
use offpay_wallet::WalletError;
use offpay_wallet::vault::MemoryVault;

mod common;
use common::{T0, customer_with_wallet};

// `common::sync` is for the other suites; this one reads the CRL part too.
#[allow(dead_code)]
fn _common_sync_is_shared() -> fn(
    &Issuer<AnyStore>,
    &mut offpay_wallet::Wallet<MemoryVault>,
    UnixSeconds,
) -> offpay_issuer::SyncOutcome {
    common::sync
}

const MASTER: [u8; 32] = [9u8; 32];
const DAY: u64 = 86_400;
/// Certificates live 8 days here: a wallet syncing every 2 days renews its own.
const VALIDITY: u64 = 8 * DAY;

fn at(hours: u64) -> UnixSeconds {
    T0.plus(hours * 3600)
}

/// Run `f` on SQLite (a temporary file) and on PostgreSQL (a fresh schema).
fn on_every_backend(name: &str, f: impl Fn(&Issuer<AnyStore>)) {
    let mut cfg = IssuerConfig::default_for(Currency::new("EUR").unwrap());
    cfg.policy.cert_validity_seconds = VALIDITY;
    let dir = tempfile::tempdir().unwrap();
    let store = offpay_store::open_sqlite(&dir.path().join("offpay.sqlite")).unwrap();
    let issuer = Issuer::init(store, &MASTER, &cfg, T0).unwrap();
    eprintln!("[{name}] sqlite");
    f(&issuer);
    let Some(guard) = Schema::fresh(name) else {
        return;
    };
    let store = offpay_store::open_postgres_schema(&guard.url, &guard.name).unwrap();
    let issuer = Issuer::init(store, &MASTER, &cfg, T0).unwrap();
    eprintln!("[{name}] postgres schema {}", guard.name);
    f(&issuer);
}

/// What a sync brought: the report's CRL number, the response's complete
/// CRL and delta CRL (parsed).
struct CrlPart {
    held: Option<u64>,
    full: Option<Crl>,
    delta: Option<DeltaCrl>,
}

fn sync(
    issuer: &Issuer<AnyStore>,
    w: &mut offpay_wallet::Wallet<MemoryVault>,
    now: UnixSeconds,
) -> CrlPart {
    let report = w.sync_report(now).unwrap();
    let held = Signed::<SyncReport>::decode(&report)
        .unwrap()
        .body()
        .crl_number;
    let out = issuer.sync(&report, now).unwrap();
    w.apply_sync_response(&out.response, now).unwrap();
    let r = Signed::<SyncResponse>::decode(&out.response).unwrap();
    let r = r.body();
    CrlPart {
        held,
        full: r.crl.as_deref().map(|d| Crl::from_der(d).unwrap()),
        delta: r
            .crl_delta
            .as_deref()
            .map(|d| DeltaCrl::from_der(d).unwrap()),
    }
}

/// A customer `id` with a wallet enrolled at `now` (its certificate valid from then).
fn wallet_enrolled_at(
    issuer: &Issuer<AnyStore>,
    id: &str,
    now: UnixSeconds,
) -> offpay_wallet::Wallet<MemoryVault> {
    issuer.create_customer(id, id, now).unwrap();
    let token = issuer
        .create_enrollment_token_for(id, WalletProfile::Personal, now)
        .unwrap();
    let mut w = offpay_wallet::Wallet::create(
        MemoryVault::new(),
        Suite::Ed25519,
        issuer.root_certificate().der(),
        now,
    )
    .unwrap();
    let e = issuer.enroll(&token, &w.csr().unwrap(), now).unwrap();
    w.enroll(
        &e.issuer_certificate,
        &e.certificate,
        &e.policy,
        Some(&e.crl),
        now,
    )
    .unwrap();
    w
}

fn serial(issuer: &Issuer<AnyStore>, w: &offpay_wallet::Wallet<MemoryVault>) -> u64 {
    issuer.wallet(&w.wallet_id()).unwrap().cert_serial
}

fn revoke(
    issuer: &Issuer<AnyStore>,
    w: &offpay_wallet::Wallet<MemoryVault>,
    reason: RevocationReason,
    now: UnixSeconds,
) {
    issuer.revoke(&w.wallet_id(), reason, "test", now).unwrap();
}

fn serials(d: &DeltaCrl) -> Vec<u64> {
    d.revoked().iter().map(|e| e.serial).collect()
}

/// Wallets are revoked, others sync: each delta carries exactly the
/// revocations since the number the wallet holds, nothing comes when
/// nothing changed, a wallet that enrolled later holds the current CRL; the
/// payee, which got deltas only, refuses the revoked payers offline; once a
/// revoked certificate has expired it leaves the CRL (a removeFromCRL entry
/// in the next delta, gone from the complete CRL).
#[test]
fn deltas_carry_what_changed_and_expired_revocations_leave() {
    on_every_backend("crl_deltas", |issuer| {
        let mut payee = customer_with_wallet(issuer, "payee", 0, 0);
        let mut alice = customer_with_wallet(issuer, "a", 10_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "b", 10_000, 5_000);
        let mut carol = customer_with_wallet(issuer, "c", 10_000, 5_000);
        let (sa, sb, sc) = (
            serial(issuer, &alice),
            serial(issuer, &bob),
            serial(issuer, &carol),
        );
        assert_eq!(payee.crl_state().unwrap().number(), 1);

        // Nothing revoked yet: nothing to send.
        let got = sync(issuer, &mut payee, at(1));
        assert_eq!(got.held, Some(1));
        assert!(got.full.is_none() && got.delta.is_none());

        revoke(issuer, &alice, RevocationReason::KeyCompromise, at(2));
        let got = sync(issuer, &mut payee, at(3));
        let delta = got.delta.expect("a delta on CRL 1");
        assert!(got.full.is_none());
        assert_eq!((delta.base_number(), delta.number()), (1, 2));
        assert_eq!(serials(&delta), [sa]);
        assert!(delta.removed().is_empty());
        assert_eq!(delta.revoked()[0].reason, RevocationReason::KeyCompromise);
        assert_eq!(payee.crl_state().unwrap().number(), 2);

        let got = sync(issuer, &mut payee, at(4));
        assert_eq!(got.held, Some(2));
        assert!(got.full.is_none() && got.delta.is_none());

        revoke(issuer, &bob, RevocationReason::KeyCompromise, at(5));
        revoke(
            issuer,
            &carol,
            RevocationReason::CessationOfOperation,
            at(6),
        );
        // A wallet enrolled now holds CRL 4 and needs nothing.
        let mut late = customer_with_wallet(issuer, "late", 10_000, 5_000);
        assert_eq!(late.crl_state().unwrap().number(), 4);
        let got = sync(issuer, &mut late, at(7));
        assert!(got.full.is_none() && got.delta.is_none());

        let got = sync(issuer, &mut payee, at(7));
        let delta = got.delta.expect("a delta on CRL 2");
        assert_eq!((delta.base_number(), delta.number()), (2, 4));
        assert!(sb < sc);
        assert_eq!(serials(&delta), [sb, sc]);
        assert!(delta.removed().is_empty());
        assert_eq!(payee.crl_state().unwrap().deltas().len(), 2);
        assert_eq!(
            payee.crl_state().unwrap().entries().len(),
            Crl::from_der(&issuer.crl().unwrap())
                .unwrap()
                .entries()
                .len()
        );

        // The payee, holding CRL 1 and two deltas, refuses every revoked payer.
        for (w, s) in [(&mut alice, sa), (&mut bob, sb), (&mut carol, sc)] {
            let req = payee.request(eur(100), 300, at(8)).unwrap();
            let payment = w.pay(&req, at(8)).unwrap();
            assert_eq!(
                payee.receive(&payment, at(8)).unwrap_err(),
                WalletError::PeerRevoked { serial: s }
            );
        }
        pay(&mut late, &mut payee, 100, at(8));

        // Days pass, the payee and the late wallet keep syncing (and renewing).
        for day in 1..=2 {
            let got = sync(issuer, &mut payee, at(8 + day * 48));
            assert!(got.full.is_none() && got.delta.is_none(), "day {day}");
            sync(issuer, &mut late, at(8 + day * 48));
        }
        // Four wallets enrolled on day 5 (certificates until day 13), revoked at once.
        let mut xs = Vec::new();
        for k in 0..4 {
            let x = wallet_enrolled_at(issuer, &format!("x{k}"), at(122));
            xs.push(serial(issuer, &x));
            revoke(issuer, &x, RevocationReason::KeyCompromise, at(123));
        }
        let got = sync(issuer, &mut payee, at(124));
        let delta = got.delta.expect("a delta with the four");
        assert_eq!((delta.base_number(), delta.number()), (4, 8));
        assert_eq!(serials(&delta), xs);
        sync(issuer, &mut late, at(124));
        // Past the revoked certificates' notAfter (T0 + 8 days): they leave.
        let now = at(8 * 24 + 10);
        let got = sync(issuer, &mut payee, now);
        let delta = got.delta.expect("a delta dropping the expired");
        assert_eq!((delta.base_number(), delta.number()), (8, 9));
        assert!(delta.revoked().is_empty());
        let mut gone = vec![sa, sb, sc];
        gone.sort_unstable();
        assert_eq!(delta.removed(), gone);
        let crl = Crl::from_der(&issuer.crl().unwrap()).unwrap();
        assert_eq!(crl.number(), delta.number());
        let listed: Vec<u64> = crl.entries().iter().map(|e| e.serial).collect();
        assert_eq!(listed, xs);
        assert_eq!(payee.crl_state().unwrap().entries(), crl.entries());
        // The revoked payers are refused all the same: their certificates expired.
        let req = payee.request(eur(100), 300, now).unwrap();
        assert_eq!(
            alice.pay(&req, now).unwrap_err(),
            WalletError::OwnCertificateExpired
        );
        assert!(issuer.invariants().unwrap().ok);
    });
}

/// A wallet at its bound of deltas reports no CRL number and gets the
/// complete CRL, which replaces its base and deltas.
#[test]
fn a_wallet_at_its_bound_of_deltas_gets_the_complete_crl() {
    on_every_backend("crl_bound", |issuer| {
        let mut payee = customer_with_wallet(issuer, "payee", 0, 0);
        for k in 0..CRL_DELTAS_HELD_MAX as u64 {
            let w = customer_with_wallet(issuer, &format!("w{k}"), 1_000, 0);
            issuer
                .revoke(
                    &w.wallet_id(),
                    RevocationReason::KeyCompromise,
                    "x",
                    at(1 + k),
                )
                .unwrap();
            let p = sync(issuer, &mut payee, at(1 + k));
            assert_eq!(p.held, Some(k + 1));
            assert_eq!(p.delta.unwrap().revoked().len(), 1);
        }
        let w = customer_with_wallet(issuer, "last", 1_000, 0);
        let last = serial(issuer, &w);
        revoke(issuer, &w, RevocationReason::KeyCompromise, at(30));
        let p = sync(issuer, &mut payee, at(31));
        assert_eq!(p.held, None);
        assert!(p.delta.is_none());
        let full = p.full.expect("the complete CRL");
        assert_eq!(full.entries().len(), CRL_DELTAS_HELD_MAX + 1);
        assert!(full.is_revoked(last).is_some());
        let s = payee.crl_state().unwrap();
        assert_eq!((s.number(), s.deltas().len()), (full.number(), 0));
        let p = sync(issuer, &mut payee, at(32));
        assert_eq!(p.held, Some(full.number()));
        assert!(p.full.is_none() && p.delta.is_none());
    });
}
