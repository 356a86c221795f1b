//! Issuers, enrolled and loaded wallets, one offline payment, one sync: the
//! pieces every part of the benchmark is built from (real code, no shortcuts).

use std::fmt::Display;

use offpay_issuer::store::Store;
use offpay_issuer::{Issuer, IssuerConfig};
use offpay_protocol::{Amount, Currency, Suite, UnixSeconds};
use offpay_store::AnyStore;
use offpay_wallet::Wallet;
use offpay_wallet::vault::Vault;

/// Master key of every benchmark issuer (a benchmark secret, not a real one).
pub const MASTER_KEY: [u8; 32] = [0x4b; 32];
/// Minor units deposited for each customer.
pub const DEPOSIT_MINOR: u64 = 100_000;
/// Minor units loaded into each wallet.
pub const LOAD_MINOR: u64 = 50_000;
/// Validity of every payment request.
pub const REQUEST_SECONDS: u64 = 300;

/// Turn any error into a message naming what failed.
pub fn err<E: Display>(what: impl Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

/// The benchmark's currency.
pub fn eur() -> Currency {
    Currency::EUR
}

/// The issuer configuration of every benchmark issuer: the defaults, with
/// offline limits wide enough for long rounds between syncs (as in production
/// for a merchant). `suite` is the CA keys' suite.
pub fn issuer_config(suite: Suite) -> IssuerConfig {
    let mut config = IssuerConfig::default_for(eur());
    config.suite = suite;
    config.policy.max_offline_payments = 10_000;
    config.policy.max_log_entries = 4_000;
    config.policy.max_offline_spend_minor = u64::MAX / 4;
    config
}

/// A new issuer on `store`.
pub fn issuer(store: AnyStore, suite: Suite, now: UnixSeconds) -> Result<Issuer<AnyStore>, String> {
    Issuer::init(store, &MASTER_KEY, &issuer_config(suite), now).map_err(err("issuer init"))
}

/// A customer `name` with [`DEPOSIT_MINOR`] online, and a wallet in `vault`
/// enrolled for it and loaded with [`LOAD_MINOR`].
pub fn wallet<S: Store, V: Vault>(
    issuer: &Issuer<S>,
    vault: V,
    suite: Suite,
    name: &str,
    now: UnixSeconds,
) -> Result<Wallet<V>, String> {
    let eur = issuer.currency();
    issuer
        .create_customer(name, name, now)
        .map_err(err("create customer"))?;
    issuer
        .deposit(name, Amount::new(DEPOSIT_MINOR, eur), name, now)
        .map_err(err("deposit"))?;
    let token = issuer
        .create_enrollment_token(name, now)
        .map_err(err("enrollment token"))?;
    let mut w = Wallet::create(vault, suite, issuer.root_certificate().der(), now)
        .map_err(err("create wallet"))?;
    let csr = w.csr().map_err(err("csr"))?;
    let e = issuer.enroll(&token, &csr, now).map_err(err("enroll"))?;
    w.enroll(
        &e.issuer_certificate,
        &e.certificate,
        &e.policy,
        Some(&e.crl),
        now,
    )
    .map_err(err("wallet enroll"))?;
    let voucher = issuer
        .load(&w.wallet_id(), Amount::new(LOAD_MINOR, eur), name, now)
        .map_err(err("load"))?;
    w.apply_voucher(&voucher, now)
        .map_err(err("apply voucher"))?;
    Ok(w)
}

/// The three messages of one offline payment.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The payee's signed request.
    pub request: Vec<u8>,
    /// The payer's signed payment.
    pub payment: Vec<u8>,
    /// The payee's signed receipt.
    pub receipt: Vec<u8>,
}

/// One offline payment of `amount` from `payer` to `payee`: request (valid
/// [`REQUEST_SECONDS`]), pay, receive, confirm.
pub fn pay<V: Vault>(
    payer: &mut Wallet<V>,
    payee: &mut Wallet<V>,
    amount: Amount,
    now: UnixSeconds,
) -> Result<Exchange, String> {
    pay_within(payer, payee, amount, REQUEST_SECONDS, now)
}

/// [`pay`] with a request valid `valid_seconds`.
pub fn pay_within<V: Vault>(
    payer: &mut Wallet<V>,
    payee: &mut Wallet<V>,
    amount: Amount,
    valid_seconds: u64,
    now: UnixSeconds,
) -> Result<Exchange, String> {
    let request = payee
        .request(amount, valid_seconds, now)
        .map_err(err("request"))?;
    let payment = payer.pay(&request, now).map_err(err("pay"))?;
    let receipt = payee.receive(&payment, now).map_err(err("receive"))?;
    payer.confirm(&receipt).map_err(err("confirm"))?;
    Ok(Exchange {
        request,
        payment,
        receipt,
    })
}

/// Sync `w` with `issuer` (report, reconcile, apply); the payments settled.
pub fn sync<S: Store, V: Vault>(
    issuer: &Issuer<S>,
    w: &mut Wallet<V>,
    now: UnixSeconds,
) -> Result<usize, String> {
    let report = w.sync_report(now).map_err(err("sync report"))?;
    let out = issuer.sync(&report, now).map_err(err("issuer sync"))?;
    w.apply_sync_response(&out.response, now)
        .map_err(err("apply sync response"))?;
    Ok(out.settled)
}

/// The ledger invariants must hold.
pub fn check_invariants<S: Store>(issuer: &Issuer<S>) -> Result<(), String> {
    let inv = issuer.invariants().map_err(err("invariants"))?;
    if inv.ok {
        Ok(())
    } else {
        Err(format!(
            "ledger invariants violated: {}",
            inv.violations.join("; ")
        ))
    }
}

/// A URL with its password (if any) replaced by `***`.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.rsplit_once('@')
        && let Some((user, _password)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}
