//! The scheme operator's acceptance suite, run on SQLite and on PostgreSQL:
//! admission, directory versions, tokens, claims from either side counted
//! once, every refusal recorded and posting nothing, inbox and ack exactly
//! once, cycles netting to zero, statements verifying with the root, the
//! issuer CRL.
//!
//! PostgreSQL: `OFFPAY_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each run in its own schema.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::collections::BTreeMap;

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{
    CertField, Directory, Payment, SettlementStatement, statement_digest,
};
use offpay_protocol::pki::{
    self, Certificate, Crl, PolicyRef, RevocationReason, RevokedEntry, SchemeTrust,
};
use offpay_protocol::{
    Amount, Currency, Hash32, IssuerId, IssuerStatus, Nonce, OsEntropy, SigningKey, Suite,
    UnixSeconds, WalletId,
};
use offpay_scheme::store::SchemeStore;
use offpay_scheme::{ClaimQuery, ClaimResult, Scheme, SchemeConfig, SchemeError};
use offpay_store::scheme::SchemeDb;
use offpay_test_support::postgres::Schema;

const T0: UnixSeconds = UnixSeconds(1_795_000_000);
const MASTER: [u8; 32] = [42u8; 32];

fn eur() -> Currency {
    Currency::new("EUR").unwrap()
}

fn config() -> SchemeConfig {
    SchemeConfig {
        suite: Suite::Ed25519,
        root_cn: "test-scheme-root".into(),
        currency: eur(),
    }
}

/// Run `f` on a SQLite file and on a fresh PostgreSQL schema; `f` gets a
/// way to open the same database again.
fn on_every_backend(name: &str, f: impl Fn(&Scheme<SchemeDb>, &dyn Fn() -> SchemeDb)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scheme.sqlite");
    let open = || SchemeDb::open_sqlite(&path).unwrap();
    let scheme = Scheme::init(open(), &MASTER, &config(), T0, OsEntropy::shared()).unwrap();
    eprintln!("[{name}] sqlite");
    f(&scheme, &open);
    drop(scheme);

    let Some(guard) = Schema::fresh(name) else {
        return;
    };
    let open = || SchemeDb::open_postgres(&guard.url, Some(&guard.name)).unwrap();
    let scheme = Scheme::init(open(), &MASTER, &config(), T0, OsEntropy::shared()).unwrap();
    eprintln!("[{name}] postgres schema {}", guard.name);
    f(&scheme, &open);
}

/// A member issuer: its CA key (generated locally), certificate and token.
struct Member {
    code: String,
    key: SigningKey,
    ca: Certificate,
    id: IssuerId,
    token: String,
    serial: u64,
}

fn admit(scheme: &Scheme<SchemeDb>, code: &str, now: UnixSeconds) -> Member {
    let key = SigningKey::generate_with(Suite::Ed25519, &OsEntropy).unwrap();
    let csr = pki::build_ca_csr(&key, code).unwrap();
    let a = scheme.admit(code, &csr, now).unwrap();
    let ca = Certificate::from_der(&a.ca_cert).unwrap();
    assert_eq!(a.root_cert, scheme.root_certificate().der());
    assert_eq!(ca.subject_issuer_id(), a.issuer);
    assert_eq!(ca.subject_cn(), code);
    ca.verify_signed_by(scheme.root_certificate()).unwrap();
    Member {
        code: code.into(),
        key,
        ca: ca.clone(),
        id: a.issuer,
        token: a.token,
        serial: ca.serial(),
    }
}

/// A wallet certified by an issuer CA.
struct TestWallet {
    key: SigningKey,
    id: WalletId,
    cert: Vec<u8>,
    issuer: IssuerId,
}

fn wallet(ca_key: &SigningKey, ca: &Certificate, n: u8) -> TestWallet {
    let key = SigningKey::generate_with(Suite::Ed25519, &OsEntropy).unwrap();
    let mut id = [n; 16];
    id[0] = ca.serial() as u8;
    let id = WalletId(id);
    let cert = pki::issue_wallet(
        ca_key,
        ca,
        &key.public_key(),
        id,
        PolicyRef { id: 1, epoch: 1 },
        100 + u64::from(n),
        T0,
        T0.plus(365 * 86_400),
    )
    .unwrap();
    TestWallet {
        key,
        id,
        cert: cert.der().to_vec(),
        issuer: cert.issuer_id(),
    }
}

fn member_wallet(m: &Member, n: u8) -> TestWallet {
    wallet(&m.key, &m.ca, n)
}

/// A signed payment entry from `payer` to `payee` (certificate inline).
fn payment_in(
    payer: &TestWallet,
    payee: &TestWallet,
    seq: u64,
    minor: u64,
    currency: Currency,
) -> Vec<u8> {
    let body = Payment {
        payer: payer.id,
        seq,
        prev: Hash32([seq as u8; 32]),
        payee: payee.id,
        payee_issuer: payee.issuer,
        amount: Amount::new(minor, currency),
        nonce: Nonce([seq as u8; 16]),
        time: T0,
        payer_cert: CertField::Inline(payer.cert.clone()),
    };
    Signed::sign(body, &payer.key).into_bytes()
}

fn payment(payer: &TestWallet, payee: &TestWallet, seq: u64, minor: u64) -> Vec<u8> {
    payment_in(payer, payee, seq, minor, eur())
}

fn id_of(entry: &[u8]) -> Hash32 {
    Signed::<Payment>::decode(entry).unwrap().payload_hash()
}

fn directory(scheme: &Scheme<SchemeDb>) -> Directory {
    let d = Signed::<Directory>::decode(&scheme.directory().unwrap()).unwrap();
    d.verify(scheme.root_certificate().public_key()).unwrap();
    d.body().clone()
}

fn all_claims(scheme: &Scheme<SchemeDb>) -> Vec<offpay_scheme::ClaimInfo> {
    scheme
        .claims(&ClaimQuery {
            limit: 1000,
            ..ClaimQuery::default()
        })
        .unwrap()
}

fn assert_invariants(scheme: &Scheme<SchemeDb>) {
    let inv = scheme.invariants().unwrap();
    assert!(inv.ok, "{:?}", inv.violations);
}

#[test]
fn admission_directory_versions_and_reopen() {
    on_every_backend("scheme_admission", |scheme, reopen| {
        let d = directory(scheme);
        assert_eq!((d.version, d.issuers.len()), (1, 0));
        assert_eq!(d.currency, eur());

        let ma = admit(scheme, "bank-a", T0.plus(1));
        let mb = admit(scheme, "bank-b", T0.plus(2));
        assert_ne!(ma.id, mb.id);
        let d = directory(scheme);
        assert_eq!(d.version, 3);
        let changed: Vec<(String, u64, IssuerStatus)> = d
            .issuers
            .iter()
            .map(|ent| (ent.code.clone(), ent.changed, ent.status))
            .collect();
        assert_eq!(
            changed,
            vec![
                ("bank-a".into(), 2, IssuerStatus::Active),
                ("bank-b".into(), 3, IssuerStatus::Active)
            ]
        );

        // Refusals: nothing changes.
        let key = SigningKey::generate_with(Suite::Ed25519, &OsEntropy).unwrap();
        let csr = pki::build_ca_csr(&key, "bank-c").unwrap();
        assert_eq!(
            scheme
                .admit("bank-a", &pki::build_ca_csr(&key, "bank-a").unwrap(), T0)
                .err(),
            Some(SchemeError::IssuerExists)
        );
        assert!(matches!(
            scheme.admit("bank-d", &csr, T0),
            Err(SchemeError::InvalidCsr(_))
        ));
        assert_eq!(
            scheme.admit("Bank C", &csr, T0).err(),
            Some(SchemeError::InvalidCode)
        );
        assert!(matches!(
            scheme.admit("bank-c", b"\x30\x03junk", T0),
            Err(SchemeError::InvalidCsr(_))
        ));
        // The same key under a new code: refused.
        let again = pki::build_ca_csr(&ma.key, "bank-z").unwrap();
        assert_eq!(
            scheme.admit("bank-z", &again, T0).err(),
            Some(SchemeError::IssuerExists)
        );
        assert_eq!(directory(scheme).version, 3);

        // Status changes bump the version; a repeat does not.
        assert_eq!(scheme.suspend(&ma.id, T0.plus(10)).unwrap(), 4);
        assert_eq!(scheme.suspend(&ma.id, T0.plus(11)).unwrap(), 4);
        assert_eq!(scheme.reinstate(&ma.id, T0.plus(12)).unwrap(), 5);
        assert_eq!(scheme.revoke(&ma.id, T0.plus(13)).unwrap(), 6);
        assert_eq!(
            scheme.reinstate(&ma.id, T0.plus(14)).err(),
            Some(SchemeError::InvalidTransition {
                from: "revoked",
                to: "active"
            })
        );
        assert_eq!(
            scheme.suspend(&IssuerId([9; 16]), T0).err(),
            Some(SchemeError::UnknownIssuer)
        );
        let d = directory(scheme);
        assert_eq!(d.version, 6);
        let ea = d.issuers.iter().find(|ent| ent.code == "bank-a").unwrap();
        assert_eq!((ea.changed, ea.status), (6, IssuerStatus::Revoked));

        crl_publication(scheme, &ma, &mb);
        lookups_and_reopen(scheme, &mb, reopen);
        assert_invariants(scheme);
    });
}

/// An issuer's CRL: signed by its CA, newer each time; the same again changes nothing.
fn crl_publication(scheme: &Scheme<SchemeDb>, ma: &Member, mb: &Member) {
    // CRL publication: signed by the issuer's CA, newer each time.
    let crl1 = pki::issue_crl(&mb.key, &mb.ca, 1, T0, T0.plus(86_400), &[]).unwrap();
    assert_eq!(
        scheme.publish_crl(&mb.id, crl1.der(), T0.plus(20)).unwrap(),
        7
    );
    assert_eq!(
        scheme.publish_crl(&mb.id, crl1.der(), T0.plus(21)).unwrap(),
        7
    );
    let crl1b = pki::issue_crl(&mb.key, &mb.ca, 1, T0.plus(5), T0.plus(86_400), &[]).unwrap();
    assert!(matches!(
        scheme.publish_crl(&mb.id, crl1b.der(), T0.plus(22)),
        Err(SchemeError::InvalidCrl(_))
    ));
    let forged = pki::issue_crl(&ma.key, &ma.ca, 2, T0, T0.plus(86_400), &[]).unwrap();
    assert!(matches!(
        scheme.publish_crl(&mb.id, forged.der(), T0.plus(22)),
        Err(SchemeError::InvalidCrl(_))
    ));
    assert_eq!(
        scheme.publish_crl(&ma.id, forged.der(), T0.plus(22)).err(),
        Some(SchemeError::IssuerRevoked)
    );
    assert!(matches!(
        scheme.publish_crl(&mb.id, b"junk", T0),
        Err(SchemeError::InvalidCrl(_))
    ));
    let crl2 = pki::issue_crl(&mb.key, &mb.ca, 2, T0.plus(30), T0.plus(86_400), &[]).unwrap();
    assert_eq!(
        scheme.publish_crl(&mb.id, crl2.der(), T0.plus(30)).unwrap(),
        8
    );
    let d = directory(scheme);
    let eb = d.issuers.iter().find(|ent| ent.code == "bank-b").unwrap();
    assert_eq!(eb.changed, 8);
    assert_eq!(eb.crl.as_deref(), Some(crl2.der()));
    assert_eq!(scheme.directory_version().unwrap(), 8);
}

/// Lookups by code, the issuer list, and reopening with the master key.
fn lookups_and_reopen(scheme: &Scheme<SchemeDb>, mb: &Member, reopen: &dyn Fn() -> SchemeDb) {
    // Lookups.
    assert_eq!(scheme.issuer_id("bank-b").unwrap(), mb.id);
    assert_eq!(
        scheme.issuer_id("bank-q").err(),
        Some(SchemeError::UnknownIssuer)
    );
    let infos = scheme.issuers().unwrap();
    assert_eq!(
        infos.iter().map(|i| i.code.as_str()).collect::<Vec<_>>(),
        ["bank-a", "bank-b"]
    );
    assert_eq!(infos[1].crl_number, 2);

    // Reopen: the master key opens the sealed root; another does not.
    let again = Scheme::open(reopen(), &MASTER, OsEntropy::shared()).unwrap();
    assert_eq!(
        again.root_certificate().der(),
        scheme.root_certificate().der()
    );
    assert_eq!(again.directory().unwrap(), scheme.directory().unwrap());
    assert_eq!(
        Scheme::open(reopen(), &[1u8; 32], OsEntropy::shared()).err(),
        Some(SchemeError::MasterKey)
    );
    assert_eq!(
        Scheme::init(reopen(), &MASTER, &config(), T0, OsEntropy::shared()).err(),
        Some(SchemeError::AlreadyInitialized)
    );
}

#[test]
fn tokens_authenticate_their_issuer_only() {
    on_every_backend("scheme_tokens", |scheme, _| {
        let ma = admit(scheme, "bank-a", T0);
        let mb = admit(scheme, "bank-b", T0);
        assert_eq!(scheme.authenticate(&ma.token).unwrap(), ma.id);
        assert_eq!(scheme.authenticate(&mb.token).unwrap(), mb.id);
        // A's id with B's secret, a flipped character, garbage: refused.
        let (_, secret_b) = mb.token.split_once('.').unwrap();
        let mixed = format!("{}.{secret_b}", ma.id.to_hex());
        let mut flipped = ma.token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'a' { b'b' } else { b'a' };
        let flipped = String::from_utf8(flipped).unwrap();
        let unknown = format!("{}.{}", IssuerId([3; 16]).to_hex(), secret_b);
        for t in [
            mixed.as_str(),
            flipped.as_str(),
            unknown.as_str(),
            "",
            "bearer",
            &ma.token[..40],
        ] {
            assert_eq!(
                scheme.authenticate(t).err(),
                Some(SchemeError::Unauthorized),
                "{t}"
            );
        }
        // A suspended issuer still authenticates (it reads statements, acks claims).
        scheme.suspend(&ma.id, T0).unwrap();
        assert_eq!(scheme.authenticate(&ma.token).unwrap(), ma.id);
    });
}

#[test]
fn suspension_appears_in_the_issuer_crl_with_certificate_hold() {
    on_every_backend("scheme_issuer_crl", |scheme, _| {
        let ma = admit(scheme, "bank-a", T0);
        let mb = admit(scheme, "bank-b", T0);
        let mc = admit(scheme, "bank-c", T0);
        scheme.suspend(&ma.id, T0.plus(100)).unwrap();
        scheme.revoke(&mc.id, T0.plus(200)).unwrap();
        let d = directory(scheme);
        let crl = Crl::from_der(&d.issuer_crl).unwrap();
        crl.verify_signed_by(scheme.root_certificate()).unwrap();
        assert_eq!(crl.number(), d.version);
        assert_eq!(
            crl.entries(),
            &[
                RevokedEntry {
                    serial: ma.serial,
                    revoked_at: T0.plus(100),
                    reason: RevocationReason::CertificateHold
                },
                RevokedEntry {
                    serial: mc.serial,
                    revoked_at: T0.plus(200),
                    reason: RevocationReason::PrivilegeWithdrawn
                },
            ]
        );
        assert!(crl.is_revoked(mb.serial).is_none());
        // What a wallet or issuer makes of it.
        let mut trust = SchemeTrust::new(scheme.root_certificate().clone());
        for ent in &d.issuers {
            trust
                .add_issuer(Certificate::from_der(&ent.ca_cert).unwrap())
                .unwrap();
        }
        assert!(trust.set_issuer_crl(crl).unwrap());
        assert_eq!(trust.issuer_status(&ma.id), Some(IssuerStatus::Suspended));
        assert_eq!(trust.issuer_status(&mb.id), Some(IssuerStatus::Active));
        assert_eq!(trust.issuer_status(&mc.id), Some(IssuerStatus::Revoked));
        // Reinstated: off the list, in a newer CRL.
        scheme.reinstate(&ma.id, T0.plus(300)).unwrap();
        let d2 = directory(scheme);
        let crl2 = Crl::from_der(&d2.issuer_crl).unwrap();
        assert!(crl2.number() > d.version);
        assert!(crl2.is_revoked(ma.serial).is_none());
        assert!(trust.set_issuer_crl(crl2).unwrap());
        assert_eq!(trust.issuer_status(&ma.id), Some(IssuerStatus::Active));
        assert_eq!(ma.code, "bank-a");
    });
}

#[test]
fn a_claim_from_either_side_counts_once() {
    on_every_backend("scheme_claim_once", |scheme, _| {
        let ma = admit(scheme, "bank-a", T0);
        let mb = admit(scheme, "bank-b", T0);
        let (wp, wq) = (member_wallet(&ma, 1), member_wallet(&mb, 2));
        let ent = payment(&wp, &wq, 1, 700);
        let id = id_of(&ent);
        let now = T0.plus(60);

        assert_eq!(
            scheme
                .submit_claims(&ma.id, std::slice::from_ref(&ent), now)
                .unwrap(),
            vec![(id, ClaimResult::Accepted)]
        );
        assert_eq!(
            scheme
                .submit_claims(&ma.id, std::slice::from_ref(&ent), now)
                .unwrap(),
            vec![(id, ClaimResult::AlreadyKnown)]
        );
        assert!(scheme.inbox(&ma.id, 10).unwrap().is_empty());
        assert_eq!(scheme.inbox(&mb.id, 10).unwrap(), vec![(id, ent.clone())]);
        // Held by one side only: not netted.
        assert_eq!(scheme.open_positions().unwrap(), vec![]);
        // The payee's issuer submits it too (instead of acking): both sides now.
        assert_eq!(
            scheme
                .submit_claims(&mb.id, std::slice::from_ref(&ent), now)
                .unwrap(),
            vec![(id, ClaimResult::Accepted)]
        );
        assert_eq!(
            scheme
                .submit_claims(&mb.id, &[ent.clone(), ent.clone()], now)
                .unwrap(),
            vec![(id, ClaimResult::AlreadyKnown); 2]
        );
        assert!(scheme.inbox(&mb.id, 10).unwrap().is_empty());
        let claims = all_claims(scheme);
        assert_eq!(claims.len(), 1);
        assert_eq!(
            (
                claims[0].payer_issuer,
                claims[0].payee_issuer,
                claims[0].amount
            ),
            (ma.id, mb.id, 700)
        );

        let sum = scheme.close_cycle(now.plus(1)).unwrap();
        assert_eq!((sum.cycle, sum.claims), (1, 1));
        let mut expected = vec![(ma.id, -700i128), (mb.id, 700i128)];
        expected.sort();
        assert_eq!(sum.positions, expected);
        // Submitting a netted claim again changes nothing, and the next cycle is empty.
        assert_eq!(
            scheme
                .submit_claims(&ma.id, std::slice::from_ref(&ent), now)
                .unwrap(),
            vec![(id, ClaimResult::AlreadyKnown)]
        );
        let s2 = scheme.close_cycle(now.plus(2)).unwrap();
        assert_eq!((s2.cycle, s2.claims, s2.positions.len()), (2, 0, 0));
        assert!(scheme.statements(&ma.id, 1).unwrap().is_empty());
        assert_invariants(scheme);
    });
}

#[test]
fn inbox_and_ack_exactly_once() {
    on_every_backend("scheme_inbox_ack", |scheme, _| {
        let ma = admit(scheme, "bank-a", T0);
        let mb = admit(scheme, "bank-b", T0);
        let (wp, wq) = (member_wallet(&ma, 1), member_wallet(&mb, 2));
        let entries: Vec<Vec<u8>> = (1..=3).map(|k| payment(&wp, &wq, k, 100 * k)).collect();
        let now = T0.plus(60);
        let res = scheme.submit_claims(&ma.id, &entries, now).unwrap();
        assert!(res.iter().all(|(_, x)| *x == ClaimResult::Accepted));
        let inbox = scheme.inbox(&mb.id, 2).unwrap();
        assert_eq!(inbox.len(), 2, "limit");
        let inbox = scheme.inbox(&mb.id, 10).unwrap();
        assert_eq!(inbox.len(), 3);
        // An ack naming a claim B is no party to, or no claim: refused whole, nothing changes.
        let before = all_claims(scheme);
        assert_eq!(
            scheme
                .ack(
                    &mb.id,
                    &[
                        (inbox[0].0, ClaimResult::Accepted),
                        (Hash32([1; 32]), ClaimResult::Accepted)
                    ],
                    now
                )
                .err(),
            Some(SchemeError::UnknownClaim)
        );
        let mc = admit(scheme, "bank-c", T0);
        assert_eq!(
            scheme
                .ack(&mc.id, &[(inbox[0].0, ClaimResult::Accepted)], now)
                .err(),
            Some(SchemeError::UnknownClaim)
        );
        assert_eq!(all_claims(scheme), before);

        let acks: Vec<(Hash32, ClaimResult)> = inbox
            .iter()
            .map(|(id, _)| (*id, ClaimResult::Accepted))
            .collect();
        scheme.ack(&mb.id, &acks, now.plus(1)).unwrap();
        assert!(scheme.inbox(&mb.id, 10).unwrap().is_empty());
        let after = all_claims(scheme);
        // Again, and again with other results: nothing changes.
        scheme.ack(&mb.id, &acks, now.plus(2)).unwrap();
        let refuse: Vec<(Hash32, ClaimResult)> = inbox
            .iter()
            .map(|(id, _)| {
                (
                    *id,
                    ClaimResult::Refused {
                        code: "unknown_payee",
                    },
                )
            })
            .collect();
        scheme.ack(&mb.id, &refuse, now.plus(3)).unwrap();
        assert_eq!(all_claims(scheme), after);
        // The submitter acking its own claim changes nothing either.
        scheme.ack(&ma.id, &acks, now.plus(3)).unwrap();
        assert_eq!(all_claims(scheme), after);

        let sum = scheme.close_cycle(now.plus(4)).unwrap();
        assert_eq!(sum.claims, 3);
        assert_invariants(scheme);
    });
}

#[test]
fn a_claim_refused_on_ack_is_disputed_and_never_netted() {
    on_every_backend("scheme_disputed", |scheme, _| {
        let ma = admit(scheme, "bank-a", T0);
        let mb = admit(scheme, "bank-b", T0);
        let (wp, wq) = (member_wallet(&ma, 1), member_wallet(&mb, 2));
        let e1 = payment(&wp, &wq, 1, 100);
        let e2 = payment(&wp, &wq, 2, 200);
        let now = T0.plus(60);
        scheme
            .submit_claims(&ma.id, &[e1.clone(), e2.clone()], now)
            .unwrap();
        scheme
            .ack(
                &mb.id,
                &[
                    (
                        id_of(&e1),
                        ClaimResult::Refused {
                            code: "unknown_payee",
                        },
                    ),
                    (id_of(&e2), ClaimResult::Accepted),
                ],
                now,
            )
            .unwrap();
        let disputed = scheme
            .claims(&ClaimQuery {
                disputed: true,
                limit: 10,
                ..ClaimQuery::default()
            })
            .unwrap();
        assert_eq!(disputed.len(), 1);
        assert_eq!(disputed[0].id, id_of(&e1));
        assert_eq!(disputed[0].payee_refusal.as_deref(), Some("unknown_payee"));
        let sum = scheme.close_cycle(now.plus(1)).unwrap();
        assert_eq!(sum.claims, 1);
        assert_eq!(
            sum.positions.iter().map(|(_, len)| len.abs()).max(),
            Some(200)
        );
        let inv = scheme.invariants().unwrap();
        assert!(inv.ok, "{:?}", inv.violations);
        assert_eq!(inv.claims_disputed, 1);
        // The payee's issuer claims it after all (its payee is known now): netted next cycle.
        assert_eq!(
            scheme
                .submit_claims(&mb.id, std::slice::from_ref(&e1), now.plus(2))
                .unwrap(),
            vec![(id_of(&e1), ClaimResult::Accepted)]
        );
        assert_eq!(scheme.close_cycle(now.plus(3)).unwrap().claims, 1);
        assert_invariants(scheme);
    });
}

/// An issuer CA named `code` under a root other than the scheme's.
fn foreign_ca(code: &str) -> (SigningKey, Certificate) {
    let root_key = SigningKey::generate_with(Suite::Ed25519, &OsEntropy).unwrap();
    let root =
        pki::issue_root(&root_key, "test-scheme-root", 1, T0, T0.plus(999 * 86_400)).unwrap();
    let key = SigningKey::generate_with(Suite::Ed25519, &OsEntropy).unwrap();
    let ca = pki::issue_issuer_ca(
        &root_key,
        &root,
        &key.public_key(),
        code,
        2,
        T0,
        T0.plus(999 * 86_400),
    )
    .unwrap();
    (key, ca)
}

#[test]
fn every_refusal_is_recorded_and_posts_nothing() {
    on_every_backend("scheme_refusals", |scheme, _| {
        let ma = admit(scheme, "bank-a", T0);
        let mb = admit(scheme, "bank-b", T0);
        let mc = admit(scheme, "bank-c", T0);
        let (wp, wp2, wq) = (
            member_wallet(&ma, 1),
            member_wallet(&ma, 3),
            member_wallet(&mb, 2),
        );
        // An issuer CA the scheme never admitted (under another root), and
        // one named like an admitted issuer.
        let (rogue_key, rogue_ca) = foreign_ca("bank-x");
        let rogue = wallet(&rogue_key, &rogue_ca, 4);
        let (twin_key, twin_ca) = foreign_ca("bank-a");
        let twin = wallet(&twin_key, &twin_ca, 5);
        assert_eq!(twin.issuer, ma.id);

        let good = payment(&wp, &wq, 1, 100);
        let mut bad_sig = good.clone();
        let len = bad_sig.len();
        bad_sig[len - 1] ^= 1;
        // A payment signed by another key than its certificate's.
        let mut impostor = member_wallet(&ma, 1);
        impostor.cert = wp.cert.clone();
        let forged = payment(&impostor, &wq, 2, 100);
        let same_issuer = payment(&wp, &wp2, 1, 100);
        let unknown_payer = payment(&rogue, &wq, 1, 100);
        let twin_payer = payment(&twin, &wq, 1, 100);
        let unknown_payee = payment(&wp, &rogue, 3, 100);
        let usd = payment_in(&wp, &wq, 4, 100, Currency::new("USD").unwrap());
        let cases: Vec<(&IssuerId, Vec<u8>, &str)> = vec![
            (&ma.id, bad_sig, "bad_signature"),
            (&ma.id, forged, "bad_signature"),
            (&mc.id, good.clone(), "not_a_party"),
            (&ma.id, same_issuer, "not_cross_issuer"),
            (&mb.id, unknown_payer, "unknown_issuer"),
            (&mb.id, twin_payer, "bad_signature"),
            (&ma.id, unknown_payee, "unknown_issuer"),
            (&ma.id, usd, "currency"),
            (&ma.id, b"not cbor at all".to_vec(), "malformed_entry"),
            (&ma.id, vec![0u8; 100_000], "malformed_entry"),
            (&ma.id, Vec::new(), "malformed_entry"),
        ];
        let now = T0.plus(60);
        for (from, entry, code) in &cases {
            let res = scheme
                .submit_claims(from, std::slice::from_ref(entry), now)
                .unwrap();
            assert_eq!(res.len(), 1);
            assert_eq!(res[0].1, ClaimResult::Refused { code }, "{code}");
        }
        let refusals = scheme.refusals(None, 100).unwrap();
        assert_eq!(refusals.len(), cases.len());
        let mut codes: Vec<&str> = refusals.iter().map(|res| res.code.as_str()).collect();
        let mut want: Vec<&str> = cases.iter().map(|(_, _, mc)| *mc).collect();
        codes.sort_unstable();
        want.sort_unstable();
        assert_eq!(codes, want);
        assert!(refusals.iter().all(|res| !res.detail.is_empty()));
        assert_eq!(scheme.refusals(Some(&mc.id), 100).unwrap().len(), 1);
        // Nothing else changed: no claim, no inbox, an empty cycle.
        assert!(all_claims(scheme).is_empty());
        for m in [&ma, &mb, &mc] {
            assert!(scheme.inbox(&m.id, 10).unwrap().is_empty());
        }
        // An unknown submitter, an oversized batch: refused before anything.
        assert_eq!(
            scheme
                .submit_claims(&IssuerId([5; 16]), std::slice::from_ref(&good), now)
                .err(),
            Some(SchemeError::UnknownIssuer)
        );
        let many = vec![good.clone(); offpay_scheme::SUBMIT_CLAIMS_MAX + 1];
        assert!(matches!(
            scheme.submit_claims(&ma.id, &many, now),
            Err(SchemeError::TooLarge(..))
        ));
        assert_eq!(scheme.refusals(None, 100).unwrap().len(), cases.len());
        let sum = scheme.close_cycle(now).unwrap();
        assert_eq!(sum.claims, 0);
        assert_invariants(scheme);
        // In a batch, the good one still goes through.
        let res = scheme
            .submit_claims(&ma.id, &[b"junk".to_vec(), good.clone()], now)
            .unwrap();
        assert_eq!(
            res[0].1,
            ClaimResult::Refused {
                code: "malformed_entry"
            }
        );
        assert_eq!(res[1], (id_of(&good), ClaimResult::Accepted));
    });
}

#[test]
fn claims_on_a_suspended_issuer_stay_owed() {
    on_every_backend("scheme_suspended_owes", |scheme, _| {
        let ma = admit(scheme, "bank-a", T0);
        let mb = admit(scheme, "bank-b", T0);
        let (wp, wq) = (member_wallet(&ma, 1), member_wallet(&mb, 2));
        scheme.suspend(&ma.id, T0.plus(10)).unwrap();
        let ent = payment(&wp, &wq, 1, 500);
        let now = T0.plus(60);
        assert_eq!(
            scheme
                .submit_claims(&mb.id, std::slice::from_ref(&ent), now)
                .unwrap()[0]
                .1,
            ClaimResult::Accepted
        );
        scheme
            .ack(&ma.id, &[(id_of(&ent), ClaimResult::Accepted)], now)
            .unwrap();
        let sum = scheme.close_cycle(now).unwrap();
        assert_eq!(sum.claims, 1);
        assert!(sum.positions.contains(&(ma.id, -500)));
    });
}

/// Member `m`'s statement of cycle 1, verified with the root, each line's
/// digest checked against the claims of that pair: its net.
fn verified_statement_net(scheme: &Scheme<SchemeDb>, m: &Member) -> i128 {
    let root = scheme.root_certificate().public_key().clone();
    let st = scheme.statements(&m.id, 0).unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].0, 1);
    let signed = Signed::<SettlementStatement>::decode(&st[0].1).unwrap();
    signed.verify(&root).unwrap();
    // Not signed by an issuer's key.
    assert!(signed.verify(&m.key.public_key()).is_err());
    let body = signed.body();
    assert_eq!((body.cycle, body.issuer, body.currency), (1, m.id, eur()));
    let ids = scheme.cycle_claims(&m.id, 1).unwrap();
    let mut net = 0i128;
    let mut counted = 0;
    for line in &body.lines {
        net += i128::from(line.receivable_minor) - i128::from(line.payable_minor);
        counted += line.claims;
        // The line's digest over the claims with that counterparty.
        let mut with: Vec<Hash32> = all_claims(scheme)
            .into_iter()
            .filter(|c| {
                c.cycle == Some(1)
                    && c.party(&m.id).is_some()
                    && c.party(&line.counterparty).is_some()
            })
            .map(|c| c.id)
            .collect();
        assert_eq!(with.len() as u64, line.claims);
        assert!(with.iter().all(|id| ids.contains(id)));
        assert_eq!(statement_digest(&mut with), line.digest);
    }
    assert_eq!(counted as usize, ids.len());
    assert_eq!(body.net(), net);
    net
}

#[test]
fn cycles_net_to_zero_and_statements_verify_with_the_root() {
    on_every_backend("scheme_cycles", |scheme, _| {
        let banks: Vec<Member> = ["bank-a", "bank-b", "bank-c"]
            .iter()
            .map(|mc| admit(scheme, mc, T0))
            .collect();
        let wallets: Vec<TestWallet> = banks
            .iter()
            .enumerate()
            .map(|(k, m)| member_wallet(m, k as u8 + 1))
            .collect();
        let now = T0.plus(60);
        // Payments every way, each submitted by the payee's issuer and acked by the payer's.
        let mut seqs = [0u64; 3];
        let mut expected: BTreeMap<IssuerId, i128> = BTreeMap::new();
        let mut entries = Vec::new();
        for (k, (x, y, minor)) in [
            (0, 1, 1000u64),
            (1, 0, 300),
            (0, 2, 50),
            (2, 1, 75),
            (1, 2, 5),
            (0, 1, 1),
        ]
        .into_iter()
        .enumerate()
        {
            seqs[x] += 1;
            let ent = payment(&wallets[x], &wallets[y], seqs[x], minor + k as u64);
            *expected.entry(banks[y].id).or_default() += i128::from(minor + k as u64);
            *expected.entry(banks[x].id).or_default() -= i128::from(minor + k as u64);
            assert_eq!(
                scheme
                    .submit_claims(&banks[y].id, std::slice::from_ref(&ent), now)
                    .unwrap()[0]
                    .1,
                ClaimResult::Accepted
            );
            entries.push(ent);
        }
        // A fork: a second entry with the payer's seq 1, to another payee. Both are claims.
        let fork = payment(&wallets[0], &wallets[2], 1, 33);
        assert_ne!(id_of(&fork), id_of(&entries[0]));
        scheme
            .submit_claims(&banks[2].id, std::slice::from_ref(&fork), now)
            .unwrap();
        *expected.entry(banks[2].id).or_default() += 33;
        *expected.entry(banks[0].id).or_default() -= 33;
        for m in &banks {
            let inbox = scheme.inbox(&m.id, 100).unwrap();
            let acks: Vec<_> = inbox
                .iter()
                .map(|(id, _)| (*id, ClaimResult::AlreadyKnown))
                .collect();
            scheme.ack(&m.id, &acks, now).unwrap();
        }
        let open = scheme.open_positions().unwrap();
        let sum = scheme.close_cycle(now.plus(1)).unwrap();
        assert_eq!(sum.claims, 7);
        assert_eq!(
            sum.positions,
            expected.clone().into_iter().collect::<Vec<_>>()
        );
        assert_eq!(open, sum.positions);
        assert_eq!(sum.positions.iter().map(|(_, len)| len).sum::<i128>(), 0);

        let total: i128 = banks
            .iter()
            .map(|m| verified_statement_net(scheme, m))
            .sum();
        for m in &banks {
            assert_eq!(verified_statement_net(scheme, m), expected[&m.id]);
        }
        assert_eq!(total, 0);
        assert!(scheme.statements(&banks[0].id, 1).unwrap().is_empty());
        assert_eq!(scheme.last_cycle().unwrap(), 1);
        assert_invariants(scheme);
    });
}

#[test]
fn invariants_catch_a_tampered_ledger() {
    // Only on SQLite: edit a statement line behind the scheme's back.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scheme.sqlite");
    let scheme = Scheme::init(
        SchemeDb::open_sqlite(&path).unwrap(),
        &MASTER,
        &config(),
        T0,
        OsEntropy::shared(),
    )
    .unwrap();
    let ma = admit(&scheme, "bank-a", T0);
    let mb = admit(&scheme, "bank-b", T0);
    let (wp, wq) = (member_wallet(&ma, 1), member_wallet(&mb, 2));
    let ent = payment(&wp, &wq, 1, 100);
    scheme
        .submit_claims(&ma.id, std::slice::from_ref(&ent), T0)
        .unwrap();
    scheme.submit_claims(&mb.id, &[ent], T0).unwrap();
    scheme.close_cycle(T0).unwrap();
    assert_invariants(&scheme);
    let mc = rusqlite::Connection::open(&path).unwrap();
    mc.execute(
        "UPDATE scheme_statement_lines SET receivable = receivable + 1 WHERE receivable > 0",
        [],
    )
    .unwrap();
    let inv = scheme.invariants().unwrap();
    assert!(!inv.ok);
    assert!(
        inv.violations.iter().any(|v| v.contains("does not match")),
        "{:?}",
        inv.violations
    );
    // Unused trait imports stay used: the store is reachable as a SchemeStore.
    let mut tx = scheme.store().begin_scheme().unwrap();
    assert_eq!(tx.cycles().unwrap().len(), 1);
}

#[test]
fn both_parties_submitting_at_once_count_each_claim_once() {
    on_every_backend("scheme_concurrent", |scheme, _| {
        let ma = admit(scheme, "bank-a", T0);
        let mb = admit(scheme, "bank-b", T0);
        let (wp, wq) = (member_wallet(&ma, 1), member_wallet(&mb, 2));
        let entries: Vec<Vec<u8>> = (1..=24).map(|k| payment(&wp, &wq, k, k)).collect();
        let now = T0.plus(60);
        // Each side submits every claim, in small batches, from two threads
        // per side; the inbox is drained and acked by a fifth thread meanwhile.
        std::thread::scope(|t| {
            for from in [&ma.id, &mb.id, &ma.id, &mb.id] {
                let entries = &entries;
                t.spawn(move || {
                    for chunk in entries.chunks(5) {
                        let res = scheme.submit_claims(from, chunk, now).unwrap();
                        assert!(res.iter().all(|(_, x)| matches!(
                            x,
                            ClaimResult::Accepted | ClaimResult::AlreadyKnown
                        )));
                    }
                });
            }
            t.spawn(|| {
                for _ in 0..5 {
                    let inbox = scheme.inbox(&mb.id, 100).unwrap();
                    let acks: Vec<_> = inbox
                        .iter()
                        .map(|(id, _)| (*id, ClaimResult::Accepted))
                        .collect();
                    scheme.ack(&mb.id, &acks, now).unwrap();
                }
            });
        });
        let claims = all_claims(scheme);
        assert_eq!(claims.len(), entries.len());
        assert!(claims.iter().all(|c| c.held_by_both()));
        let sum = scheme.close_cycle(now).unwrap();
        assert_eq!(sum.claims, 24);
        let total: i128 = (1..=24).sum();
        assert!(sum.positions.contains(&(mb.id, total)));
        assert_invariants(scheme);
    });
}

#[test]
fn init_refuses_a_bad_config_and_writes_nothing() {
    let db = SchemeDb::open_sqlite_memory().unwrap();
    let bad = SchemeConfig {
        root_cn: String::new(),
        ..config()
    };
    let err = Scheme::init(db, &MASTER, &bad, T0, OsEntropy::shared()).unwrap_err();
    assert_eq!(err.code(), "invalid_config");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    assert_eq!(
        Scheme::open(
            SchemeDb::open_sqlite(&path).unwrap(),
            &MASTER,
            OsEntropy::shared()
        )
        .err(),
        Some(SchemeError::NotInitialized)
    );
    let scheme = Scheme::init(
        SchemeDb::open_sqlite(&path).unwrap(),
        &MASTER,
        &config(),
        T0,
        OsEntropy::shared(),
    )
    .unwrap();
    assert_eq!(scheme.directory_version().unwrap(), 1);
    assert_eq!(scheme.currency(), eur());
    assert_eq!(scheme.store().scheme_backend(), "sqlite");
}

#[test]
fn old_directory_versions_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scheme.sqlite");
    let scheme = Scheme::init(
        SchemeDb::open_sqlite(&path).unwrap(),
        &MASTER,
        &config(),
        T0,
        OsEntropy::shared(),
    )
    .unwrap();
    let ma = admit(&scheme, "bank-a", T0);
    for k in 0..20 {
        scheme.suspend(&ma.id, T0.plus(2 * k)).unwrap();
        scheme.reinstate(&ma.id, T0.plus(2 * k + 1)).unwrap();
    }
    let latest = scheme.directory_version().unwrap();
    assert_eq!(latest, 42);
    let c = rusqlite::Connection::open(&path).unwrap();
    let (n, lowest): (i64, i64) = c
        .query_row(
            "SELECT COUNT(*), MIN(version) FROM scheme_directory",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(n as u64, offpay_scheme::DIRECTORY_VERSIONS_KEPT);
    assert_eq!(
        lowest as u64,
        latest + 1 - offpay_scheme::DIRECTORY_VERSIONS_KEPT
    );
    assert_eq!(directory(&scheme).version, latest);
    assert_invariants(&scheme);
}
