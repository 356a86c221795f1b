//! SchemeTrust: issuers admitted under one root, their statuses from the
//! root-signed issuer CRL, their CRLs, and the two checks (full and chain only).

use super::*;
use crate::suite::{SigningKey, Suite};
use crate::types::{IssuerId, IssuerStatus, UnixSeconds, WalletId};

const NOW: UnixSeconds = UnixSeconds(1_795_000_000);
const DAY: u64 = 86_400;
const POLICY: PolicyRef = PolicyRef { id: 1, epoch: 1 };

fn key(n: u8) -> SigningKey {
    SigningKey::from_seed(Suite::Ed25519, &[n; 32]).unwrap()
}

struct Member {
    key: SigningKey,
    ca: Certificate,
}

struct Fixture {
    root_key: SigningKey,
    root: Certificate,
    a: Member,
    b: Member,
}

fn member(root_key: &SigningKey, root: &Certificate, code: &str, n: u8, serial: u64) -> Member {
    let key = key(n);
    let csr = parse_ca_csr(&build_ca_csr(&key, code).unwrap()).unwrap();
    let ca = issue_issuer_ca(
        root_key,
        root,
        &csr.public_key,
        &csr.common_name,
        serial,
        UnixSeconds(NOW.0 - DAY),
        NOW.plus(365 * DAY),
    )
    .unwrap();
    Member { key, ca }
}

fn fixture() -> Fixture {
    let root_key = key(1);
    let root = issue_root(
        &root_key,
        "scheme root",
        1,
        UnixSeconds(NOW.0 - DAY),
        NOW.plus(3650 * DAY),
    )
    .unwrap();
    let a = member(&root_key, &root, "bank-a", 2, 10);
    let b = member(&root_key, &root, "bank-b", 3, 11);
    Fixture {
        root_key,
        root,
        a,
        b,
    }
}

fn wallet(m: &Member, n: u8, serial: u64) -> Certificate {
    issue_wallet(
        &m.key,
        &m.ca,
        &key(n).public_key(),
        WalletId([n; 16]),
        POLICY,
        serial,
        UnixSeconds(NOW.0 - DAY),
        NOW.plus(30 * DAY),
    )
    .unwrap()
}

fn issuer_crl(f: &Fixture, number: u64, held: &[(u64, RevocationReason)]) -> Crl {
    let entries: Vec<RevokedEntry> = held
        .iter()
        .map(|&(serial, reason)| RevokedEntry {
            serial,
            revoked_at: NOW,
            reason,
        })
        .collect();
    issue_crl(&f.root_key, &f.root, number, NOW, NOW.plus(DAY), &entries).unwrap()
}

fn trust(f: &Fixture) -> SchemeTrust {
    let mut t = SchemeTrust::new(f.root.clone());
    t.add_issuer(f.a.ca.clone()).unwrap();
    t.add_issuer(f.b.ca.clone()).unwrap();
    t
}

#[test]
fn wallets_of_every_admitted_issuer_validate() {
    let f = fixture();
    let t = trust(&f);
    let (id_a, id_b) = (f.a.ca.subject_issuer_id(), f.b.ca.subject_issuer_id());
    assert_ne!(id_a, id_b);
    assert_eq!(t.issuer_count(), 2);
    for (m, id, n) in [(&f.a, id_a, 5u8), (&f.b, id_b, 6)] {
        let w = wallet(m, n, 100 + u64::from(n));
        assert_eq!(w.issuer_id(), id);
        assert_eq!(t.validate_wallet(&w, NOW), Ok((WalletId([n; 16]), id)));
        assert_eq!(t.revalidate_wallet(&w, NOW), Ok((WalletId([n; 16]), id)));
        assert_eq!(t.verify_wallet_signed(&w), Ok((WalletId([n; 16]), id)));
        assert_eq!(t.issuer_status(&id), Some(IssuerStatus::Active));
    }
}

#[test]
fn the_issuer_id_is_the_hash_of_the_ca_subject_name() {
    let f = fixture();
    let id = f.a.ca.subject_issuer_id();
    // Name DER of CN=bank-a, as x509 encodes it.
    let name = super::x509::encode_name("bank-a");
    assert_eq!(id, IssuerId::of_name_der(&name));
    let digest = crate::types::Hash32::digest(&name);
    assert_eq!(id.0[..], digest.0[..16]);
    // A wallet's issuer_id is its CA's subject id; the CA's issuer id is the root's.
    assert_eq!(wallet(&f.a, 5, 100).issuer_id(), id);
    assert_eq!(f.a.ca.issuer_id(), f.root.subject_issuer_id());
    assert_eq!(IssuerId::from_hex(&id.to_hex()), Some(id));
    assert_eq!(id.to_hex().len(), 32);
}

#[test]
fn an_unknown_issuer_is_refused() {
    let f = fixture();
    let mut t = SchemeTrust::new(f.root.clone());
    t.add_issuer(f.a.ca.clone()).unwrap();
    let w = wallet(&f.b, 6, 106);
    assert_eq!(t.validate_wallet(&w, NOW), Err(PkiError::UnknownIssuer));
    assert_eq!(t.verify_wallet_signed(&w), Err(PkiError::UnknownIssuer));
    assert_eq!(t.issuer_status(&f.b.ca.subject_issuer_id()), None);
    // A CRL of an issuer not admitted.
    let crl = issue_crl(&f.b.key, &f.b.ca, 1, NOW, NOW.plus(DAY), &[]).unwrap();
    assert_eq!(t.set_crl(crl), Err(PkiError::UnknownIssuer));
}

#[test]
fn a_suspended_issuer_is_refused_then_reinstated() {
    let f = fixture();
    let mut t = trust(&f);
    let a = f.a.ca.subject_issuer_id();
    let w = wallet(&f.a, 5, 105);
    let held = issuer_crl(
        &f,
        1,
        &[(f.a.ca.serial(), RevocationReason::CertificateHold)],
    );
    assert_eq!(t.set_issuer_crl(held), Ok(true));
    assert_eq!(t.issuer_status(&a), Some(IssuerStatus::Suspended));
    assert_eq!(t.validate_wallet(&w, NOW), Err(PkiError::IssuerSuspended));
    assert_eq!(t.revalidate_wallet(&w, NOW), Err(PkiError::IssuerSuspended));
    // Finality: the chain still verifies for settlement.
    assert_eq!(t.verify_wallet_signed(&w), Ok((WalletId([5; 16]), a)));
    // Bank B is unaffected.
    let wb = wallet(&f.b, 6, 106);
    assert!(t.validate_wallet(&wb, NOW).is_ok());
    // Reinstated by a newer issuer CRL without the entry.
    assert_eq!(t.set_issuer_crl(issuer_crl(&f, 2, &[])), Ok(true));
    assert_eq!(t.issuer_status(&a), Some(IssuerStatus::Active));
    assert!(t.validate_wallet(&w, NOW).is_ok());
}

#[test]
fn a_revoked_issuer_is_refused() {
    let f = fixture();
    let mut t = trust(&f);
    let w = wallet(&f.a, 5, 105);
    for (n, reason) in [
        (1, RevocationReason::Unspecified),
        (2, RevocationReason::CaCompromise),
        (3, RevocationReason::CessationOfOperation),
    ] {
        let crl = issuer_crl(&f, n, &[(f.a.ca.serial(), reason)]);
        assert_eq!(t.set_issuer_crl(crl), Ok(true));
        assert_eq!(
            t.issuer_status(&f.a.ca.subject_issuer_id()),
            Some(IssuerStatus::Revoked)
        );
        assert_eq!(t.validate_wallet(&w, NOW), Err(PkiError::IssuerRevoked));
    }
}

#[test]
fn a_stale_or_replayed_crl_is_ignored() {
    let f = fixture();
    let mut t = trust(&f);
    let a = f.a.ca.subject_issuer_id();
    let held = issuer_crl(
        &f,
        5,
        &[(f.a.ca.serial(), RevocationReason::CertificateHold)],
    );
    assert_eq!(t.set_issuer_crl(held.clone()), Ok(true));
    // The same again, and an older one (which would reinstate): ignored.
    assert_eq!(t.set_issuer_crl(held), Ok(false));
    assert_eq!(t.set_issuer_crl(issuer_crl(&f, 4, &[])), Ok(false));
    assert_eq!(t.issuer_status(&a), Some(IssuerStatus::Suspended));
    assert_eq!(t.issuer_crl().unwrap().number(), 5);
    // Same for an issuer's own CRL of wallets.
    let w = wallet(&f.a, 5, 105);
    let revoked = [RevokedEntry {
        serial: 105,
        revoked_at: NOW,
        reason: RevocationReason::KeyCompromise,
    }];
    let crl3 = issue_crl(&f.a.key, &f.a.ca, 3, NOW, NOW.plus(DAY), &revoked).unwrap();
    let crl2 = issue_crl(&f.a.key, &f.a.ca, 2, NOW, NOW.plus(DAY), &[]).unwrap();
    assert_eq!(t.set_issuer_crl(issuer_crl(&f, 6, &[])), Ok(true));
    assert_eq!(t.set_crl(crl3), Ok(true));
    assert_eq!(t.set_crl(crl2), Ok(false));
    assert_eq!(
        t.validate_wallet(&w, NOW),
        Err(PkiError::Revoked { serial: 105 })
    );
    // A stale CRL (past nextUpdate) still counts.
    assert_eq!(
        t.validate_wallet(&w, NOW.plus(10 * DAY)),
        Err(PkiError::Revoked { serial: 105 })
    );
}

#[test]
fn a_foreign_crl_is_refused() {
    let f = fixture();
    let mut t = trust(&f);
    // Signed by bank A's key but naming bank B: B's key does not verify it.
    let forged = {
        let fake_b = Member {
            key: key(2),
            ca: issue_issuer_ca(
                &key(9),
                &issue_root(&key(9), "scheme root", 1, NOW, NOW.plus(DAY)).unwrap(),
                &key(2).public_key(),
                "bank-b",
                11,
                NOW,
                NOW.plus(DAY),
            )
            .unwrap(),
        };
        issue_crl(&fake_b.key, &fake_b.ca, 9, NOW, NOW.plus(DAY), &[]).unwrap()
    };
    assert_eq!(forged.issuer_id(), f.b.ca.subject_issuer_id());
    // Its authority key id is the other key's: refused before the signature.
    assert_eq!(t.set_crl(forged), Err(PkiError::CrlWrongIssuer));
    // An issuer's CRL offered as the issuer CRL: not the root's.
    let crl_a = issue_crl(&f.a.key, &f.a.ca, 1, NOW, NOW.plus(DAY), &[]).unwrap();
    assert_eq!(t.set_issuer_crl(crl_a), Err(PkiError::CrlWrongIssuer));
    assert!(t.issuer_crl().is_none());
    assert!(t.crl(&f.b.ca.subject_issuer_id()).is_none());
}

#[test]
fn a_forged_ca_is_refused() {
    let f = fixture();
    let mut t = SchemeTrust::new(f.root.clone());
    // A CA issued by another root with the same name.
    let rogue_key = key(9);
    let rogue_root = issue_root(&rogue_key, "scheme root", 1, NOW, NOW.plus(DAY)).unwrap();
    let rogue = issue_issuer_ca(
        &rogue_key,
        &rogue_root,
        &key(8).public_key(),
        "bank-a",
        10,
        NOW,
        NOW.plus(DAY),
    )
    .unwrap();
    // Its authority key id is the rogue root's: refused before the signature.
    assert_eq!(t.add_issuer(rogue), Err(PkiError::WrongIssuer));
    // The root itself, and a wallet certificate, are not issuer CAs.
    assert_eq!(t.add_issuer(f.root.clone()), Err(PkiError::WrongIssuer));
    let w = wallet(&f.a, 5, 105);
    assert_eq!(t.add_issuer(w.clone()), Err(PkiError::WrongIssuer));
    assert_eq!(t.issuer_count(), 0);
    // A wallet certified by a rogue CA whose Name equals an admitted one.
    t.add_issuer(f.a.ca.clone()).unwrap();
    let rogue_a = Member {
        key: key(8),
        ca: issue_issuer_ca(
            &rogue_key,
            &rogue_root,
            &key(8).public_key(),
            "bank-a",
            10,
            NOW,
            NOW.plus(DAY),
        )
        .unwrap(),
    };
    let forged = wallet(&rogue_a, 7, 107);
    assert_eq!(forged.issuer_id(), f.a.ca.subject_issuer_id());
    assert!(t.validate_wallet(&forged, NOW).is_err());
    assert!(t.verify_wallet_signed(&forged).is_err());
}

#[test]
fn validity_is_checked_at_now_but_not_for_settlement() {
    let f = fixture();
    let t = trust(&f);
    let w = wallet(&f.a, 5, 105);
    let late = NOW.plus(31 * DAY);
    assert_eq!(t.validate_wallet(&w, late), Err(PkiError::Expired));
    assert_eq!(t.revalidate_wallet(&w, late), Err(PkiError::Expired));
    assert!(t.verify_wallet_signed(&w).is_ok());
    let early = UnixSeconds(NOW.0 - 2 * DAY);
    assert_eq!(t.validate_wallet(&w, early), Err(PkiError::NotYetValid));
}

#[test]
fn a_renewed_ca_replaces_the_old_one() {
    let f = fixture();
    let mut t = trust(&f);
    let a = f.a.ca.subject_issuer_id();
    let crl = issue_crl(&f.a.key, &f.a.ca, 1, NOW, NOW.plus(DAY), &[]).unwrap();
    t.set_crl(crl).unwrap();
    // Same key, new certificate: the CRL still verifies and is kept.
    let renewed = issue_issuer_ca(
        &f.root_key,
        &f.root,
        &f.a.key.public_key(),
        "bank-a",
        20,
        NOW,
        NOW.plus(730 * DAY),
    )
    .unwrap();
    assert_eq!(t.add_issuer(renewed.clone()), Ok(a));
    assert_eq!(t.issuer(&a), Some(&renewed));
    assert!(t.crl(&a).is_some());
    // New key: the old CRL no longer verifies and is dropped.
    let rekeyed = issue_issuer_ca(
        &f.root_key,
        &f.root,
        &key(12).public_key(),
        "bank-a",
        21,
        NOW,
        NOW.plus(730 * DAY),
    )
    .unwrap();
    assert_eq!(t.add_issuer(rekeyed), Ok(a));
    assert!(t.crl(&a).is_none());
    assert_eq!(t.issuer_count(), 2);
}

#[test]
fn ca_requests_name_an_issuer_code() {
    let k = key(4);
    let der = build_ca_csr(&k, "bank-7").unwrap();
    let csr = parse_ca_csr(&der).unwrap();
    assert_eq!(csr.common_name, "bank-7");
    assert_eq!(csr.public_key, k.public_key());
    // Same key, same code: the same request (Ed25519 is deterministic).
    assert_eq!(build_ca_csr(&k, "bank-7").unwrap(), der);
    for bad in ["", "Bank-A", "bank_a", "bank a", &"a".repeat(33), "bänk"] {
        assert!(
            matches!(build_ca_csr(&k, bad), Err(PkiError::InvalidArgument(_))),
            "{bad:?}"
        );
    }
    assert!(build_ca_csr(&k, &"a".repeat(32)).is_ok());
    // A CA request is not a wallet request. (A wallet id's hex is a valid
    // code: the scheme admits a request under the code its operator chose,
    // and refuses one naming another.)
    assert!(matches!(parse_csr(&der), Err(PkiError::Malformed(_))));
    let wallet_csr = build_csr(&k, WalletId([1; 16])).unwrap();
    assert_eq!(
        parse_ca_csr(&wallet_csr).unwrap().common_name,
        WalletId([1; 16]).to_hex()
    );
    // A tampered request fails its self-signature.
    let mut bad = der.clone();
    let at = bad.len() - 5;
    bad[at] ^= 1;
    assert_eq!(parse_ca_csr(&bad), Err(PkiError::BadSignature));
    assert!(matches!(
        parse_ca_csr(&vec![0x30; CSR_BYTES_MAX + 1]),
        Err(PkiError::TooLarge { .. })
    ));
    for n in 0..der.len() {
        assert!(parse_ca_csr(&der[..n]).is_err());
    }
}
