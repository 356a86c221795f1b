use super::cert::{
    CertTemplate, build_certificate, ca_extensions, encode_key_usage, parse_key_usage,
    wallet_extensions,
};
use super::x509::{self, KU_CRL_SIGN, KU_DIGITAL_SIGNATURE, KU_KEY_CERT_SIGN, oid};
use super::*;
use crate::suite::{PublicKey, SigningKey, Suite};
use crate::types::{UnixSeconds, WalletId};

const NOW: UnixSeconds = UnixSeconds(1_795_000_000); // 2026-11-18
const DAY: u64 = 86_400;
const POLICY: PolicyRef = PolicyRef { id: 7, epoch: 3 };

fn key(suite: Suite, n: u8) -> SigningKey {
    SigningKey::from_seed(suite, &[n; 32]).unwrap()
}

fn ago(days: u64) -> UnixSeconds {
    UnixSeconds(NOW.0 - days * DAY)
}

fn ahead(days: u64) -> UnixSeconds {
    NOW.plus(days * DAY)
}

struct Pki {
    root_key: SigningKey,
    root: Certificate,
    issuer_key: SigningKey,
    issuer: Certificate,
    wallet_key: SigningKey,
    wallet: Certificate,
    wallet_id: WalletId,
}

fn pki(root_suite: Suite, issuer_suite: Suite, wallet_suite: Suite) -> Pki {
    let root_key = key(root_suite, 1);
    let root = issue_root(&root_key, "offpay root", 1, ago(365), ahead(3650)).unwrap();
    let issuer_key = key(issuer_suite, 2);
    let issuer = issue_issuer_ca(
        &root_key,
        &root,
        &issuer_key.public_key(),
        "Bank A",
        2,
        ago(30),
        ahead(365),
    )
    .unwrap();
    let wallet_key = key(wallet_suite, 3);
    let wallet_id = WalletId([0xa5; 16]);
    let wallet = issue_wallet(
        &issuer_key,
        &issuer,
        &wallet_key.public_key(),
        wallet_id,
        POLICY,
        0x0123_4567_89ab_cdef,
        ago(1),
        ahead(30),
    )
    .unwrap();
    Pki {
        root_key,
        root,
        issuer_key,
        issuer,
        wallet_key,
        wallet,
        wallet_id,
    }
}

const COMBOS: [(Suite, Suite, Suite); 5] = [
    (Suite::Ed25519, Suite::Ed25519, Suite::Ed25519),
    (Suite::P256, Suite::P256, Suite::P256),
    (Suite::P256, Suite::P256, Suite::Ed25519),
    (Suite::P256, Suite::Ed25519, Suite::Ed25519),
    (Suite::Ed25519, Suite::P256, Suite::P256),
];

fn wallet_cert(p: &Pki, n: u8, serial: u64, nb: UnixSeconds, na: UnixSeconds) -> Certificate {
    let k = key(p.wallet_key.suite(), n);
    issue_wallet(
        &p.issuer_key,
        &p.issuer,
        &k.public_key(),
        WalletId([n; 16]),
        POLICY,
        serial,
        nb,
        na,
    )
    .unwrap()
}

fn crl(p: &Pki, revoked: &[RevokedEntry]) -> Crl {
    issue_crl(&p.issuer_key, &p.issuer, 5, ago(1), ahead(1), revoked).unwrap()
}

// ---- round trips ----------------------------------------------------------

#[test]
fn issue_parse_round_trip_all_suites() {
    for (rs, is, ws) in COMBOS {
        let p = pki(rs, is, ws);
        for c in [&p.root, &p.issuer, &p.wallet] {
            let again = Certificate::from_der(c.der()).unwrap();
            assert_eq!(&again, c);
            assert_eq!(again.reference(), c.reference());
            assert_eq!(Certificate::from_pem(&c.to_pem()).unwrap(), again);
            assert_eq!(c.reference(), crate::types::Hash32::digest(c.der()));
        }
        assert_eq!(p.root.suite(), rs);
        assert_eq!(p.root.signature_suite(), rs);
        assert_eq!(p.issuer.suite(), is);
        assert_eq!(p.issuer.signature_suite(), rs);
        assert_eq!(p.wallet.suite(), ws);
        assert_eq!(p.wallet.signature_suite(), is);

        assert_eq!(p.root.subject_cn(), "offpay root");
        assert_eq!(p.root.issuer_cn(), "offpay root");
        assert_eq!(p.issuer.subject_cn(), "Bank A");
        assert_eq!(p.issuer.issuer_cn(), "offpay root");
        assert_eq!(p.wallet.issuer_cn(), "Bank A");
        assert_eq!(p.wallet.subject_cn(), p.wallet_id.to_hex());

        assert_eq!(p.root.serial(), 1);
        assert_eq!(p.issuer.serial(), 2);
        assert_eq!(p.wallet.serial(), 0x0123_4567_89ab_cdef);
        assert_eq!(p.wallet.not_before(), ago(1));
        assert_eq!(p.wallet.not_after(), ahead(30));
        assert_eq!(*p.wallet.public_key(), p.wallet_key.public_key());
        assert_eq!(*p.issuer.public_key(), p.issuer_key.public_key());
        assert_eq!(*p.root.public_key(), p.root_key.public_key());

        assert!(p.root.is_ca() && p.issuer.is_ca() && !p.wallet.is_ca());
        assert_eq!(p.root.role(), CertRole::Root);
        assert_eq!(p.issuer.role(), CertRole::IssuerCa);
        assert_eq!(p.wallet.role(), CertRole::Wallet);
        assert_eq!(p.wallet.wallet_id(), Some(p.wallet_id));
        assert_eq!(p.root.wallet_id(), None);
        assert_eq!(p.issuer.wallet_id(), None);
        assert_eq!(p.wallet.policy_ref(), Some(POLICY));
        assert_eq!(p.issuer.policy_ref(), None);

        p.root.verify_signed_by(&p.root).unwrap();
        p.issuer.verify_signed_by(&p.root).unwrap();
        p.wallet.verify_signed_by(&p.issuer).unwrap();
        assert_eq!(
            validate_wallet_chain(&p.root, &p.issuer, &p.wallet, NOW, None),
            Ok(p.wallet_id)
        );
        let c = crl(&p, &[]);
        assert_eq!(
            validate_wallet_chain(&p.root, &p.issuer, &p.wallet, NOW, Some(&c)),
            Ok(p.wallet_id)
        );
    }
}

#[test]
fn certificate_sizes() {
    for (rs, is, ws) in COMBOS {
        let p = pki(rs, is, ws);
        eprintln!(
            "DER sizes root {rs} / issuer CA {is} / wallet {ws}: root {} B, issuer CA {} B, wallet {} B",
            p.root.der().len(),
            p.issuer.der().len(),
            p.wallet.der().len()
        );
    }
    // Worst case: largest serial, 64-bit policy fields, P-256 signature with both 33-byte integers.
    for (is, ws, max) in [
        (Suite::Ed25519, Suite::Ed25519, 400),
        (Suite::P256, Suite::P256, 480),
        (Suite::P256, Suite::Ed25519, 480),
    ] {
        let p = pki(is, is, ws);
        let w = issue_wallet(
            &p.issuer_key,
            &p.issuer,
            &p.wallet_key.public_key(),
            p.wallet_id,
            PolicyRef {
                id: u32::MAX,
                epoch: u32::MAX,
            },
            u64::MAX,
            ago(1),
            ahead(30),
        )
        .unwrap();
        eprintln!(
            "largest wallet certificate (issuer {is}, wallet {ws}): {} bytes",
            w.der().len()
        );
        assert!(w.der().len() <= max, "{} > {max}", w.der().len());
    }
}

#[test]
fn time_encoding_boundaries() {
    let k = key(Suite::Ed25519, 9);
    // 2049-12-31T23:59:59Z is the last UTCTime; 2050-01-01 is GeneralizedTime.
    let last_utc = UnixSeconds(2_524_607_999);
    let first_gen = UnixSeconds(2_524_608_000);
    let far = UnixSeconds(253_402_300_799); // 9999-12-31T23:59:59Z
    let root = issue_root(&k, "t", 1, last_utc, first_gen).unwrap();
    assert_eq!(root.not_before(), last_utc);
    assert_eq!(root.not_after(), first_gen);
    let d = root.der();
    assert!(d.windows(15).any(|w| w == b"\x17\x0d491231235959Z"));
    assert!(d.windows(17).any(|w| w == b"\x18\x0f20500101000000Z"));
    let root = issue_root(&k, "t", 1, UnixSeconds(0), far).unwrap();
    assert_eq!((root.not_before(), root.not_after()), (UnixSeconds(0), far));
    assert!(matches!(
        issue_root(&k, "t", 1, NOW, far.plus(1)),
        Err(PkiError::InvalidArgument(_))
    ));
}

#[test]
fn issuing_refuses_bad_arguments() {
    let p = pki(Suite::Ed25519, Suite::Ed25519, Suite::Ed25519);
    let k = &p.root_key;
    let bad = |r: Result<Certificate, PkiError>| matches!(r, Err(PkiError::InvalidArgument(_)));
    assert!(bad(issue_root(k, "r", 0, ago(1), NOW)));
    assert!(bad(issue_root(k, "", 1, ago(1), NOW)));
    assert!(bad(issue_root(k, &"x".repeat(65), 1, ago(1), NOW)));
    assert!(bad(issue_root(k, "a\nb", 1, ago(1), NOW)));
    assert!(bad(issue_root(k, "r", 1, NOW, ago(1))));
    issue_root(k, &"é".repeat(32), 1, ago(1), NOW).unwrap();
    // Key does not match the issuing certificate.
    assert!(bad(issue_issuer_ca(
        &p.issuer_key,
        &p.root,
        &p.issuer_key.public_key(),
        "x",
        9,
        ago(1),
        NOW
    )));
    assert!(bad(issue_wallet(
        &p.root_key,
        &p.issuer,
        &p.wallet_key.public_key(),
        p.wallet_id,
        POLICY,
        9,
        ago(1),
        NOW
    )));
    // A wallet cannot issue.
    assert_eq!(
        issue_wallet(
            &p.wallet_key,
            &p.wallet,
            &p.wallet_key.public_key(),
            p.wallet_id,
            POLICY,
            9,
            ago(1),
            NOW
        ),
        Err(PkiError::NotACa)
    );
    assert_eq!(
        issue_crl(&p.wallet_key, &p.wallet, 1, NOW, NOW, &[]).unwrap_err(),
        PkiError::NotACrlIssuer
    );
    assert!(matches!(
        issue_crl(&p.issuer_key, &p.issuer, 1, NOW, ago(1), &[]),
        Err(PkiError::InvalidArgument(_))
    ));
    let e = |serial| RevokedEntry {
        serial,
        revoked_at: NOW,
        reason: RevocationReason::Superseded,
    };
    assert!(matches!(
        issue_crl(&p.issuer_key, &p.issuer, 1, NOW, NOW, &[e(3), e(3)]),
        Err(PkiError::InvalidArgument(_))
    ));
    assert!(matches!(
        issue_crl(&p.issuer_key, &p.issuer, 1, NOW, NOW, &[e(0)]),
        Err(PkiError::InvalidArgument(_))
    ));
}

// ---- chain validation failures -------------------------------------------

#[test]
fn chain_time_checks() {
    for (rs, is, ws) in COMBOS {
        let p = pki(rs, is, ws);
        let v = |now| validate_wallet_chain(&p.root, &p.issuer, &p.wallet, now, None);
        assert_eq!(v(ahead(30)), Ok(p.wallet_id)); // inclusive
        assert_eq!(v(ago(1)), Ok(p.wallet_id)); // inclusive
        assert_eq!(v(ahead(30).plus(1)), Err(PkiError::Expired));
        assert_eq!(v(UnixSeconds(ago(1).0 - 1)), Err(PkiError::NotYetValid));
        assert_eq!(v(ahead(5000)), Err(PkiError::Expired)); // root expired
        assert_eq!(v(ago(400)), Err(PkiError::NotYetValid)); // root not yet valid
        // The issuer CA expired while the wallet certificate did not.
        let issuer = issue_issuer_ca(
            &p.root_key,
            &p.root,
            &p.issuer_key.public_key(),
            "Bank A",
            3,
            ago(30),
            ago(2),
        )
        .unwrap();
        assert_eq!(
            validate_wallet_chain(&p.root, &issuer, &p.wallet, NOW, None),
            Err(PkiError::Expired)
        );
        assert_eq!(p.wallet.check_validity(NOW), Ok(()));
    }
}

#[test]
fn chain_revocation() {
    for (rs, is, ws) in COMBOS {
        let p = pki(rs, is, ws);
        let serial = p.wallet.serial();
        let entries = [
            RevokedEntry {
                serial: 77,
                revoked_at: ago(3),
                reason: RevocationReason::Superseded,
            },
            RevokedEntry {
                serial,
                revoked_at: ago(1),
                reason: RevocationReason::KeyCompromise,
            },
        ];
        let c = crl(&p, &entries);
        assert_eq!(
            validate_wallet_chain(&p.root, &p.issuer, &p.wallet, NOW, Some(&c)),
            Err(PkiError::Revoked { serial })
        );
        assert_eq!(
            c.is_revoked(serial).unwrap().reason,
            RevocationReason::KeyCompromise
        );
        // A stale CRL is still used.
        assert!(c.is_stale_at(ahead(2)));
        assert_eq!(
            validate_wallet_chain(&p.root, &p.issuer, &p.wallet, ahead(2), Some(&c)),
            Err(PkiError::Revoked { serial })
        );
        // Another wallet of the same issuer is fine.
        let other = wallet_cert(&p, 9, 78, ago(1), ahead(1));
        assert_eq!(
            validate_wallet_chain(&p.root, &p.issuer, &other, NOW, Some(&c)),
            Ok(WalletId([9; 16]))
        );
        // CRL from another issuer CA (same root).
        let k2 = key(is, 20);
        let issuer2 = issue_issuer_ca(
            &p.root_key,
            &p.root,
            &k2.public_key(),
            "Bank B",
            4,
            ago(1),
            ahead(1),
        )
        .unwrap();
        let c2 = issue_crl(&k2, &issuer2, 1, ago(1), ahead(1), &[]).unwrap();
        assert_eq!(
            validate_wallet_chain(&p.root, &p.issuer, &p.wallet, NOW, Some(&c2)),
            Err(PkiError::CrlWrongIssuer)
        );
        // Same issuer name, other key: the authority key identifier differs.
        let issuer3 = issue_issuer_ca(
            &p.root_key,
            &p.root,
            &k2.public_key(),
            "Bank A",
            5,
            ago(1),
            ahead(1),
        )
        .unwrap();
        let c3 = issue_crl(&k2, &issuer3, 1, ago(1), ahead(1), &[]).unwrap();
        assert_eq!(
            c3.verify_signed_by(&p.issuer),
            Err(PkiError::CrlWrongIssuer)
        );
        // Flipped CRL signature.
        let mut der = c.der().to_vec();
        *der.last_mut().unwrap() ^= 1;
        let bad = Crl::from_der(&der).unwrap();
        assert_eq!(
            validate_wallet_chain(&p.root, &p.issuer, &other, NOW, Some(&bad)),
            Err(PkiError::CrlBadSignature)
        );
    }
}

#[test]
fn chain_wrong_issuer_and_bad_signature() {
    for (rs, is, ws) in COMBOS {
        let p = pki(rs, is, ws);
        let v = |root: &Certificate, issuer: &Certificate, leaf: &Certificate| {
            validate_wallet_chain(root, issuer, leaf, NOW, None)
        };
        // Another issuer CA under the same root.
        let k2 = key(is, 21);
        let issuer2 = issue_issuer_ca(
            &p.root_key,
            &p.root,
            &k2.public_key(),
            "Bank B",
            4,
            ago(1),
            ahead(1),
        )
        .unwrap();
        assert_eq!(v(&p.root, &issuer2, &p.wallet), Err(PkiError::WrongIssuer));
        // Same name, other key: the leaf's AKID does not match.
        let issuer3 = issue_issuer_ca(
            &p.root_key,
            &p.root,
            &k2.public_key(),
            "Bank A",
            5,
            ago(1),
            ahead(1),
        )
        .unwrap();
        assert_eq!(v(&p.root, &issuer3, &p.wallet), Err(PkiError::WrongIssuer));
        // ... and without an AKID on the leaf, the signature decides.
        let no_akid = build_certificate(
            &p.issuer_key,
            CertTemplate {
                serial: 8,
                issuer_name: &p.issuer.subject_name,
                subject_cn: &p.wallet_id.to_hex(),
                not_before: ago(1),
                not_after: ahead(1),
                subject_key: p.wallet.public_key(),
                extensions: vec![
                    x509::encode_extension(
                        oid::KEY_USAGE,
                        true,
                        &encode_key_usage(KU_DIGITAL_SIGNATURE),
                    ),
                    x509::encode_policy_ref(POLICY),
                ],
            },
        )
        .unwrap();
        assert_eq!(v(&p.root, &p.issuer, &no_akid), Ok(p.wallet_id));
        assert_eq!(v(&p.root, &issuer3, &no_akid), Err(PkiError::BadSignature));
        // Another root with the same name: the issuer's AKID does not match.
        let rk2 = key(rs, 22);
        let root2 = issue_root(&rk2, "offpay root", 1, ago(1), ahead(1)).unwrap();
        assert_eq!(v(&root2, &p.issuer, &p.wallet), Err(PkiError::WrongIssuer));
        // The root passed as the issuer CA.
        assert_eq!(v(&p.root, &p.root, &p.wallet), Err(PkiError::WrongIssuer));
        // The issuer CA passed as the root (not self-issued).
        assert_eq!(
            v(&p.issuer, &p.issuer, &p.wallet),
            Err(PkiError::WrongIssuer)
        );

        // Flip one bit in each certificate's signature.
        let flip = |c: &Certificate| {
            let mut d = c.der().to_vec();
            let n = d.len();
            d[n - 3] ^= 0x10;
            Certificate::from_der(&d).unwrap()
        };
        assert_eq!(
            v(&p.root, &p.issuer, &flip(&p.wallet)),
            Err(PkiError::BadSignature)
        );
        assert_eq!(
            v(&p.root, &flip(&p.issuer), &p.wallet),
            Err(PkiError::BadSignature)
        );
        assert_eq!(
            v(&flip(&p.root), &p.issuer, &p.wallet),
            Err(PkiError::BadSignature)
        );

        // Signed with a key of the other suite under the issuer's name.
        let other_suite = match is {
            Suite::Ed25519 => Suite::P256,
            Suite::P256 | Suite::MlDsa44 => Suite::Ed25519,
        };
        let forged = build_certificate(
            &key(other_suite, 2),
            CertTemplate {
                serial: 9,
                issuer_name: &p.issuer.subject_name,
                subject_cn: &p.wallet_id.to_hex(),
                not_before: ago(1),
                not_after: ahead(1),
                subject_key: p.wallet.public_key(),
                extensions: wallet_extensions(
                    POLICY,
                    WalletProfile::Personal,
                    &p.issuer.key_identifier(),
                ),
            },
        )
        .unwrap();
        assert_eq!(v(&p.root, &p.issuer, &forged), Err(PkiError::BadSignature));
    }
}

#[test]
#[expect(clippy::too_many_lines)] // lint-exception: one scenario told end to end
fn chain_roles() {
    for (rs, is, ws) in COMBOS {
        let p = pki(rs, is, ws);
        let v = |root: &Certificate, issuer: &Certificate, leaf: &Certificate| {
            validate_wallet_chain(root, issuer, leaf, NOW, None)
        };
        // A leaf used as a CA: a non-CA certificate signed by the root, and a
        // wallet certificate signed with its key.
        let fake_key = key(is, 30);
        let fake_ca = build_certificate(
            &p.root_key,
            CertTemplate {
                serial: 30,
                issuer_name: &p.root.subject_name,
                subject_cn: &WalletId([30; 16]).to_hex(),
                not_before: ago(1),
                not_after: ahead(1),
                subject_key: &fake_key.public_key(),
                extensions: wallet_extensions(
                    POLICY,
                    WalletProfile::Personal,
                    &p.root.key_identifier(),
                ),
            },
        )
        .unwrap();
        let under_fake = build_certificate(
            &fake_key,
            CertTemplate {
                serial: 31,
                issuer_name: &fake_ca.subject_name,
                subject_cn: &WalletId([31; 16]).to_hex(),
                not_before: ago(1),
                not_after: ahead(1),
                subject_key: p.wallet.public_key(),
                extensions: wallet_extensions(
                    POLICY,
                    WalletProfile::Personal,
                    &x509::key_id(&fake_key.public_key()),
                ),
            },
        )
        .unwrap();
        assert_eq!(v(&p.root, &fake_ca, &under_fake), Err(PkiError::NotACa));
        // The wallet certificate passed as root.
        assert_eq!(v(&p.wallet, &p.issuer, &p.wallet), Err(PkiError::NotACa));

        // A CA used as a wallet: a sub-CA under the issuer CA.
        let sub = issue_issuer_ca(
            &p.issuer_key,
            &p.issuer,
            &key(ws, 31).public_key(),
            &WalletId([31; 16]).to_hex(),
            40,
            ago(1),
            ahead(1),
        )
        .unwrap();
        assert_eq!(sub.wallet_id(), None);
        assert_eq!(
            v(&p.root, &p.issuer, &sub),
            Err(PkiError::NotAWalletCertificate)
        );

        // Leaf without the policy extension, or with an upper-case id.
        let no_policy = build_certificate(
            &p.issuer_key,
            CertTemplate {
                serial: 41,
                issuer_name: &p.issuer.subject_name,
                subject_cn: &p.wallet_id.to_hex(),
                not_before: ago(1),
                not_after: ahead(1),
                subject_key: p.wallet.public_key(),
                extensions: vec![x509::encode_extension(
                    oid::KEY_USAGE,
                    true,
                    &encode_key_usage(KU_DIGITAL_SIGNATURE),
                )],
            },
        )
        .unwrap();
        assert_eq!(no_policy.policy_ref(), None);
        assert_eq!(
            v(&p.root, &p.issuer, &no_policy),
            Err(PkiError::NotAWalletCertificate)
        );
        let upper = build_certificate(
            &p.issuer_key,
            CertTemplate {
                serial: 42,
                issuer_name: &p.issuer.subject_name,
                subject_cn: &p.wallet_id.to_hex().to_uppercase(),
                not_before: ago(1),
                not_after: ahead(1),
                subject_key: p.wallet.public_key(),
                extensions: wallet_extensions(
                    POLICY,
                    WalletProfile::Personal,
                    &p.issuer.key_identifier(),
                ),
            },
        )
        .unwrap();
        assert_eq!(upper.wallet_id(), None);
        assert_eq!(
            v(&p.root, &p.issuer, &upper),
            Err(PkiError::NotAWalletCertificate)
        );

        // A root that forbids any CA below it.
        let rk = key(rs, 32);
        let rpk = rk.public_key();
        let root0 = build_certificate(
            &rk,
            CertTemplate {
                serial: 1,
                issuer_name: &x509::encode_name("root0"),
                subject_cn: "root0",
                not_before: ago(1),
                not_after: ahead(1),
                subject_key: &rpk,
                extensions: ca_extensions(&rpk, Some(0), None),
            },
        )
        .unwrap();
        let i0 = issue_issuer_ca(
            &rk,
            &root0,
            &p.issuer_key.public_key(),
            "I0",
            2,
            ago(1),
            ahead(1),
        )
        .unwrap();
        let w0 = issue_wallet(
            &p.issuer_key,
            &i0,
            p.wallet.public_key(),
            p.wallet_id,
            POLICY,
            3,
            ago(1),
            ahead(1),
        )
        .unwrap();
        assert_eq!(v(&root0, &i0, &w0), Err(PkiError::PathLenExceeded));
    }
}

#[test]
fn key_usage_encoding() {
    for ku in [
        KU_DIGITAL_SIGNATURE,
        KU_KEY_CERT_SIGN | KU_CRL_SIGN,
        KU_CRL_SIGN,
        1 << 8,
        0x1ff,
    ] {
        let enc = encode_key_usage(ku);
        assert_eq!(parse_key_usage(&enc), Ok(ku), "{enc:02x?}");
    }
    assert_eq!(encode_key_usage(KU_DIGITAL_SIGNATURE), [3, 2, 7, 0x80]);
    assert_eq!(
        encode_key_usage(KU_KEY_CERT_SIGN | KU_CRL_SIGN),
        [3, 2, 1, 0x06]
    );
    assert!(parse_key_usage(&[3, 2, 2, 0x07]).is_err()); // unused bits set
    assert!(parse_key_usage(&[3, 1, 0]).is_err());
    assert!(parse_key_usage(&[3, 2, 8, 0]).is_err());
}

#[test]
fn ecdsa_signature_value_conversion() {
    let cases: [[u8; 64]; 4] = [
        [0xff; 64],
        [0; 64],
        {
            let mut s = [0u8; 64];
            s[31] = 1;
            s[32] = 0x7f;
            s
        },
        {
            let mut s = [0x01; 64];
            s[0] = 0x80;
            s[32] = 0;
            s[33] = 0x80;
            s
        },
    ];
    for sig in cases {
        let enc = x509::encode_signature_value(Suite::P256, &sig);
        // Skip the BIT STRING header: 03 len.
        let body = super::asn1::single(&enc, 0x03, "t").unwrap();
        assert_eq!(
            x509::decode_signature_value(Suite::P256, body),
            Ok(sig.to_vec())
        );
    }
    // A 33-byte magnitude is refused.
    let mut big = vec![0x00, 0x30, 0x26, 0x02, 0x21, 0x01];
    big.extend([0u8; 32]);
    big.extend([0x02, 0x01, 0x01]);
    assert!(x509::decode_signature_value(Suite::P256, &big).is_err());
}

#[test]
fn policy_oid_constant_matches_its_dotted_form() {
    let der = OFFPAY_POLICY_REF_OID_DER;
    let mut arcs: Vec<u128> = vec![(der[0] / 40).into(), (der[0] % 40).into()];
    let mut acc: u128 = 0;
    for &b in &der[1..] {
        acc = (acc << 7) | u128::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
    }
    let dotted: Vec<String> = arcs.iter().map(u128::to_string).collect();
    assert_eq!(dotted.join("."), OFFPAY_POLICY_REF_OID);
    assert_eq!(format!("{OFFPAY_OID_ARC}.1"), OFFPAY_POLICY_REF_OID);
}

// ---- CRL --------------------------------------------------------------------

#[test]
fn crl_round_trip() {
    for suite in Suite::ALL {
        let p = pki(suite, suite, suite);
        let entries = vec![
            RevokedEntry {
                serial: u64::MAX,
                revoked_at: ago(2),
                reason: RevocationReason::CessationOfOperation,
            },
            RevokedEntry {
                serial: 5,
                revoked_at: ago(3),
                reason: RevocationReason::Unspecified,
            },
            RevokedEntry {
                serial: 0x80,
                revoked_at: UnixSeconds(2_600_000_000), // GeneralizedTime
                reason: RevocationReason::KeyCompromise,
            },
            RevokedEntry {
                serial: 6,
                revoked_at: ago(1),
                reason: RevocationReason::AaCompromise,
            },
        ];
        let c = issue_crl(
            &p.issuer_key,
            &p.issuer,
            u64::MAX,
            ago(1),
            ahead(7),
            &entries,
        )
        .unwrap();
        assert_eq!(c.number(), u64::MAX);
        assert_eq!(c.this_update(), ago(1));
        assert_eq!(c.next_update(), ahead(7));
        assert_eq!(c.issuer_cn(), "Bank A");
        let mut sorted = entries.clone();
        sorted.sort_by_key(|e| e.serial);
        assert_eq!(c.entries(), &sorted[..]);
        assert_eq!(
            c.is_revoked(5).unwrap().reason,
            RevocationReason::Unspecified
        );
        assert_eq!(
            c.is_revoked(0x80).unwrap().revoked_at,
            UnixSeconds(2_600_000_000)
        );
        assert!(c.is_revoked(7).is_none());
        c.verify_signed_by(&p.issuer).unwrap();
        assert_eq!(c.verify_signed_by(&p.root), Err(PkiError::CrlWrongIssuer));
        assert_eq!(Crl::from_der(c.der()).unwrap(), c);
        assert_eq!(Crl::from_pem(&c.to_pem()).unwrap(), c);
        assert!(!c.is_stale_at(ahead(7)) && c.is_stale_at(ahead(7).plus(1)));
        // Unspecified is encoded by leaving out reasonCode.
        let reason_oid = [0x06, 0x03, 0x55, 0x1d, 0x15];
        let count = c.der().windows(5).filter(|w| *w == reason_oid).count();
        assert_eq!(count, 3);

        let empty = issue_crl(&p.issuer_key, &p.issuer, 0, ago(1), ahead(7), &[]).unwrap();
        assert!(empty.entries().is_empty());
        let many: Vec<RevokedEntry> = (1..=1000u64)
            .map(|i| RevokedEntry {
                serial: i * 7919 + (1 << 40),
                revoked_at: ago(i % 30),
                reason: RevocationReason::KeyCompromise,
            })
            .collect();
        let big = issue_crl(&p.issuer_key, &p.issuer, 2, ago(1), ahead(7), &many).unwrap();
        assert_eq!(big.entries().len(), 1000);
        assert!(big.is_revoked(500 * 7919 + (1 << 40)).is_some());
        big.verify_signed_by(&p.issuer).unwrap();
        eprintln!(
            "CRL sizes ({suite}): empty {} B, 4 entries {} B, 1000 entries {} B",
            empty.der().len(),
            c.der().len(),
            big.der().len()
        );
    }
}

#[test]
fn crl_too_many_entries_is_refused() {
    let p = pki(Suite::Ed25519, Suite::Ed25519, Suite::Ed25519);
    let many: Vec<RevokedEntry> = (1..=40_000u64)
        .map(|i| RevokedEntry {
            serial: i,
            revoked_at: NOW,
            reason: RevocationReason::KeyCompromise,
        })
        .collect();
    assert!(matches!(
        issue_crl(&p.issuer_key, &p.issuer, 1, NOW, NOW, &many),
        Err(PkiError::TooLarge { .. })
    ));
}

// ---- CSR --------------------------------------------------------------------

#[test]
fn csr_round_trip_and_tamper() {
    for suite in Suite::ALL {
        let k = key(suite, 40);
        let id = WalletId([0x3c; 16]);
        let der = build_csr(&k, id).unwrap();
        eprintln!("CSR ({suite}): {} bytes", der.len());
        let csr = parse_csr(&der).unwrap();
        assert_eq!(
            csr,
            Csr {
                public_key: k.public_key(),
                wallet_id: id
            }
        );
        // Tamper with the wallet id (inside the signed part).
        let hex = id.to_hex();
        let at = der.windows(32).position(|w| w == hex.as_bytes()).unwrap();
        let mut t = der.clone();
        t[at] = b'd';
        assert_eq!(parse_csr(&t), Err(PkiError::BadSignature));
        // Tamper with the signature.
        let mut t = der.clone();
        let n = t.len();
        t[n - 2] ^= 0x04;
        assert_eq!(parse_csr(&t), Err(PkiError::BadSignature));
        // Another key's public key in the request.
        let other = key(suite, 41).public_key().to_bytes();
        let mine = k.public_key().to_bytes();
        let at = der.windows(mine.len()).position(|w| w == mine).unwrap();
        let mut t = der.clone();
        t[at..at + mine.len()].copy_from_slice(&other);
        assert_eq!(parse_csr(&t), Err(PkiError::BadSignature));
        // A certificate is not a CSR and vice versa.
        let p = pki(suite, suite, suite);
        assert!(parse_csr(p.wallet.der()).is_err());
        assert!(Certificate::from_der(&der).is_err());
        check_corpus(&der, |b| parse_csr(b).map(|_| ()));
    }
}

// ---- malformed inputs -------------------------------------------------------

/// A tiny deterministic PRNG for mutation tests.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every truncation, bit flip, byte replacement, extension, insertion and
/// deletion of `good` must be refused by `full` (parse + signature checks),
/// and nothing may panic.
fn check_corpus(good: &[u8], full: impl Fn(&[u8]) -> Result<(), PkiError>) {
    assert_eq!(full(good), Ok(()));
    for n in 0..good.len() {
        assert!(full(&good[..n]).is_err(), "truncated at {n}");
    }
    for i in 0..good.len() {
        for x in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff] {
            let mut m = good.to_vec();
            m[i] ^= x;
            assert!(full(&m).is_err(), "byte {i} ^ {x:#x} accepted");
        }
    }
    for tail in [&[0u8][..], &[0x30, 0x00], good] {
        let mut m = good.to_vec();
        m.extend_from_slice(tail);
        assert!(full(&m).is_err(), "trailing bytes accepted");
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ good.len() as u64);
    for _ in 0..3000 {
        let mut m = good.to_vec();
        for _ in 0..1 + rng.below(4) {
            match rng.below(3) {
                0 => {
                    let i = rng.below(m.len());
                    m[i] = rng.next() as u8;
                }
                1 => {
                    let i = rng.below(m.len() + 1);
                    m.insert(i, rng.next() as u8);
                }
                _ => {
                    if !m.is_empty() {
                        let i = rng.below(m.len());
                        m.remove(i);
                    }
                }
            }
        }
        if m != good {
            assert!(full(&m).is_err(), "mutation accepted: {m:02x?}");
        }
    }
}

#[test]
fn malformed_certificates_are_refused() {
    for (rs, is, ws) in COMBOS {
        let p = pki(rs, is, ws);
        check_corpus(p.wallet.der(), |b| {
            let c = Certificate::from_der(b)?;
            validate_wallet_chain(&p.root, &p.issuer, &c, NOW, None).map(|_| ())
        });
        check_corpus(p.issuer.der(), |b| {
            let c = Certificate::from_der(b)?;
            validate_wallet_chain(&p.root, &c, &p.wallet, NOW, None).map(|_| ())
        });
        check_corpus(p.root.der(), |b| {
            let c = Certificate::from_der(b)?;
            // The root is trusted by value: compare it like a wallet would.
            if c != p.root {
                return Err(PkiError::WrongIssuer);
            }
            validate_wallet_chain(&c, &p.issuer, &p.wallet, NOW, None).map(|_| ())
        });
    }
}

#[test]
fn malformed_crls_are_refused() {
    for suite in Suite::ALL {
        let p = pki(suite, suite, suite);
        let c = crl(
            &p,
            &[
                RevokedEntry {
                    serial: 3,
                    revoked_at: ago(1),
                    reason: RevocationReason::KeyCompromise,
                },
                RevokedEntry {
                    serial: 300,
                    revoked_at: ago(2),
                    reason: RevocationReason::Unspecified,
                },
            ],
        );
        check_corpus(c.der(), |b| Crl::from_der(b)?.verify_signed_by(&p.issuer));
    }
}

#[test]
fn oversized_and_garbage_inputs() {
    let big = vec![0x30u8; CERTIFICATE_BYTES_MAX + 1];
    assert_eq!(
        Certificate::from_der(&big),
        Err(PkiError::TooLarge {
            len: CERTIFICATE_BYTES_MAX + 1,
            max: CERTIFICATE_BYTES_MAX
        })
    );
    assert!(matches!(
        Crl::from_der(&vec![0u8; CRL_BYTES_MAX + 1]),
        Err(PkiError::TooLarge { .. })
    ));
    assert!(matches!(
        parse_csr(&vec![0u8; CSR_BYTES_MAX + 1]),
        Err(PkiError::TooLarge { .. })
    ));
    assert!(matches!(
        Certificate::from_pem(&"A".repeat(10_000)),
        Err(PkiError::TooLarge { .. })
    ));
    // Indefinite length, long-form lengths, high tag numbers, huge claimed lengths.
    for bad in [
        &[][..],
        &[0x30],
        &[0x30, 0x80, 0x00, 0x00],
        &[0x30, 0x81, 0x05, 1, 2, 3, 4, 5],
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        &[0x30, 0x83, 0xff, 0xff, 0xff],
        &[0x3f, 0x01, 0x00],
        &[0x30, 0x00],
        &[0x30, 0x03, 0x30, 0x01, 0x00],
    ] {
        assert!(Certificate::from_der(bad).is_err());
        assert!(Crl::from_der(bad).is_err());
        assert!(parse_csr(bad).is_err());
    }
    let mut rng = XorShift(42);
    for _ in 0..20_000 {
        let len = rng.below(600);
        let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = v.first_mut() {
            *first = 0x30;
        }
        assert!(Certificate::from_der(&v).is_err());
        assert!(Crl::from_der(&v).is_err());
        assert!(parse_csr(&v).is_err());
    }
    for pem in [
        "",
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n",
    ] {
        assert!(Certificate::from_pem(pem).is_err());
        assert!(Crl::from_pem(pem).is_err());
    }
    // Right PEM, wrong label.
    let p = pki(Suite::Ed25519, Suite::Ed25519, Suite::Ed25519);
    let crl_pem = crl(&p, &[]).to_pem();
    assert_eq!(
        Certificate::from_pem(&crl_pem),
        Err(PkiError::Malformed("PEM label"))
    );
    assert_eq!(
        Crl::from_pem(&p.wallet.to_pem()),
        Err(PkiError::Malformed("PEM label"))
    );
}

#[test]
fn unknown_critical_extension_is_refused() {
    let p = pki(Suite::Ed25519, Suite::Ed25519, Suite::Ed25519);
    let mut exts = wallet_extensions(POLICY, WalletProfile::Personal, &[1; 20]);
    // 2.5.29.30 nameConstraints, critical.
    exts.push(x509::encode_extension(
        &[0x55, 0x1d, 0x1e],
        true,
        &[0x30, 0x00],
    ));
    let template = |exts| CertTemplate {
        serial: 9,
        issuer_name: &p.issuer.subject_name,
        subject_cn: "x",
        not_before: ago(1),
        not_after: ahead(1),
        subject_key: p.wallet.public_key(),
        extensions: exts,
    };
    assert_eq!(
        build_certificate(&p.issuer_key, template(exts)),
        Err(PkiError::UnsupportedCriticalExtension)
    );
    // The same, non-critical, is ignored.
    let mut exts = wallet_extensions(POLICY, WalletProfile::Personal, &[1; 20]);
    exts.push(x509::encode_extension(
        &[0x55, 0x1d, 0x1e],
        false,
        &[0x30, 0x00],
    ));
    build_certificate(&p.issuer_key, template(exts)).unwrap();
    // Duplicate extensions are refused.
    let mut exts = wallet_extensions(POLICY, WalletProfile::Personal, &[1; 20]);
    exts.push(x509::encode_policy_ref(POLICY));
    assert!(matches!(
        build_certificate(&p.issuer_key, template(exts)),
        Err(PkiError::Malformed(_))
    ));
}

#[test]
fn unsupported_algorithms_are_refused() {
    let p = pki(Suite::Ed25519, Suite::Ed25519, Suite::Ed25519);
    // Replace the Ed25519 OID (2B 65 70) by Ed448 (2B 65 71) everywhere.
    let d: Vec<u8> = p.wallet.der().to_vec();
    let mut m = d.clone();
    for i in 0..m.len() - 2 {
        if m[i..i + 3] == [0x2b, 0x65, 0x70] {
            m[i + 2] = 0x71;
        }
    }
    assert_eq!(
        Certificate::from_der(&m),
        Err(PkiError::UnsupportedAlgorithm)
    );
    // A weak (small-order) Ed25519 key.
    let pk = p.wallet.public_key().to_bytes();
    let at = d.windows(32).position(|w| w == pk.as_slice()).unwrap();
    let mut m = d.clone();
    m[at..at + 32].copy_from_slice(&[0u8; 32]);
    assert_eq!(Certificate::from_der(&m), Err(PkiError::InvalidPublicKey));
}

// ---- cross-check with an independent parser ---------------------------------

#[test]
fn x509_cert_crate_parses_what_it_can() {
    use der::{Decode, Encode};
    for (rs, is, ws) in COMBOS {
        let p = pki(rs, is, ws);
        for c in [&p.root, &p.issuer] {
            let x = x509_cert::Certificate::from_der(c.der()).unwrap();
            assert_eq!(x.to_der().unwrap(), c.der());
            assert_eq!(
                x.tbs_certificate().serial_number().as_bytes(),
                &c.serial().to_be_bytes()[7..]
            );
        }
        let c = crl(
            &p,
            &[RevokedEntry {
                serial: 9,
                revoked_at: ago(1),
                reason: RevocationReason::Superseded,
            }],
        );
        let x =
            x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(c.der())
                .unwrap();
        assert_eq!(x.to_der().unwrap(), c.der());
        let csr = build_csr(&p.wallet_key, p.wallet_id).unwrap();
        let x = x509_cert::request::CertReq::from_der(&csr).unwrap();
        assert_eq!(x.to_der().unwrap(), csr);
        // const-oid 0.10 refuses arcs over 32 bits, hence offpay's own reader.
        let w = x509_cert::Certificate::from_der(p.wallet.der());
        if rs == Suite::Ed25519 && is == Suite::Ed25519 {
            eprintln!("x509-cert on a wallet certificate: {:?}", w.as_ref().err());
        }
    }
}

#[test]
fn public_key_round_trip_through_spki() {
    for suite in Suite::ALL {
        let pk: PublicKey = key(suite, 50).public_key();
        let spki = x509::encode_spki(&pk);
        let body = super::asn1::single(&spki, 0x30, "t").unwrap();
        assert_eq!(x509::parse_spki(body), Ok(pk.clone()));
        let x = <spki::SubjectPublicKeyInfoRef<'_> as der::Decode>::from_der(&spki).unwrap();
        assert_eq!(x.subject_public_key.raw_bytes(), pk.to_bytes().as_slice());
    }
}

/// The TA's fast path (issuer and CRL verified at installation) refuses what
/// the full validation refuses about the leaf: time, revocation, a leaf of
/// another issuer CA, a forged signature.
#[test]
fn leaf_validation_agrees_with_the_full_chain_on_the_leaf() {
    for (rs, is, ws) in COMBOS {
        let p = pki(rs, is, ws);
        let both = |leaf: &Certificate, now, crl: Option<&Crl>| {
            let full = validate_wallet_chain(&p.root, &p.issuer, leaf, now, crl);
            let fast = validate_wallet_leaf(&p.root, &p.issuer, leaf, now, crl);
            assert_eq!(full, fast, "at {now:?}");
            fast
        };
        assert_eq!(both(&p.wallet, NOW, None), Ok(p.wallet_id));
        assert_eq!(
            both(&p.wallet, ahead(30).plus(1), None),
            Err(PkiError::Expired)
        );
        assert_eq!(both(&p.wallet, ago(400), None), Err(PkiError::NotYetValid));
        assert_eq!(both(&p.wallet, ahead(5000), None), Err(PkiError::Expired));
        let serial = p.wallet.serial();
        let revoked = crl(
            &p,
            &[RevokedEntry {
                serial,
                revoked_at: ago(1),
                reason: RevocationReason::KeyCompromise,
            }],
        );
        assert_eq!(
            both(&p.wallet, NOW, Some(&revoked)),
            Err(PkiError::Revoked { serial })
        );
        // A leaf certified by another issuer CA of the same root.
        let k2 = key(is, 23);
        let issuer2 = issue_issuer_ca(
            &p.root_key,
            &p.root,
            &k2.public_key(),
            "Bank B",
            4,
            ago(1),
            ahead(1),
        )
        .unwrap();
        let p2 = Pki {
            issuer: issuer2,
            issuer_key: k2,
            ..pki(rs, is, ws)
        };
        let foreign = wallet_cert(&p2, 9, 79, ago(1), ahead(1));
        assert!(both(&foreign, NOW, None).is_err());
        // A flipped leaf signature.
        let mut der = p.wallet.der().to_vec();
        *der.last_mut().unwrap() ^= 1;
        if let Ok(forged) = Certificate::from_der(&der) {
            assert!(both(&forged, NOW, None).is_err());
        }
    }
}

#[test]
fn wallet_profile_is_named_by_the_certificate() {
    let p = pki(Suite::Ed25519, Suite::Ed25519, Suite::Ed25519);
    // Absent: a personal wallet (every certificate issued before the extension).
    assert_eq!(p.wallet.wallet_profile(), WalletProfile::Personal);
    let issue = |profile| {
        issue_wallet_certificate(
            &p.issuer_key,
            &p.issuer,
            &WalletCertificate {
                wallet_public: &p.wallet_key.public_key(),
                wallet_id: p.wallet_id,
                policy: POLICY,
                profile,
                serial: 0x0123_4567_89ab_cdef,
                not_before: ago(1),
                not_after: ahead(30),
            },
        )
        .unwrap()
    };
    // Personal writes no extension: byte for byte the certificate of issue_wallet.
    assert_eq!(issue(WalletProfile::Personal).der(), p.wallet.der());
    let terminal = issue(WalletProfile::Terminal);
    assert_eq!(terminal.wallet_profile(), WalletProfile::Terminal);
    // OID (2 + 21) + ENUMERATED (3) inside the extension's SEQUENCE and
    // OCTET STRING (4), and one more length byte for the extension list (now
    // over 127 bytes): 31 bytes, about 362 in all for Ed25519.
    assert_eq!(terminal.der().len(), p.wallet.der().len() + 31);
    assert_eq!(
        validate_wallet_chain(&p.root, &p.issuer, &terminal, NOW, None),
        Ok(p.wallet_id)
    );
    // Round trip through DER and PEM keeps it.
    let again = Certificate::from_pem(&terminal.to_pem()).unwrap();
    assert_eq!(again.wallet_profile(), WalletProfile::Terminal);

    // Only ENUMERATED 1 is a profile: an explicit personal (0), another
    // value, another type or trailing bytes are refused.
    for value in [
        vec![0x0a, 1, 0],
        vec![0x0a, 1, 2],
        vec![0x02, 1, 1],
        vec![0x0a, 1, 1, 0],
        vec![0x0a, 2, 0, 1],
    ] {
        let mut exts = wallet_extensions(POLICY, WalletProfile::Personal, &[1; 20]);
        exts.push(x509::encode_extension(
            OFFPAY_WALLET_PROFILE_OID_DER,
            false,
            &value,
        ));
        let t = CertTemplate {
            serial: 9,
            issuer_name: &p.issuer.subject_name,
            subject_cn: &p.wallet_id.to_hex(),
            not_before: ago(1),
            not_after: ahead(1),
            subject_key: p.wallet.public_key(),
            extensions: exts,
        };
        assert_eq!(
            build_certificate(&p.issuer_key, t),
            Err(PkiError::Malformed("offpay wallet profile")),
            "{value:02x?}"
        );
    }
    // Twice: refused like any duplicate extension.
    let mut exts = wallet_extensions(POLICY, WalletProfile::Terminal, &[1; 20]);
    exts.extend(x509::encode_wallet_profile(WalletProfile::Terminal));
    let t = CertTemplate {
        serial: 9,
        issuer_name: &p.issuer.subject_name,
        subject_cn: &p.wallet_id.to_hex(),
        not_before: ago(1),
        not_after: ahead(1),
        subject_key: p.wallet.public_key(),
        extensions: exts,
    };
    assert_eq!(
        build_certificate(&p.issuer_key, t),
        Err(PkiError::Malformed("duplicate extension"))
    );
    assert_eq!(
        WalletProfile::from_code(WalletProfile::Terminal.code()),
        Some(WalletProfile::Terminal)
    );
    assert_eq!(WalletProfile::from_code("Terminal"), None);
}

#[test]
fn wallet_profile_oid_der_matches_its_dotted_form() {
    let arc: u128 = 210_676_877_857_255_837_455_590_850_053_590_274_578;
    let mut base128 = Vec::new();
    let mut n = arc;
    base128.push((n & 0x7f) as u8);
    n >>= 7;
    while n > 0 {
        base128.push(0x80 | (n & 0x7f) as u8);
        n >>= 7;
    }
    base128.reverse();
    let mut der = vec![0x69];
    der.extend(base128);
    der.push(2);
    assert_eq!(der, OFFPAY_WALLET_PROFILE_OID_DER);
    assert!(OFFPAY_WALLET_PROFILE_OID.ends_with(".2"));
    assert_eq!(
        OFFPAY_WALLET_PROFILE_OID[..OFFPAY_OID_ARC.len()],
        *OFFPAY_OID_ARC
    );
}

// ---- delta CRLs --------------------------------------------------------------

fn revoked(serial: u64, days_ago: u64) -> RevokedEntry {
    RevokedEntry {
        serial,
        revoked_at: ago(days_ago),
        reason: RevocationReason::KeyCompromise,
    }
}

fn delta(p: &Pki, number: u64, base: u64, add: &[RevokedEntry], remove: &[u64]) -> DeltaCrl {
    issue_delta_crl(
        &p.issuer_key,
        &p.issuer,
        number,
        base,
        ago(0),
        ahead(1),
        CrlChanges {
            revoked: add,
            removed: remove,
        },
    )
    .unwrap()
}

/// A delta CRL carries the critical deltaCRLIndicator (its base) and
/// removeFromCRL entries; it is never taken for a complete CRL, nor a
/// complete CRL for a delta; bad arguments are refused.
#[test]
fn delta_crl_round_trip_and_refusals() {
    for suite in Suite::ALL {
        let p = pki(suite, suite, suite);
        let d = delta(&p, 9, 7, &[revoked(40, 1), revoked(3, 2)], &[17, 5]);
        assert_eq!((d.number(), d.base_number()), (9, 7));
        assert_eq!(
            d.revoked().iter().map(|e| e.serial).collect::<Vec<_>>(),
            [3, 40]
        );
        assert_eq!(d.removed(), [5, 17]);
        assert_eq!(d.issuer_id(), p.issuer.subject_issuer_id());
        d.verify_signed_by(&p.issuer).unwrap();
        assert_eq!(d.verify_signed_by(&p.root), Err(PkiError::CrlWrongIssuer));
        assert_eq!(DeltaCrl::from_der(d.der()).unwrap(), d);
        // deltaCRLIndicator 2.5.29.27, critical, base 7; removeFromCRL (8) twice.
        let indicator = [
            0x06, 0x03, 0x55, 0x1d, 0x1b, 0x01, 0x01, 0xff, 0x04, 0x03, 0x02, 0x01, 0x07,
        ];
        assert_eq!(d.der().windows(13).filter(|w| *w == indicator).count(), 1);
        let remove = [0x04, 0x03, 0x0a, 0x01, 0x08];
        assert_eq!(d.der().windows(5).filter(|w| *w == remove).count(), 2);

        assert_eq!(Crl::from_der(d.der()), Err(PkiError::CrlIsDelta));
        let full = crl(&p, &[revoked(3, 2)]);
        assert_eq!(DeltaCrl::from_der(full.der()), Err(PkiError::CrlNotDelta));

        let issue = |number, base, add: &[RevokedEntry], remove: &[u64]| {
            issue_delta_crl(
                &p.issuer_key,
                &p.issuer,
                number,
                base,
                NOW,
                NOW,
                CrlChanges {
                    revoked: add,
                    removed: remove,
                },
            )
        };
        assert!(matches!(
            issue(7, 7, &[], &[]),
            Err(PkiError::InvalidArgument(_))
        ));
        assert!(matches!(
            issue(6, 7, &[], &[]),
            Err(PkiError::InvalidArgument(_))
        ));
        assert!(matches!(
            issue(8, 7, &[revoked(5, 1)], &[5]),
            Err(PkiError::InvalidArgument("serial listed twice"))
        ));
        assert!(matches!(
            issue(8, 7, &[], &[0]),
            Err(PkiError::InvalidArgument(_))
        ));
        // An empty delta (nothing changed but the number) is a valid delta.
        let empty = issue(8, 7, &[], &[]).unwrap();
        assert!(empty.revoked().is_empty() && empty.removed().is_empty());
    }
}

/// Every truncation, bit flip and splice of a delta CRL is refused (or, for
/// the bytes the signature covers, fails its signature check).
#[test]
fn malformed_delta_crls_are_refused() {
    let p = pki(Suite::Ed25519, Suite::Ed25519, Suite::Ed25519);
    let d = delta(&p, 3, 2, &[revoked(9, 1)], &[4]);
    check_corpus(d.der(), |b| {
        DeltaCrl::from_der(b)?.verify_signed_by(&p.issuer)
    });
}

/// A CRL state applies deltas in sequence; a delta on another number,
/// of another issuer or past the bound is refused and changes nothing;
/// the state can be rebuilt and verified from its signed parts.
#[test]
fn crl_state_applies_deltas_in_sequence() {
    let p = pki(Suite::Ed25519, Suite::P256, Suite::Ed25519);
    let base = issue_crl(
        &p.issuer_key,
        &p.issuer,
        5,
        ago(1),
        ahead(1),
        &[revoked(10, 3), revoked(20, 3)],
    )
    .unwrap();
    let mut s = CrlState::new(base.clone());
    assert_eq!(s.number(), 5);
    let d6 = delta(&p, 6, 5, &[revoked(30, 1)], &[10]);
    s.apply(d6.clone()).unwrap();
    assert_eq!(s.number(), 6);
    assert!(s.is_revoked(10).is_none());
    assert!(s.is_revoked(20).is_some() && s.is_revoked(30).is_some());
    // A delta on 5 again (not the number held) is refused.
    let again = delta(&p, 7, 5, &[revoked(40, 0)], &[]);
    let before = s.clone();
    assert_eq!(
        s.apply(again),
        Err(PkiError::CrlDeltaBaseMismatch { held: 6, base: 5 })
    );
    assert_eq!(s, before);
    // Another issuer's delta (its issuer Name differs) is refused.
    let k2 = key(Suite::Ed25519, 21);
    let issuer2 = issue_issuer_ca(
        &p.root_key,
        &p.root,
        &k2.public_key(),
        "Bank B",
        6,
        ago(1),
        ahead(1),
    )
    .unwrap();
    let foreign = issue_delta_crl(
        &k2,
        &issuer2,
        7,
        6,
        NOW,
        NOW,
        CrlChanges {
            revoked: &[revoked(40, 0)],
            removed: &[],
        },
    )
    .unwrap();
    assert_eq!(s.apply(foreign), Err(PkiError::CrlWrongIssuer));
    assert_eq!(s, before);
    // The next one applies; a re-revoked serial is listed once.
    let d7 = delta(&p, 9, 6, &[revoked(10, 0), revoked(20, 0)], &[30]);
    s.apply(d7.clone()).unwrap();
    assert_eq!(
        s.entries().iter().map(|e| e.serial).collect::<Vec<_>>(),
        [10, 20]
    );
    assert_eq!(s.is_revoked(20).unwrap().revoked_at, ago(0));
    // Rebuilt from its parts, verified against the issuer CA.
    let rebuilt =
        CrlState::from_parts(base.clone(), vec![d6.clone(), d7.clone()], &p.issuer).unwrap();
    assert_eq!(rebuilt, s);
    assert_eq!(
        CrlState::from_parts(base.clone(), vec![d7.clone()], &p.issuer),
        Err(PkiError::CrlDeltaBaseMismatch { held: 5, base: 6 })
    );
    let mut der = d6.der().to_vec();
    *der.last_mut().unwrap() ^= 1;
    let forged = DeltaCrl::from_der(&der).unwrap();
    assert_eq!(
        CrlState::from_parts(base.clone(), vec![forged], &p.issuer),
        Err(PkiError::CrlBadSignature)
    );
    // At most CRL_DELTAS_HELD_MAX deltas.
    let mut s = CrlState::new(base);
    for n in 0..CRL_DELTAS_HELD_MAX as u64 {
        assert!(s.accepts_deltas());
        s.apply(delta(&p, 6 + n, 5 + n, &[revoked(100 + n, 0)], &[]))
            .unwrap();
    }
    assert!(!s.accepts_deltas());
    let n = 5 + CRL_DELTAS_HELD_MAX as u64;
    assert_eq!(
        s.apply(delta(&p, n + 1, n, &[], &[])),
        Err(PkiError::CrlDeltasFull)
    );
    assert_eq!(s.entries().len(), 2 + CRL_DELTAS_HELD_MAX);
}

/// The scheme trust checks a delta against the admitted CA: a forged one
/// (bad signature) or one with no CRL held is refused; an applied delta
/// revokes and un-lists wallets for the payee's check; a complete CRL of
/// the number reached replaces the deltas.
#[test]
fn scheme_trust_applies_verified_deltas() {
    let p = pki(Suite::Ed25519, Suite::Ed25519, Suite::Ed25519);
    let mut t = SchemeTrust::new(p.root.clone());
    let id = t.add_issuer(p.issuer.clone()).unwrap();
    let serial = p.wallet.serial();
    let d = delta(&p, 2, 1, &[revoked(serial, 0)], &[]);
    assert_eq!(
        t.apply_crl_delta(d.clone()),
        Err(PkiError::CrlDeltaBaseMismatch { held: 0, base: 1 })
    );
    let base = issue_crl(&p.issuer_key, &p.issuer, 1, ago(1), ahead(1), &[]).unwrap();
    assert!(t.set_crl(base).unwrap());
    assert!(t.validate_wallet(&p.wallet, NOW).is_ok());
    let mut der = d.der().to_vec();
    *der.last_mut().unwrap() ^= 1;
    assert_eq!(
        t.apply_crl_delta(DeltaCrl::from_der(&der).unwrap()),
        Err(PkiError::CrlBadSignature)
    );
    assert!(t.validate_wallet(&p.wallet, NOW).is_ok());
    t.apply_crl_delta(d).unwrap();
    assert_eq!(t.crl_state(&id).unwrap().number(), 2);
    assert_eq!(
        t.validate_wallet(&p.wallet, NOW),
        Err(PkiError::Revoked { serial })
    );
    t.apply_crl_delta(delta(&p, 3, 2, &[], &[serial])).unwrap();
    assert!(t.validate_wallet(&p.wallet, NOW).is_ok());
    // A complete CRL 3 replaces the base and its deltas; an older one is ignored.
    let full3 = issue_crl(&p.issuer_key, &p.issuer, 3, NOW, ahead(1), &[]).unwrap();
    assert!(t.set_crl(full3.clone()).unwrap());
    assert!(t.crl_state(&id).unwrap().deltas().is_empty());
    assert!(!t.set_crl(full3).unwrap());
    let old = issue_crl(&p.issuer_key, &p.issuer, 2, NOW, ahead(1), &[]).unwrap();
    assert!(!t.set_crl(old).unwrap());
}
