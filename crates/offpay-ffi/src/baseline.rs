//! [`rust_payment_baseline`]: the payment round entirely in Rust, so that a
//! host measures its bindings against it in the same run, on the same machine.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use offpay_protocol::entropy::{OsEntropy, SharedEntropy};
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{
    Checkpoint, LoadVoucher, RiskPolicy, SyncReport, SyncResponse, WalletCommand,
};
use offpay_protocol::pki::{self, Certificate, PolicyRef};
use offpay_protocol::{Amount, Currency, SigningKey, Suite, UnixSeconds};
use offpay_wallet::Wallet;
use offpay_wallet::vault::{KdfParams, MemoryBlobStore, MemoryCounter, SealedVault};

use crate::types::PaymentBaseline;
use crate::{OffpayError, guarded};

/// Most rounds one baseline runs.
pub const BASELINE_ITERATIONS_MAX: u32 = 100_000;
/// Both wallets sync (untimed) after every this many rounds, so the sealed
/// state (which grows by one log entry per round) stays small.
pub const BASELINE_SYNC_EVERY_ROUNDS: u32 = 50;
/// Amount of each payment of the baseline, minor units.
pub const BASELINE_PAYMENT_MINOR: u64 = 100;
/// What each baseline wallet is loaded with, minor units.
const BASELINE_LOAD_MINOR: u64 = 1_000_000;
const DAY_SECONDS: u64 = 86_400;

type MemoryWallet = Wallet<SealedVault<MemoryBlobStore, MemoryCounter>>;

fn internal(what: &str) -> impl FnOnce(String) -> OffpayError + '_ {
    move |e| OffpayError::Internal {
        reason: format!("baseline {what}: {e}"),
    }
}

/// A throwaway scheme (root, issuer CA, policy) made for one baseline run.
struct BaselineScheme {
    root: Certificate,
    issuer_key: SigningKey,
    issuer: Certificate,
    policy: RiskPolicy,
    policy_bytes: Vec<u8>,
    next_serial: u64,
    checkpoint_number: u64,
}

impl BaselineScheme {
    fn new(now: UnixSeconds) -> Result<Self, OffpayError> {
        let root_key = SigningKey::generate(Suite::Ed25519)
            .map_err(|e| internal("root key")(e.to_string()))?;
        let from = UnixSeconds(now.0.saturating_sub(DAY_SECONDS));
        let root = pki::issue_root(
            &root_key,
            "offpay baseline root",
            1,
            from,
            now.plus(DAY_SECONDS),
        )
        .map_err(|e| internal("root")(e.to_string()))?;
        let issuer_key = SigningKey::generate(Suite::Ed25519)
            .map_err(|e| internal("issuer key")(e.to_string()))?;
        let issuer = pki::issue_issuer_ca(
            &root_key,
            &root,
            &issuer_key.public_key(),
            "offpay baseline issuer",
            2,
            from,
            now.plus(DAY_SECONDS),
        )
        .map_err(|e| internal("issuer")(e.to_string()))?;
        let currency = Currency::new("EUR").ok_or_else(|| internal("currency")("EUR".into()))?;
        let policy = RiskPolicy {
            required_suite: None,
            id: 1,
            epoch: 1,
            max_payment: Amount::new(BASELINE_LOAD_MINOR, currency),
            max_balance_minor: 2 * BASELINE_LOAD_MINOR,
            max_offline_spend_minor: u64::MAX,
            max_offline_payments: u32::MAX,
            max_offline_seconds: DAY_SECONDS,
            max_log_entries: 4 * BASELINE_SYNC_EVERY_ROUNDS,
            cert_validity_seconds: DAY_SECONDS,
            terminal: None,
        };
        let policy_bytes = Signed::sign(policy.clone(), &issuer_key).into_bytes();
        Ok(BaselineScheme {
            root,
            issuer_key,
            issuer,
            policy,
            policy_bytes,
            next_serial: 1 << 40,
            checkpoint_number: 0,
        })
    }

    /// A wallet on the in-memory sealed vault, enrolled and loaded.
    fn wallet(
        &mut self,
        entropy: &SharedEntropy,
        now: UnixSeconds,
    ) -> Result<MemoryWallet, OffpayError> {
        let vault = SealedVault::create(
            MemoryBlobStore::new(),
            MemoryCounter::new(0),
            b"0000",
            &[0x42; 32],
            KdfParams::TEST,
            entropy.clone(),
        )?;
        let mut w = Wallet::create_with_entropy(
            vault,
            Suite::Ed25519,
            self.root.der(),
            now,
            entropy.clone(),
        )?;
        let csr = pki::parse_csr(&w.csr()?).map_err(|e| internal("csr")(e.to_string()))?;
        self.next_serial += 1;
        let cert = pki::issue_wallet(
            &self.issuer_key,
            &self.issuer,
            &csr.public_key,
            csr.wallet_id,
            PolicyRef {
                id: self.policy.id,
                epoch: self.policy.epoch,
            },
            self.next_serial,
            now,
            now.plus(DAY_SECONDS),
        )
        .map_err(|e| internal("certificate")(e.to_string()))?;
        w.enroll(self.issuer.der(), cert.der(), &self.policy_bytes, None, now)?;
        let voucher = Signed::sign(
            LoadVoucher {
                wallet: w.wallet_id(),
                load_seq: 1,
                amount: Amount::new(BASELINE_LOAD_MINOR, self.policy.currency()),
                issued: now,
            },
            &self.issuer_key,
        )
        .into_bytes();
        w.apply_voucher(&voucher, now)?;
        Ok(w)
    }
}

impl BaselineScheme {
    /// A plain sync: the wallet's report checkpointed as it stands, applied.
    fn sync(&mut self, w: &mut MemoryWallet, now: UnixSeconds) -> Result<(), OffpayError> {
        let report = w.sync_report(now)?;
        let report =
            Signed::<SyncReport>::decode(&report).map_err(|e| internal("report")(e.to_string()))?;
        let r = report.body();
        self.checkpoint_number += 1;
        let response = Signed::sign(
            SyncResponse {
                rekey: None,
                wallet: r.wallet,
                report_seq: r.report_seq,
                time: now,
                checkpoint: Checkpoint {
                    number: self.checkpoint_number,
                    seq: r.seq,
                    head: r.head,
                    balance: r.balance,
                    load_seq: r.load_seq,
                    time: now,
                    report_seq: r.report_seq,
                },
                vouchers: Vec::new(),
                crl: None,
                crl_delta: None,
                certificate: None,
                policy: None,
                command: WalletCommand::None,
                directory: None,
            },
            &self.issuer_key,
        )
        .into_bytes();
        w.apply_sync_response(&response, now)?;
        Ok(())
    }
}

/// One round: the payee's request, the payer's payment, the payee's
/// receipt, the payer's confirmation (four durable commits).
fn round(
    payer: &mut MemoryWallet,
    payee: &mut MemoryWallet,
    amount: Amount,
    now: UnixSeconds,
) -> Result<(), OffpayError> {
    let request = payee.request(amount, 300, now)?;
    let payment = payer.pay(&request, now)?;
    let receipt = payee.receive(&payment, now)?;
    payer.confirm(&receipt)?;
    Ok(())
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The same payment round as a host measures through the bindings, entirely
/// in Rust: two fresh wallets, each on a sealed vault over in-memory blobs
/// and counter (`SealedVault<MemoryBlobStore, MemoryCounter>`), enrolled in a
/// throwaway scheme and loaded, pay each other `iterations` times,
/// alternating direction (round 0: A pays B, round 1: B pays A, ...), 100
/// minor units each. One timed round is exactly: the payee's
/// `request(100, "EUR", 300)`, the payer's `pay`, the payee's `receive`, the
/// payer's `confirm` (four durable commits). After every
/// [`BASELINE_SYNC_EVERY_ROUNDS`] rounds both wallets sync, untimed, so the
/// sealed state stays small. Returns the median, 99th percentile and mean
/// of one round in microseconds.
///
/// To compare, time the same rounds through the bindings between two
/// wallets whose host storage and counter live in memory, syncing untimed
/// as often. 1 to 100,000 iterations.
#[uniffi::export]
pub fn rust_payment_baseline(iterations: u32) -> Result<PaymentBaseline, OffpayError> {
    guarded(move || {
        if iterations == 0 || iterations > BASELINE_ITERATIONS_MAX {
            return Err(OffpayError::invalid(format!(
                "iterations must be 1 to {BASELINE_ITERATIONS_MAX}, not {iterations}"
            )));
        }
        let now = UnixSeconds(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|e| internal("clock")(e.to_string()))?
                .as_secs(),
        );
        let entropy = OsEntropy::shared();
        let mut scheme = BaselineScheme::new(now)?;
        let mut a = scheme.wallet(&entropy, now)?;
        let mut b = scheme.wallet(&entropy, now)?;
        let amount = Amount::new(BASELINE_PAYMENT_MINOR, scheme.policy.currency());
        let mut times = Vec::with_capacity(iterations as usize);
        for i in 0..iterations {
            if i > 0 && i % BASELINE_SYNC_EVERY_ROUNDS == 0 {
                scheme.sync(&mut a, now)?;
                scheme.sync(&mut b, now)?;
            }
            let start = Instant::now();
            if i % 2 == 0 {
                round(&mut a, &mut b, amount, now)?;
            } else {
                round(&mut b, &mut a, amount, now)?;
            }
            times.push(micros(start.elapsed()));
        }
        times.sort_unstable_by(f64::total_cmp);
        let at = |q_percent: usize| times[(times.len() - 1) * q_percent / 100];
        let sum: f64 = times.iter().sum();
        Ok(PaymentBaseline {
            iterations,
            median_us: at(50),
            p99_us: at(99),
            mean_us: sum / times.len() as f64,
        })
    })
}
