//! What the issuer suites (`suite.rs`, `member.rs`) share: the start time, an
//! enrolled and loaded wallet, and one sync.

use offpay_issuer::Issuer;
use offpay_protocol::pki::WalletProfile;
use offpay_protocol::{Suite, UnixSeconds};
use offpay_store::AnyStore;
use offpay_test_support::eur;
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

pub const T0: UnixSeconds = UnixSeconds(1_795_000_000);

/// A customer with `online` minor units and an enrolled wallet holding `offline`.
pub fn customer_with_wallet(
    issuer: &Issuer<AnyStore>,
    id: &str,
    online: u64,
    offline: u64,
) -> Wallet<MemoryVault> {
    customer_with_wallet_of(issuer, id, online, offline, Suite::Ed25519)
}

/// [`customer_with_wallet`] with a wallet key of `suite`.
pub fn customer_with_wallet_of(
    issuer: &Issuer<AnyStore>,
    id: &str,
    online: u64,
    offline: u64,
    suite: Suite,
) -> Wallet<MemoryVault> {
    issuer.create_customer(id, id, T0).unwrap();
    if online > 0 {
        issuer
            .deposit(id, eur(online), &format!("dep-{id}"), T0)
            .unwrap();
    }
    let mut w = enrolled_wallet(issuer, id, WalletProfile::Personal, suite);
    if offline > 0 {
        let v = issuer
            .load(&w.wallet_id(), eur(offline), &format!("load-{id}"), T0)
            .unwrap();
        w.apply_voucher(&v, T0).unwrap();
    }
    w
}

/// A new wallet (its key of `suite`) enrolled for the existing customer `id` with an enrollment
/// token of `profile`. The retry of the enrollment gives the same answer.
pub fn enrolled_wallet(
    issuer: &Issuer<AnyStore>,
    id: &str,
    profile: WalletProfile,
    suite: Suite,
) -> Wallet<MemoryVault> {
    let token = issuer.create_enrollment_token_for(id, profile, T0).unwrap();
    let mut w = Wallet::create(
        MemoryVault::new(),
        suite,
        issuer.root_certificate().der(),
        T0,
    )
    .unwrap();
    let e = issuer.enroll(&token, &w.csr().unwrap(), T0).unwrap();
    assert_eq!(e.wallet, w.wallet_id());
    assert_eq!(issuer.enroll(&token, &w.csr().unwrap(), T0).unwrap(), e);
    w.enroll(
        &e.issuer_certificate,
        &e.certificate,
        &e.policy,
        Some(&e.crl),
        T0,
    )
    .unwrap();
    w
}

pub fn sync(
    issuer: &Issuer<AnyStore>,
    w: &mut Wallet<MemoryVault>,
    now: UnixSeconds,
) -> offpay_issuer::SyncOutcome {
    let report = w.sync_report(now).unwrap();
    let out = issuer.sync(&report, now).unwrap();
    w.apply_sync_response(&out.response, now).unwrap();
    out
}

/// Run `f` on SQLite (a temporary file) and on PostgreSQL (a fresh schema,
/// skipped with a printed reason when no server answers) with an issuer set
/// up by `cfg`.
#[allow(dead_code)] // Not every suite uses it.
pub fn on_every_backend_with(
    name: &str,
    cfg: &offpay_issuer::IssuerConfig,
    f: impl Fn(&Issuer<AnyStore>),
) {
    const MASTER: [u8; 32] = [7u8; 32];
    let dir = tempfile::tempdir().unwrap();
    let store = offpay_store::open_sqlite(&dir.path().join("offpay.sqlite")).unwrap();
    let issuer = Issuer::init(store, &MASTER, cfg, T0).unwrap();
    eprintln!("[{name}] sqlite");
    f(&issuer);
    let Some(guard) = offpay_test_support::postgres::Schema::fresh(name) else {
        return;
    };
    let store = offpay_store::open_postgres_schema(&guard.url, &guard.name).unwrap();
    let issuer = Issuer::init(store, &MASTER, cfg, T0).unwrap();
    eprintln!("[{name}] postgres schema {}", guard.name);
    f(&issuer);
}
