//! Interoperability: OpenSSL reads, prints and verifies offpay's certificates,
//! CRLs and certification requests, and offpay reads OpenSSL's.
//!
//! Needs the `openssl` command on PATH (CI installs it); the test fails, not
//! skips, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use offpay_protocol::pki::{
    self, Certificate, Crl, PolicyRef, RevocationReason, RevokedEntry, issue_crl, issue_issuer_ca,
    issue_root, issue_wallet, validate_wallet_chain,
};
use offpay_protocol::{SigningKey, Suite, UnixSeconds, WalletId};

const DAY: u64 = 86_400;

/// A scratch directory, removed unless the test failed (then kept for inspection).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "offpay-pki-openssl-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn require_openssl() {
    match Command::new("openssl").arg("version").output() {
        Ok(o) if o.status.success() => {
            eprintln!("using {}", String::from_utf8_lossy(&o.stdout).trim());
        }
        _ => panic!(
            "the `openssl` command is required for this test but was not found on PATH: \
             install OpenSSL 3 (e.g. `apt-get install openssl`); CI installs it"
        ),
    }
}

/// Run openssl in `dir`; (exit success, stdout + stderr).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.success(), text)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (success, out) = openssl(dir, args);
    assert!(success, "openssl {} failed:\n{out}", args.join(" "));
    out
}

fn now() -> UnixSeconds {
    UnixSeconds(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

#[expect(clippy::too_many_lines)] // lint-exception: one scenario told end to end
fn scenario(root_suite: Suite, issuer_suite: Suite, wallet_suite: Suite) {
    let name = format!("{root_suite}-{issuer_suite}-{wallet_suite}");
    eprintln!("--- scenario {name}");
    let s = Scratch::new(&name);
    let dir = s.0.as_path();
    let now = now();
    let (nb, na) = (UnixSeconds(now.0 - DAY), now.plus(30 * DAY));

    let root_key = SigningKey::generate(root_suite).unwrap();
    let root = issue_root(
        &root_key,
        "offpay test root",
        1,
        UnixSeconds(now.0 - 2 * DAY),
        now.plus(3650 * DAY),
    )
    .unwrap();
    let issuer_key = SigningKey::generate(issuer_suite).unwrap();
    let issuer = issue_issuer_ca(
        &root_key,
        &root,
        &issuer_key.public_key(),
        "offpay test bank",
        2,
        nb,
        now.plus(365 * DAY),
    )
    .unwrap();
    let policy = PolicyRef { id: 3, epoch: 9 };
    let wallet_key = SigningKey::generate(wallet_suite).unwrap();
    let wallet_id = WalletId([0x5a; 16]);
    let wallet = issue_wallet(
        &issuer_key,
        &issuer,
        &wallet_key.public_key(),
        wallet_id,
        policy,
        1000,
        nb,
        na,
    )
    .unwrap();
    let revoked_key = SigningKey::generate(wallet_suite).unwrap();
    let revoked = issue_wallet(
        &issuer_key,
        &issuer,
        &revoked_key.public_key(),
        WalletId([0xc3; 16]),
        policy,
        1001,
        nb,
        na,
    )
    .unwrap();
    let crl = issue_crl(
        &issuer_key,
        &issuer,
        7,
        UnixSeconds(now.0 - 3600),
        now.plus(7 * DAY),
        &[RevokedEntry {
            serial: 1001,
            revoked_at: UnixSeconds(now.0 - 3600),
            reason: RevocationReason::KeyCompromise,
        }],
    )
    .unwrap();
    eprintln!(
        "sizes: root {} B, issuer CA {} B, wallet {} B, CRL {} B",
        root.der().len(),
        issuer.der().len(),
        wallet.der().len(),
        crl.der().len()
    );

    // offpay's own view agrees with what OpenSSL is about to say.
    assert_eq!(
        validate_wallet_chain(&root, &issuer, &wallet, now, Some(&crl)),
        Ok(wallet_id)
    );
    assert_eq!(
        validate_wallet_chain(&root, &issuer, &revoked, now, Some(&crl)),
        Err(pki::PkiError::Revoked { serial: 1001 })
    );

    s.write("root.pem", root.to_pem());
    s.write("issuer.pem", issuer.to_pem());
    s.write("wallet.pem", wallet.to_pem());
    s.write("revoked.pem", revoked.to_pem());
    s.write("crl.pem", crl.to_pem());
    s.write("wallet.der", wallet.der());

    // Printing.
    let sig_name = |suite| match suite {
        Suite::Ed25519 => "ED25519",
        Suite::P256 => "ecdsa-with-SHA256",
        // OpenSSL 3.0 has no ML-DSA; scenarios here use the classical suites.
        Suite::MlDsa44 => "ML-DSA-44",
    };
    let text = ok(dir, &["x509", "-noout", "-text", "-in", "root.pem"]);
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(text.contains(sig_name(root_suite)), "{text}");
    let text = ok(dir, &["x509", "-noout", "-text", "-in", "issuer.pem"]);
    assert!(text.contains("pathlen:0"), "{text}");
    assert!(text.contains("Authority Key Identifier"), "{text}");
    let text = ok(dir, &["x509", "-noout", "-text", "-in", "wallet.pem"]);
    eprintln!("{text}");
    assert!(
        text.contains(&format!("CN = {}", wallet_id.to_hex())),
        "{text}"
    );
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains(pki::OFFPAY_POLICY_REF_OID), "{text}");
    assert!(text.contains(sig_name(issuer_suite)), "{text}");
    let text = ok(
        dir,
        &[
            "x509",
            "-noout",
            "-serial",
            "-inform",
            "DER",
            "-in",
            "wallet.der",
        ],
    );
    assert!(text.contains("serial=03E8"), "{text}");
    let text = ok(dir, &["crl", "-noout", "-text", "-in", "crl.pem"]);
    eprintln!("{text}");
    assert!(text.contains("X509v3 CRL Number"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("03E9"), "{text}");
    // The CRL's signature, checked by OpenSSL.
    let text = ok(
        dir,
        &["crl", "-noout", "-in", "crl.pem", "-CAfile", "issuer.pem"],
    );
    assert!(text.contains("verify OK"), "{text}");

    // A delta CRL on it (RFC 5280 5.2.4): the wallet revoked since, 1001
    // removed; OpenSSL reads both extensions and checks its signature.
    let delta = pki::issue_delta_crl(
        &issuer_key,
        &issuer,
        8,
        7,
        UnixSeconds(now.0 - 60),
        now.plus(7 * DAY),
        pki::CrlChanges {
            revoked: &[RevokedEntry {
                serial: 1000,
                revoked_at: UnixSeconds(now.0 - 60),
                reason: RevocationReason::Superseded,
            }],
            removed: &[1001],
        },
    )
    .unwrap();
    s.write("delta.pem", delta.to_pem());
    let text = ok(dir, &["crl", "-noout", "-text", "-in", "delta.pem"]);
    assert!(
        text.contains("X509v3 Delta CRL Indicator: critical"),
        "{text}"
    );
    assert!(text.contains("Remove From CRL"), "{text}");
    assert!(text.contains("Superseded"), "{text}");
    let text = ok(
        dir,
        &["crl", "-noout", "-in", "delta.pem", "-CAfile", "issuer.pem"],
    );
    assert!(text.contains("verify OK"), "{text}");

    // Chain verification with revocation checking.
    let verify = |leaf: &str, extra: &[&str]| {
        let mut args = vec![
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "issuer.pem",
            "-crl_check",
            "-CRLfile",
            "crl.pem",
        ];
        args.extend_from_slice(extra);
        args.push(leaf);
        openssl(dir, &args)
    };
    let (success, out) = verify("wallet.pem", &[]);
    assert!(success && out.contains("wallet.pem: OK"), "{out}");
    let (success, out) = verify("revoked.pem", &[]);
    assert!(!success && out.contains("certificate revoked"), "{out}");
    // Also under OpenSSL's strict RFC 5280 checks.
    let (success, out) = verify("wallet.pem", &["-x509_strict"]);
    assert!(
        success && out.contains("wallet.pem: OK"),
        "x509_strict: {out}"
    );
    let (success, out) = verify("revoked.pem", &["-x509_strict"]);
    assert!(!success && out.contains("certificate revoked"), "{out}");

    // The enrollment request: OpenSSL checks its self-signature.
    s.write(
        "wallet.csr",
        pki::build_csr(&wallet_key, wallet_id).unwrap(),
    );
    let text = ok(
        dir,
        &[
            "req",
            "-verify",
            "-noout",
            "-text",
            "-inform",
            "DER",
            "-in",
            "wallet.csr",
        ],
    );
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains(&wallet_id.to_hex()), "{text}");
}

#[test]
fn openssl_accepts_offpay_pki_ed25519() {
    require_openssl();
    scenario(Suite::Ed25519, Suite::Ed25519, Suite::Ed25519);
}

#[test]
fn openssl_accepts_offpay_pki_p256() {
    require_openssl();
    scenario(Suite::P256, Suite::P256, Suite::P256);
}

#[test]
fn openssl_accepts_offpay_pki_mixed() {
    require_openssl();
    scenario(Suite::P256, Suite::P256, Suite::Ed25519);
    scenario(Suite::Ed25519, Suite::P256, Suite::Ed25519);
}

/// offpay reads what OpenSSL makes: a CA certificate from an existing
/// OpenSSL CA (with a 64-bit serial) and a wallet's certification request.
#[test]
fn offpay_reads_openssl_objects() {
    require_openssl();
    for (alg, suite) in [("ed25519", Suite::Ed25519), ("p256", Suite::P256)] {
        let s = Scratch::new(&format!("reverse-{alg}"));
        let dir = s.0.as_path();
        let genkey: &[&str] = match suite {
            Suite::Ed25519 => &["genpkey", "-algorithm", "ED25519", "-out", "k.pem"],
            Suite::MlDsa44 => &["genpkey", "-algorithm", "ML-DSA-44", "-out", "k.pem"],
            Suite::P256 => &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-pkeyopt",
                "ec_param_enc:named_curve",
                "-out",
                "k.pem",
            ],
        };
        ok(dir, genkey);
        let mut root_args = vec![
            "req",
            "-x509",
            "-new",
            "-key",
            "k.pem",
            "-subj",
            "/CN=Existing Root",
            "-days",
            "30",
            "-set_serial",
            "4660",
            "-out",
            "root.pem",
        ];
        if suite == Suite::P256 {
            root_args.extend(["-sha256"]);
        }
        ok(dir, &root_args);
        let root_pem = std::fs::read_to_string(dir.join("root.pem")).unwrap();
        let root = Certificate::from_pem(&root_pem).unwrap();
        assert!(root.is_ca());
        assert_eq!(root.serial(), 4660);
        assert_eq!(root.subject_cn(), "Existing Root");
        assert_eq!(root.suite(), suite);
        root.verify_signed_by(&root).unwrap();

        // OpenSSL's default 20-byte random serial is refused (serials are u64 here).
        ok(
            dir,
            &[
                "req", "-x509", "-new", "-key", "k.pem", "-subj", "/CN=R", "-out", "long.pem",
            ],
        );
        let long = std::fs::read_to_string(dir.join("long.pem")).unwrap();
        assert!(matches!(
            Certificate::from_pem(&long),
            Err(pki::PkiError::Malformed(_))
        ));

        let id = WalletId([0x11; 16]);
        let subj = format!("/CN={}", id.to_hex());
        let mut req_args = vec![
            "req", "-new", "-key", "k.pem", "-subj", &subj, "-outform", "DER", "-out", "r.der",
        ];
        if suite == Suite::P256 {
            req_args.push("-sha256");
        }
        ok(dir, &req_args);
        let csr = pki::parse_csr(&std::fs::read(dir.join("r.der")).unwrap()).unwrap();
        assert_eq!(csr.wallet_id, id);
        assert_eq!(csr.public_key, *root.public_key());

        // An OpenSSL CRL from that root parses and verifies too.
        s.write("index.txt", "");
        s.write("crlnumber", "0A\n");
        let md = if suite == Suite::P256 {
            "sha256"
        } else {
            "default"
        };
        s.write(
            "ca.cnf",
            format!(
                "[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
                 default_md = {md}\ndefault_crl_days = 7\ncrl_extensions = e\n\
                 [e]\nauthorityKeyIdentifier = keyid\n"
            ),
        );
        ok(
            dir,
            &[
                "ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "k.pem", "-cert", "root.pem",
                "-out", "crl.pem",
            ],
        );
        let crl = Crl::from_pem(&std::fs::read_to_string(dir.join("crl.pem")).unwrap()).unwrap();
        crl.verify_signed_by(&root).unwrap();
        assert_eq!(crl.number(), 10);
        assert!(crl.entries().is_empty());
    }
}
