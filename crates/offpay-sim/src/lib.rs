//! offpay-sim: the population simulator. It is how operators calibrate risk
//! limits and how offpay shows the five trust properties of DESIGN.md at scale.
//!
//! A run is N customers over D days on a virtual clock, all in one process:
//! one real [`offpay_issuer::Issuer`] on SQLite (in memory by default, or a
//! file), or with [`SimConfig::issuers`] > 1 that many member issuers under
//! one real `offpay_scheme::Scheme` (each on its own store, claims and
//! settlement cycles between them), and one real [`offpay_wallet::Wallet`] TA per device over a
//! [`offpay_wallet::vault::MemoryVault`]. Customers have online accounts and
//! habits (consumers pay, mostly merchants, and top up when low; merchants
//! mostly receive and redeem when high); devices stay offline for random
//! stretches and sync at random times; attacks are injected at their rates
//! through the real code paths; invariants are checked after every event,
//! every simulated hour, every `full_check_hours`, and at the end.
//!
//! ```no_run
//! use offpay_sim::{AttackKind, SimConfig, run, write_plots};
//! let config = SimConfig {
//!     wallets: 1000,
//!     days: 7,
//!     seed: 42,
//!     attacks: vec![(AttackKind::Clone, 0.001), (AttackKind::Torn, 0.01)],
//!     ..SimConfig::default()
//! };
//! let report = run(config, |p| eprint!("\r{}/{} h", p.hour, p.hours)).unwrap();
//! assert!(report.invariant_violations.is_empty());
//! println!("{}", report.to_json());
//! write_plots(&report, std::path::Path::new("plots")).unwrap();
//! ```
//!
//! # Attack rates
//!
//! `rate` is a probability in `[0, 1]`. For `torn` and `replay` it is per
//! payment (each honest payment is hit with that probability); for every
//! other kind it is per wallet-day (each customer, each day, is hit with
//! that probability; a customer turns attacker at most once). See
//! `docs/SIMULATION.md` for what each attack does and how it is detected.
//!
//! # Determinism
//!
//! Every draw comes from the crate's own xoshiro256** ([`rng::Rng`]) seeded by
//! [`SimConfig::seed`], on integer arithmetic and exactly rounded floating
//! point only, and every random byte of the wallets, the issuer and the store
//! (keys, wallet ids, nonces, enrollment tokens, sealing nonces, posting ids)
//! from an [`offpay_protocol::SeededEntropy`] derived from the same seed (one
//! stream per device, one for the issuer, one for the store). Customers are
//! visited in index order, so the same seed gives the same JSON and the same
//! database ([`SimConfig::dump_store`]), byte for byte. The wall-clock runtime
//! is not in the report.
//!
//! # The JSON report ([`SimReport`], schema `offpay-sim/1`)
//!
//! Amounts are integer minor units (`*_minor`), times are virtual seconds
//! since the start of the run (`*_s`). Top-level fields:
//!
//! | field | meaning |
//! | --- | --- |
//! | `schema` | `"offpay-sim/1"` |
//! | `currency` | the ISO 4217 code of every `*_minor` amount |
//! | `config` | the run's configuration (wallets, merchants, days, seed, attacks and their rate units, habits, store) |
//! | `invariant_violations` | every violated invariant, as text (customer indices and real ids); empty when all hold |
//! | `invariant_checks` | checks run |
//! | `payments`, `payments_attempted`, `value_moved_minor` | payments accepted by payees, payments started, value accepted |
//! | `syncs`, `loads`, `loaded_minor`, `redeems`, `redeemed_minor` | online operations |
//! | `deposited_minor`, `withdrawn_minor` | money in and out of the online accounts |
//! | `double_spends_injected` | (payer, seq) with two different entries that both reached the issuer |
//! | `double_spends_detected` | of those, detected by the issuer with a stored proof |
//! | `double_spends_undetectable` | released offline, but one entry never reached the issuer |
//! | `double_spend_proofs_verified` | stored proofs that verify against the root alone |
//! | `detection_delay_s` | distribution (`count`, `min`, `p50`, `p90`, `p99`, `max`, `mean`) of double spend to detection |
//! | `honest_loss_minor` | what honest parties lost (0 when the properties hold) |
//! | `guarantee_loss_minor` | loss absorbed by the guarantee account, net of refunds |
//! | `clawed_back_minor` | taken back from attackers' online accounts, net of what later settlements refunded |
//! | `lost_device_minor` | offline balances of lost devices (the owners' loss) |
//! | `forfeited_minor` | offline balances of tampered wallets (the tamperers' loss) |
//! | `stranded_minor` | payments refused or never received, settled to the payee's sub-account from the payer's report and still there at the end (0: the lifecycle rules returned them to the payers; only a payment from another issuer's wallet stays) |
//! | `unclaimed_minor` | sub-account balances of wallets no device holds any more, left after the closing phase (0) |
//! | `cases` | `opened`, `resolved`, `rejected`, `open_at_end` (0), `paid_minor`, `never_opened`, `by_kind`, `by_decision`: honest payers dispute payments their payee never accepted (and lost wallets), at `dispute_rate`; the operator decides and resolves daily and in the closing phase |
//! | `lifecycle` | `retired_lost`, `retired_broken`, `closed`, `paid_out_minor`, `forfeited_to_reserve_minor`, `returned`, `returned_minor`, `reserve_minor`, `honest_credits_minor`, `closing_after_s`: after the run the clock moves on until every revoked wallet is due and the return window passed, every device syncs once more, and the due wallets close |
//! | `limits` | `holding_limit_minor`, `max_payment_minor`, `max_offline_spend_minor`, `max_offline_payments`, `max_offline_seconds`, `loss_bound_per_wallet_minor` |
//! | `max_loss_per_attacker_minor` | the largest loss one attacker caused |
//! | `refusals` | TA refusals by `WalletError` variant (e.g. `PeerRevoked`, `PeerCertificate(BadSignature)`) |
//! | `issuer_refusals` | issuer refusals by `operation:code` |
//! | `attacks` | per kind: `rate`, `rate_unit`, `injected`, `outcomes` (name -> count) |
//! | `attackers` | per attacker: `customer`, `kind`, `time_s`, `balance_at_attack_minor`, `double_spends_injected`, `double_spends_detected`, `first_detection_delay_s`, `issuer_state`, `clawed_back_minor`, `guaranteed_minor`, `loss_minor` |
//! | `double_spends` | per double spend: `customer`, `kind`, `seq`, `attack_s`, `detected_s`, `delay_s`, `overspend_minor` |
//! | `daily` | per day: `day`, `payments`, `value_moved_minor`, `syncs`, `refusals`, `offline_balance_minor`, `in_flight_minor`, `exposure_minor`, `guarantee_loss_minor`, `double_spends_released`, `double_spends_detected`, `supply_minor` |
//! | `faults` | only with [`SimConfig::faults`]: issuer-side faults injected and absorbed ([`faults::FaultStats`]) |
//! | `scheme` | only with [`SimConfig::issuers`] > 1: the member issuers, every settlement cycle and its positions, the claim exchange ([`report::SchemeReport`]); `daily[].issuers` then holds each issuer's exposure, open claims and net positions |
//! | `ledger` | at the end: `supply_minor`, `pool_minor`, `wallets_minor`, `customers_minor`, `guarantee_minor`, `devices_minor`, `in_flight_minor` |
#![allow(clippy::too_many_lines)] // lint-exception: sim.rs awaits its split (issue 10)
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod faults;
#[cfg(feature = "plots")]
mod plot;
pub mod report;
pub mod rng;
mod sim;

use core::fmt;
use std::path::{Path, PathBuf};

pub use config::{
    AttackKind, AttackMix, AttackSpec, DEFAULT_ATTACK_MIX, ISSUERS_MAX, ParseAttackError,
    PolicyOverrides, Sabotage, SimConfig, StoreChoice,
};
pub use report::{CasesRecord, LifecycleRecord, REPORT_SCHEMA, SimReport};
pub use sim::{T0, error_name, run};

/// Where a run is, reported after every simulated hour and once at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Simulated hours done.
    pub hour: u64,
    /// Simulated hours in the run.
    pub hours: u64,
    /// Current day (from 1).
    pub day: u32,
    /// Days in the run.
    pub days: u32,
    /// Payments accepted so far.
    pub payments: u64,
    /// Syncs so far.
    pub syncs: u64,
    /// Double spends detected so far.
    pub double_spends_detected: u64,
    /// Invariant violations so far.
    pub violations: u64,
    /// The final reconciliation is done and the report is ready.
    pub finishing: bool,
}

impl Progress {
    /// Fraction done, in `[0, 1]`.
    pub fn fraction(&self) -> f64 {
        if self.hours == 0 {
            1.0
        } else {
            self.hour as f64 / self.hours as f64
        }
    }
}

/// Why a run could not complete (invariant violations are not errors: they
/// are in the report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// The configuration cannot run.
    Config(String),
    /// The issuer failed where the simulation cannot go on.
    Issuer(offpay_issuer::IssuerError),
    /// The store could not be opened.
    Store(offpay_issuer::store::StoreError),
    /// A wallet failed where the simulation cannot go on.
    Wallet(String),
    /// The scheme operator failed where the simulation cannot go on.
    Scheme(String),
    /// A file operation failed.
    Io(String),
    /// A plot could not be drawn.
    Plot(String),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Config(m) => write!(f, "configuration: {m}"),
            SimError::Issuer(e) => write!(f, "issuer: {e}"),
            SimError::Store(e) => write!(f, "store: {e}"),
            SimError::Wallet(m) => write!(f, "wallet: {m}"),
            SimError::Scheme(m) => write!(f, "scheme: {m}"),
            SimError::Io(m) => write!(f, "i/o: {m}"),
            SimError::Plot(m) => write!(f, "plot: {m}"),
        }
    }
}

impl std::error::Error for SimError {}

impl From<offpay_issuer::IssuerError> for SimError {
    fn from(e: offpay_issuer::IssuerError) -> Self {
        SimError::Issuer(e)
    }
}

impl From<offpay_issuer::store::StoreError> for SimError {
    fn from(e: offpay_issuer::store::StoreError) -> Self {
        SimError::Store(e)
    }
}

/// Draw the report's PNG plots into `dir` (created if missing):
/// `exposure.png`, `detection_delay.png`, `loss_vs_limit.png`. Returns the
/// files written. Without the `plots` feature, writes nothing and says so.
pub fn write_plots(report: &SimReport, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    #[cfg(feature = "plots")]
    {
        plot::write_plots(report, dir)
    }
    #[cfg(not(feature = "plots"))]
    {
        let _ = (report, dir);
        Err(SimError::Plot(
            "offpay-sim was built without its `plots` feature".into(),
        ))
    }
}
