//! Wallets of two issuers under one scheme root: the directory learnt at
//! sync, payments across issuers both ways and transitively, the payee's
//! issuer bound into each payment, suspension and revocation of an issuer,
//! and directory updates refused as a whole.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::collections::HashMap;

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{
    CertField, Checkpoint, DirectoryIssuer, DirectoryUpdate, LoadVoucher, Payment, PaymentRequest,
    SyncReport, SyncResponse, WalletCommand,
};
use offpay_protocol::pki::{
    self, Certificate, PkiError, PolicyRef, RevocationReason, RevokedEntry,
};
use offpay_protocol::{IssuerId, IssuerStatus, SigningKey, Suite, UnixSeconds, WalletId};
use offpay_test_support::{DAY, T0, default_policy, eur, pay};
use offpay_wallet::vault::MemoryVault;
use offpay_wallet::{Wallet, WalletError};

/// One issuer of the test scheme: its CA (certified by the root from a CSR,
/// as a member issuer's is), its policy and its books for the wallet side.
struct Bank {
    key: SigningKey,
    ca: Certificate,
    policy_bytes: Vec<u8>,
    next_serial: u64,
    crl_number: u64,
    revoked: Vec<RevokedEntry>,
    load_seq: HashMap<WalletId, u64>,
    checkpoint: HashMap<WalletId, u64>,
    certs: HashMap<WalletId, (u64, Vec<u8>)>,
}

impl Bank {
    fn id(&self) -> IssuerId {
        self.ca.subject_issuer_id()
    }

    fn enroll(&mut self, root: &Certificate, now: UnixSeconds) -> Wallet<MemoryVault> {
        let mut w = Wallet::create(MemoryVault::new(), Suite::Ed25519, root.der(), now).unwrap();
        let csr = pki::parse_csr(&w.csr().unwrap()).unwrap();
        self.next_serial += 1;
        let cert = pki::issue_wallet(
            &self.key,
            &self.ca,
            &csr.public_key,
            csr.wallet_id,
            PolicyRef { id: 1, epoch: 1 },
            self.next_serial,
            now,
            now.plus(30 * DAY),
        )
        .unwrap();
        w.enroll(self.ca.der(), cert.der(), &self.policy_bytes, None, now)
            .unwrap();
        self.certs
            .insert(csr.wallet_id, (self.next_serial, cert.der().to_vec()));
        w
    }

    fn load(&mut self, w: &mut Wallet<MemoryVault>, minor: u64, now: UnixSeconds) {
        let seq = self.load_seq.entry(w.wallet_id()).or_insert(0);
        *seq += 1;
        let v = Signed::sign(
            LoadVoucher {
                wallet: w.wallet_id(),
                load_seq: *seq,
                amount: eur(minor),
                issued: now,
            },
            &self.key,
        );
        w.apply_voucher(v.bytes(), now).unwrap();
    }

    fn crl(&mut self, now: UnixSeconds) -> Vec<u8> {
        self.crl_number += 1;
        pki::issue_crl(
            &self.key,
            &self.ca,
            self.crl_number,
            now,
            now.plus(DAY),
            &self.revoked,
        )
        .unwrap()
        .der()
        .to_vec()
    }

    /// Answer a report: checkpoint what the wallet says, carry `directory`.
    fn respond(
        &mut self,
        report: &[u8],
        now: UnixSeconds,
        directory: Option<DirectoryUpdate>,
    ) -> Vec<u8> {
        let r = Signed::<SyncReport>::decode(report).unwrap();
        let b = r.body();
        let n = self.checkpoint.entry(b.wallet).or_insert(0);
        *n += 1;
        Signed::sign(
            SyncResponse {
                rekey: None,
                wallet: b.wallet,
                report_seq: b.report_seq,
                time: now,
                checkpoint: Checkpoint {
                    number: *n,
                    seq: b.seq,
                    head: b.head,
                    balance: b.balance,
                    load_seq: b.load_seq,
                    time: now,
                    report_seq: b.report_seq,
                },
                vouchers: Vec::new(),
                crl: None,
                crl_delta: None,
                certificate: None,
                policy: None,
                command: WalletCommand::None,
                directory,
            },
            &self.key,
        )
        .into_bytes()
    }
}

/// The scheme: its root, the issuers it admitted, the root-signed issuer CRL.
struct Scheme {
    root_key: SigningKey,
    root: Certificate,
    banks: Vec<Bank>,
    issuer_crl_number: u64,
    held: Vec<RevokedEntry>,
    version: u64,
}

impl Scheme {
    fn new() -> Scheme {
        let root_key = SigningKey::from_seed(Suite::Ed25519, &[0x11; 32]).unwrap();
        let root = pki::issue_root(
            &root_key,
            "offpay scheme root",
            1,
            UnixSeconds(T0.0 - DAY),
            T0.plus(3650 * DAY),
        )
        .unwrap();
        let mut s = Scheme {
            root_key,
            root,
            banks: Vec::new(),
            issuer_crl_number: 0,
            held: Vec::new(),
            version: 0,
        };
        s.admit("bank-a", 0x21);
        s.admit("bank-b", 0x22);
        s
    }

    /// Admit an issuer: its CA key is generated "at the issuer", the root
    /// certifies it from the CSR.
    fn admit(&mut self, code: &str, seed: u8) -> usize {
        let key = SigningKey::from_seed(Suite::Ed25519, &[seed; 32]).unwrap();
        let csr = pki::parse_ca_csr(&pki::build_ca_csr(&key, code).unwrap()).unwrap();
        assert_eq!(csr.common_name, code);
        let ca = pki::issue_issuer_ca(
            &self.root_key,
            &self.root,
            &csr.public_key,
            &csr.common_name,
            100 + self.banks.len() as u64,
            UnixSeconds(T0.0 - DAY),
            T0.plus(1825 * DAY),
        )
        .unwrap();
        let policy_bytes = Signed::sign(default_policy(), &key).into_bytes();
        self.banks.push(Bank {
            key,
            ca,
            policy_bytes,
            next_serial: 1000 * (self.banks.len() as u64 + 1),
            crl_number: 0,
            revoked: Vec::new(),
            load_seq: HashMap::new(),
            checkpoint: HashMap::new(),
            certs: HashMap::new(),
        });
        self.banks.len() - 1
    }

    fn issuer_crl(&mut self, now: UnixSeconds) -> Vec<u8> {
        self.issuer_crl_number += 1;
        pki::issue_crl(
            &self.root_key,
            &self.root,
            self.issuer_crl_number,
            now,
            now.plus(DAY),
            &self.held,
        )
        .unwrap()
        .der()
        .to_vec()
    }

    fn set_status(&mut self, bank: usize, reason: Option<RevocationReason>, now: UnixSeconds) {
        let serial = self.banks[bank].ca.serial();
        self.held.retain(|e| e.serial != serial);
        if let Some(reason) = reason {
            self.held.push(RevokedEntry {
                serial,
                revoked_at: now,
                reason,
            });
        }
    }

    /// A directory update naming every issuer, at a new version.
    fn update(&mut self, now: UnixSeconds) -> DirectoryUpdate {
        self.version += 1;
        let version = self.version;
        DirectoryUpdate {
            version,
            issuer_crl: Some(self.issuer_crl(now)),
            issuers: self
                .banks
                .iter()
                .map(|b| DirectoryIssuer {
                    changed: version,
                    ca_cert: b.ca.der().to_vec(),
                    crl: None,
                })
                .collect(),
        }
    }

    /// Sync `w` at its bank `bank`, carrying `directory`.
    fn sync(
        &mut self,
        bank: usize,
        w: &mut Wallet<MemoryVault>,
        now: UnixSeconds,
        directory: Option<DirectoryUpdate>,
    ) -> Result<offpay_wallet::SyncApplied, WalletError> {
        let report = w.sync_report(now).unwrap();
        let resp = self.banks[bank].respond(&report, now, directory);
        w.apply_sync_response(&resp, now)
    }
}

const A: usize = 0;
const B: usize = 1;

/// Scheme with alice and carol at bank A, bob at bank B, all holding the
/// directory (version 1), alice loaded with 10 000.
fn setup() -> (
    Scheme,
    Wallet<MemoryVault>,
    Wallet<MemoryVault>,
    Wallet<MemoryVault>,
) {
    let mut s = Scheme::new();
    let root = s.root.clone();
    let mut alice = s.banks[A].enroll(&root, T0);
    let mut carol = s.banks[A].enroll(&root, T0);
    let mut bob = s.banks[B].enroll(&root, T0);
    let u = s.update(T0);
    for (bank, w) in [(A, &mut alice), (A, &mut carol), (B, &mut bob)] {
        assert_eq!(w.directory_version(), 0);
        let applied = s.sync(bank, w, T0.plus(10), Some(u.clone())).unwrap();
        assert_eq!(applied.directory_version, Some(1));
        assert_eq!(w.directory_version(), 1);
    }
    s.banks[A].load(&mut alice, 10_000, T0.plus(20));
    (s, alice, bob, carol)
}

#[test]
fn wallets_of_two_issuers_pay_each_other_both_ways() {
    let (s, mut alice, mut bob, _) = setup();
    let payment = pay(&mut alice, &mut bob, 2_500, T0.plus(60));
    let p = Signed::<Payment>::decode(&payment).unwrap();
    assert_eq!(p.body().payee_issuer, s.banks[B].id());
    assert_ne!(s.banks[A].id(), s.banks[B].id());
    assert_eq!(alice.balance().unwrap().minor, 7_500);
    assert_eq!(bob.balance().unwrap().minor, 2_500);
    // And back.
    let back = pay(&mut bob, &mut alice, 1_000, T0.plus(120));
    assert_eq!(
        Signed::<Payment>::decode(&back)
            .unwrap()
            .body()
            .payee_issuer,
        s.banks[A].id()
    );
    assert_eq!(alice.balance().unwrap().minor, 8_500);
    assert_eq!(bob.balance().unwrap().minor, 1_500);
}

/// Certificates by reference stay within one issuer: a payee lists only
/// the certificates of its own issuer's payers, so a payer of another issuer
/// always sends its certificate inline (a claim between issuers must carry
/// it), while two wallets of one issuer go by reference from the second
/// payment on.
#[test]
fn certificates_go_by_reference_within_an_issuer_only() {
    let (_, mut alice, mut bob, mut carol) = setup();
    let field = |p: &[u8]| {
        Signed::<Payment>::decode(p)
            .unwrap()
            .body()
            .payer_cert
            .clone()
    };
    // A -> B twice: inline both times; Bob's requests list nothing.
    pay(&mut alice, &mut bob, 100, T0.plus(60));
    let req = bob.request(eur(100), 300, T0.plus(61)).unwrap();
    assert!(
        Signed::<PaymentRequest>::decode(&req)
            .unwrap()
            .body()
            .known_certs
            .is_empty()
    );
    let second = alice.pay(&req, T0.plus(61)).unwrap();
    assert!(matches!(field(&second), CertField::Inline(_)));
    bob.receive(&second, T0.plus(61)).unwrap();
    // A -> A twice: the second by reference.
    pay(&mut alice, &mut carol, 100, T0.plus(62));
    let again = pay(&mut alice, &mut carol, 100, T0.plus(63));
    assert!(matches!(field(&again), CertField::Reference(_)));
    assert_eq!(carol.balance().unwrap().minor, 200);
}

#[test]
fn money_crosses_issuers_and_comes_back_transitively() {
    let (_, mut alice, mut bob, mut carol) = setup();
    // A -> B -> A: bob spends at carol (bank A) what he got from alice.
    pay(&mut alice, &mut bob, 4_000, T0.plus(60));
    pay(&mut bob, &mut carol, 3_000, T0.plus(120));
    pay(&mut carol, &mut alice, 500, T0.plus(180));
    assert_eq!(alice.balance().unwrap().minor, 6_500);
    assert_eq!(bob.balance().unwrap().minor, 1_000);
    assert_eq!(carol.balance().unwrap().minor, 2_500);
}

#[test]
fn without_the_directory_a_wallet_of_another_issuer_is_unknown() {
    let mut s = Scheme::new();
    let root = s.root.clone();
    let mut alice = s.banks[A].enroll(&root, T0);
    let mut bob = s.banks[B].enroll(&root, T0);
    s.banks[A].load(&mut alice, 10_000, T0);
    let req = bob.request(eur(100), 300, T0).unwrap();
    // The payer does not know the payee's issuer either.
    assert_eq!(
        alice.pay(&req, T0).unwrap_err(),
        WalletError::PeerCertificate(PkiError::UnknownIssuer)
    );
    assert_eq!(alice.balance().unwrap().minor, 10_000);
    // Same-issuer payments are exactly as before (a standalone issuer's wallets).
    let mut carol = s.banks[A].enroll(&root, T0);
    pay(&mut alice, &mut carol, 100, T0.plus(1));
    assert_eq!(alice.directory_version(), 0);
}

#[test]
fn a_payee_refuses_a_payer_whose_issuer_was_suspended_then_accepts_it_reinstated() {
    let (mut s, mut alice, mut bob, _) = setup();
    // Bob has seen (and cached) alice's certificate.
    pay(&mut alice, &mut bob, 100, T0.plus(30));
    s.set_status(A, Some(RevocationReason::CertificateHold), T0.plus(40));
    let u = s.update(T0.plus(40));
    s.sync(B, &mut bob, T0.plus(50), Some(u)).unwrap();
    assert_eq!(bob.directory_version(), 2);
    assert_eq!(
        bob.issuer_status(&s.banks[A].id()),
        Some(IssuerStatus::Suspended)
    );
    let req = bob.request(eur(200), 300, T0.plus(60)).unwrap();
    let payment = alice.pay(&req, T0.plus(60)).unwrap();
    let before = bob.balance().unwrap().minor;
    assert_eq!(
        bob.receive(&payment, T0.plus(60)).unwrap_err(),
        WalletError::PeerIssuerSuspended {
            issuer: s.banks[A].id()
        }
    );
    assert_eq!(bob.balance().unwrap().minor, before);
    // Bob will not pay a wallet of the suspended issuer either.
    let req_a = alice.request(eur(10), 300, T0.plus(61)).unwrap();
    assert_eq!(
        bob.pay(&req_a, T0.plus(61)).unwrap_err(),
        WalletError::PeerIssuerSuspended {
            issuer: s.banks[A].id()
        }
    );
    // The suspension survives reopening the vault.
    let mut bob = Wallet::open(bob.into_vault()).unwrap();
    assert_eq!(bob.directory_version(), 2);
    assert_eq!(
        bob.receive(&payment, T0.plus(62)).unwrap_err(),
        WalletError::PeerIssuerSuspended {
            issuer: s.banks[A].id()
        }
    );
    // Reinstated: the same payment (its request still pending) is accepted.
    s.set_status(A, None, T0.plus(70));
    let u = s.update(T0.plus(70));
    s.sync(B, &mut bob, T0.plus(80), Some(u)).unwrap();
    assert_eq!(
        bob.issuer_status(&s.banks[A].id()),
        Some(IssuerStatus::Active)
    );
    bob.receive(&payment, T0.plus(90)).unwrap();
    assert_eq!(bob.balance().unwrap().minor, before + 200);
}

#[test]
fn a_payee_refuses_a_payer_whose_issuer_was_revoked() {
    let (mut s, mut alice, mut bob, _) = setup();
    s.set_status(A, Some(RevocationReason::CessationOfOperation), T0.plus(40));
    let u = s.update(T0.plus(40));
    s.sync(B, &mut bob, T0.plus(50), Some(u)).unwrap();
    let req = bob.request(eur(200), 300, T0.plus(60)).unwrap();
    let payment = alice.pay(&req, T0.plus(60)).unwrap();
    assert_eq!(
        bob.receive(&payment, T0.plus(60)).unwrap_err(),
        WalletError::PeerIssuerRevoked {
            issuer: s.banks[A].id()
        }
    );
    assert_eq!(bob.balance().unwrap().minor, 0);
}

#[test]
fn a_payment_naming_another_payee_issuer_is_refused() {
    let (s, _, mut bob, _) = setup();
    // A payer key outside any TA, certified by bank A, signs a payment that
    // names bank A (not bob's bank B) as the payee's issuer.
    let bank = &s.banks[A];
    let key = SigningKey::from_seed(Suite::Ed25519, &[0x77; 32]).unwrap();
    let wid = WalletId([0x77; 16]);
    let cert = pki::issue_wallet(
        &bank.key,
        &bank.ca,
        &key.public_key(),
        wid,
        PolicyRef { id: 1, epoch: 1 },
        9_999,
        T0,
        T0.plus(30 * DAY),
    )
    .unwrap();
    let req = bob.request(eur(300), 300, T0.plus(60)).unwrap();
    let r = Signed::<PaymentRequest>::decode(&req)
        .unwrap()
        .body()
        .clone();
    let body = Payment {
        payer: wid,
        seq: 1,
        prev: offpay_protocol::Hash32::ZERO,
        payee: r.payee,
        amount: r.amount,
        nonce: r.nonce,
        time: T0.plus(60),
        payer_cert: CertField::Inline(cert.der().to_vec()),
        payee_issuer: bank.id(),
    };
    let forged = Signed::sign(body.clone(), &key).into_bytes();
    assert_eq!(
        bob.receive(&forged, T0.plus(60)).unwrap_err(),
        WalletError::WrongPayeeIssuer {
            expected: s.banks[B].id(),
            got: s.banks[A].id()
        }
    );
    assert_eq!(bob.balance().unwrap().minor, 0);
    // The same payment naming bank B is accepted: the request was not used up.
    let good = Signed::sign(
        Payment {
            payee_issuer: s.banks[B].id(),
            ..body
        },
        &key,
    )
    .into_bytes();
    bob.receive(&good, T0.plus(61)).unwrap();
    assert_eq!(bob.balance().unwrap().minor, 300);
}

/// What a refused sync response must leave untouched.
fn snapshot(w: &Wallet<MemoryVault>) -> (u64, u64, Option<u64>, usize, u64) {
    (
        w.directory_version(),
        w.balance().unwrap().minor,
        w.status(T0).offline_payments_left.map(u64::from),
        w.scheme_trust().issuer_count(),
        w.vault().version(),
    )
}

#[test]
fn an_update_with_a_ca_not_chaining_to_the_root_is_refused_whole() {
    let (mut s, mut alice, mut bob, _) = setup();
    // A rogue root certifies "bank-c"; the update also suspends bank A.
    let rogue_key = SigningKey::from_seed(Suite::Ed25519, &[0x66; 32]).unwrap();
    let rogue_root = pki::issue_root(&rogue_key, "rogue root", 1, T0, T0.plus(DAY)).unwrap();
    let c_key = SigningKey::from_seed(Suite::Ed25519, &[0x67; 32]).unwrap();
    let rogue_ca = pki::issue_issuer_ca(
        &rogue_key,
        &rogue_root,
        &c_key.public_key(),
        "bank-c",
        5,
        T0,
        T0.plus(DAY),
    )
    .unwrap();
    s.set_status(A, Some(RevocationReason::CertificateHold), T0.plus(40));
    let mut u = s.update(T0.plus(40));
    u.issuers.push(DirectoryIssuer {
        changed: u.version,
        ca_cert: rogue_ca.der().to_vec(),
        crl: None,
    });
    let report = bob.sync_report(T0.plus(50)).unwrap();
    let before = snapshot(&bob);
    let bad = s.banks[B].respond(&report, T0.plus(50), Some(u.clone()));
    assert_eq!(
        bob.apply_sync_response(&bad, T0.plus(50)).unwrap_err(),
        WalletError::DirectoryRefused(PkiError::WrongIssuer)
    );
    assert_eq!(snapshot(&bob), before);
    // Nothing of it was applied: bank A is still active for bob.
    assert_eq!(
        bob.issuer_status(&s.banks[A].id()),
        Some(IssuerStatus::Active)
    );
    pay(&mut alice, &mut bob, 100, T0.plus(55));
    // The honest update (without the rogue CA) still applies afterwards.
    u.issuers.pop();
    s.sync(B, &mut bob, T0.plus(60), Some(u)).unwrap();
    assert_eq!(
        bob.issuer_status(&s.banks[A].id()),
        Some(IssuerStatus::Suspended)
    );
}

#[test]
fn an_update_with_a_foreign_crl_or_a_forged_issuer_crl_is_refused() {
    let (mut s, _, mut bob, _) = setup();
    // Bank B's entry carries a CRL signed by bank A.
    let foreign = s.banks[A].crl(T0.plus(40));
    let mut u = s.update(T0.plus(40));
    u.issuers[B].crl = Some(foreign);
    let report = bob.sync_report(T0.plus(50)).unwrap();
    let before = snapshot(&bob);
    let resp = s.banks[B].respond(&report, T0.plus(50), Some(u));
    assert_eq!(
        bob.apply_sync_response(&resp, T0.plus(50)).unwrap_err(),
        WalletError::DirectoryRefused(PkiError::CrlWrongIssuer)
    );
    assert_eq!(snapshot(&bob), before);
    // An issuer CRL signed by an issuer CA instead of the root.
    let mut u = s.update(T0.plus(60));
    u.issuer_crl = Some(s.banks[A].crl(T0.plus(60)));
    let resp = s.banks[B].respond(&report, T0.plus(60), Some(u));
    assert_eq!(
        bob.apply_sync_response(&resp, T0.plus(60)).unwrap_err(),
        WalletError::DirectoryRefused(PkiError::CrlWrongIssuer)
    );
    assert_eq!(snapshot(&bob), before);
}

#[test]
fn an_update_that_does_not_move_forward_is_refused() {
    let (mut s, _, mut bob, _) = setup();
    let mut u = s.update(T0.plus(40));
    u.version = 1; // what bob holds already
    for i in &mut u.issuers {
        i.changed = 1;
    }
    let report = bob.sync_report(T0.plus(50)).unwrap();
    let before = snapshot(&bob);
    let resp = s.banks[B].respond(&report, T0.plus(50), Some(u));
    assert_eq!(
        bob.apply_sync_response(&resp, T0.plus(50)).unwrap_err(),
        WalletError::StaleDirectory { held: 1, got: 1 }
    );
    assert_eq!(snapshot(&bob), before);
}

#[test]
fn an_older_issuer_crl_is_ignored_and_the_report_carries_the_version() {
    let (mut s, _, mut bob, _) = setup();
    // Version 2 suspends bank A (issuer CRL number 2).
    s.set_status(A, Some(RevocationReason::CertificateHold), T0.plus(40));
    let u2 = s.update(T0.plus(40));
    s.sync(B, &mut bob, T0.plus(50), Some(u2.clone())).unwrap();
    // Version 3 carries the first issuer CRL again (number 1, nothing held):
    // it is ignored, bank A stays suspended.
    let mut u3 = s.update(T0.plus(60));
    s.issuer_crl_number = 0;
    s.held.clear();
    u3.issuer_crl = Some(s.issuer_crl(T0));
    let applied = s.sync(B, &mut bob, T0.plus(70), Some(u3)).unwrap();
    assert_eq!(applied.directory_version, Some(3));
    assert_eq!(
        bob.issuer_status(&s.banks[A].id()),
        Some(IssuerStatus::Suspended)
    );
    let report = bob.sync_report(T0.plus(80)).unwrap();
    assert_eq!(
        Signed::<SyncReport>::decode(&report)
            .unwrap()
            .body()
            .directory_version,
        3
    );
}

#[test]
fn the_directory_is_bounded() {
    let (mut s, _, mut bob, _) = setup();
    // 62 more issuers: 64 in all, the most a wallet holds.
    for i in 0..62u8 {
        s.admit(&format!("bank-{i}"), 0x80 + i);
    }
    let u = s.update(T0.plus(40));
    assert_eq!(u.issuers.len(), offpay_wallet::ta::DIRECTORY_ISSUERS_MAX);
    s.sync(B, &mut bob, T0.plus(50), Some(u)).unwrap();
    assert_eq!(
        bob.scheme_trust().issuer_count(),
        offpay_wallet::ta::DIRECTORY_ISSUERS_MAX
    );
    // One more is refused, and nothing changes.
    let extra = s.admit("bank-extra", 0x7f);
    let mut u = s.update(T0.plus(60));
    u.issuers = vec![DirectoryIssuer {
        changed: u.version,
        ca_cert: s.banks[extra].ca.der().to_vec(),
        crl: None,
    }];
    let report = bob.sync_report(T0.plus(70)).unwrap();
    let before = snapshot(&bob);
    let resp = s.banks[B].respond(&report, T0.plus(70), Some(u));
    assert_eq!(
        bob.apply_sync_response(&resp, T0.plus(70)).unwrap_err(),
        WalletError::DirectoryFull {
            max: offpay_wallet::ta::DIRECTORY_ISSUERS_MAX
        }
    );
    assert_eq!(snapshot(&bob), before);
    // The full directory survives reopening.
    let bob = Wallet::open(bob.into_vault()).unwrap();
    assert_eq!(
        bob.scheme_trust().issuer_count(),
        offpay_wallet::ta::DIRECTORY_ISSUERS_MAX
    );
}

#[test]
fn a_revoked_wallet_of_another_issuer_is_refused_with_that_issuers_crl() {
    let (mut s, mut alice, mut bob, _) = setup();
    let alice_serial = s.banks[A].certs[&alice.wallet_id()].0;
    s.banks[A].revoked.push(RevokedEntry {
        serial: alice_serial,
        revoked_at: T0.plus(30),
        reason: RevocationReason::KeyCompromise,
    });
    let crl = s.banks[A].crl(T0.plus(30));
    let mut u = s.update(T0.plus(40));
    u.issuers[A].crl = Some(crl);
    s.sync(B, &mut bob, T0.plus(50), Some(u)).unwrap();
    let req = bob.request(eur(200), 300, T0.plus(60)).unwrap();
    let payment = alice.pay(&req, T0.plus(60)).unwrap();
    assert_eq!(
        bob.receive(&payment, T0.plus(60)).unwrap_err(),
        WalletError::PeerRevoked {
            serial: alice_serial
        }
    );
}

#[test]
fn a_directory_too_large_to_seal_is_refused() {
    let (mut s, _, mut bob, _) = setup();
    // Both banks publish CRLs of 16 000 entries: together over the bound.
    let mut u = s.update(T0.plus(40));
    let mut total = 0;
    for bank in [A, B] {
        s.banks[bank].revoked = (1..=16_000u64)
            .map(|serial| RevokedEntry {
                serial: 1_000_000 + serial,
                revoked_at: T0,
                reason: RevocationReason::KeyCompromise,
            })
            .collect();
        let crl = s.banks[bank].crl(T0.plus(30));
        total += crl.len();
        u.issuers[bank].crl = Some(crl);
    }
    assert!(total > offpay_wallet::ta::DIRECTORY_STATE_BYTES_MAX);
    let report = bob.sync_report(T0.plus(50)).unwrap();
    let before = snapshot(&bob);
    let resp = s.banks[B].respond(&report, T0.plus(50), Some(u));
    assert!(matches!(
        bob.apply_sync_response(&resp, T0.plus(50)).unwrap_err(),
        WalletError::DirectoryTooLarge { max, .. } if max == offpay_wallet::ta::DIRECTORY_STATE_BYTES_MAX
    ));
    assert_eq!(snapshot(&bob), before);
}
