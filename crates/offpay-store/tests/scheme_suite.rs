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
    self, Certificate, Crl, IssuerStatus, PolicyRef, RevocationReason, RevokedEntry, SchemeTrust,
};
use offpay_protocol::{
    Amount, Currency, Hash32, IssuerId, Nonce, OsEntropy, SigningKey, Suite, UnixSeconds,
    WalletId,
};
use offpay_scheme::store::{SchemeStore, SchemeTx};
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
fn payment_in(payer: &TestWallet, payee: &TestWallet, seq: u64, minor: u64, currency: Currency) -> Vec<u8> {
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

        let a = admit(scheme, "bank-a", T0.plus(1));
        let b = admit(scheme, "bank-b", T0.plus(2));
        assert_ne!(a.id, b.id);
        let d = directory(scheme);
        assert_eq!(d.version, 3);
        let changed: Vec<(String, u64, IssuerStatus)> = d
            .issuers
            .iter()
            .map(|e| (e.code.clone(), e.changed, e.status))
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
        assert_eq!(scheme.admit("bank-a", &pki::build_ca_csr(&key, "bank-a").unwrap(), T0).err(), Some(SchemeError::IssuerExists));
        assert!(matches!(scheme.admit("bank-d", &csr, T0), Err(SchemeError::InvalidCsr(_))));
        assert_eq!(scheme.admit("Bank C", &csr, T0).err(), Some(SchemeError::InvalidCode));
        assert!(matches!(scheme.admit("bank-c", b"\x30\x03junk", T0), Err(SchemeError::InvalidCsr(_))));
        // The same key under a new code: refused.
        let again = pki::build_ca_csr(&a.key, "bank-z").unwrap();
        assert_eq!(scheme.admit("bank-z", &again, T0).err(), Some(SchemeError::IssuerExists));
        assert_eq!(directory(scheme).version, 3);

        // Status changes bump the version; a repeat does not.
        assert_eq!(scheme.suspend(&a.id, T0.plus(10)).unwrap(), 4);
        assert_eq!(scheme.suspend(&a.id, T0.plus(11)).unwrap(), 4);
        assert_eq!(scheme.reinstate(&a.id, T0.plus(12)).unwrap(), 5);
        assert_eq!(scheme.revoke(&a.id, T0.plus(13)).unwrap(), 6);
        assert_eq!(
            scheme.reinstate(&a.id, T0.plus(14)).err(),
            Some(SchemeError::InvalidTransition { from: "revoked", to: "active" })
        );
        assert_eq!(scheme.suspend(&IssuerId([9; 16]), T0).err(), Some(SchemeError::UnknownIssuer));
        let d = directory(scheme);
        assert_eq!(d.version, 6);
        let ea = d.issuers.iter().find(|e| e.code == "bank-a").unwrap();
        assert_eq!((ea.changed, ea.status), (6, IssuerStatus::Revoked));

        // CRL publication: signed by the issuer's CA, newer each time.
        let crl1 = pki::issue_crl(&b.key, &b.ca, 1, T0, T0.plus(86_400), &[]).unwrap();
        assert_eq!(scheme.publish_crl(&b.id, crl1.der(), T0.plus(20)).unwrap(), 7);
        assert_eq!(scheme.publish_crl(&b.id, crl1.der(), T0.plus(21)).unwrap(), 7);
        let crl1b = pki::issue_crl(&b.key, &b.ca, 1, T0.plus(5), T0.plus(86_400), &[]).unwrap();
        assert!(matches!(scheme.publish_crl(&b.id, crl1b.der(), T0.plus(22)), Err(SchemeError::InvalidCrl(_))));
        let forged = pki::issue_crl(&a.key, &a.ca, 2, T0, T0.plus(86_400), &[]).unwrap();
        assert!(matches!(scheme.publish_crl(&b.id, forged.der(), T0.plus(22)), Err(SchemeError::InvalidCrl(_))));
        assert_eq!(scheme.publish_crl(&a.id, forged.der(), T0.plus(22)).err(), Some(SchemeError::IssuerRevoked));
        assert!(matches!(scheme.publish_crl(&b.id, b"junk", T0), Err(SchemeError::InvalidCrl(_))));
        let crl2 = pki::issue_crl(&b.key, &b.ca, 2, T0.plus(30), T0.plus(86_400), &[]).unwrap();
        assert_eq!(scheme.publish_crl(&b.id, crl2.der(), T0.plus(30)).unwrap(), 8);
        let d = directory(scheme);
        let eb = d.issuers.iter().find(|e| e.code == "bank-b").unwrap();
        assert_eq!(eb.changed, 8);
        assert_eq!(eb.crl.as_deref(), Some(crl2.der()));
        assert_eq!(scheme.directory_version().unwrap(), 8);

        // Lookups.
        assert_eq!(scheme.issuer_id("bank-b").unwrap(), b.id);
        assert_eq!(scheme.issuer_id("bank-q").err(), Some(SchemeError::UnknownIssuer));
        let infos = scheme.issuers().unwrap();
        assert_eq!(infos.iter().map(|i| i.code.as_str()).collect::<Vec<_>>(), ["bank-a", "bank-b"]);
        assert_eq!(infos[1].crl_number, 2);

        // Reopen: the master key opens the sealed root; another does not.
        let again = Scheme::open(reopen(), &MASTER, OsEntropy::shared()).unwrap();
        assert_eq!(again.root_certificate().der(), scheme.root_certificate().der());
        assert_eq!(again.directory().unwrap(), scheme.directory().unwrap());
        assert_eq!(Scheme::open(reopen(), &[1u8; 32], OsEntropy::shared()).err(), Some(SchemeError::MasterKey));
        assert_eq!(
            Scheme::init(reopen(), &MASTER, &config(), T0, OsEntropy::shared()).err(),
            Some(SchemeError::AlreadyInitialized)
        );
        assert_invariants(scheme);
    });
}

#[test]
fn tokens_authenticate_their_issuer_only() {
    on_every_backend("scheme_tokens", |scheme, _| {
        let a = admit(scheme, "bank-a", T0);
        let b = admit(scheme, "bank-b", T0);
        assert_eq!(scheme.authenticate(&a.token).unwrap(), a.id);
        assert_eq!(scheme.authenticate(&b.token).unwrap(), b.id);
        // A's id with B's secret, a flipped character, garbage: refused.
        let (_, secret_b) = b.token.split_once('.').unwrap();
        let mixed = format!("{}.{secret_b}", a.id.to_hex());
        let mut flipped = a.token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'a' { b'b' } else { b'a' };
        let flipped = String::from_utf8(flipped).unwrap();
        let unknown = format!("{}.{}", IssuerId([3; 16]).to_hex(), secret_b);
        for t in [mixed.as_str(), flipped.as_str(), unknown.as_str(), "", "bearer", &a.token[..40]] {
            assert_eq!(scheme.authenticate(t).err(), Some(SchemeError::Unauthorized), "{t}");
        }
        // A suspended issuer still authenticates (it reads statements, acks claims).
        scheme.suspend(&a.id, T0).unwrap();
        assert_eq!(scheme.authenticate(&a.token).unwrap(), a.id);
    });
}

#[test]
fn suspension_appears_in_the_issuer_crl_with_certificate_hold() {
    on_every_backend("scheme_issuer_crl", |scheme, _| {
        let a = admit(scheme, "bank-a", T0);
        let b = admit(scheme, "bank-b", T0);
        let c = admit(scheme, "bank-c", T0);
        scheme.suspend(&a.id, T0.plus(100)).unwrap();
        scheme.revoke(&c.id, T0.plus(200)).unwrap();
        let d = directory(scheme);
        let crl = Crl::from_der(&d.issuer_crl).unwrap();
        crl.verify_signed_by(scheme.root_certificate()).unwrap();
        assert_eq!(crl.number(), d.version);
        assert_eq!(
            crl.entries(),
            &[
                RevokedEntry { serial: a.serial, revoked_at: T0.plus(100), reason: RevocationReason::CertificateHold },
                RevokedEntry { serial: c.serial, revoked_at: T0.plus(200), reason: RevocationReason::PrivilegeWithdrawn },
            ]
        );
        assert!(crl.is_revoked(b.serial).is_none());
        // What a wallet or issuer makes of it.
        let mut trust = SchemeTrust::new(scheme.root_certificate().clone());
        for e in &d.issuers {
            trust.add_issuer(Certificate::from_der(&e.ca_cert).unwrap()).unwrap();
        }
        assert!(trust.set_issuer_crl(crl).unwrap());
        assert_eq!(trust.issuer_status(&a.id), Some(IssuerStatus::Suspended));
        assert_eq!(trust.issuer_status(&b.id), Some(IssuerStatus::Active));
        assert_eq!(trust.issuer_status(&c.id), Some(IssuerStatus::Revoked));
        // Reinstated: off the list, in a newer CRL.
        scheme.reinstate(&a.id, T0.plus(300)).unwrap();
        let d2 = directory(scheme);
        let crl2 = Crl::from_der(&d2.issuer_crl).unwrap();
        assert!(crl2.number() > d.version);
        assert!(crl2.is_revoked(a.serial).is_none());
        assert!(trust.set_issuer_crl(crl2).unwrap());
        assert_eq!(trust.issuer_status(&a.id), Some(IssuerStatus::Active));
        assert_eq!(a.code, "bank-a");
    });
}

#[test]
fn a_claim_from_either_side_counts_once() {
    on_every_backend("scheme_claim_once", |scheme, _| {
        let a = admit(scheme, "bank-a", T0);
        let b = admit(scheme, "bank-b", T0);
        let (p, q) = (member_wallet(&a, 1), member_wallet(&b, 2));
        let e = payment(&p, &q, 1, 700);
        let id = id_of(&e);
        let now = T0.plus(60);

        assert_eq!(scheme.submit_claims(&a.id, &[e.clone()], now).unwrap(), vec![(id, ClaimResult::Accepted)]);
        assert_eq!(scheme.submit_claims(&a.id, &[e.clone()], now).unwrap(), vec![(id, ClaimResult::AlreadyKnown)]);
        assert!(scheme.inbox(&a.id, 10).unwrap().is_empty());
        assert_eq!(scheme.inbox(&b.id, 10).unwrap(), vec![(id, e.clone())]);
        // Held by one side only: not netted.
        assert_eq!(scheme.open_positions().unwrap(), vec![]);
        // The payee's issuer submits it too (instead of acking): both sides now.
        assert_eq!(scheme.submit_claims(&b.id, &[e.clone()], now).unwrap(), vec![(id, ClaimResult::Accepted)]);
        assert_eq!(scheme.submit_claims(&b.id, &[e.clone(), e.clone()], now).unwrap(), vec![(id, ClaimResult::AlreadyKnown); 2]);
        assert!(scheme.inbox(&b.id, 10).unwrap().is_empty());
        let claims = all_claims(scheme);
        assert_eq!(claims.len(), 1);
        assert_eq!((claims[0].payer_issuer, claims[0].payee_issuer, claims[0].amount), (a.id, b.id, 700));

        let s = scheme.close_cycle(now.plus(1)).unwrap();
        assert_eq!((s.cycle, s.claims), (1, 1));
        let mut expected = vec![(a.id, -700i128), (b.id, 700i128)];
        expected.sort();
        assert_eq!(s.positions, expected);
        // Submitting a netted claim again changes nothing, and the next cycle is empty.
        assert_eq!(scheme.submit_claims(&a.id, &[e.clone()], now).unwrap(), vec![(id, ClaimResult::AlreadyKnown)]);
        let s2 = scheme.close_cycle(now.plus(2)).unwrap();
        assert_eq!((s2.cycle, s2.claims, s2.positions.len()), (2, 0, 0));
        assert!(scheme.statements(&a.id, 1).unwrap().is_empty());
        assert_invariants(scheme);
    });
}

#[test]
fn inbox_and_ack_exactly_once() {
    on_every_backend("scheme_inbox_ack", |scheme, _| {
        let a = admit(scheme, "bank-a", T0);
        let b = admit(scheme, "bank-b", T0);
        let (p, q) = (member_wallet(&a, 1), member_wallet(&b, 2));
        let entries: Vec<Vec<u8>> = (1..=3).map(|k| payment(&p, &q, k, 100 * k)).collect();
        let now = T0.plus(60);
        let r = scheme.submit_claims(&a.id, &entries, now).unwrap();
        assert!(r.iter().all(|(_, x)| *x == ClaimResult::Accepted));
        let inbox = scheme.inbox(&b.id, 2).unwrap();
        assert_eq!(inbox.len(), 2, "limit");
        let inbox = scheme.inbox(&b.id, 10).unwrap();
        assert_eq!(inbox.len(), 3);
        // An ack naming a claim B is no party to, or no claim: refused whole, nothing changes.
        let before = all_claims(scheme);
        assert_eq!(
            scheme.ack(&b.id, &[(inbox[0].0, ClaimResult::Accepted), (Hash32([1; 32]), ClaimResult::Accepted)], now).err(),
            Some(SchemeError::UnknownClaim)
        );
        let c = admit(scheme, "bank-c", T0);
        assert_eq!(scheme.ack(&c.id, &[(inbox[0].0, ClaimResult::Accepted)], now).err(), Some(SchemeError::UnknownClaim));
        assert_eq!(all_claims(scheme), before);

        let acks: Vec<(Hash32, ClaimResult)> = inbox.iter().map(|(id, _)| (*id, ClaimResult::Accepted)).collect();
        scheme.ack(&b.id, &acks, now.plus(1)).unwrap();
        assert!(scheme.inbox(&b.id, 10).unwrap().is_empty());
        let after = all_claims(scheme);
        // Again, and again with other results: nothing changes.
        scheme.ack(&b.id, &acks, now.plus(2)).unwrap();
        let refuse: Vec<(Hash32, ClaimResult)> = inbox.iter().map(|(id, _)| (*id, ClaimResult::Refused { code: "unknown_payee" })).collect();
        scheme.ack(&b.id, &refuse, now.plus(3)).unwrap();
        assert_eq!(all_claims(scheme), after);
        // The submitter acking its own claim changes nothing either.
        scheme.ack(&a.id, &acks, now.plus(3)).unwrap();
        assert_eq!(all_claims(scheme), after);

        let s = scheme.close_cycle(now.plus(4)).unwrap();
        assert_eq!(s.claims, 3);
        assert_invariants(scheme);
    });
}

#[test]
fn a_claim_refused_on_ack_is_disputed_and_never_netted() {
    on_every_backend("scheme_disputed", |scheme, _| {
        let a = admit(scheme, "bank-a", T0);
        let b = admit(scheme, "bank-b", T0);
        let (p, q) = (member_wallet(&a, 1), member_wallet(&b, 2));
        let e1 = payment(&p, &q, 1, 100);
        let e2 = payment(&p, &q, 2, 200);
        let now = T0.plus(60);
        scheme.submit_claims(&a.id, &[e1.clone(), e2.clone()], now).unwrap();
        scheme
            .ack(&b.id, &[(id_of(&e1), ClaimResult::Refused { code: "unknown_payee" }), (id_of(&e2), ClaimResult::Accepted)], now)
            .unwrap();
        let disputed = scheme.claims(&ClaimQuery { disputed: true, limit: 10, ..ClaimQuery::default() }).unwrap();
        assert_eq!(disputed.len(), 1);
        assert_eq!(disputed[0].id, id_of(&e1));
        assert_eq!(disputed[0].payee_refusal.as_deref(), Some("unknown_payee"));
        let s = scheme.close_cycle(now.plus(1)).unwrap();
        assert_eq!(s.claims, 1);
        assert_eq!(s.positions.iter().map(|(_, n)| n.abs()).max(), Some(200));
        let inv = scheme.invariants().unwrap();
        assert!(inv.ok, "{:?}", inv.violations);
        assert_eq!(inv.claims_disputed, 1);
        // The payee's issuer claims it after all (its payee is known now): netted next cycle.
        assert_eq!(scheme.submit_claims(&b.id, &[e1.clone()], now.plus(2)).unwrap(), vec![(id_of(&e1), ClaimResult::Accepted)]);
        assert_eq!(scheme.close_cycle(now.plus(3)).unwrap().claims, 1);
        assert_invariants(scheme);
    });
}

#[test]
fn every_refusal_is_recorded_and_posts_nothing() {
    on_every_backend("scheme_refusals", |scheme, _| {
        let a = admit(scheme, "bank-a", T0);
        let b = admit(scheme, "bank-b", T0);
        let c = admit(scheme, "bank-c", T0);
        let (p, p2, q) = (member_wallet(&a, 1), member_wallet(&a, 3), member_wallet(&b, 2));
        // An issuer CA the scheme never admitted (signed by another root).
        let rogue_root_key = SigningKey::generate_with(Suite::Ed25519, &OsEntropy).unwrap();
        let rogue_root = pki::issue_root(&rogue_root_key, "test-scheme-root", 1, T0, T0.plus(86_400 * 999)).unwrap();
        let rogue_key = SigningKey::generate_with(Suite::Ed25519, &OsEntropy).unwrap();
        let rogue_ca = pki::issue_issuer_ca(&rogue_root_key, &rogue_root, &rogue_key.public_key(), "bank-x", 2, T0, T0.plus(86_400 * 999)).unwrap();
        let rogue = wallet(&rogue_key, &rogue_ca, 4);

        let good = payment(&p, &q, 1, 100);
        let mut bad_sig = good.clone();
        let n = bad_sig.len();
        bad_sig[n - 1] ^= 1;
        // A payment signed by another key than its certificate's.
        let mut impostor = member_wallet(&a, 1);
        impostor.cert = p.cert.clone();
        let forged = payment(&impostor, &q, 2, 100);
        let same_issuer = payment(&p, &p2, 1, 100);
        let unknown_payer = payment(&rogue, &q, 1, 100);
        let unknown_payee = payment(&p, &rogue, 3, 100);
        let usd = payment_in(&p, &q, 4, 100, Currency::new("USD").unwrap());
        let cases: Vec<(&IssuerId, Vec<u8>, &str)> = vec![
            (&a.id, bad_sig, "bad_signature"),
            (&a.id, forged, "bad_signature"),
            (&c.id, good.clone(), "not_a_party"),
            (&a.id, same_issuer, "not_cross_issuer"),
            (&b.id, unknown_payer, "unknown_issuer"),
            (&a.id, unknown_payee, "unknown_issuer"),
            (&a.id, usd, "currency"),
            (&a.id, b"not cbor at all".to_vec(), "malformed_entry"),
            (&a.id, vec![0u8; 100_000], "malformed_entry"),
            (&a.id, Vec::new(), "malformed_entry"),
        ];
        let now = T0.plus(60);
        for (from, entry, code) in &cases {
            let r = scheme.submit_claims(from, &[entry.clone()], now).unwrap();
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].1, ClaimResult::Refused { code }, "{code}");
        }
        let refusals = scheme.refusals(None, 100).unwrap();
        assert_eq!(refusals.len(), cases.len());
        let mut codes: Vec<&str> = refusals.iter().map(|r| r.code.as_str()).collect();
        let mut want: Vec<&str> = cases.iter().map(|(_, _, c)| *c).collect();
        codes.sort_unstable();
        want.sort_unstable();
        assert_eq!(codes, want);
        assert!(refusals.iter().all(|r| !r.detail.is_empty()));
        assert_eq!(scheme.refusals(Some(&c.id), 100).unwrap().len(), 1);
        // Nothing else changed: no claim, no inbox, an empty cycle.
        assert!(all_claims(scheme).is_empty());
        for m in [&a, &b, &c] {
            assert!(scheme.inbox(&m.id, 10).unwrap().is_empty());
        }
        // An unknown submitter, an oversized batch: refused before anything.
        assert_eq!(scheme.submit_claims(&IssuerId([5; 16]), &[good.clone()], now).err(), Some(SchemeError::UnknownIssuer));
        let many = vec![good.clone(); offpay_scheme::SUBMIT_CLAIMS_MAX + 1];
        assert!(matches!(scheme.submit_claims(&a.id, &many, now), Err(SchemeError::TooLarge(..))));
        assert_eq!(scheme.refusals(None, 100).unwrap().len(), cases.len());
        let s = scheme.close_cycle(now).unwrap();
        assert_eq!(s.claims, 0);
        assert_invariants(scheme);
        // In a batch, the good one still goes through.
        let r = scheme.submit_claims(&a.id, &[b"junk".to_vec(), good.clone()], now).unwrap();
        assert_eq!(r[0].1, ClaimResult::Refused { code: "malformed_entry" });
        assert_eq!(r[1], (id_of(&good), ClaimResult::Accepted));
    });
}

#[test]
fn claims_on_a_suspended_issuer_stay_owed() {
    on_every_backend("scheme_suspended_owes", |scheme, _| {
        let a = admit(scheme, "bank-a", T0);
        let b = admit(scheme, "bank-b", T0);
        let (p, q) = (member_wallet(&a, 1), member_wallet(&b, 2));
        scheme.suspend(&a.id, T0.plus(10)).unwrap();
        let e = payment(&p, &q, 1, 500);
        let now = T0.plus(60);
        assert_eq!(scheme.submit_claims(&b.id, &[e.clone()], now).unwrap()[0].1, ClaimResult::Accepted);
        scheme.ack(&a.id, &[(id_of(&e), ClaimResult::Accepted)], now).unwrap();
        let s = scheme.close_cycle(now).unwrap();
        assert_eq!(s.claims, 1);
        assert!(s.positions.contains(&(a.id, -500)));
    });
}

#[test]
fn cycles_net_to_zero_and_statements_verify_with_the_root() {
    on_every_backend("scheme_cycles", |scheme, _| {
        let banks: Vec<Member> = ["bank-a", "bank-b", "bank-c"].iter().map(|c| admit(scheme, c, T0)).collect();
        let wallets: Vec<TestWallet> = banks.iter().enumerate().map(|(k, m)| member_wallet(m, k as u8 + 1)).collect();
        let now = T0.plus(60);
        // Payments every way, each submitted by the payee's issuer and acked by the payer's.
        let mut seqs = [0u64; 3];
        let mut expected: BTreeMap<IssuerId, i128> = BTreeMap::new();
        let mut entries = Vec::new();
        for (k, (x, y, minor)) in [(0, 1, 1000u64), (1, 0, 300), (0, 2, 50), (2, 1, 75), (1, 2, 5), (0, 1, 1)].into_iter().enumerate() {
            seqs[x] += 1;
            let e = payment(&wallets[x], &wallets[y], seqs[x], minor + k as u64);
            *expected.entry(banks[y].id).or_default() += i128::from(minor + k as u64);
            *expected.entry(banks[x].id).or_default() -= i128::from(minor + k as u64);
            assert_eq!(scheme.submit_claims(&banks[y].id, &[e.clone()], now).unwrap()[0].1, ClaimResult::Accepted);
            entries.push(e);
        }
        // A fork: a second entry with the payer's seq 1, to another payee. Both are claims.
        let fork = payment(&wallets[0], &wallets[2], 1, 33);
        assert_ne!(id_of(&fork), id_of(&entries[0]));
        scheme.submit_claims(&banks[2].id, &[fork.clone()], now).unwrap();
        *expected.entry(banks[2].id).or_default() += 33;
        *expected.entry(banks[0].id).or_default() -= 33;
        for m in &banks {
            let inbox = scheme.inbox(&m.id, 100).unwrap();
            let acks: Vec<_> = inbox.iter().map(|(id, _)| (*id, ClaimResult::AlreadyKnown)).collect();
            scheme.ack(&m.id, &acks, now).unwrap();
        }
        let open = scheme.open_positions().unwrap();
        let s = scheme.close_cycle(now.plus(1)).unwrap();
        assert_eq!(s.claims, 7);
        assert_eq!(s.positions, expected.clone().into_iter().collect::<Vec<_>>());
        assert_eq!(open, s.positions);
        assert_eq!(s.positions.iter().map(|(_, n)| n).sum::<i128>(), 0);

        let root = scheme.root_certificate().public_key().clone();
        let mut total = 0i128;
        for m in &banks {
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
                    .filter(|c| c.cycle == Some(1) && c.party(&m.id).is_some() && c.party(&line.counterparty).is_some())
                    .map(|c| c.id)
                    .collect();
                assert_eq!(with.len() as u64, line.claims);
                assert!(with.iter().all(|id| ids.contains(id)));
                assert_eq!(statement_digest(&mut with), line.digest);
            }
            assert_eq!(counted as usize, ids.len());
            assert_eq!(net, expected[&m.id]);
            total += net;
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
    let scheme = Scheme::init(SchemeDb::open_sqlite(&path).unwrap(), &MASTER, &config(), T0, OsEntropy::shared()).unwrap();
    let a = admit(&scheme, "bank-a", T0);
    let b = admit(&scheme, "bank-b", T0);
    let (p, q) = (member_wallet(&a, 1), member_wallet(&b, 2));
    let e = payment(&p, &q, 1, 100);
    scheme.submit_claims(&a.id, &[e.clone()], T0).unwrap();
    scheme.submit_claims(&b.id, &[e], T0).unwrap();
    scheme.close_cycle(T0).unwrap();
    assert_invariants(&scheme);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("UPDATE scheme_statement_lines SET receivable = receivable + 1 WHERE receivable > 0", []).unwrap();
    let inv = scheme.invariants().unwrap();
    assert!(!inv.ok);
    assert!(inv.violations.iter().any(|v| v.contains("does not match")), "{:?}", inv.violations);
    // Unused trait imports stay used: the store is reachable as a SchemeStore.
    let mut tx = scheme.store().begin_scheme().unwrap();
    assert_eq!(tx.cycles().unwrap().len(), 1);
}
