//! What a simulation run is asked to do.

use core::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One kind of attack (or mishap) the simulator injects. The names are the
/// ones the CLI accepts in `--attack KIND=RATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttackKind {
    /// The holder keeps a full copy of its vault (state *and* counter),
    /// spends, restores the copy and spends the same money again.
    Rollback,
    /// The vault is copied onto a second device; both devices spend.
    Clone,
    /// An old Payment is sent to its payee again (rate per payment).
    Replay,
    /// The sealed state file is edited (one byte flipped).
    Tamper,
    /// A payer with a certificate from a foreign CA tries to pay.
    UnknownCa,
    /// The operator revokes a wallet; its holder keeps paying offline.
    RevokedPay,
    /// The channel tears: the Payment or the Receipt is lost (rate per payment).
    Torn,
    /// The device is lost for good, with its offline balance.
    LostDevice,
    /// The device crashes at a random vault write.
    Crash,
}

impl AttackKind {
    /// Every kind, in report order.
    pub const ALL: [AttackKind; 9] = [
        AttackKind::Rollback,
        AttackKind::Clone,
        AttackKind::Replay,
        AttackKind::Tamper,
        AttackKind::UnknownCa,
        AttackKind::RevokedPay,
        AttackKind::Torn,
        AttackKind::LostDevice,
        AttackKind::Crash,
    ];

    /// The CLI and JSON name.
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Rollback => "rollback",
            AttackKind::Clone => "clone",
            AttackKind::Replay => "replay",
            AttackKind::Tamper => "tamper",
            AttackKind::UnknownCa => "unknown-ca",
            AttackKind::RevokedPay => "revoked-pay",
            AttackKind::Torn => "torn",
            AttackKind::LostDevice => "lost-device",
            AttackKind::Crash => "crash",
        }
    }

    /// What the rate counts: `"payment"` for [`AttackKind::Replay`] and
    /// [`AttackKind::Torn`] (probability that a given payment is hit),
    /// `"wallet-day"` for every other kind (probability that a given wallet is
    /// hit on a given day).
    pub fn rate_unit(self) -> &'static str {
        match self {
            AttackKind::Replay | AttackKind::Torn => "payment",
            _ => "wallet-day",
        }
    }

    /// Whether the kind makes its wallet's holder an attacker (excluded from
    /// the honest-party checks): rollback, clone, tamper, revoked-pay.
    pub fn marks_attacker(self) -> bool {
        matches!(
            self,
            AttackKind::Rollback | AttackKind::Clone | AttackKind::Tamper | AttackKind::RevokedPay
        )
    }

    /// Whether the kind double-spends (rollback, clone).
    pub fn double_spends(self) -> bool {
        matches!(self, AttackKind::Rollback | AttackKind::Clone)
    }
}

impl fmt::Display for AttackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that is not an attack kind or not `KIND=RATE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseAttackError(pub String);

impl fmt::Display for ParseAttackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ParseAttackError {}

fn kinds_list() -> String {
    AttackKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for AttackKind {
    type Err = ParseAttackError;
    /// A kind name (`clone`), or `KIND=RATE` (`clone=0.01`, the rate is then
    /// ignored: use [`AttackSpec`] to keep it).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.split_once('=').map_or(s, |(k, _)| k).trim();
        AttackKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                ParseAttackError(format!(
                    "unknown attack kind {name:?}: expected one of {}",
                    kinds_list()
                ))
            })
    }
}

/// `KIND=RATE`, as given to `offpay sim --attack`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttackSpec {
    /// The kind.
    pub kind: AttackKind,
    /// Its rate (see [`AttackKind::rate_unit`]), in `[0, 1]`.
    pub rate: f64,
}

impl FromStr for AttackSpec {
    type Err = ParseAttackError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (k, r) = s.split_once('=').ok_or_else(|| {
            ParseAttackError(format!(
                "attack {s:?}: expected KIND=RATE (e.g. clone=0.01), KIND one of {}",
                kinds_list()
            ))
        })?;
        let kind: AttackKind = k.parse()?;
        let rate: f64 = r
            .trim()
            .parse()
            .map_err(|_| ParseAttackError(format!("attack {s:?}: rate {r:?} is not a number")))?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(ParseAttackError(format!(
                "attack {s:?}: rate must be in [0, 1] (a probability per {})",
                kind.rate_unit()
            )));
        }
        Ok(AttackSpec { kind, rate })
    }
}

impl From<AttackSpec> for (AttackKind, f64) {
    fn from(s: AttackSpec) -> Self {
        (s.kind, s.rate)
    }
}

/// The documented default attack mix (`offpay sim --attacks default`): every
/// kind at once, at rates an operator would call a bad month, so that a short
/// run shows each detection path and each loss bound. Per wallet-day: 0.2 %
/// rollback, 0.2 % clone, 0.1 % tamper, 0.1 % unknown CA, 0.1 % revoked and
/// still paying, 0.1 % lost device, 0.2 % crash; per payment: 1 % replay,
/// 2 % torn exchange.
pub const DEFAULT_ATTACK_MIX: [(AttackKind, f64); 9] = [
    (AttackKind::Rollback, 0.002),
    (AttackKind::Clone, 0.002),
    (AttackKind::Replay, 0.01),
    (AttackKind::Tamper, 0.001),
    (AttackKind::UnknownCa, 0.001),
    (AttackKind::RevokedPay, 0.001),
    (AttackKind::Torn, 0.02),
    (AttackKind::LostDevice, 0.001),
    (AttackKind::Crash, 0.002),
];

/// A named mix of attacks, as given to `offpay sim --attacks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttackMix {
    /// No attack at all (what a run without `--attack` does).
    None,
    /// [`DEFAULT_ATTACK_MIX`].
    Default,
}

impl AttackMix {
    /// The attacks of the mix.
    pub fn attacks(self) -> &'static [(AttackKind, f64)] {
        match self {
            AttackMix::None => &[],
            AttackMix::Default => &DEFAULT_ATTACK_MIX,
        }
    }
}

impl FromStr for AttackMix {
    type Err = ParseAttackError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "none" => Ok(AttackMix::None),
            "default" => Ok(AttackMix::Default),
            other => Err(ParseAttackError(format!(
                "attack mix {other:?}: expected \"default\" or \"none\" (single kinds go to --attack KIND=RATE)"
            ))),
        }
    }
}

/// Where the issuer's database lives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StoreChoice {
    /// In RAM (the default): a SQLite database file in a private directory on
    /// the RAM file system `/dev/shm` where there is one (removed at the end),
    /// else SQLite's own `:memory:` database. (SQLite's `:memory:` database
    /// slows down as it grows: every commit scans its whole page cache, a third
    /// of the run time at 10,000 wallets by day 5; a file on tmpfs is RAM too
    /// and does not.)
    #[default]
    Memory,
    /// SQLite's own `:memory:` database, whatever its cost.
    SqliteMemory,
    /// A SQLite file (created; must not hold an initialised issuer already).
    File(PathBuf),
}

/// Risk-policy overrides; `None` keeps the issuer default
/// (`IssuerConfig::default_for`: 500.00 per payment, 1,000.00 holding,
/// 2,000.00 and 200 payments between syncs, 7 days offline).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyOverrides {
    /// Largest offline balance (minor units).
    pub holding_limit_minor: Option<u64>,
    /// Largest single payment (minor units).
    pub max_payment_minor: Option<u64>,
    /// Most spent offline between syncs (minor units).
    pub max_offline_spend_minor: Option<u64>,
    /// Most payments offline between syncs.
    pub max_offline_payments: Option<u32>,
    /// Longest time offline before the wallet refuses to pay (seconds).
    pub max_offline_seconds: Option<u64>,
}

/// Most issuers in one run (the scheme's directory holds up to 64).
pub const ISSUERS_MAX: usize = 32;

/// A simulation run.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Number of customers, each with one wallet at a time.
    pub wallets: usize,
    /// Simulated days.
    pub days: u32,
    /// The seed: the same seed gives the same report, byte for byte.
    pub seed: u64,
    /// Attacks and their rates (see [`AttackKind::rate_unit`]).
    pub attacks: Vec<(AttackKind, f64)>,
    /// Share of customers that are merchants (mostly receive, redeem often).
    pub merchants_fraction: f64,
    /// Payments a consumer starts per day, on average.
    pub payments_per_day: f64,
    /// Mean time a consumer stays offline between syncs (hours).
    pub consumer_offline_hours: u64,
    /// Mean time a merchant stays offline between syncs (hours).
    pub merchant_offline_hours: u64,
    /// Risk-policy overrides.
    pub policy: PolicyOverrides,
    /// Where the issuer's database lives.
    pub store: StoreChoice,
    /// How often the full checks run (the issuer's ledger invariants, every
    /// wallet balance), in simulated hours; the cheap checks run after every
    /// event and every hour whatever this says. 24 by default; 1 in tests.
    pub full_check_hours: u32,
    /// Keep the canonical dump of the issuer's database at the end in
    /// [`crate::SimReport::store_dump`] (off by default: it reads every row).
    pub dump_store: bool,
    /// Inject issuer-side faults driven by the seed (`faults.rs`): failed
    /// statements, conflicts, crashes before commit, issuer restarts mid-sync.
    pub faults: bool,
    /// Issuers. 1 (the default): one standalone issuer, as before schemes
    /// existed. More: that many member issuers, each on its own store, under
    /// one in-process scheme operator (its own store); customers are spread
    /// over them (customer `i` at issuer `i % issuers`).
    pub issuers: usize,
    /// With several issuers: the scheme closes a settlement cycle every this
    /// many simulated hours (claims move between the issuers and the scheme
    /// every simulated hour).
    pub cycle_hours: u32,
    /// Break the world on purpose, to see the auditor fail (tests of the
    /// auditor itself; `None` in every real run).
    pub sabotage: Option<Sabotage>,
    /// The scheme's rule for lost wallets (offpay-issuer's
    /// `LifecycleRules::refund_lost`): true (the default) pays a lost
    /// wallet's sub-account out to its customer at its close, false forfeits
    /// it to the reserve.
    pub refund_lost: bool,
    /// Share of the payments an honest payer's payee never accepted that the
    /// payer disputes (a case), and of lost devices whose customer says "not
    /// my payment" about the lost wallet (0 to 1; 0.5 by default).
    pub dispute_rate: f64,
}

/// A deliberate bug, injected to show that the auditor catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// With several issuers: the first claim the scheme delivers to an
    /// issuer is acknowledged as accepted and never applied (a link that
    /// loses a message and acks it anyway).
    AckWithoutApplying,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            wallets: 100,
            days: 7,
            seed: 1,
            attacks: Vec::new(),
            merchants_fraction: 0.1,
            payments_per_day: 1.5,
            consumer_offline_hours: 36,
            merchant_offline_hours: 10,
            policy: PolicyOverrides::default(),
            store: StoreChoice::Memory,
            full_check_hours: 24,
            dump_store: false,
            faults: false,
            issuers: 1,
            cycle_hours: 6,
            sabotage: None,
            refund_lost: true,
            dispute_rate: 0.5,
        }
    }
}

impl SimConfig {
    /// The rate of `kind` (0 when not asked for; the last one given wins).
    pub fn rate(&self, kind: AttackKind) -> f64 {
        self.attacks
            .iter()
            .rev()
            .find(|(k, _)| *k == kind)
            .map_or(0.0, |(_, r)| *r)
    }

    /// Refuse what cannot run.
    pub fn validate(&self) -> Result<(), String> {
        if self.wallets < 4 {
            return Err("at least 4 wallets".into());
        }
        if self.wallets > 1_000_000 {
            return Err("at most 1,000,000 wallets".into());
        }
        if self.days == 0 || self.days > 3650 {
            return Err("days must be 1 to 3650".into());
        }
        if !(0.0..=0.9).contains(&self.merchants_fraction) {
            return Err("merchants fraction must be in [0, 0.9]".into());
        }
        if !(0.0..=100.0).contains(&self.payments_per_day) {
            return Err("payments per day must be in [0, 100]".into());
        }
        if self.consumer_offline_hours == 0 || self.merchant_offline_hours == 0 {
            return Err("offline hours must be positive".into());
        }
        if self.issuers == 0 || self.issuers > ISSUERS_MAX {
            return Err(format!("issuers must be 1 to {ISSUERS_MAX}"));
        }
        if self.wallets < 4 * self.issuers {
            return Err("at least 4 wallets per issuer".into());
        }
        if self.cycle_hours == 0 {
            return Err("the settlement cycle must be at least 1 hour".into());
        }
        if !(0.0..=1.0).contains(&self.dispute_rate) {
            return Err("dispute rate must be in [0, 1]".into());
        }
        if self.full_check_hours == 0 {
            return Err("full check interval must be at least 1 hour".into());
        }
        for (k, r) in &self.attacks {
            if !(0.0..=1.0).contains(r) || r.is_nan() {
                return Err(format!("rate of {k} must be in [0, 1]"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_specs() {
        for k in AttackKind::ALL {
            let s: AttackSpec = format!("{k}=0.25").parse().unwrap();
            assert_eq!((s.kind, s.rate), (k, 0.25));
            assert_eq!(k.name().parse::<AttackKind>().unwrap(), k);
        }
        assert!("clone".parse::<AttackSpec>().is_err());
        assert!("cloned=0.1".parse::<AttackSpec>().is_err());
        assert!("clone=x".parse::<AttackSpec>().is_err());
        assert!("clone=1.5".parse::<AttackSpec>().is_err());
        assert_eq!(
            "unknown-ca=0.1".parse::<AttackKind>().unwrap(),
            AttackKind::UnknownCa
        );
    }

    #[test]
    fn default_mix_names_every_kind_once_with_a_valid_rate() {
        let mix: AttackMix = "default".parse().unwrap();
        let kinds: Vec<AttackKind> = mix.attacks().iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, AttackKind::ALL);
        let config = SimConfig {
            attacks: mix.attacks().to_vec(),
            ..SimConfig::default()
        };
        assert!(config.validate().is_ok());
        assert!(mix.attacks().iter().all(|(_, r)| *r > 0.0));
        assert_eq!("none".parse::<AttackMix>().unwrap().attacks(), &[]);
        assert!("all".parse::<AttackMix>().is_err());
    }
}
