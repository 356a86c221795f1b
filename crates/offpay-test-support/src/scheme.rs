//! A minimal issuer for the wallet's and the transports' tests: root and
//! issuer CA, enrollment, vouchers, CRLs and sync responses, signed with the
//! real protocol code. The real backend is offpay-issuer; this only stands in
//! for it where a test is about the wallet.

use std::collections::HashMap;

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{
    Checkpoint, LoadVoucher, RiskPolicy, SyncReport, SyncResponse, WalletCommand,
};
use offpay_protocol::pki::{
    self, Certificate, PolicyRef, RevocationReason, RevokedEntry, WalletProfile,
};
use offpay_protocol::{Amount, SigningKey, Suite, UnixSeconds, WalletId};
use offpay_wallet::Wallet;
use offpay_wallet::vault::{MemoryVault, Vault};

pub const T0: UnixSeconds = UnixSeconds(1_795_000_000);
pub const DAY: u64 = 86_400;

pub use crate::eur;

pub fn default_policy() -> RiskPolicy {
    RiskPolicy {
        required_suite: None,
        id: 1,
        epoch: 1,
        max_payment: eur(50_000),
        max_balance_minor: 100_000,
        max_offline_spend_minor: 200_000,
        max_offline_payments: 500,
        max_offline_seconds: 7 * DAY,
        max_log_entries: 1000,
        cert_validity_seconds: 30 * DAY,
        terminal: None,
    }
}

pub struct Scheme {
    pub root_key: SigningKey,
    pub root: Certificate,
    pub issuer_key: SigningKey,
    pub issuer: Certificate,
    pub policy: RiskPolicy,
    pub policy_bytes: Vec<u8>,
    next_serial: u64,
    crl_number: u64,
    revoked: Vec<RevokedEntry>,
    load_seq: HashMap<WalletId, u64>,
    checkpoint: HashMap<WalletId, u64>,
    pub serials: HashMap<WalletId, u64>,
    pub certs: HashMap<WalletId, Vec<u8>>,
}

impl Scheme {
    pub fn new(suite: Suite) -> Scheme {
        Scheme::with_policy(suite, default_policy())
    }

    pub fn with_policy(suite: Suite, policy: RiskPolicy) -> Scheme {
        let root_key = SigningKey::from_seed(suite, &[0x11; 32]).unwrap();
        let root = pki::issue_root(
            &root_key,
            "offpay test root",
            1,
            UnixSeconds(T0.0 - DAY),
            T0.plus(3650 * DAY),
        )
        .unwrap();
        let issuer_key = SigningKey::from_seed(suite, &[0x22; 32]).unwrap();
        let issuer = pki::issue_issuer_ca(
            &root_key,
            &root,
            &issuer_key.public_key(),
            "offpay test issuer",
            2,
            UnixSeconds(T0.0 - DAY),
            T0.plus(1825 * DAY),
        )
        .unwrap();
        let policy_bytes = Signed::sign(policy.clone(), &issuer_key).into_bytes();
        Scheme {
            root_key,
            root,
            issuer_key,
            issuer,
            policy,
            policy_bytes,
            next_serial: 1 << 62,
            crl_number: 0,
            revoked: Vec::new(),
            load_seq: HashMap::new(),
            checkpoint: HashMap::new(),
            serials: HashMap::new(),
            certs: HashMap::new(),
        }
    }

    /// Create a wallet in `vault`, have its CSR certified, and enroll it.
    pub fn enroll<V: Vault>(&mut self, vault: V, suite: Suite, now: UnixSeconds) -> Wallet<V> {
        let mut w = Wallet::create(vault, suite, self.root.der(), now).unwrap();
        let cert = self.certify(&w.csr().unwrap(), now);
        w.enroll(self.issuer.der(), &cert, &self.policy_bytes, None, now)
            .unwrap();
        w
    }

    /// Create a receive-only terminal in `vault` (its certificate names the
    /// terminal profile) and enroll it.
    pub fn enroll_terminal<V: Vault>(
        &mut self,
        vault: V,
        suite: Suite,
        now: UnixSeconds,
    ) -> Wallet<V> {
        let mut w = Wallet::create(vault, suite, self.root.der(), now).unwrap();
        let cert = self.certify_profile(&w.csr().unwrap(), WalletProfile::Terminal, now);
        w.enroll(self.issuer.der(), &cert, &self.policy_bytes, None, now)
            .unwrap();
        w
    }

    pub fn certify(&mut self, csr: &[u8], now: UnixSeconds) -> Vec<u8> {
        self.certify_profile(csr, WalletProfile::Personal, now)
    }

    pub fn certify_profile(
        &mut self,
        csr: &[u8],
        profile: WalletProfile,
        now: UnixSeconds,
    ) -> Vec<u8> {
        let csr = pki::parse_csr(csr).unwrap();
        let serial = self.next_serial;
        self.next_serial += 1;
        let cert = pki::issue_wallet_certificate(
            &self.issuer_key,
            &self.issuer,
            &pki::WalletCertificate {
                wallet_public: &csr.public_key,
                wallet_id: csr.wallet_id,
                policy: PolicyRef {
                    id: self.policy.id,
                    epoch: self.policy.epoch,
                },
                profile,
                serial,
                not_before: now,
                not_after: now.plus(self.policy.cert_validity_seconds),
            },
        )
        .unwrap();
        self.serials.insert(csr.wallet_id, serial);
        self.certs.insert(csr.wallet_id, cert.der().to_vec());
        cert.der().to_vec()
    }

    pub fn voucher(&mut self, wallet: WalletId, minor: u64, now: UnixSeconds) -> Vec<u8> {
        let seq = self.load_seq.entry(wallet).or_insert(0);
        *seq += 1;
        Signed::sign(
            LoadVoucher {
                wallet,
                load_seq: *seq,
                amount: eur(minor),
                issued: now,
            },
            &self.issuer_key,
        )
        .into_bytes()
    }

    pub fn revoke(&mut self, wallet: WalletId, now: UnixSeconds) {
        let serial = self.serials[&wallet];
        self.revoked.push(RevokedEntry {
            serial,
            revoked_at: now,
            reason: RevocationReason::KeyCompromise,
        });
    }

    pub fn crl(&mut self, now: UnixSeconds) -> Vec<u8> {
        self.crl_number += 1;
        pki::issue_crl(
            &self.issuer_key,
            &self.issuer,
            self.crl_number,
            now,
            now.plus(DAY),
            &self.revoked,
        )
        .unwrap()
        .der()
        .to_vec()
    }

    /// Answer a report the simple way: checkpoint what the wallet says.
    pub fn respond(
        &mut self,
        report: &[u8],
        now: UnixSeconds,
        command: WalletCommand,
        vouchers: Vec<Vec<u8>>,
        crl: Option<Vec<u8>>,
    ) -> Vec<u8> {
        let r = Signed::<SyncReport>::decode(report).unwrap();
        let b = r.body();
        let n = self.checkpoint.entry(b.wallet).or_insert(0);
        *n += 1;
        let checkpoint = Checkpoint {
            number: *n,
            seq: b.seq,
            head: b.head,
            balance: b.balance,
            load_seq: b.load_seq,
            time: now,
            report_seq: b.report_seq,
        };
        Signed::sign(
            SyncResponse {
                rekey: None,
                wallet: b.wallet,
                report_seq: b.report_seq,
                time: now,
                checkpoint,
                vouchers,
                crl,
                crl_delta: None,
                certificate: None,
                policy: None,
                command,
                directory: None,
            },
            &self.issuer_key,
        )
        .into_bytes()
    }

    /// A plain sync: report, respond, apply.
    pub fn sync<V: Vault>(&mut self, w: &mut Wallet<V>, now: UnixSeconds) {
        let report = w.sync_report(now).unwrap();
        let resp = self.respond(&report, now, WalletCommand::None, Vec::new(), None);
        w.apply_sync_response(&resp, now).unwrap();
    }

    /// A wallet in memory, enrolled at [`T0`].
    pub fn memory_wallet(&mut self, suite: Suite) -> Wallet<MemoryVault> {
        self.enroll(MemoryVault::new(), suite, T0)
    }

    /// Load `minor` into a wallet through a voucher.
    pub fn load<V: Vault>(&mut self, w: &mut Wallet<V>, minor: u64, now: UnixSeconds) {
        let v = self.voucher(w.wallet_id(), minor, now);
        w.apply_voucher(&v, now).unwrap();
    }
}

pub use crate::pay;

// ---- Forging helpers (tests/refusals.rs) ----------------------------------
// Well-signed messages that an honest TA never makes, to check that the TA
// refuses them for the right reason.

use offpay_protocol::envelope::Body;
use offpay_protocol::messages::{CertField, Payment, PaymentRequest, Receipt};
use offpay_protocol::{Hash32, Nonce};

/// A wallet key held by the test itself, outside any TA, and certified by a
/// [`Scheme`] exactly like a real wallet's: it signs any body the test builds.
pub struct RawSigner {
    pub key: SigningKey,
    pub id: WalletId,
    /// Its wallet certificate (DER).
    pub cert: Vec<u8>,
}

impl RawSigner {
    /// Sign any message body with this signer's key.
    pub fn sign<T: Body>(&self, body: T) -> Vec<u8> {
        Signed::sign(body, &self.key).into_bytes()
    }

    /// Its certificate, inline.
    pub fn cert_field(&self) -> CertField {
        CertField::Inline(self.cert.clone())
    }

    /// A payment request from this signer (as payee), valid `valid_seconds` from `now`.
    pub fn request(&self, amount: Amount, now: UnixSeconds, valid_seconds: u64) -> Vec<u8> {
        self.sign(PaymentRequest {
            known_certs: Vec::new(),
            payee: self.id,
            amount,
            nonce: Nonce([0x5e; 16]),
            created: now,
            expires: now.plus(valid_seconds),
            payee_cert: self.cert_field(),
        })
    }

    /// A payment body from this signer (as payer, first entry of its chain) for
    /// `request`: its payee, amount and nonce. Edit it before signing to forge.
    pub fn payment_for(&self, request: &[u8], now: UnixSeconds) -> Payment {
        let r = Signed::<PaymentRequest>::decode(request).unwrap();
        let r = r.body();
        Payment {
            payer: self.id,
            seq: 1,
            prev: Hash32::ZERO,
            payee: r.payee,
            amount: r.amount,
            nonce: r.nonce,
            time: now,
            payer_cert: self.cert_field(),
            // The payee's issuer: from its inline certificate, else this
            // signer's (test schemes have one issuer).
            payee_issuer: match &r.payee_cert {
                CertField::Inline(der) => Certificate::from_der(der).unwrap().issuer_id(),
                CertField::Reference(_) => Certificate::from_der(&self.cert).unwrap().issuer_id(),
            },
        }
    }

    /// A receipt from this signer (as payee) for `payment` (envelope bytes).
    pub fn receipt_for(&self, payment: &[u8], now: UnixSeconds) -> Receipt {
        let p = Signed::<Payment>::decode(payment).unwrap();
        Receipt {
            payment_id: p.payload_hash(),
            payee: self.id,
            payer: p.body().payer,
            seq: p.body().seq,
            time: now,
        }
    }
}

impl Scheme {
    /// Another scheme's PKI: root and issuer keys other than [`Scheme::new`]'s
    /// (same names, same policy), derived from `seed`.
    pub fn foreign(suite: Suite, seed: u8) -> Scheme {
        let mut s = Scheme::new(suite);
        s.root_key = SigningKey::from_seed(suite, &[seed; 32]).unwrap();
        s.root = pki::issue_root(
            &s.root_key,
            "offpay test root",
            1,
            UnixSeconds(T0.0 - DAY),
            T0.plus(3650 * DAY),
        )
        .unwrap();
        s.issuer_key = SigningKey::from_seed(suite, &[seed.wrapping_add(1); 32]).unwrap();
        s.issuer = pki::issue_issuer_ca(
            &s.root_key,
            &s.root,
            &s.issuer_key.public_key(),
            "offpay test issuer",
            2,
            UnixSeconds(T0.0 - DAY),
            T0.plus(1825 * DAY),
        )
        .unwrap();
        s.policy_bytes = Signed::sign(s.policy.clone(), &s.issuer_key).into_bytes();
        s
    }

    /// A key held by the test (from `seed`), certified by this scheme at `now`.
    pub fn raw_signer(&mut self, suite: Suite, seed: u8, now: UnixSeconds) -> RawSigner {
        let key = SigningKey::from_seed(suite, &[seed; 32]).unwrap();
        let id = WalletId([seed; 16]);
        let csr = pki::build_csr(&key, id).unwrap();
        let cert = self.certify(&csr, now);
        RawSigner { key, id, cert }
    }

    /// Like [`Scheme::raw_signer`], with a terminal certificate: it signs the
    /// payments an honest terminal TA never makes.
    pub fn raw_terminal_signer(&mut self, suite: Suite, seed: u8, now: UnixSeconds) -> RawSigner {
        let key = SigningKey::from_seed(suite, &[seed; 32]).unwrap();
        let id = WalletId([seed; 16]);
        let csr = pki::build_csr(&key, id).unwrap();
        let cert = self.certify_profile(&csr, WalletProfile::Terminal, now);
        RawSigner { key, id, cert }
    }

    /// Like [`Scheme::respond`] (no command, no vouchers, no CRL), but `edit`
    /// changes the response body before the issuer signs it.
    pub fn respond_edit(
        &mut self,
        report: &[u8],
        now: UnixSeconds,
        edit: impl FnOnce(&mut SyncResponse),
    ) -> Vec<u8> {
        let resp = self.respond(report, now, WalletCommand::None, Vec::new(), None);
        let mut body = Signed::<SyncResponse>::decode(&resp)
            .unwrap()
            .body()
            .clone();
        edit(&mut body);
        Signed::sign(body, &self.issuer_key).into_bytes()
    }
}

// rollback/crash/conservation helpers

/// Everything the REE can observe of a wallet's state: compared before and
/// after an operation (refused, crashed or done).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletObs {
    pub status: offpay_wallet::WalletStatus,
    pub chain_head: (u64, offpay_protocol::Hash32),
    pub history: Vec<offpay_wallet::HistoryItem>,
    pub evidence: Vec<Vec<u8>>,
    pub unsynced_outgoing: Vec<Vec<u8>>,
}

/// Observe `w` (its status at `now`, chain head, history, evidence, unsynced entries).
pub fn observe<V: Vault>(w: &Wallet<V>, now: UnixSeconds) -> WalletObs {
    WalletObs {
        status: w.status(now),
        chain_head: w.chain_head(),
        history: w.history().to_vec(),
        evidence: w.evidence().to_vec(),
        unsynced_outgoing: w.unsynced_outgoing(),
    }
}

/// A load voucher with an explicit load seq, signed by the scheme's issuer
/// (for tests that must re-issue or skip a seq without touching `Scheme`'s counter).
pub fn voucher_with_seq(
    s: &Scheme,
    wallet: WalletId,
    load_seq: u64,
    minor: u64,
    now: UnixSeconds,
) -> Vec<u8> {
    Signed::sign(
        LoadVoucher {
            wallet,
            load_seq,
            amount: eur(minor),
            issued: now,
        },
        &s.issuer_key,
    )
    .into_bytes()
}
