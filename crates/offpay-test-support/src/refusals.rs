//! The TA's refusal suite, for every vault backend: [`refusal_suite!`](crate::refusal_suite)
//! expands offpay-wallet's refusal tests (each asserts the exact
//! `WalletError` and that nothing changed: the vault was not written, the
//! status, chain head, history, evidence and unsynced log are what they
//! were) over the wallets of a [`SuiteVault`]. offpay-wallet's
//! `tests/refusals.rs` runs it on [`MemoryKind`], offpay-hsm on `HsmVault`.

use offpay_wallet::vault::{MemorySnapshot, MemoryVault, Vault};

/// A kind of vault the refusal suite runs on.
pub trait SuiteVault {
    /// The vault.
    type V: Vault;
    /// A copy of the stored state ([`SuiteVault::save`]).
    type Saved;
    /// What tells that the vault was written: the stored bytes.
    type Fingerprint: PartialEq + core::fmt::Debug;

    /// Whether the backend is there; when not, every test returns at once
    /// (having printed why once).
    fn available() -> bool {
        true
    }
    /// A fresh, empty vault (its own keys, its own storage).
    fn new() -> Self::V;
    /// The stored bytes of `v`.
    fn fingerprint(v: &Self::V) -> Self::Fingerprint;
    /// The version of the last commit of `v`.
    fn version(v: &Self::V) -> u64;
    /// A second device running the same wallet: state *and* counter copied.
    fn copy(v: &Self::V) -> Self::V;
    /// A copy of the stored state alone (a backup).
    fn save(v: &Self::V) -> Self::Saved;
    /// Put the backup `saved` back, the counter left as it is (a rollback).
    fn restore(v: &mut Self::V, saved: &Self::Saved);
}

/// [`MemoryVault`]s.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryKind;

impl SuiteVault for MemoryKind {
    type V = MemoryVault;
    type Saved = MemorySnapshot;
    type Fingerprint = MemorySnapshot;

    fn new() -> MemoryVault {
        MemoryVault::new()
    }
    fn fingerprint(v: &MemoryVault) -> MemorySnapshot {
        v.snapshot()
    }
    fn version(v: &MemoryVault) -> u64 {
        v.version()
    }
    fn copy(v: &MemoryVault) -> MemoryVault {
        v.clone()
    }
    fn save(v: &MemoryVault) -> MemorySnapshot {
        v.snapshot()
    }
    fn restore(v: &mut MemoryVault, saved: &MemorySnapshot) {
        v.restore(saved);
    }
}

/// The refusal tests over the wallets of `$kind` (a [`SuiteVault`]): one
/// `#[test]` each, in the invoking test crate's root. The invoking crate
/// depends on offpay-protocol, offpay-wallet and offpay-test-support.
#[macro_export]
macro_rules! refusal_suite {
    ($kind:ty) => {
        use offpay_protocol::cbor::DecodeError;
        use offpay_protocol::envelope::Signed;
        use offpay_protocol::messages::{
            CertField, LoadVoucher, PaymentRequest, RiskPolicy, SyncResponse, WalletCommand,
        };
        use offpay_protocol::pki::{self, PkiError};
        use offpay_protocol::{Amount, Currency, Hash32, Nonce, SigningKey, Suite, UnixSeconds};
        use offpay_test_support::*;
        use offpay_wallet::vault::VaultError;
        use offpay_wallet::{HistoryItem, LockReason, Wallet, WalletError, WalletStatus};
        use $crate::refusals::SuiteVault as _;

        type K = $kind;
        type W = Wallet<<K as $crate::refusals::SuiteVault>::V>;

        const ED: Suite = Suite::Ed25519;

        /// The time at which snapshots read the status. The TA's clock never goes
        /// below its floor, so any fixed time gives comparable statuses.
        const STATUS_AT: UnixSeconds = T0;

        fn usd(minor: u64) -> Amount {
            Amount::new(minor, Currency::new("USD").unwrap())
        }

        // ---- "nothing changed" ----------------------------------------------------

        /// Everything observable about a wallet, and its vault's stored bytes.
        #[derive(Debug, PartialEq)]
        struct Snapshot {
            vault: <K as $crate::refusals::SuiteVault>::Fingerprint,
            version: u64,
            status: WalletStatus,
            chain_head: (u64, Hash32),
            history: Vec<HistoryItem>,
            evidence: Vec<Vec<u8>>,
            unsynced_outgoing: Vec<Vec<u8>>,
        }

        impl Snapshot {
            fn of(w: &W) -> Snapshot {
                Snapshot {
                    vault: K::fingerprint(w.vault()),
                    version: K::version(w.vault()),
                    status: w.status(STATUS_AT),
                    chain_head: w.chain_head(),
                    history: w.history().to_vec(),
                    evidence: w.evidence().to_vec(),
                    unsynced_outgoing: w.unsynced_outgoing(),
                }
            }
        }

        /// Nothing observable changed since `before`, and the vault was not written.
        #[track_caller]
        fn unchanged(w: &W, before: &Snapshot) {
            let after = Snapshot::of(w);
            assert_eq!(after.version, before.version, "the vault was written");
            assert!(after.vault == before.vault, "the vault's state changed");
            assert_eq!(after.status, before.status, "status changed");
            assert_eq!(after.chain_head, before.chain_head, "chain head changed");
            assert_eq!(after.history, before.history, "history changed");
            assert_eq!(after.evidence, before.evidence, "evidence changed");
            assert_eq!(
                after.unsynced_outgoing, before.unsynced_outgoing,
                "unsynced log changed"
            );
        }

        /// `op` on `w` fails with exactly `expected` and changes nothing.
        #[track_caller]
        fn refuses<T>(
            w: &mut W,
            expected: WalletError,
            op: impl FnOnce(&mut W) -> Result<T, WalletError>,
        ) {
            let before = Snapshot::of(w);
            match op(w) {
                Ok(_) => panic!("expected {expected:?}, got Ok"),
                Err(e) => assert_eq!(e, expected),
            }
            unchanged(w, &before);
        }

        // ---- fixtures ---------------------------------------------------------------

        /// A scheme with `policy`, two enrolled wallets (alice, bob), alice loaded with 10 000.
        fn world_with(policy: RiskPolicy) -> (Scheme, W, W) {
            let mut s = Scheme::with_policy(ED, policy);
            let mut alice = s.enroll(K::new(), ED, T0);
            let bob = s.enroll(K::new(), ED, T0);
            s.load(&mut alice, 10_000, T0);
            (s, alice, bob)
        }

        fn world() -> (Scheme, W, W) {
            world_with(default_policy())
        }

        /// A second device running the same wallet: state *and* counter copied, so
        /// the vault cannot tell (a clone, not a rollback).
        fn clone_of(w: &W) -> W {
            let c = Wallet::open(K::copy(w.vault())).unwrap();
            assert!(c.lock().is_none());
            c
        }

        /// A locked wallet and what to throw at it.
        struct Locked {
            s: Scheme,
            /// The locked wallet (alice).
            w: W,
            reason: LockReason,
            /// A valid payment from bob for a request the locked wallet made before the lock.
            payment: Vec<u8>,
            /// A valid request from bob.
            request: Vec<u8>,
        }

        /// Alice's vault restored to a copy taken before a payment: it opens locked.
        fn locked_by_rollback() -> Locked {
            let (mut s, mut alice, mut bob) = world();
            s.load(&mut bob, 5_000, T0);
            let req = alice.request(eur(300), 3600, T0).unwrap();
            let snap = K::save(alice.vault());
            pay(&mut alice, &mut bob, 100, T0.plus(1));
            let mut v = alice.into_vault();
            K::restore(&mut v, &snap);
            let w = Wallet::open(v).unwrap();
            assert_eq!(w.lock(), Some(&LockReason::RolledBack));
            let payment = bob.pay(&req, T0.plus(2)).unwrap();
            let request = bob.request(eur(100), 3600, T0.plus(2)).unwrap();
            Locked {
                s,
                w,
                reason: LockReason::RolledBack,
                payment,
                request,
            }
        }

        /// Alice locked by the issuer at sync.
        fn locked_by_issuer() -> Locked {
            let (mut s, mut alice, mut bob) = world();
            s.load(&mut bob, 5_000, T0);
            let req = alice.request(eur(300), 3600, T0).unwrap();
            let report = alice.sync_report(T0.plus(1)).unwrap();
            let reason = "suspected fraud".to_string();
            let resp = s.respond(
                &report,
                T0.plus(1),
                WalletCommand::Lock {
                    reason: reason.clone(),
                },
                Vec::new(),
                None,
            );
            assert!(alice.apply_sync_response(&resp, T0.plus(1)).unwrap().locked);
            let payment = bob.pay(&req, T0.plus(2)).unwrap();
            let request = bob.request(eur(100), 3600, T0.plus(2)).unwrap();
            Locked {
                s,
                w: alice,
                reason: LockReason::Issuer(reason),
                payment,
                request,
            }
        }

        fn locked_fixtures() -> [Locked; 2] {
            [locked_by_rollback(), locked_by_issuer()]
        }

        /// A wallet created in the root of `s` but not enrolled.
        fn created(s: &Scheme) -> W {
            Wallet::create(K::new(), ED, s.root.der(), T0).unwrap()
        }

        // ---- request ------------------------------------------------------------------

        #[test]
        fn request_zero_amount() {
            if !K::available() {
                return;
            }
            let (_s, _alice, mut bob) = world();
            refuses(&mut bob, WalletError::ZeroAmount, |w| {
                w.request(eur(0), 300, T0)
            });
        }

        #[test]
        fn request_currency_mismatch() {
            if !K::available() {
                return;
            }
            let (_s, _alice, mut bob) = world();
            refuses(&mut bob, WalletError::CurrencyMismatch, |w| {
                w.request(usd(100), 300, T0)
            });
        }

        #[test]
        fn request_too_many_pending() {
            if !K::available() {
                return;
            }
            let (_s, _alice, mut bob) = world();
            for i in 0..offpay_wallet::ta::PENDING_REQUESTS_MAX as u64 {
                bob.request(eur(100 + i), 300, T0).unwrap();
            }
            refuses(&mut bob, WalletError::TooManyPendingRequests, |w| {
                w.request(eur(1), 300, T0.plus(1))
            });
            // Once they have expired, there is room again.
            bob.request(eur(1), 300, T0.plus(301)).unwrap();
        }

        #[test]
        fn request_own_certificate_expired() {
            if !K::available() {
                return;
            }
            let (_s, _alice, mut bob) = world();
            let expiry = bob.certificate().unwrap().not_after();
            refuses(&mut bob, WalletError::OwnCertificateExpired, |w| {
                w.request(eur(100), 300, expiry.plus(1))
            });
        }

        #[test]
        fn request_locked() {
            if !K::available() {
                return;
            }
            for mut f in locked_fixtures() {
                refuses(&mut f.w, WalletError::Locked(f.reason), |w| {
                    w.request(eur(100), 300, T0.plus(3))
                });
            }
        }

        #[test]
        fn request_not_enrolled() {
            if !K::available() {
                return;
            }
            let s = Scheme::new(ED);
            let mut w = created(&s);
            refuses(&mut w, WalletError::NotEnrolled, |w| {
                w.request(eur(100), 300, T0)
            });
        }

        // ---- pay ------------------------------------------------------------------------

        #[test]
        fn pay_malformed_garbage() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, _bob) = world();
            refuses(
                &mut alice,
                WalletError::Malformed(DecodeError::UnexpectedType {
                    field: "COSE_Sign1 tag",
                }),
                |w| w.pay(b"not a payment request", T0),
            );
            refuses(
                &mut alice,
                WalletError::Malformed(DecodeError::Truncated),
                |w| w.pay(&[], T0),
            );
        }

        #[test]
        fn pay_malformed_truncated_request() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world();
            let req = bob.request(eur(100), 300, T0).unwrap();
            refuses(
                &mut alice,
                WalletError::Malformed(DecodeError::Truncated),
                |w| w.pay(&req[..req.len() - 1], T0),
            );
            refuses(
                &mut alice,
                WalletError::Malformed(DecodeError::Truncated),
                |w| w.pay(&req[..req.len() / 2], T0),
            );
            // The untruncated request is paid.
            alice.pay(&req, T0).unwrap();
        }

        #[test]
        fn pay_malformed_wrong_message_type() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world();
            let p = pay(&mut alice, &mut bob, 100, T0);
            // A Payment where a PaymentRequest is expected.
            refuses(
                &mut alice,
                WalletError::Malformed(DecodeError::WrongMessageType {
                    expected: 1,
                    found: 2,
                }),
                |w| w.pay(&p, T0),
            );
        }

        #[test]
        fn pay_bad_signature() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world();
            let mut req = bob.request(eur(100), 300, T0).unwrap();
            *req.last_mut().unwrap() ^= 1;
            refuses(&mut alice, WalletError::BadSignature, |w| w.pay(&req, T0));
            // A request in bob's name, with bob's certificate, signed by another key.
            let mallory = s.raw_signer(ED, 0x66, T0);
            let forged = mallory.sign(PaymentRequest {
                payee: bob.wallet_id(),
                amount: eur(100),
                nonce: Nonce([1; 16]),
                created: T0,
                expires: T0.plus(300),
                payee_cert: CertField::Inline(s.certs[&bob.wallet_id()].clone()),
                known_certs: Vec::new(),
            });
            refuses(&mut alice, WalletError::BadSignature, |w| {
                w.pay(&forged, T0)
            });
        }

        #[test]
        fn pay_peer_certificate_other_root() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, _bob) = world();
            let mut other = Scheme::foreign(ED, 0x33);
            let mut mallory = other.enroll(K::new(), ED, T0);
            let req = mallory.request(eur(100), 300, T0).unwrap();
            refuses(
                &mut alice,
                WalletError::PeerCertificate(PkiError::WrongIssuer),
                |w| w.pay(&req, T0),
            );
        }

        #[test]
        fn pay_peer_certificate_expired() {
            if !K::available() {
                return;
            }
            let policy = RiskPolicy {
                cert_validity_seconds: DAY,
                terminal: None,
                ..default_policy()
            };
            let mut s = Scheme::with_policy(ED, policy);
            let mut bob = s.enroll(K::new(), ED, T0);
            // Alice enrolls half a day later: her own certificate outlives bob's.
            let later = T0.plus(DAY / 2);
            let mut alice = s.enroll(K::new(), ED, later);
            s.load(&mut alice, 10_000, later);
            let req = bob.request(eur(100), 300, T0.plus(DAY - 60)).unwrap();
            refuses(
                &mut alice,
                WalletError::PeerCertificate(PkiError::Expired),
                |w| w.pay(&req, T0.plus(DAY + 1)),
            );
            // The same request while bob's certificate was still valid is paid.
            alice.pay(&req, T0.plus(DAY)).unwrap();
        }

        #[test]
        fn pay_peer_revoked() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world();
            // Alice has paid bob before: his certificate is in her cache.
            pay(&mut alice, &mut bob, 100, T0);
            s.revoke(bob.wallet_id(), T0.plus(1));
            let crl = s.crl(T0.plus(1));
            let report = alice.sync_report(T0.plus(2)).unwrap();
            let resp = s.respond(
                &report,
                T0.plus(2),
                WalletCommand::None,
                Vec::new(),
                Some(crl),
            );
            assert!(
                alice
                    .apply_sync_response(&resp, T0.plus(2))
                    .unwrap()
                    .crl_updated
            );
            let serial = s.serials[&bob.wallet_id()];
            let req = bob.request(eur(100), 300, T0.plus(3)).unwrap();
            refuses(&mut alice, WalletError::PeerRevoked { serial }, |w| {
                w.pay(&req, T0.plus(3))
            });
            // Reopened, with an empty certificate cache: refused too (uncached path).
            let mut fresh = clone_of(&alice);
            refuses(&mut fresh, WalletError::PeerRevoked { serial }, |w| {
                w.pay(&req, T0.plus(3))
            });
        }

        #[test]
        fn pay_certificate_wallet_mismatch() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, bob) = world();
            // Mallory's own, valid certificate on a request in bob's name, signed by Mallory.
            let mallory = s.raw_signer(ED, 0x66, T0);
            let forged = mallory.sign(PaymentRequest {
                payee: bob.wallet_id(),
                amount: eur(100),
                nonce: Nonce([1; 16]),
                created: T0,
                expires: T0.plus(300),
                payee_cert: mallory.cert_field(),
                known_certs: Vec::new(),
            });
            refuses(&mut alice, WalletError::CertificateWalletMismatch, |w| {
                w.pay(&forged, T0)
            });
        }

        #[test]
        fn pay_unknown_certificate() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let mallory = s.raw_signer(ED, 0x66, T0);
            let req = mallory.sign(PaymentRequest {
                payee: mallory.id,
                amount: eur(100),
                nonce: Nonce([1; 16]),
                created: T0,
                expires: T0.plus(300),
                payee_cert: CertField::Reference(Hash32::digest(&mallory.cert)),
                known_certs: Vec::new(),
            });
            refuses(&mut alice, WalletError::UnknownCertificate, |w| {
                w.pay(&req, T0)
            });
        }

        #[test]
        fn pay_request_expired() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world();
            let req = bob.request(eur(100), 300, T0).unwrap();
            refuses(&mut alice, WalletError::RequestExpired, |w| {
                w.pay(&req, T0.plus(301))
            });
            // Inclusive at the end.
            alice.pay(&req, T0.plus(300)).unwrap();
        }

        #[test]
        fn pay_currency_mismatch() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let mallory = s.raw_signer(ED, 0x66, T0);
            let req = mallory.request(usd(100), T0, 300);
            refuses(&mut alice, WalletError::CurrencyMismatch, |w| {
                w.pay(&req, T0)
            });
        }

        #[test]
        fn pay_self_payment() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, _bob) = world();
            let req = alice.request(eur(100), 300, T0).unwrap();
            refuses(&mut alice, WalletError::SelfPayment, |w| w.pay(&req, T0));
        }

        #[test]
        fn pay_insufficient_funds() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world();
            let req = bob.request(eur(10_001), 300, T0).unwrap();
            refuses(
                &mut alice,
                WalletError::InsufficientFunds {
                    balance: eur(10_000),
                    needed: eur(10_001),
                },
                |w| w.pay(&req, T0),
            );
        }

        #[test]
        fn pay_limit_per_payment() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world();
            s.load(&mut alice, 50_000, T0);
            let req = bob.request(eur(50_001), 300, T0).unwrap();
            refuses(
                &mut alice,
                WalletError::LimitPerPayment { max: eur(50_000) },
                |w| w.pay(&req, T0),
            );
            let req = bob.request(eur(50_000), 300, T0).unwrap();
            alice.pay(&req, T0).unwrap();
        }

        #[test]
        fn pay_limit_offline_spend() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world_with(RiskPolicy {
                max_offline_spend_minor: 5_000,
                ..default_policy()
            });
            pay(&mut alice, &mut bob, 3_000, T0);
            let req = bob.request(eur(2_500), 300, T0).unwrap();
            refuses(
                &mut alice,
                WalletError::LimitOfflineSpend { left_minor: 2_000 },
                |w| w.pay(&req, T0),
            );
            assert_eq!(alice.status(T0).offline_spend_left_minor, Some(2_000));
        }

        #[test]
        fn pay_limit_offline_count() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world_with(RiskPolicy {
                max_offline_payments: 2,
                ..default_policy()
            });
            pay(&mut alice, &mut bob, 100, T0);
            pay(&mut alice, &mut bob, 100, T0);
            let req = bob.request(eur(100), 300, T0).unwrap();
            refuses(&mut alice, WalletError::LimitOfflineCount { max: 2 }, |w| {
                w.pay(&req, T0)
            });
            assert_eq!(alice.status(T0).offline_payments_left, Some(0));
        }

        #[test]
        fn pay_limit_offline_time() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world();
            let late = T0.plus(7 * DAY + 1);
            let req = bob.request(eur(100), 300, late).unwrap();
            refuses(
                &mut alice,
                WalletError::LimitOfflineTime {
                    offline_seconds: 7 * DAY + 1,
                    max_seconds: 7 * DAY,
                },
                |w| w.pay(&req, late),
            );
        }

        #[test]
        fn pay_log_full() {
            if !K::available() {
                return;
            }
            // The load is the first of the three entries.
            let (_s, mut alice, mut bob) = world_with(RiskPolicy {
                max_log_entries: 3,
                ..default_policy()
            });
            pay(&mut alice, &mut bob, 100, T0);
            pay(&mut alice, &mut bob, 100, T0);
            let req = bob.request(eur(100), 300, T0).unwrap();
            refuses(&mut alice, WalletError::LogFull { max: 3 }, |w| {
                w.pay(&req, T0)
            });
        }

        #[test]
        fn pay_own_certificate_expired() {
            if !K::available() {
                return;
            }
            let policy = RiskPolicy {
                cert_validity_seconds: DAY,
                terminal: None,
                ..default_policy()
            };
            let mut s = Scheme::with_policy(ED, policy);
            let mut alice = s.enroll(K::new(), ED, T0);
            s.load(&mut alice, 10_000, T0);
            // Bob enrolls later: his certificate is still valid when alice's has expired.
            let mut bob = s.enroll(K::new(), ED, T0.plus(DAY / 2));
            let req = bob.request(eur(100), 300, T0.plus(DAY + 10)).unwrap();
            refuses(&mut alice, WalletError::OwnCertificateExpired, |w| {
                w.pay(&req, T0.plus(DAY + 10))
            });
        }

        #[test]
        fn pay_locked() {
            if !K::available() {
                return;
            }
            for mut f in locked_fixtures() {
                let req = f.request.clone();
                refuses(&mut f.w, WalletError::Locked(f.reason), |w| {
                    w.pay(&req, T0.plus(3))
                });
            }
        }

        // ---- receive ----------------------------------------------------------------------

        #[test]
        fn receive_malformed() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world();
            refuses(
                &mut bob,
                WalletError::Malformed(DecodeError::UnexpectedType {
                    field: "COSE_Sign1 tag",
                }),
                |w| w.receive(b"not a payment", T0),
            );
            let req = bob.request(eur(100), 300, T0).unwrap();
            let p = alice.pay(&req, T0).unwrap();
            refuses(
                &mut bob,
                WalletError::Malformed(DecodeError::Truncated),
                |w| w.receive(&p[..p.len() - 1], T0),
            );
            // A request where a payment is expected.
            refuses(
                &mut bob,
                WalletError::Malformed(DecodeError::WrongMessageType {
                    expected: 2,
                    found: 1,
                }),
                |w| w.receive(&req, T0),
            );
        }

        #[test]
        fn receive_wrong_payee() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world();
            let mut carol = s.enroll(K::new(), ED, T0);
            carol.request(eur(100), 300, T0).unwrap();
            let req = bob.request(eur(100), 300, T0).unwrap();
            let p = alice.pay(&req, T0).unwrap();
            refuses(&mut carol, WalletError::WrongPayee, |w| w.receive(&p, T0));
        }

        #[test]
        fn receive_bad_signature() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world();
            let req = bob.request(eur(100), 300, T0).unwrap();
            let mut p = alice.pay(&req, T0).unwrap();
            *p.last_mut().unwrap() ^= 1;
            refuses(&mut bob, WalletError::BadSignature, |w| w.receive(&p, T0));
            // A payment in alice's name, with alice's certificate, signed by another key.
            let mallory = s.raw_signer(ED, 0x66, T0);
            let mut body = mallory.payment_for(&req, T0);
            body.payer = alice.wallet_id();
            body.payer_cert = CertField::Inline(s.certs[&alice.wallet_id()].clone());
            let forged = mallory.sign(body);
            refuses(&mut bob, WalletError::BadSignature, |w| {
                w.receive(&forged, T0)
            });
        }

        #[test]
        fn receive_peer_certificate_other_root() {
            if !K::available() {
                return;
            }
            let (_s, _alice, mut bob) = world();
            let mut other = Scheme::foreign(ED, 0x33);
            let mallory = other.raw_signer(ED, 0x66, T0);
            let req = bob.request(eur(100), 300, T0).unwrap();
            let p = mallory.sign(mallory.payment_for(&req, T0));
            refuses(
                &mut bob,
                WalletError::PeerCertificate(PkiError::WrongIssuer),
                |w| w.receive(&p, T0),
            );
        }

        #[test]
        fn receive_nonce_unknown() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world();
            let mut alice2 = clone_of(&alice);
            let req = bob.request(eur(100), 300, T0).unwrap();
            pay_with(&mut alice, &mut bob, &req, T0.plus(10));
            // The clone pays the same, already used request (other bytes: another time).
            let p2 = alice2.pay(&req, T0.plus(11)).unwrap();
            refuses(&mut bob, WalletError::NonceUnknown, |w| {
                w.receive(&p2, T0.plus(12))
            });
        }

        /// Pay `req` from `payer` to `payee` and confirm; returns the payment.
        fn pay_with(payer: &mut W, payee: &mut W, req: &[u8], now: UnixSeconds) -> Vec<u8> {
            let p = payer.pay(req, now).unwrap();
            let r = payee.receive(&p, now).unwrap();
            payer.confirm(&r).unwrap();
            p
        }

        #[test]
        fn receive_amount_mismatch() {
            if !K::available() {
                return;
            }
            let (mut s, _alice, mut bob) = world();
            let mallory = s.raw_signer(ED, 0x66, T0);
            let req = bob.request(eur(1_000), 300, T0).unwrap();
            let mut body = mallory.payment_for(&req, T0);
            body.amount = eur(999);
            let p = mallory.sign(body);
            refuses(
                &mut bob,
                WalletError::AmountMismatch {
                    requested: eur(1_000),
                    paid: eur(999),
                },
                |w| w.receive(&p, T0),
            );
            // The honest amount from the same signer is accepted.
            let ok = mallory.sign(mallory.payment_for(&req, T0));
            bob.receive(&ok, T0).unwrap();
        }

        #[test]
        fn receive_currency_mismatch() {
            if !K::available() {
                return;
            }
            let (mut s, _alice, mut bob) = world();
            let mallory = s.raw_signer(ED, 0x66, T0);
            let req = bob.request(eur(1_000), 300, T0).unwrap();
            let mut body = mallory.payment_for(&req, T0);
            body.amount = usd(1_000);
            let p = mallory.sign(body);
            refuses(&mut bob, WalletError::CurrencyMismatch, |w| {
                w.receive(&p, T0)
            });
        }

        #[test]
        fn receive_unknown_certificate() {
            if !K::available() {
                return;
            }
            let (mut s, _alice, mut bob) = world();
            let mallory = s.raw_signer(ED, 0x66, T0);
            let req = bob.request(eur(1_000), 300, T0).unwrap();
            let mut body = mallory.payment_for(&req, T0);
            body.payer_cert = CertField::Reference(Hash32::digest(&mallory.cert));
            let p = mallory.sign(body);
            refuses(&mut bob, WalletError::UnknownCertificate, |w| {
                w.receive(&p, T0)
            });
        }

        #[test]
        fn receive_certificate_wallet_mismatch() {
            if !K::available() {
                return;
            }
            let (mut s, alice, mut bob) = world();
            let mallory = s.raw_signer(ED, 0x66, T0);
            let req = bob.request(eur(1_000), 300, T0).unwrap();
            // Mallory's valid certificate on a payment in alice's name.
            let mut body = mallory.payment_for(&req, T0);
            body.payer = alice.wallet_id();
            let p = mallory.sign(body);
            refuses(&mut bob, WalletError::CertificateWalletMismatch, |w| {
                w.receive(&p, T0)
            });
        }

        #[test]
        fn receive_request_expired() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world();
            let req = bob.request(eur(100), 300, T0).unwrap();
            let p = alice.pay(&req, T0.plus(10)).unwrap();
            refuses(&mut bob, WalletError::RequestExpired, |w| {
                w.receive(&p, T0.plus(301))
            });
        }

        #[test]
        fn receive_limit_holding() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world();
            s.load(&mut bob, 99_500, T0);
            let req = bob.request(eur(1_000), 300, T0).unwrap();
            let p = alice.pay(&req, T0).unwrap();
            refuses(
                &mut bob,
                WalletError::LimitHolding { max_minor: 100_000 },
                |w| w.receive(&p, T0),
            );
        }

        #[test]
        fn receive_payer_rolled_back_keeps_evidence_only() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world();
            let mut alice2 = clone_of(&alice);
            pay(&mut alice, &mut bob, 100, T0.plus(10));
            // The clone pays a fresh request with the seq alice already used.
            let req = bob.request(eur(200), 300, T0.plus(20)).unwrap();
            let p2 = alice2.pay(&req, T0.plus(20)).unwrap();
            let before = Snapshot::of(&bob);
            let expected = WalletError::PayerRolledBack {
                payer: alice.wallet_id(),
                seen: 1,
                got: 1,
            };
            assert_eq!(bob.receive(&p2, T0.plus(21)), Err(expected.clone()));
            let after = Snapshot::of(&bob);
            // The evidence was sealed...
            assert_eq!(after.version, before.version + 1);
            assert_eq!(after.evidence.len(), before.evidence.len() + 1);
            assert_eq!(after.evidence.last(), Some(&p2));
            // ...and nothing else changed.
            let mut status = before.status.clone();
            status.evidence += 1;
            assert_eq!(after.status, status);
            assert_eq!(after.chain_head, before.chain_head);
            assert_eq!(after.history, before.history);
            assert_eq!(after.unsynced_outgoing, before.unsynced_outgoing);
            // The same payment again: refused, and not stored twice.
            refuses(&mut bob, expected, |w| w.receive(&p2, T0.plus(22)));
        }

        #[test]
        fn receive_peer_revoked() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world();
            let req = bob.request(eur(100), 300, T0).unwrap();
            let p = alice.pay(&req, T0).unwrap();
            s.revoke(alice.wallet_id(), T0.plus(1));
            let crl = s.crl(T0.plus(1));
            let report = bob.sync_report(T0.plus(2)).unwrap();
            let resp = s.respond(
                &report,
                T0.plus(2),
                WalletCommand::None,
                Vec::new(),
                Some(crl),
            );
            bob.apply_sync_response(&resp, T0.plus(2)).unwrap();
            let serial = s.serials[&alice.wallet_id()];
            refuses(&mut bob, WalletError::PeerRevoked { serial }, |w| {
                w.receive(&p, T0.plus(3))
            });
        }

        #[test]
        fn receive_log_full() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world_with(RiskPolicy {
                max_log_entries: 2,
                ..default_policy()
            });
            s.load(&mut bob, 100, T0);
            s.load(&mut bob, 100, T0);
            let req = bob.request(eur(100), 300, T0).unwrap();
            let p = alice.pay(&req, T0).unwrap();
            refuses(&mut bob, WalletError::LogFull { max: 2 }, |w| {
                w.receive(&p, T0)
            });
        }

        #[test]
        fn receive_locked() {
            if !K::available() {
                return;
            }
            for mut f in locked_fixtures() {
                let p = f.payment.clone();
                refuses(&mut f.w, WalletError::Locked(f.reason), |w| {
                    w.receive(&p, T0.plus(3))
                });
            }
        }

        // ---- confirm --------------------------------------------------------------------------

        #[test]
        fn confirm_receipt_unknown_payment() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world();
            let mut carol = s.enroll(K::new(), ED, T0);
            s.load(&mut carol, 1_000, T0);
            let req = bob.request(eur(100), 300, T0).unwrap();
            let p = carol.pay(&req, T0).unwrap();
            let receipt = bob.receive(&p, T0).unwrap();
            pay(&mut alice, &mut bob, 100, T0);
            refuses(&mut alice, WalletError::ReceiptUnknownPayment, |w| {
                w.confirm(&receipt)
            });
        }

        #[test]
        fn confirm_bad_signature() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world();
            let req = bob.request(eur(100), 300, T0).unwrap();
            let p = alice.pay(&req, T0).unwrap();
            let mut receipt = bob.receive(&p, T0).unwrap();
            *receipt.last_mut().unwrap() ^= 1;
            refuses(&mut alice, WalletError::BadSignature, |w| {
                w.confirm(&receipt)
            });
            // A receipt for the payment signed by someone other than the payee.
            let mallory = s.raw_signer(ED, 0x66, T0);
            let mut body = mallory.receipt_for(&p, T0);
            body.payee = bob.wallet_id();
            let forged = mallory.sign(body);
            refuses(&mut alice, WalletError::BadSignature, |w| {
                w.confirm(&forged)
            });
        }

        #[test]
        fn confirm_wrong_wallet() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, bob) = world();
            let payee = s.raw_signer(ED, 0x66, T0);
            let req = payee.request(eur(100), T0, 300);
            let p = alice.pay(&req, T0).unwrap();
            // Signed by the right payee, for the right payment, but naming another payer.
            let mut body = payee.receipt_for(&p, T0);
            body.payer = bob.wallet_id();
            let receipt = payee.sign(body);
            refuses(&mut alice, WalletError::WrongWallet, |w| {
                w.confirm(&receipt)
            });
        }

        #[test]
        fn confirm_malformed() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, _bob) = world();
            refuses(
                &mut alice,
                WalletError::Malformed(DecodeError::UnexpectedType {
                    field: "COSE_Sign1 tag",
                }),
                |w| w.confirm(b"not a receipt"),
            );
        }

        // ---- apply_voucher ------------------------------------------------------------------------

        #[test]
        fn voucher_bad_signature() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, _bob) = world();
            let other = SigningKey::from_seed(ED, &[0x77; 32]).unwrap();
            let v = Signed::sign(
                LoadVoucher {
                    wallet: alice.wallet_id(),
                    load_seq: 2,
                    amount: eur(100),
                    issued: T0,
                },
                &other,
            )
            .into_bytes();
            refuses(&mut alice, WalletError::BadSignature, |w| {
                w.apply_voucher(&v, T0)
            });
        }

        #[test]
        fn voucher_wrong_wallet() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, bob) = world();
            let v = s.voucher(bob.wallet_id(), 100, T0);
            refuses(&mut alice, WalletError::WrongWallet, |w| {
                w.apply_voucher(&v, T0)
            });
        }

        #[test]
        fn voucher_replayed() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let v = s.voucher(alice.wallet_id(), 100, T0);
            alice.apply_voucher(&v, T0).unwrap();
            refuses(
                &mut alice,
                WalletError::VoucherReplayed { load_seq: 2 },
                |w| w.apply_voucher(&v, T0),
            );
        }

        #[test]
        fn voucher_out_of_order() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let v2 = s.voucher(alice.wallet_id(), 100, T0);
            let v3 = s.voucher(alice.wallet_id(), 100, T0);
            refuses(
                &mut alice,
                WalletError::VoucherOutOfOrder {
                    expected: 2,
                    got: 3,
                },
                |w| w.apply_voucher(&v3, T0),
            );
            alice.apply_voucher(&v2, T0).unwrap();
            alice.apply_voucher(&v3, T0).unwrap();
        }

        #[test]
        fn voucher_limit_holding() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let v = s.voucher(alice.wallet_id(), 90_001, T0);
            refuses(
                &mut alice,
                WalletError::LimitHolding { max_minor: 100_000 },
                |w| w.apply_voucher(&v, T0),
            );
        }

        #[test]
        fn voucher_currency_mismatch() {
            if !K::available() {
                return;
            }
            let (s, mut alice, _bob) = world();
            let v = Signed::sign(
                LoadVoucher {
                    wallet: alice.wallet_id(),
                    load_seq: 2,
                    amount: usd(100),
                    issued: T0,
                },
                &s.issuer_key,
            )
            .into_bytes();
            refuses(&mut alice, WalletError::CurrencyMismatch, |w| {
                w.apply_voucher(&v, T0)
            });
        }

        #[test]
        fn voucher_overflow() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let v = s.voucher(alice.wallet_id(), u64::MAX, T0);
            refuses(&mut alice, WalletError::Overflow, |w| {
                w.apply_voucher(&v, T0)
            });
        }

        #[test]
        fn voucher_locked() {
            if !K::available() {
                return;
            }
            for mut f in locked_fixtures() {
                let v = f.s.voucher(f.w.wallet_id(), 100, T0);
                refuses(&mut f.w, WalletError::Locked(f.reason), |w| {
                    w.apply_voucher(&v, T0.plus(3))
                });
            }
        }

        // ---- redeem -----------------------------------------------------------------------------------

        #[test]
        fn redeem_zero_amount() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, _bob) = world();
            refuses(&mut alice, WalletError::ZeroAmount, |w| {
                w.redeem(eur(0), T0)
            });
        }

        #[test]
        fn redeem_currency_mismatch() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, _bob) = world();
            refuses(&mut alice, WalletError::CurrencyMismatch, |w| {
                w.redeem(usd(100), T0)
            });
        }

        #[test]
        fn redeem_insufficient_funds() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, _bob) = world();
            refuses(
                &mut alice,
                WalletError::InsufficientFunds {
                    balance: eur(10_000),
                    needed: eur(10_001),
                },
                |w| w.redeem(eur(10_001), T0),
            );
        }

        #[test]
        fn redeem_locked() {
            if !K::available() {
                return;
            }
            for mut f in locked_fixtures() {
                refuses(&mut f.w, WalletError::Locked(f.reason), |w| {
                    w.redeem(eur(100), T0.plus(3))
                });
            }
        }

        // ---- apply_sync_response ----------------------------------------------------------------------

        #[test]
        fn sync_stale_without_pending_report() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            // A response to a report that alice's clone made: alice has none pending.
            let mut alice2 = clone_of(&alice);
            let report = alice2.sync_report(T0.plus(1)).unwrap();
            let resp = s.respond(&report, T0.plus(1), WalletCommand::None, Vec::new(), None);
            refuses(&mut alice, WalletError::StaleSyncResponse, |w| {
                w.apply_sync_response(&resp, T0.plus(1))
            });
        }

        #[test]
        fn sync_stale_wrong_report_seq() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let r1 = alice.sync_report(T0.plus(1)).unwrap();
            let _r2 = alice.sync_report(T0.plus(2)).unwrap();
            let resp = s.respond(&r1, T0.plus(2), WalletCommand::None, Vec::new(), None);
            refuses(&mut alice, WalletError::StaleSyncResponse, |w| {
                w.apply_sync_response(&resp, T0.plus(2))
            });
        }

        #[test]
        fn sync_stale_replayed_response() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let report = alice.sync_report(T0.plus(1)).unwrap();
            let resp = s.respond(&report, T0.plus(1), WalletCommand::None, Vec::new(), None);
            alice.apply_sync_response(&resp, T0.plus(1)).unwrap();
            refuses(&mut alice, WalletError::StaleSyncResponse, |w| {
                w.apply_sync_response(&resp, T0.plus(2))
            });
            // Replayed while a newer report is pending: still stale.
            alice.sync_report(T0.plus(3)).unwrap();
            refuses(&mut alice, WalletError::StaleSyncResponse, |w| {
                w.apply_sync_response(&resp, T0.plus(3))
            });
        }

        #[test]
        fn sync_stale_checkpoint_number() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            s.sync(&mut alice, T0.plus(1));
            let report = alice.sync_report(T0.plus(2)).unwrap();
            // Answers the right report, but with a checkpoint no newer than the one in force.
            let resp = s.respond_edit(&report, T0.plus(2), |r| r.checkpoint.number = 1);
            refuses(&mut alice, WalletError::StaleSyncResponse, |w| {
                w.apply_sync_response(&resp, T0.plus(2))
            });
        }

        #[test]
        fn sync_checkpoint_mismatch() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world();
            pay(&mut alice, &mut bob, 100, T0);
            let edits: [fn(&mut SyncResponse); 4] = [
                |r| r.checkpoint.balance.minor += 1,
                |r| r.checkpoint.seq += 1,
                |r| r.checkpoint.head = Hash32([9; 32]),
                |r| r.checkpoint.load_seq += 1,
            ];
            for edit in edits {
                let report = alice.sync_report(T0.plus(1)).unwrap();
                let resp = s.respond_edit(&report, T0.plus(1), edit);
                refuses(&mut alice, WalletError::CheckpointMismatch, |w| {
                    w.apply_sync_response(&resp, T0.plus(1))
                });
            }
        }

        #[test]
        fn sync_currency_mismatch() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let report = alice.sync_report(T0.plus(1)).unwrap();
            let resp = s.respond_edit(&report, T0.plus(1), |r| {
                r.checkpoint.balance = usd(r.checkpoint.balance.minor);
            });
            refuses(&mut alice, WalletError::CurrencyMismatch, |w| {
                w.apply_sync_response(&resp, T0.plus(1))
            });
        }

        #[test]
        fn sync_bad_signature() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let report = alice.sync_report(T0.plus(1)).unwrap();
            let mut resp = s.respond(&report, T0.plus(1), WalletCommand::None, Vec::new(), None);
            *resp.last_mut().unwrap() ^= 1;
            refuses(&mut alice, WalletError::BadSignature, |w| {
                w.apply_sync_response(&resp, T0.plus(1))
            });
            // A response signed by another scheme's issuer.
            let mut other = Scheme::foreign(ED, 0x33);
            let resp = other.respond(&report, T0.plus(1), WalletCommand::Unlock, Vec::new(), None);
            refuses(&mut alice, WalletError::BadSignature, |w| {
                w.apply_sync_response(&resp, T0.plus(1))
            });
        }

        #[test]
        fn sync_wrong_wallet() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, bob) = world();
            let report = alice.sync_report(T0.plus(1)).unwrap();
            let bob_id = bob.wallet_id();
            let resp = s.respond_edit(&report, T0.plus(1), |r| r.wallet = bob_id);
            refuses(&mut alice, WalletError::WrongWallet, |w| {
                w.apply_sync_response(&resp, T0.plus(1))
            });
        }

        #[test]
        fn sync_foreign_crl() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let mut other = Scheme::foreign(ED, 0x33);
            let crl = other.crl(T0);
            let report = alice.sync_report(T0.plus(1)).unwrap();
            let resp = s.respond(
                &report,
                T0.plus(1),
                WalletCommand::None,
                Vec::new(),
                Some(crl),
            );
            refuses(
                &mut alice,
                WalletError::IssuerMaterial(PkiError::CrlWrongIssuer),
                |w| w.apply_sync_response(&resp, T0.plus(1)),
            );
        }

        #[test]
        fn sync_certificate_of_another_wallet() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, bob) = world();
            let bob_cert = s.certs[&bob.wallet_id()].clone();
            let report = alice.sync_report(T0.plus(1)).unwrap();
            let resp = s.respond_edit(&report, T0.plus(1), |r| r.certificate = Some(bob_cert));
            refuses(&mut alice, WalletError::CertificateWalletMismatch, |w| {
                w.apply_sync_response(&resp, T0.plus(1))
            });
        }

        #[test]
        fn sync_stale_policy() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let old = RiskPolicy {
                epoch: 0,
                ..default_policy()
            };
            let old = Signed::sign(old, &s.issuer_key).into_bytes();
            let report = alice.sync_report(T0.plus(1)).unwrap();
            let resp = s.respond_edit(&report, T0.plus(1), |r| r.policy = Some(old));
            refuses(&mut alice, WalletError::StalePolicy, |w| {
                w.apply_sync_response(&resp, T0.plus(1))
            });
        }

        #[test]
        fn sync_policy_bad_signature() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world();
            let other = SigningKey::from_seed(ED, &[0x77; 32]).unwrap();
            let policy = RiskPolicy {
                epoch: 2,
                ..default_policy()
            };
            let policy = Signed::sign(policy, &other).into_bytes();
            let report = alice.sync_report(T0.plus(1)).unwrap();
            let resp = s.respond_edit(&report, T0.plus(1), |r| r.policy = Some(policy));
            refuses(&mut alice, WalletError::BadSignature, |w| {
                w.apply_sync_response(&resp, T0.plus(1))
            });
        }

        /// A bad voucher in an otherwise good response (new policy, new CRL, lock):
        /// none of it is installed, neither in the vault nor in memory.
        #[test]
        fn sync_bad_voucher_installs_nothing() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, mut bob) = world();
            let new_policy = RiskPolicy {
                epoch: 2,
                max_payment: eur(10),
                ..default_policy()
            };
            let new_policy = Signed::sign(new_policy, &s.issuer_key).into_bytes();
            s.revoke(bob.wallet_id(), T0);
            let crl = s.crl(T0);
            let good = s.voucher(alice.wallet_id(), 100, T0);
            let bad = s.voucher(bob.wallet_id(), 100, T0);
            let report = alice.sync_report(T0.plus(1)).unwrap();
            let resp = s.respond_edit(&report, T0.plus(1), |r| {
                r.policy = Some(new_policy);
                r.crl = Some(crl);
                r.vouchers = vec![good, bad];
                r.command = WalletCommand::Lock { reason: "x".into() };
            });
            refuses(&mut alice, WalletError::WrongWallet, |w| {
                w.apply_sync_response(&resp, T0.plus(1))
            });
            // Neither the CRL (bob still payable) nor the policy (500 > new max 10) is in force.
            let req = bob.request(eur(500), 300, T0.plus(2)).unwrap();
            alice.pay(&req, T0.plus(2)).unwrap();
        }

        #[test]
        fn sync_malformed() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, _bob) = world();
            alice.sync_report(T0.plus(1)).unwrap();
            refuses(
                &mut alice,
                WalletError::Malformed(DecodeError::UnexpectedType {
                    field: "COSE_Sign1 tag",
                }),
                |w| w.apply_sync_response(b"not a response", T0.plus(1)),
            );
        }

        // ---- enroll ---------------------------------------------------------------------------------------

        #[test]
        fn enroll_already_enrolled() {
            if !K::available() {
                return;
            }
            let (s, mut alice, _bob) = world();
            let cert = s.certs[&alice.wallet_id()].clone();
            refuses(&mut alice, WalletError::AlreadyEnrolled, |w| {
                w.enroll(s.issuer.der(), &cert, &s.policy_bytes, None, T0)
            });
        }

        #[test]
        fn enroll_issuer_from_another_root() {
            if !K::available() {
                return;
            }
            let mut s = Scheme::new(ED);
            let other = Scheme::foreign(ED, 0x33);
            let mut w = created(&s);
            let cert = s.certify(&w.csr().unwrap(), T0);
            refuses(
                &mut w,
                WalletError::IssuerMaterial(PkiError::WrongIssuer),
                |w| w.enroll(other.issuer.der(), &cert, &s.policy_bytes, None, T0),
            );
            // A certificate from another issuer under our issuer.
            let mut other = Scheme::foreign(ED, 0x33);
            let cert2 = other.certify(&w.csr().unwrap(), T0);
            refuses(
                &mut w,
                WalletError::IssuerMaterial(PkiError::WrongIssuer),
                |w| w.enroll(s.issuer.der(), &cert2, &s.policy_bytes, None, T0),
            );
            w.enroll(s.issuer.der(), &cert, &s.policy_bytes, None, T0)
                .unwrap();
        }

        #[test]
        fn enroll_certificate_of_another_wallet() {
            if !K::available() {
                return;
            }
            let mut s = Scheme::new(ED);
            let mut w = created(&s);
            let w2 = created(&s);
            let cert2 = s.certify(&w2.csr().unwrap(), T0);
            refuses(&mut w, WalletError::CertificateWalletMismatch, |w| {
                w.enroll(s.issuer.der(), &cert2, &s.policy_bytes, None, T0)
            });
            // This wallet's id, but another key.
            let key = SigningKey::from_seed(ED, &[0x44; 32]).unwrap();
            let csr = pki::build_csr(&key, w.wallet_id()).unwrap();
            let cert3 = s.certify(&csr, T0);
            refuses(&mut w, WalletError::CertificateWalletMismatch, |w| {
                w.enroll(s.issuer.der(), &cert3, &s.policy_bytes, None, T0)
            });
        }

        #[test]
        fn enroll_policy_bad_signature() {
            if !K::available() {
                return;
            }
            let mut s = Scheme::new(ED);
            let other = Scheme::foreign(ED, 0x33);
            let mut w = created(&s);
            let cert = s.certify(&w.csr().unwrap(), T0);
            refuses(&mut w, WalletError::BadSignature, |w| {
                w.enroll(s.issuer.der(), &cert, &other.policy_bytes, None, T0)
            });
            refuses(
                &mut w,
                WalletError::Malformed(DecodeError::UnexpectedType {
                    field: "COSE_Sign1 tag",
                }),
                |w| w.enroll(s.issuer.der(), &cert, b"not a policy", None, T0),
            );
        }

        #[test]
        fn enroll_foreign_crl() {
            if !K::available() {
                return;
            }
            let mut s = Scheme::new(ED);
            let mut other = Scheme::foreign(ED, 0x33);
            let crl = other.crl(T0);
            let mut w = created(&s);
            let cert = s.certify(&w.csr().unwrap(), T0);
            refuses(
                &mut w,
                WalletError::IssuerMaterial(PkiError::CrlWrongIssuer),
                |w| w.enroll(s.issuer.der(), &cert, &s.policy_bytes, Some(&crl), T0),
            );
        }

        // ---- not enrolled, vault failure ----------------------------------------------------------------

        #[test]
        #[expect(clippy::many_single_char_names)] // lint-exception: short names follow the fixtures and formulas
        fn not_enrolled_refuses_everything() {
            let (mut s, mut alice, mut bob) = world();
            let mut w = created(&s);
            let id = w.wallet_id();
            let req = bob.request(eur(100), 300, T0).unwrap();
            let p = alice.pay(&req, T0).unwrap();
            let v = s.voucher(id, 100, T0);
            let report = alice.sync_report(T0).unwrap();
            let resp = s.respond_edit(&report, T0, |r| r.wallet = id);
            let e = WalletError::NotEnrolled;
            refuses(&mut w, e.clone(), |w| w.pay(&req, T0));
            refuses(&mut w, e.clone(), |w| w.receive(&p, T0));
            refuses(&mut w, e.clone(), |w| w.apply_voucher(&v, T0));
            refuses(&mut w, e.clone(), |w| w.redeem(eur(100), T0));
            refuses(&mut w, e.clone(), |w| w.sync_report(T0));
            refuses(&mut w, e, |w| w.apply_sync_response(&resp, T0));
        }

        // ---- the payer's clock ------------------------------------------------------------------------

        /// DESIGN §8: the TA's now is never before a time in a message it has
        /// verified. A payer whose device clock was set back is shown the real time by
        /// the payee's signed request. Far behind (eight days): the request is refused
        /// as dated in the future, so the clock must be set or the wallet synced.
        #[test]
        fn pay_refuses_a_request_far_ahead_of_a_clock_set_back() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world();
            let honest_now = T0.plus(8 * DAY);
            let req = bob.request(eur(100), 300, honest_now).unwrap();
            refuses(
                &mut alice,
                WalletError::ClockSkew {
                    ahead_seconds: 8 * DAY,
                },
                |w| w.pay(&req, T0),
            );
        }

        /// Within the allowed lead, the request's time is adopted: a clock held just
        /// under the time-offline limit still meets it.
        #[test]
        fn pay_limit_offline_time_with_clock_set_back() {
            if !K::available() {
                return;
            }
            let (_s, mut alice, mut bob) = world();
            let honest_now = T0.plus(7 * DAY + 1200);
            let req = bob.request(eur(100), 300, honest_now).unwrap();
            refuses(
                &mut alice,
                WalletError::LimitOfflineTime {
                    offline_seconds: 7 * DAY + 1200,
                    max_seconds: 7 * DAY,
                },
                |w| w.pay(&req, T0.plus(7 * DAY - 600)),
            );
        }

        // ---- the receive-only terminal ------------------------------------------------

        fn terminal_policy() -> RiskPolicy {
            RiskPolicy {
                terminal: Some(offpay_protocol::messages::TerminalLimits {
                    max_receive_payments: 3,
                    max_receive_minor: 1_000,
                    sweep_float_minor: 200,
                }),
                ..default_policy()
            }
        }

        #[test]
        fn a_terminal_never_pays() {
            if !K::available() {
                return;
            }
            let (mut s, _alice, mut bob) = world_with(terminal_policy());
            let mut till = s.enroll_terminal(K::new(), ED, T0);
            assert_eq!(till.profile(), pki::WalletProfile::Terminal);
            assert_eq!(bob.profile(), pki::WalletProfile::Personal);
            // Even with money on it (a voucher: the issuer never sends one to a
            // terminal, but the TA does not rely on that), it pays no request.
            s.load(&mut till, 500, T0);
            let req = bob.request(eur(100), 300, T0).unwrap();
            refuses(&mut till, WalletError::TerminalCannotPay, |w| {
                w.pay(&req, T0)
            });
            // Garbage is refused for being a terminal first: nothing is even decoded.
            refuses(&mut till, WalletError::TerminalCannotPay, |w| {
                w.pay(b"x", T0)
            });
        }

        #[test]
        fn no_wallet_accepts_a_payment_from_a_terminal() {
            if !K::available() {
                return;
            }
            let (mut s, _alice, mut bob) = world_with(terminal_policy());
            // A terminal key outside any TA signs what an honest terminal never would.
            let forger = s.raw_terminal_signer(ED, 0x7e, T0);
            let req = bob.request(eur(100), 300, T0).unwrap();
            let payment = forger.sign(forger.payment_for(&req, T0));
            refuses(
                &mut bob,
                WalletError::PayerIsTerminal { payer: forger.id },
                |w| w.receive(&payment, T0),
            );
            // The same payment from a personal certificate of the same key is accepted:
            // the refusal is the profile's.
            let person = s.raw_signer(ED, 0x7e, T0);
            let payment = person.sign(person.payment_for(&req, T0));
            bob.receive(&payment, T0).unwrap();
        }

        #[test]
        fn terminal_receive_limits_count_and_amount() {
            if !K::available() {
                return;
            }
            let (mut s, mut alice, _bob) = world_with(terminal_policy());
            let mut till = s.enroll_terminal(K::new(), ED, T0);
            pay(&mut alice, &mut till, 600, T0);
            let status = till.status(T0);
            assert_eq!(status.receive_payments_left, Some(2));
            assert_eq!(status.receive_left_minor, Some(400));
            // Amount: 401 would bring the takings to 1 001 > 1 000.
            let req = till.request(eur(401), 300, T0).unwrap();
            let payment = alice.pay(&req, T0).unwrap();
            refuses(
                &mut till,
                WalletError::LimitReceiveAmount { left_minor: 400 },
                |w| w.receive(&payment, T0),
            );
            pay(&mut alice, &mut till, 100, T0);
            pay(&mut alice, &mut till, 100, T0);
            // Count: the fourth payment between two syncs.
            let req = till.request(eur(1), 300, T0).unwrap();
            let payment = alice.pay(&req, T0).unwrap();
            refuses(&mut till, WalletError::LimitReceiveCount { max: 3 }, |w| {
                w.receive(&payment, T0)
            });
            // A sync resets both (the unsynced log is what they count).
            s.sync(&mut till, T0.plus(10));
            assert_eq!(till.status(T0).receive_payments_left, Some(3));
            pay(&mut alice, &mut till, 300, T0.plus(20));
            // A personal wallet under the same policy has no receive limit.
            let mut other = s.enroll(K::new(), ED, T0);
            for _ in 0..4 {
                pay(&mut alice, &mut other, 300, T0.plus(30));
            }
            assert_eq!(other.status(T0).receive_payments_left, None);
        }
    };
}
