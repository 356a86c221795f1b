//! Test vectors: every message of docs/PROTOCOL.md's appendix, rebuilt here
//! from the same fixed inputs, must equal the hex in the document byte for
//! byte, so the documentation cannot drift from the code.
//!
//! The document carries each vector in a fenced block:
//!
//! ````text
//! ```hex name=payment-ed25519
//! d28443a10127a0...
//! ```
//! ````
//!
//! (whitespace inside the block is ignored). Every vector the code builds must
//! be in the document, and every vector in the document must be built here.
//!
//! Regenerate the appendix after a deliberate change of the wire format:
//! `OFFPAY_PRINT_VECTORS=1 cargo test -p offpay-protocol --test vectors -- --nocapture print_vectors`
//! prints the vector blocks and the size table to paste into the document.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::collections::BTreeMap;

use offpay_protocol::cbor::Encoder;
use offpay_protocol::envelope::{Signed, sig_structure};
use offpay_protocol::evidence::verify_double_spend;
use offpay_protocol::messages::{
    CertField, ChainEntry, Checkpoint, Directory, DirectoryEntry, DoubleSpendProof, LoadVoucher,
    Payment, PaymentRequest, PinLockedRequest, PinUnlock, PinUnlockGrant, Receipt, Redeem,
    RiskPolicy, SettlementStatement, StatementLine, SyncReport, SyncResponse, WalletCommand,
    statement_digest,
};
use offpay_protocol::pki::{
    self, Certificate, Crl, PolicyRef, RevocationReason, RevokedEntry, validate_wallet_chain,
};
use offpay_protocol::{
    Currency, Hash32, IssuerId, IssuerStatus, Nonce, PublicKey, SigningKey, Suite, UnixSeconds,
    WalletId,
};

// ---- the fixed inputs (listed in docs/PROTOCOL.md, appendix A) ----------------

use offpay_test_support::{default_policy, eur};

const DAY: u64 = 86_400;
/// 2026-11-18T11:06:40Z.
const T0: u64 = 1_795_000_000;
const SEED_ROOT: [u8; 32] = [0x01; 32];
const SEED_ISSUER: [u8; 32] = [0x02; 32];
const SEED_PAYER: [u8; 32] = [0x03; 32];
const SEED_PAYEE: [u8; 32] = [0x04; 32];
/// Wallet serials: fixed width (2^62 + n), so every wallet certificate of a
/// suite has the same size.
const SERIAL_PAYER: u64 = (1 << 62) + 1;
const SERIAL_PAYEE: u64 = (1 << 62) + 2;
const SERIAL_PAYER_RENEWED: u64 = (1 << 62) + 3;
const SERIAL_REVOKED: u64 = (1 << 62) + 0x99;
/// The QR code the offline channel uses: version 20, error correction M,
/// byte mode: 666 bytes.
const QR_V20_M_BYTES: usize = 666;
/// Byte-mode capacity of QR code versions 1 to 20 at error correction level M
/// (ISO/IEC 18004 table 7).
const QR_M_BYTES: [usize; 20] = [
    14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624, 666,
];

fn seq16(first: u8) -> [u8; 16] {
    core::array::from_fn(|i| first + i as u8)
}
fn payer_id() -> WalletId {
    WalletId(seq16(0x10))
}
fn payee_id() -> WalletId {
    WalletId(seq16(0x20))
}
fn other_payee_id() -> WalletId {
    WalletId(seq16(0x50))
}
fn nonce() -> Nonce {
    Nonce(seq16(0x30))
}
fn other_nonce() -> Nonce {
    Nonce(seq16(0x60))
}
fn t(offset: u64) -> UnixSeconds {
    UnixSeconds(T0 + offset)
}

/// Everything one suite's vectors are made of.
struct Fixture {
    suite: Suite,
    root_key: SigningKey,
    issuer_key: SigningKey,
    payer_key: SigningKey,
    payee_key: SigningKey,
    root: Certificate,
    issuer: Certificate,
    payer_cert: Certificate,
    payee_cert: Certificate,
    payer_cert_renewed: Certificate,
    crl: Crl,
    request: Signed<PaymentRequest>,
    request_ref: Signed<PaymentRequest>,
    payment: Signed<Payment>,
    payment_ref: Signed<Payment>,
    payment_conflict: Signed<Payment>,
    receipt: Signed<Receipt>,
    voucher: Signed<LoadVoucher>,
    voucher2: Signed<LoadVoucher>,
    redeem: Signed<Redeem>,
    policy: Signed<RiskPolicy>,
    report: Signed<SyncReport>,
    response: Signed<SyncResponse>,
    proof: DoubleSpendProof,
    scheme: SchemeFixture,
}

/// Seeds of the scheme vectors' two member issuer CAs.
const SEED_BANK_B: [u8; 32] = [0x66; 32];
const SEED_BANK_C: [u8; 32] = [0x77; 32];

/// The scheme of many issuers (docs/PROTOCOL.md 7.13, 7.14): two member
/// issuers "bank-b" (serial 3, active since version 2, with an empty CRL)
/// and "bank-c" (serial 4, suspended at version 3 by the root-signed issuer
/// CRL), the directory at version 3, and bank-b's statement of cycle 7.
struct SchemeFixture {
    bank_b: Certificate,
    bank_c: Certificate,
    issuer_crl: Crl,
    directory: Directory,
    signed_directory: Signed<Directory>,
    statement: Signed<SettlementStatement>,
    ca_csr: Vec<u8>,
}

fn scheme_fixture(suite: Suite, root_key: &SigningKey, root: &Certificate) -> SchemeFixture {
    let key_b = SigningKey::from_seed(suite, &SEED_BANK_B).unwrap();
    let key_c = SigningKey::from_seed(suite, &SEED_BANK_C).unwrap();
    let ca_csr = pki::build_ca_csr(&key_b, "bank-b").unwrap();
    let ca = |key: &SigningKey, code: &str, serial: u64| {
        pki::issue_issuer_ca(
            root_key,
            root,
            &key.public_key(),
            code,
            serial,
            UnixSeconds(T0 - DAY),
            t(1825 * DAY),
        )
        .unwrap()
    };
    let bank_b = ca(&key_b, "bank-b", 3);
    let bank_c = ca(&key_c, "bank-c", 4);
    let crl_b = pki::issue_crl(&key_b, &bank_b, 1, t(7000), t(7000 + DAY), &[]).unwrap();
    let issuer_crl = pki::issue_crl(
        root_key,
        root,
        2,
        t(7200),
        t(7200 + DAY),
        &[RevokedEntry {
            serial: 4,
            revoked_at: t(7200),
            reason: RevocationReason::CertificateHold,
        }],
    )
    .unwrap();
    let directory = Directory {
        version: 3,
        time: t(7200),
        currency: Currency::EUR,
        issuer_crl: issuer_crl.der().to_vec(),
        issuers: vec![
            DirectoryEntry {
                code: "bank-b".to_string(),
                status: IssuerStatus::Active,
                changed: 2,
                ca_cert: bank_b.der().to_vec(),
                crl: Some(crl_b.der().to_vec()),
            },
            DirectoryEntry {
                code: "bank-c".to_string(),
                status: IssuerStatus::Suspended,
                changed: 3,
                ca_cert: bank_c.der().to_vec(),
                crl: None,
            },
        ],
    };
    let signed_directory = Signed::sign(directory.clone(), root_key);
    let (b, c) = (bank_b.subject_issuer_id(), bank_c.subject_issuer_id());
    let mut ids = [Hash32([0x0b; 32]), Hash32([0x0a; 32])];
    let mut lines = vec![
        StatementLine {
            counterparty: c,
            receivable_minor: 1250,
            payable_minor: 0,
            claims: 1,
            digest: statement_digest(&mut [Hash32([0x0c; 32])]),
        },
        StatementLine {
            counterparty: IssuerId([0x01; 16]),
            receivable_minor: 300,
            payable_minor: 2000,
            claims: 2,
            digest: statement_digest(&mut ids),
        },
    ];
    lines.sort_by_key(|l| l.counterparty);
    let statement = Signed::sign(
        SettlementStatement {
            cycle: 7,
            issuer: b,
            time: t(7300),
            currency: Currency::EUR,
            lines,
        },
        root_key,
    );
    SchemeFixture {
        bank_b,
        bank_c,
        issuer_crl,
        directory,
        signed_directory,
        statement,
        ca_csr,
    }
}

#[expect(clippy::too_many_lines)] // lint-exception: one scenario told end to end
fn fixture(suite: Suite) -> Fixture {
    let key = |seed: &[u8; 32]| SigningKey::from_seed(suite, seed).unwrap();
    let (root_key, issuer_key) = (key(&SEED_ROOT), key(&SEED_ISSUER));
    let (payer_key, payee_key) = (key(&SEED_PAYER), key(&SEED_PAYEE));
    let root = pki::issue_root(
        &root_key,
        "offpay vector root",
        1,
        UnixSeconds(T0 - DAY),
        t(3650 * DAY),
    )
    .unwrap();
    let issuer = pki::issue_issuer_ca(
        &root_key,
        &root,
        &issuer_key.public_key(),
        "offpay vector issuer",
        2,
        UnixSeconds(T0 - DAY),
        t(1825 * DAY),
    )
    .unwrap();
    let wallet_cert = |pk: &PublicKey, id: WalletId, serial: u64, from: UnixSeconds| {
        pki::issue_wallet(
            &issuer_key,
            &issuer,
            pk,
            id,
            PolicyRef { id: 1, epoch: 1 },
            serial,
            from,
            from.plus(30 * DAY),
        )
        .unwrap()
    };
    let payer_cert = wallet_cert(&payer_key.public_key(), payer_id(), SERIAL_PAYER, t(0));
    let payee_cert = wallet_cert(&payee_key.public_key(), payee_id(), SERIAL_PAYEE, t(0));
    let payer_cert_renewed = wallet_cert(
        &payer_key.public_key(),
        payer_id(),
        SERIAL_PAYER_RENEWED,
        t(7400),
    );
    let crl = pki::issue_crl(
        &issuer_key,
        &issuer,
        1,
        t(7400),
        t(7400 + DAY),
        &[RevokedEntry {
            serial: SERIAL_REVOKED,
            revoked_at: t(7000),
            reason: RevocationReason::KeyCompromise,
        }],
    )
    .unwrap();

    let scheme = scheme_fixture(suite, &root_key, &root);

    let request_body = PaymentRequest {
        known_certs: Vec::new(),
        payee: payee_id(),
        amount: eur(1250),
        nonce: nonce(),
        created: t(3600),
        expires: t(3900),
        payee_cert: CertField::Inline(payee_cert.der().to_vec()),
    };
    let request = Signed::sign(request_body.clone(), &payee_key);
    let request_ref = Signed::sign(
        PaymentRequest {
            payee_cert: CertField::Reference(payee_cert.reference()),
            ..request_body
        },
        &payee_key,
    );
    let payment_body = Payment {
        payer: payer_id(),
        seq: 1,
        prev: Hash32::ZERO,
        payee: payee_id(),
        amount: eur(1250),
        nonce: nonce(),
        time: t(3610),
        payer_cert: CertField::Inline(payer_cert.der().to_vec()),
        payee_issuer: payee_cert.issuer_id(),
    };
    let payment = Signed::sign(payment_body.clone(), &payer_key);
    let payment_ref = Signed::sign(
        Payment {
            payer_cert: CertField::Reference(payer_cert.reference()),
            ..payment_body.clone()
        },
        &payer_key,
    );
    // A rolled-back payer spends seq 1 again, to someone else.
    let payment_conflict = Signed::sign(
        Payment {
            payee: other_payee_id(),
            amount: eur(990),
            nonce: other_nonce(),
            time: t(5000),
            payer_cert: CertField::Reference(payer_cert.reference()),
            ..payment_body
        },
        &payer_key,
    );
    let receipt = Signed::sign(
        Receipt {
            payment_id: payment.payload_hash(),
            payee: payee_id(),
            payer: payer_id(),
            seq: 1,
            time: t(3611),
        },
        &payee_key,
    );
    let voucher = Signed::sign(
        LoadVoucher {
            wallet: payer_id(),
            load_seq: 1,
            amount: eur(5000),
            issued: t(0),
        },
        &issuer_key,
    );
    let voucher2 = Signed::sign(
        LoadVoucher {
            wallet: payer_id(),
            load_seq: 2,
            amount: eur(2000),
            issued: t(7400),
        },
        &issuer_key,
    );
    let redeem = Signed::sign(
        Redeem {
            wallet: payer_id(),
            seq: 2,
            prev: payment.payload_hash(),
            amount: eur(750),
            time: t(7200),
        },
        &payer_key,
    );
    let policy = Signed::sign(default_policy(), &issuer_key);
    let report = Signed::sign(
        SyncReport {
            csr: None,
            key_generation: 0,
            key_since: 1,
            crl_number: None,
            wallet: payer_id(),
            report_seq: 1,
            time: t(7300),
            base_checkpoint: 0,
            outgoing: vec![payment.bytes().to_vec(), redeem.bytes().to_vec()],
            incoming: Vec::new(),
            loads: vec![1],
            balance: eur(5000 - 1250 - 750),
            seq: 2,
            head: redeem.payload_hash(),
            load_seq: 1,
            evidence: Vec::new(),
            locked: false,
            directory_version: 1,
        },
        &payer_key,
    );
    let response = Signed::sign(
        SyncResponse {
            rekey: None,
            wallet: payer_id(),
            report_seq: 1,
            time: t(7400),
            checkpoint: Checkpoint {
                number: 1,
                seq: 2,
                head: redeem.payload_hash(),
                balance: eur(3000),
                load_seq: 1,
                time: t(7400),
                report_seq: 1,
            },
            vouchers: vec![voucher2.bytes().to_vec()],
            crl: Some(crl.der().to_vec()),
            crl_delta: None,
            certificate: Some(payer_cert_renewed.der().to_vec()),
            policy: Some(policy.bytes().to_vec()),
            command: WalletCommand::Lock {
                reason: "double spend under investigation".to_string(),
            },
            directory: Some(scheme.directory.update_since(1, usize::MAX).unwrap()),
        },
        &issuer_key,
    );
    let proof = DoubleSpendProof::new(
        payment.bytes().to_vec(),
        payment_conflict.bytes().to_vec(),
        payer_cert.der().to_vec(),
        issuer.der().to_vec(),
    );
    Fixture {
        suite,
        root_key,
        issuer_key,
        payer_key,
        payee_key,
        root,
        issuer,
        payer_cert,
        payee_cert,
        payer_cert_renewed,
        crl,
        request,
        request_ref,
        payment,
        payment_ref,
        payment_conflict,
        receipt,
        voucher,
        voucher2,
        redeem,
        policy,
        report,
        response,
        proof,
        scheme,
    }
}

/// The named vectors of one suite, in document order.
fn vectors(f: &Fixture) -> Vec<(String, Vec<u8>)> {
    let s = f.suite.name();
    let n = |base: &str| format!("{base}-{s}");
    let receipt_sig_structure = sig_structure(f.suite, f.receipt.payload());
    vec![
        (n("key-root"), f.root_key.public_key().to_bytes()),
        (n("key-issuer"), f.issuer_key.public_key().to_bytes()),
        (n("key-payer"), f.payer_key.public_key().to_bytes()),
        (n("key-payee"), f.payee_key.public_key().to_bytes()),
        (n("cert-root"), f.root.der().to_vec()),
        (n("cert-issuer"), f.issuer.der().to_vec()),
        (n("cert-payer"), f.payer_cert.der().to_vec()),
        (n("cert-payee"), f.payee_cert.der().to_vec()),
        (n("cert-payer-renewed"), f.payer_cert_renewed.der().to_vec()),
        (n("crl"), f.crl.der().to_vec()),
        (n("payment-request"), f.request.bytes().to_vec()),
        (n("payment-request-ref"), f.request_ref.bytes().to_vec()),
        (n("payment"), f.payment.bytes().to_vec()),
        (n("payment-id"), f.payment.payload_hash().0.to_vec()),
        (n("payment-ref"), f.payment_ref.bytes().to_vec()),
        (n("payment-conflict"), f.payment_conflict.bytes().to_vec()),
        (n("receipt"), f.receipt.bytes().to_vec()),
        (n("receipt-sig-structure"), receipt_sig_structure),
        (n("load-voucher"), f.voucher.bytes().to_vec()),
        (n("load-voucher-2"), f.voucher2.bytes().to_vec()),
        (n("redeem"), f.redeem.bytes().to_vec()),
        (n("risk-policy"), f.policy.bytes().to_vec()),
        (n("sync-report"), f.report.bytes().to_vec()),
        (n("sync-response"), f.response.bytes().to_vec()),
        (n("double-spend-proof"), f.proof.encode()),
        (n("cert-bank-b"), f.scheme.bank_b.der().to_vec()),
        (n("cert-bank-c"), f.scheme.bank_c.der().to_vec()),
        (n("ca-csr-bank-b"), f.scheme.ca_csr.clone()),
        (n("issuer-crl"), f.scheme.issuer_crl.der().to_vec()),
        (n("directory"), f.scheme.signed_directory.bytes().to_vec()),
        (
            n("settlement-statement"),
            f.scheme.statement.bytes().to_vec(),
        ),
    ]
    .into_iter()
    .chain(pin_recovery_vectors(f))
    .collect()
}

/// Unlock key seed of the PIN recovery vectors (always Ed25519).
const SEED_UNLOCK: [u8; 32] = [0x55; 32];

/// The PIN recovery messages of the payer (docs/PROTOCOL.md 7.10 to 7.12):
/// the grant signed by the payer key, the locked request signed by the
/// unlock key (5 attempts, the vector nonce, T0 + 7200), the unlock signed by
/// the issuer key (issued T0 + 7260).
fn pin_recovery_vectors(f: &Fixture) -> Vec<(String, Vec<u8>)> {
    let s = f.suite.name();
    let n = |base: &str| format!("{base}-{s}");
    let unlock_key = SigningKey::from_seed(Suite::Ed25519, &SEED_UNLOCK).unwrap();
    let grant = Signed::sign(
        PinUnlockGrant {
            wallet: payer_id(),
            unlock_key: unlock_key.public_key().to_bytes().try_into().unwrap(),
        },
        &f.payer_key,
    );
    let locked = Signed::sign(
        PinLockedRequest {
            wallet: payer_id(),
            attempts: 5,
            nonce: nonce(),
            time: t(7200),
            grant: grant.bytes().to_vec(),
        },
        &unlock_key,
    );
    let unlock = Signed::sign(
        PinUnlock {
            wallet: payer_id(),
            attempts: 5,
            nonce: nonce(),
            issued: t(7260),
        },
        &f.issuer_key,
    );
    // They decode and verify as the document says.
    let back = Signed::<PinLockedRequest>::decode(locked.bytes()).unwrap();
    back.verify(&unlock_key.public_key()).unwrap();
    let g = Signed::<PinUnlockGrant>::decode(&back.body().grant).unwrap();
    g.verify(&f.payer_key.public_key()).unwrap();
    Signed::<PinUnlock>::decode(unlock.bytes())
        .unwrap()
        .verify(&f.issuer_key.public_key())
        .unwrap();
    vec![
        (n("pin-unlock-grant"), grant.bytes().to_vec()),
        (n("pin-locked-request"), locked.bytes().to_vec()),
        (n("pin-unlock"), unlock.bytes().to_vec()),
    ]
}

fn all_vectors() -> Vec<(String, Vec<u8>)> {
    Suite::ALL
        .into_iter()
        .flat_map(|s| vectors(&fixture(s)))
        .collect()
}

// ---- reading the document ----------------------------------------------------------

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PROTOCOL.md");
/// The ML-DSA-44 vectors (large: their keys, signatures and certificates
/// are kilobytes), in their own file beside PROTOCOL.md.
const ML_DSA_DOC_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/vectors/ml-dsa-44.md"
);

/// PROTOCOL.md and the ML-DSA-44 vector file, one after the other.
fn doc() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {p}: {e}"));
    format!("{}\n{}", read(DOC_PATH), read(ML_DSA_DOC_PATH))
}

/// Every ```` ```hex name=<name> ```` block of the document: name -> bytes.
fn doc_vectors(doc: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.trim_end().strip_prefix("```hex name=") else {
            continue;
        };
        let name = name.trim().to_string();
        let mut hex_text = String::new();
        loop {
            let l = lines
                .next()
                .unwrap_or_else(|| panic!("vector {name}: unterminated block"));
            if l.trim_start().starts_with("```") {
                break;
            }
            hex_text.extend(l.chars().filter(|c| !c.is_whitespace()));
        }
        let bytes =
            hex::decode(&hex_text).unwrap_or_else(|e| panic!("vector {name}: bad hex: {e}"));
        assert!(
            out.insert(name.clone(), bytes).is_none(),
            "vector {name} appears twice in {DOC_PATH}"
        );
    }
    out
}

/// The markdown block of one vector, as the document carries it (64 hex digits a line).
fn block(name: &str, bytes: &[u8]) -> String {
    let hex = hex::encode(bytes);
    let mut s = format!("```hex name={name}\n");
    for chunk in hex.as_bytes().chunks(64) {
        s.push_str(core::str::from_utf8(chunk).unwrap());
        s.push('\n');
    }
    s.push_str("```\n");
    s
}

// ---- the tests ----------------------------------------------------------------------

#[test]
fn document_vectors_equal_the_code() {
    let doc = doc_vectors(&doc());
    let built = all_vectors();
    let mut problems = Vec::new();
    for (name, bytes) in &built {
        match doc.get(name) {
            None => problems.push(format!("{name}: missing from the document")),
            Some(d) if d != bytes => problems.push(format!(
                "{name}: the document has {} bytes, the code builds {} bytes:\n{}",
                d.len(),
                bytes.len(),
                block(name, bytes)
            )),
            Some(_) => {}
        }
    }
    for name in doc.keys() {
        if !built.iter().any(|(n, _)| n == name) {
            problems.push(format!(
                "{name}: in the document but not built by this test"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/PROTOCOL.md and the code disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn building_twice_gives_the_same_bytes() {
    // Ed25519 (RFC 8032) and ECDSA with RFC 6979 nonces are deterministic.
    assert_eq!(all_vectors(), all_vectors());
}

/// Decode every message vector from the document's bytes, check each field
/// against the inputs, re-encode it, and verify its signature.
#[test]
#[expect(clippy::many_single_char_names, clippy::too_many_lines)] // lint-exception: one scenario told end to end; short names follow the fixtures and formulas
fn document_vectors_decode_and_verify() {
    let doc = doc_vectors(&doc());
    for suite in Suite::ALL {
        let f = fixture(suite);
        let s = suite.name();
        let v = |base: &str| {
            doc.get(&format!("{base}-{s}"))
                .unwrap_or_else(|| panic!("vector {base}-{s} missing"))
                .clone()
        };
        let payer_pk = f.payer_key.public_key();
        let payee_pk = f.payee_key.public_key();
        let issuer_pk = f.issuer_key.public_key();

        // Keys.
        for (name, k) in [
            ("key-root", &f.root_key),
            ("key-issuer", &f.issuer_key),
            ("key-payer", &f.payer_key),
            ("key-payee", &f.payee_key),
        ] {
            assert_eq!(
                PublicKey::from_bytes(suite, &v(name)).unwrap(),
                k.public_key()
            );
        }

        // Certificates and CRL: parse, chain, roles.
        let root = Certificate::from_der(&v("cert-root")).unwrap();
        let issuer = Certificate::from_der(&v("cert-issuer")).unwrap();
        let payer_cert = Certificate::from_der(&v("cert-payer")).unwrap();
        let payee_cert = Certificate::from_der(&v("cert-payee")).unwrap();
        let renewed = Certificate::from_der(&v("cert-payer-renewed")).unwrap();
        let crl = Crl::from_der(&v("crl")).unwrap();
        crl.verify_signed_by(&issuer).unwrap();
        assert_eq!(crl.number(), 1);
        assert_eq!(crl.entries().len(), 1);
        assert_eq!(crl.entries()[0].serial, SERIAL_REVOKED);
        for (cert, id, serial) in [
            (&payer_cert, payer_id(), SERIAL_PAYER),
            (&payee_cert, payee_id(), SERIAL_PAYEE),
            (&renewed, payer_id(), SERIAL_PAYER_RENEWED),
        ] {
            assert_eq!(
                validate_wallet_chain(&root, &issuer, cert, t(7400), Some(&crl)),
                Ok(id)
            );
            assert_eq!(cert.serial(), serial);
            assert_eq!(cert.policy_ref(), Some(PolicyRef { id: 1, epoch: 1 }));
            assert_eq!(cert.suite(), suite);
        }
        assert_eq!(*payer_cert.public_key(), payer_pk);
        assert_eq!(*payee_cert.public_key(), payee_pk);

        // PaymentRequest, inline and by reference.
        for (name, cert_field) in [
            (
                "payment-request",
                CertField::Inline(payee_cert.der().to_vec()),
            ),
            (
                "payment-request-ref",
                CertField::Reference(payee_cert.reference()),
            ),
        ] {
            let bytes = v(name);
            let m = Signed::<PaymentRequest>::decode(&bytes).unwrap();
            m.verify(&payee_pk).unwrap();
            assert_eq!(m.suite(), suite);
            let b = m.body();
            assert_eq!(b.payee, payee_id());
            assert_eq!(b.amount, eur(1250));
            assert_eq!(b.nonce, nonce());
            assert_eq!((b.created, b.expires), (t(3600), t(3900)));
            assert_eq!(b.payee_cert, cert_field);
            assert_eq!(Signed::sign(b.clone(), &f.payee_key).bytes(), &bytes[..]);
        }

        // Payments: the chain's first entry, inline and by reference, and the conflict.
        let payment_bytes = v("payment");
        let payment = Signed::<Payment>::decode(&payment_bytes).unwrap();
        payment.verify(&payer_pk).unwrap();
        assert_eq!(payment.payload_hash().0.to_vec(), v("payment-id"));
        assert_eq!(
            payment.payload_hash(),
            Hash32::digest(payment.payload()),
            "a payment's id is SHA-256 of its payload bytes"
        );
        let p = payment.body();
        assert_eq!((p.payer, p.seq, p.prev), (payer_id(), 1, Hash32::ZERO));
        assert_eq!(
            (p.payee, p.amount, p.nonce),
            (payee_id(), eur(1250), nonce())
        );
        assert_eq!(p.time, t(3610));
        assert_eq!(p.payer_cert, CertField::Inline(payer_cert.der().to_vec()));
        assert_eq!(
            Signed::sign(p.clone(), &f.payer_key).bytes(),
            &payment_bytes[..]
        );
        let payment_ref = Signed::<Payment>::decode(&v("payment-ref")).unwrap();
        payment_ref.verify(&payer_pk).unwrap();
        assert_eq!(
            payment_ref.body().payer_cert,
            CertField::Reference(payer_cert.reference())
        );
        assert_eq!(
            payment_ref.body().payer_cert.reference(),
            Hash32::digest(payer_cert.der())
        );
        let conflict = Signed::<Payment>::decode(&v("payment-conflict")).unwrap();
        conflict.verify(&payer_pk).unwrap();
        assert_eq!(
            (conflict.body().seq, conflict.body().prev),
            (1, Hash32::ZERO)
        );

        // Receipt, and its Sig_structure.
        let receipt = Signed::<Receipt>::decode(&v("receipt")).unwrap();
        receipt.verify(&payee_pk).unwrap();
        assert_eq!(receipt.body().payment_id, payment.payload_hash());
        assert_eq!((receipt.body().seq, receipt.body().time), (1, t(3611)));
        assert_eq!(receipt.sig_structure(), v("receipt-sig-structure"));
        payee_pk
            .verify(&v("receipt-sig-structure"), receipt.signature())
            .unwrap();

        // Load vouchers.
        for (name, seq, minor) in [("load-voucher", 1, 5000), ("load-voucher-2", 2, 2000)] {
            let lv = Signed::<LoadVoucher>::decode(&v(name)).unwrap();
            lv.verify(&issuer_pk).unwrap();
            assert_eq!(lv.body().wallet, payer_id());
            assert_eq!((lv.body().load_seq, lv.body().amount), (seq, eur(minor)));
        }

        // Redeem: the chain's second entry.
        let redeem = Signed::<Redeem>::decode(&v("redeem")).unwrap();
        redeem.verify(&payer_pk).unwrap();
        assert_eq!(redeem.body().seq, 2);
        assert_eq!(redeem.body().prev, payment.payload_hash());
        assert_eq!(redeem.body().amount, eur(750));

        // The chain, through ChainEntry.
        let e1 = ChainEntry::decode(&payment_bytes).unwrap();
        let e2 = ChainEntry::decode(&v("redeem")).unwrap();
        assert_eq!(e1.seq() + 1, e2.seq());
        assert_eq!(e2.prev(), e1.hash());
        e1.verify(&payer_pk).unwrap();
        e2.verify(&payer_pk).unwrap();

        // Risk policy.
        let pol = Signed::<RiskPolicy>::decode(&v("risk-policy")).unwrap();
        pol.verify(&issuer_pk).unwrap();
        assert_eq!(pol.body(), &default_policy());

        // SyncReport.
        let report = Signed::<SyncReport>::decode(&v("sync-report")).unwrap();
        report.verify(&payer_pk).unwrap();
        let r = report.body();
        assert_eq!(r.outgoing, vec![payment_bytes.clone(), v("redeem")]);
        assert_eq!((r.seq, r.head), (2, e2.hash()));
        assert_eq!(
            (r.balance, r.load_seq, &r.loads[..]),
            (eur(3000), 1, &[1][..])
        );
        assert!(r.incoming.is_empty() && r.evidence.is_empty() && !r.locked);
        assert_eq!(r.directory_version, 1);

        // SyncResponse: every optional field present.
        let resp = Signed::<SyncResponse>::decode(&v("sync-response")).unwrap();
        resp.verify(&issuer_pk).unwrap();
        let r = resp.body();
        assert_eq!(r.checkpoint.head, e2.hash());
        assert_eq!(r.vouchers, vec![v("load-voucher-2")]);
        assert_eq!(r.crl.as_deref(), Some(&v("crl")[..]));
        assert_eq!(r.certificate.as_deref(), Some(&v("cert-payer-renewed")[..]));
        assert_eq!(r.policy.as_deref(), Some(&v("risk-policy")[..]));
        assert!(matches!(r.command, WalletCommand::Lock { .. }));
        // Its directory update: what changed after version 1, every element
        // verifiable against the root.
        let u = r.directory.as_ref().unwrap();
        assert_eq!(u.version, 3);
        assert_eq!(u.issuer_crl.as_deref(), Some(&v("issuer-crl")[..]));
        assert_eq!(u.issuers.len(), 2);
        assert_eq!(u.issuers[0].changed, 2);
        assert_eq!(u.issuers[0].ca_cert, v("cert-bank-b"));
        assert_eq!(u.issuers[1].ca_cert, v("cert-bank-c"));
        assert!(u.issuers[1].crl.is_none());

        // The scheme: member issuer CAs, the issuer CRL, the directory, a statement.
        let csr = pki::parse_ca_csr(&v("ca-csr-bank-b")).unwrap();
        assert_eq!(csr.common_name, "bank-b");
        let mut trust = pki::SchemeTrust::new(root.clone());
        let bank_b = Certificate::from_der(&v("cert-bank-b")).unwrap();
        let bank_c = Certificate::from_der(&v("cert-bank-c")).unwrap();
        assert_eq!(bank_b.public_key(), &csr.public_key);
        let b = trust.add_issuer(bank_b.clone()).unwrap();
        let c = trust.add_issuer(bank_c).unwrap();
        let issuer_crl = Crl::from_der(&v("issuer-crl")).unwrap();
        assert!(trust.set_issuer_crl(issuer_crl).unwrap());
        assert_eq!(trust.issuer_status(&b), Some(IssuerStatus::Active));
        assert_eq!(trust.issuer_status(&c), Some(IssuerStatus::Suspended));
        let dir = Signed::<Directory>::decode(&v("directory")).unwrap();
        dir.verify(root.public_key()).unwrap();
        assert_eq!(dir.body().version, 3);
        assert_eq!(
            dir.body().entry("bank-c").unwrap().status,
            IssuerStatus::Suspended
        );
        assert_eq!(dir.body().update_since(1, usize::MAX).as_ref(), Some(u));
        assert_eq!(dir.body().update_since(3, usize::MAX), None);
        let st = Signed::<SettlementStatement>::decode(&v("settlement-statement")).unwrap();
        st.verify(root.public_key()).unwrap();
        let st = st.body();
        assert_eq!((st.cycle, st.issuer), (7, b));
        assert_eq!(st.net(), 1250 + 300 - 2000);
        assert_eq!(st.line(&c).unwrap().digest, Hash32::digest(&[0x0c; 32]));
        let mut concat = vec![0x0a; 32];
        concat.extend_from_slice(&[0x0b; 32]);
        assert_eq!(
            st.line(&IssuerId([0x01; 16])).unwrap().digest,
            Hash32::digest(&concat)
        );

        // DoubleSpendProof: verifies against the root alone.
        let proof = DoubleSpendProof::decode(&v("double-spend-proof")).unwrap();
        assert_eq!(proof.encode(), v("double-spend-proof"));
        let proven = verify_double_spend(&proof, &root).unwrap();
        assert_eq!(proven.payer, payer_id());
        assert_eq!(proven.payer_serial, SERIAL_PAYER);
        assert_eq!(proven.seq, 1);
        let mut amounts = proven.amounts.map(|a| a.minor);
        amounts.sort();
        assert_eq!(amounts, [990, 1250]);

        // The other suite's key never verifies this suite's message.
        let other = match suite {
            Suite::Ed25519 => Suite::P256,
            Suite::P256 | Suite::MlDsa44 => Suite::Ed25519,
        };
        let other_pk = SigningKey::from_seed(other, &SEED_PAYER)
            .unwrap()
            .public_key();
        assert!(payment.verify(&other_pk).is_err());
    }
}

// ---- the size table -------------------------------------------------------------------

/// Encoded size of a Payment with every integer at its widest encoding (an upper bound).
fn widest_payment_len(f: &Fixture, inline: bool) -> usize {
    let body = Payment {
        seq: u64::MAX,
        amount: eur(u64::MAX),
        time: UnixSeconds(u64::MAX),
        ..(if inline { &f.payment } else { &f.payment_ref })
            .body()
            .clone()
    };
    Signed::sign(body, &f.payer_key).bytes().len()
}

/// "yes (v18)": fits v20-M, and the smallest version at level M that holds it.
fn qr(len: usize) -> String {
    match QR_M_BYTES.iter().position(|&cap| len <= cap) {
        Some(v) => format!("yes (v{})", v + 1),
        None => "no".to_string(),
    }
}

/// The size table of docs/PROTOCOL.md, exactly as the document prints it.
fn size_table() -> String {
    let (e, p) = (fixture(Suite::Ed25519), fixture(Suite::P256));
    let mut rows: Vec<(String, usize, usize, bool)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Fixture) -> usize, offline: bool| {
        rows.push((name.to_string(), f(&e), f(&p), offline));
    };
    row(
        "wallet certificate (DER)",
        &|f| f.payer_cert.der().len(),
        false,
    );
    row(
        "issuer CA certificate (DER)",
        &|f| f.issuer.der().len(),
        false,
    );
    row("root CA certificate (DER)", &|f| f.root.der().len(), false);
    row("CRL, one entry (DER)", &|f| f.crl.der().len(), false);
    row(
        "PaymentRequest, payee certificate inline",
        &|f| f.request.bytes().len(),
        true,
    );
    row(
        "PaymentRequest, payee certificate reference",
        &|f| f.request_ref.bytes().len(),
        true,
    );
    row(
        "Payment, payer certificate inline",
        &|f| f.payment.bytes().len(),
        true,
    );
    row(
        "Payment, payer certificate reference",
        &|f| f.payment_ref.bytes().len(),
        true,
    );
    row(
        "Payment, inline, every integer 8 bytes wide (upper bound)",
        &|f| widest_payment_len(f, true),
        true,
    );
    row(
        "Payment, reference, every integer 8 bytes wide (upper bound)",
        &|f| widest_payment_len(f, false),
        true,
    );
    row("Receipt", &|f| f.receipt.bytes().len(), true);
    row("LoadVoucher", &|f| f.voucher.bytes().len(), false);
    row("Redeem", &|f| f.redeem.bytes().len(), false);
    row("RiskPolicy", &|f| f.policy.bytes().len(), false);
    row(
        "SyncReport, 2 outgoing entries (vector)",
        &|f| f.report.bytes().len(),
        false,
    );
    row(
        "SyncResponse, every optional field (vector)",
        &|f| f.response.bytes().len(),
        false,
    );
    row(
        "DoubleSpendProof (vector)",
        &|f| f.proof.encode().len(),
        false,
    );
    let mut s = String::from(
        "| message | Ed25519 bytes | P-256 bytes | fits one QR code v20-M (666 B)? Ed25519 / P-256 (smallest version at M) |\n\
         | --- | ---: | ---: | --- |\n",
    );
    for (name, a, b, offline) in rows {
        let fits = if offline {
            format!("{} / {}", qr(a), qr(b))
        } else {
            "n/a".to_string()
        };
        s.push_str(&format!("| {name} | {a} | {b} | {fits} |\n"));
    }
    s
}

/// The limits table of docs/PROTOCOL.md section 10, from the constants.
#[expect(clippy::too_many_lines)] // lint-exception: one table or story, read top to bottom
fn limits_table() -> String {
    use offpay_protocol::cbor::DEPTH_MAX;
    use offpay_protocol::messages::*;
    use offpay_protocol::pki::{
        CERTIFICATE_BYTES_MAX, CRL_BYTES_MAX, CRL_DELTAS_HELD_MAX, CSR_BYTES_MAX,
    };
    use offpay_protocol::suite::SIGNATURE_BYTES_MAX;
    use offpay_protocol::types::{HASH_BYTES, ISSUER_ID_BYTES, NONCE_BYTES, WALLET_ID_BYTES};
    let rows: [(&str, usize, &str); 35] = [
        (
            "PAYMENT_REQUEST_BYTES_MAX",
            PAYMENT_REQUEST_BYTES_MAX,
            "a PaymentRequest envelope",
        ),
        (
            "PAYMENT_BYTES_MAX",
            PAYMENT_BYTES_MAX,
            "a Payment envelope; also each chain entry (`ChainEntry`), each item of a SyncReport's lists, and each entry of a DoubleSpendProof",
        ),
        ("RECEIPT_BYTES_MAX", RECEIPT_BYTES_MAX, "a Receipt envelope"),
        (
            "LOAD_VOUCHER_BYTES_MAX",
            LOAD_VOUCHER_BYTES_MAX,
            "a LoadVoucher envelope; also each voucher in a SyncResponse",
        ),
        ("REDEEM_BYTES_MAX", REDEEM_BYTES_MAX, "a Redeem envelope"),
        (
            "RISK_POLICY_BYTES_MAX",
            RISK_POLICY_BYTES_MAX,
            "a RiskPolicy envelope; also the policy field of a SyncResponse",
        ),
        (
            "SYNC_REPORT_BYTES_MAX",
            SYNC_REPORT_BYTES_MAX,
            "a SyncReport envelope (24 MiB)",
        ),
        (
            "SYNC_RESPONSE_BYTES_MAX",
            SYNC_RESPONSE_BYTES_MAX,
            "a SyncResponse envelope (6 MiB)",
        ),
        (
            "DIRECTORY_BYTES_MAX",
            DIRECTORY_BYTES_MAX,
            "a Directory envelope (16 MiB)",
        ),
        (
            "DIRECTORY_UPDATE_BYTES_MAX",
            DIRECTORY_UPDATE_BYTES_MAX,
            "the directory update of a SyncResponse, key 12, as encoded (2 MiB)",
        ),
        (
            "DIRECTORY_ISSUERS_MAX",
            DIRECTORY_ISSUERS_MAX,
            "issuers in a Directory or a directory update; also in a wallet's directory",
        ),
        (
            "SETTLEMENT_STATEMENT_BYTES_MAX",
            SETTLEMENT_STATEMENT_BYTES_MAX,
            "a SettlementStatement envelope (32 KiB)",
        ),
        (
            "STATEMENT_LINES_MAX",
            STATEMENT_LINES_MAX,
            "lines of a SettlementStatement",
        ),
        (
            "EVIDENCE_BUNDLE_BYTES_MAX",
            offpay_protocol::bundle::EVIDENCE_BUNDLE_BYTES_MAX,
            "an EvidenceBundle envelope (160 KiB)",
        ),
        (
            "ISSUER_CODE_FIELD_BYTES_MAX",
            ISSUER_CODE_FIELD_BYTES_MAX,
            "an issuer code (`[a-z0-9-]`, at least 1)",
        ),
        (
            "DOUBLE_SPEND_PROOF_BYTES_MAX",
            DOUBLE_SPEND_PROOF_BYTES_MAX,
            "a DoubleSpendProof encoding (12 KiB)",
        ),
        (
            "RETAINED_DOUBLE_SPEND_PROOF_BYTES_MAX",
            RETAINED_DOUBLE_SPEND_PROOF_BYTES_MAX,
            "a RetainedDoubleSpendProof envelope (28 KiB)",
        ),
        (
            "PIN_UNLOCK_GRANT_BYTES_MAX",
            PIN_UNLOCK_GRANT_BYTES_MAX,
            "a PinUnlockGrant envelope; also the grant field of a PinLockedRequest",
        ),
        (
            "PIN_LOCKED_REQUEST_BYTES_MAX",
            PIN_LOCKED_REQUEST_BYTES_MAX,
            "a PinLockedRequest envelope",
        ),
        (
            "PIN_UNLOCK_BYTES_MAX",
            PIN_UNLOCK_BYTES_MAX,
            "a PinUnlock envelope",
        ),
        (
            "CERT_FIELD_BYTES_MAX",
            CERT_FIELD_BYTES_MAX,
            "a DER certificate inside a message (certificate fields, SyncResponse key 8, proof keys 4 and 5)",
        ),
        (
            "CRL_FIELD_BYTES_MAX",
            CRL_FIELD_BYTES_MAX,
            "a DER CRL inside a message: SyncResponse keys 7 and 14, each CRL of a directory and its update, the issuer CRL (1 MiB)",
        ),
        (
            "REASON_BYTES_MAX",
            REASON_BYTES_MAX,
            "the lock reason text of a SyncResponse (UTF-8 bytes)",
        ),
        (
            "SYNC_ENTRIES_MAX",
            SYNC_ENTRIES_MAX,
            "items in each list of a SyncReport or SyncResponse; also the largest max log entries of a RiskPolicy",
        ),
        (
            "CERTIFICATE_BYTES_MAX",
            CERTIFICATE_BYTES_MAX,
            "any DER certificate parsed (`pki::Certificate::from_der`)",
        ),
        (
            "CRL_BYTES_MAX",
            CRL_BYTES_MAX,
            "any DER CRL parsed (`pki::Crl::from_der`, `pki::DeltaCrl::from_der`; 1 MiB, about 25 000 entries)",
        ),
        (
            "CRL_DELTAS_HELD_MAX",
            CRL_DELTAS_HELD_MAX,
            "delta CRLs a holder keeps on its complete CRL (`pki::CrlState`); a TA at it reports no CRL number and gets the complete CRL",
        ),
        ("CSR_BYTES_MAX", CSR_BYTES_MAX, "a DER PKCS#10 request"),
        (
            "SIGNATURE_BYTES_MAX",
            SIGNATURE_BYTES_MAX,
            "a signature in a message (exact per suite: 64 Ed25519 and P-256, 2420 ML-DSA-44)",
        ),
        ("WALLET_ID_BYTES", WALLET_ID_BYTES, "a wallet id (exact)"),
        ("ISSUER_ID_BYTES", ISSUER_ID_BYTES, "an issuer id (exact)"),
        ("NONCE_BYTES", NONCE_BYTES, "a nonce (exact)"),
        (
            "HASH_BYTES",
            HASH_BYTES,
            "a hash, a payment id, a certificate reference (exact)",
        ),
        ("DEPTH_MAX", DEPTH_MAX, "nesting of arrays and maps"),
        ("(payload map)", 32, "pairs in a message body map"),
    ];
    let mut s = String::from("| constant | value | bounds |\n| --- | ---: | --- |\n");
    for (name, value, what) in rows {
        let name = if name.starts_with('(') {
            name.to_string()
        } else {
            format!("`{name}`")
        };
        s.push_str(&format!("| {name} | {value} | {what} |\n"));
    }
    s
}

#[test]
fn limits_table_is_in_the_document() {
    let table = limits_table();
    assert!(
        doc().contains(&table),
        "docs/PROTOCOL.md does not carry the current limits table; it is:\n{table}"
    );
}

#[test]
fn size_table_is_in_the_document() {
    let table = size_table();
    eprintln!("encoded sizes:\n{table}");
    assert!(
        doc().contains(&table),
        "docs/PROTOCOL.md does not carry the current size table; it is:\n{table}"
    );
    // The design's promise: a payment with its certificate inline fits one QR code.
    for suite in [Suite::Ed25519, Suite::P256] {
        let f = fixture(suite);
        assert!(
            f.payment.bytes().len() <= QR_V20_M_BYTES,
            "{suite}: a Payment with the payer certificate inline is {} bytes",
            f.payment.bytes().len()
        );
    }
}

/// Wallet certificates with fixed-width serials and validity times in one
/// time encoding have one size per suite (Ed25519) — so payments do too.
#[test]
fn fixed_width_serials_keep_payments_one_size() {
    let f = fixture(Suite::Ed25519);
    let len = |serial: u64, id: WalletId| {
        pki::issue_wallet(
            &f.issuer_key,
            &f.issuer,
            &f.payer_key.public_key(),
            id,
            PolicyRef { id: 1, epoch: 1 },
            serial,
            t(0),
            t(30 * DAY),
        )
        .unwrap()
        .der()
        .len()
    };
    let base = len(SERIAL_PAYER, payer_id());
    for serial in [(1 << 62) + 7, (1 << 63) - 1, (1 << 62) + 0xffff_ffff] {
        assert_eq!(len(serial, WalletId([0xff; 16])), base);
    }
    // A short serial makes a shorter certificate: payments would vary in size.
    assert!(len(1, payer_id()) < base);
}

/// `OFFPAY_PRINT_VECTORS=1 ... -- --nocapture print_vectors` prints the
/// appendix blocks and the size table (for regenerating the document).
#[test]
fn print_vectors() {
    if std::env::var_os("OFFPAY_PRINT_VECTORS").is_none() {
        return;
    }
    println!("<<<SIZES");
    print!("{}", size_table());
    println!(">>>SIZES");
    println!("<<<LIMITS");
    print!("{}", limits_table());
    println!(">>>LIMITS");
    for (name, bytes) in all_vectors() {
        println!("<<<VECTOR {name} {}", bytes.len());
        print!("{}", block(&name, &bytes));
        println!(">>>VECTOR");
    }
}

/// The protected header and the encoder agree with the document's
/// description of the envelope (spot checks independent of the vectors).
#[test]
fn envelope_prefix_is_as_documented() {
    for (suite, alg_byte) in [(Suite::Ed25519, 0x27u8), (Suite::P256, 0x26)] {
        let f = fixture(suite);
        let b = f.receipt.bytes();
        // 18([h'A1 01 <alg>', {}, payload, signature])
        assert_eq!(&b[..7], &[0xd2, 0x84, 0x43, 0xa1, 0x01, alg_byte, 0xa0]);
        // A receipt payload is 84 bytes: a two-byte bstr head (0x58, length).
        assert_eq!(b[7], 0x58);
        assert_eq!(b[8] as usize, f.receipt.payload().len());
        // The signature: a 64-byte bstr at the end.
        assert_eq!(&b[b.len() - 66..b.len() - 64], &[0x58, 0x40]);
        // The Sig_structure.
        let mut e = Encoder::new();
        e.array(4)
            .text("Signature1")
            .bytes(&[0xa1, 0x01, alg_byte])
            .bytes(&[])
            .bytes(f.receipt.payload());
        assert_eq!(e.finish(), f.receipt.sig_structure());
    }
}
