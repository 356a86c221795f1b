//! The HSM signer against SoftHSM2: both suites sign and verify with
//! offpay's verifier, keys are adopted after a "restart", the private key is
//! not readable, a lost session reconnects once, and every refusal (wrong
//! PIN, missing key, token absent, module path wrong) is its own error.
//!
//! Skips with a printed reason when SoftHSM2 is not installed, unless
//! `OFFPAY_REQUIRE_HSM=1`.

use offpay_hsm::{HsmConfig, HsmError, KeyMode, PinSource, Token, TokenRef};
use offpay_protocol::{SignError, Signer, SigningKey, Suite};

mod common;
use common::{PIN, module, must, open, token};

fn sign_verify(name: &str, suite: Suite) {
    let Some(t) = token(name) else { return };
    let tok = open(&t);
    let s = must(tok.signer("ca", suite, KeyMode::CreateOrAdopt), "signer");
    assert_eq!(s.suite(), suite);
    assert_eq!(s.public_key().suite(), suite);
    for msg in [&b""[..], b"offpay", &[7u8; 5000]] {
        let sig = must(s.try_sign(msg), "sign");
        assert_eq!(sig.len(), 64);
        must(s.public_key().verify(msg, &sig), "verify");
        // A different message does not verify with that signature.
        let mut other = msg.to_vec();
        other.push(1);
        assert!(s.public_key().verify(&other, &sig).is_err());
    }
    // An in-process key of the same suite is a different key.
    let k = must(SigningKey::generate(suite), "generate");
    assert_ne!(k.public_key(), s.public_key());
    // The private key never leaves the token.
    assert!(!must(tok.private_value_readable("ca"), "read CKA_VALUE"));
}

#[test]
fn ed25519_signs_and_verifies() {
    sign_verify("t_ed25519", Suite::Ed25519);
}

#[test]
fn p256_signs_and_verifies() {
    sign_verify("t_p256", Suite::P256);
}

#[test]
fn restart_adopts_the_same_key() {
    let Some(t) = token("t_adopt") else { return };
    let first = open(&t)
        .signer("issuer-ca", Suite::P256, KeyMode::CreateOrAdopt)
        .unwrap()
        .public_key();
    // A new Token (as after a restart) adopts, creating nothing.
    let again = open(&t)
        .signer("issuer-ca", Suite::P256, KeyMode::AdoptOnly)
        .unwrap();
    assert_eq!(again.public_key(), first);
    let sig = again.try_sign(b"after restart").unwrap();
    first.verify(b"after restart", &sig).unwrap();
    // The same label asked as the other suite is a mismatch, not a new key.
    let e = open(&t)
        .signer("issuer-ca", Suite::Ed25519, KeyMode::CreateOrAdopt)
        .unwrap_err();
    assert!(matches!(e, HsmError::KeyMismatch(_)), "{e}");
}

#[test]
fn lost_session_reconnects_once() {
    let Some(t) = token("t_reconnect") else {
        return;
    };
    let s = open(&t)
        .signer("ca", Suite::Ed25519, KeyMode::CreateOrAdopt)
        .unwrap();
    s.logout_session().unwrap();
    let sig = s.try_sign(b"after logout").unwrap();
    s.public_key().verify(b"after logout", &sig).unwrap();
    s.close_session();
    let sig = s.try_sign(b"after close").unwrap();
    s.public_key().verify(b"after close", &sig).unwrap();
}

#[test]
fn refusals_are_specific() {
    let Some(t) = token("t_refusals") else { return };
    let tok = open(&t);
    tok.signer("ca", Suite::Ed25519, KeyMode::CreateOrAdopt)
        .unwrap();
    // Wrong PIN: CKR_PIN_INCORRECT (0xa0).
    let e = Token::open_with_pin(&module(), &t, "wrong".into()).unwrap_err();
    assert_eq!(e, HsmError::Login { code: 0xa0 }, "{e}");
    // Missing key label, adopt only.
    let e = tok
        .signer("absent", Suite::Ed25519, KeyMode::AdoptOnly)
        .unwrap_err();
    assert_eq!(e, HsmError::KeyNotFound("absent".into()));
    // Token absent.
    let e = Token::open_with_pin(
        &module(),
        &TokenRef::Label("no-such-token".into()),
        PIN.into(),
    )
    .unwrap_err();
    assert!(matches!(e, HsmError::TokenNotFound(_)), "{e}");
    // Module path wrong.
    let e = Token::open_with_pin("/nonexistent/libpkcs11.so".as_ref(), &t, PIN.into()).unwrap_err();
    assert!(matches!(e, HsmError::Module { .. }), "{e}");
    // A file that is not a PKCS#11 module.
    let e = Token::open_with_pin("/etc/hostname".as_ref(), &t, PIN.into()).unwrap_err();
    assert!(matches!(e, HsmError::Module { .. }), "{e}");
}

#[test]
fn a_device_failure_is_a_sign_error() {
    let Some(t) = token("t_devfail") else { return };
    let tok = open(&t);
    let s = tok
        .signer("ca", Suite::P256, KeyMode::CreateOrAdopt)
        .unwrap();
    // The key is destroyed behind the signer's back (an operator's mistake):
    // a clear device error, no signature.
    tok.destroy_key_pair("ca").unwrap();
    s.close_session();
    let e = s.try_sign(b"x").unwrap_err();
    assert!(
        matches!(
            e,
            SignError::Device {
                what: "find key",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn config_spec_parses_with_specific_errors() {
    let c = HsmConfig::parse(
        "module=/usr/lib/softhsm/libsofthsm2.so,token=offpay,pin=env:OFFPAY_HSM_PIN,issuer-key=offpay-issuer-ca,root-key=offpay-root",
    )
    .unwrap();
    assert_eq!(c.token, TokenRef::Label("offpay".into()));
    assert_eq!(c.pin, PinSource::Env("OFFPAY_HSM_PIN".into()));
    assert_eq!(c.root_key.as_deref(), Some("offpay-root"));
    let c = HsmConfig::parse("module=/m.so,slot=0x10,pin=file:/run/pin,issuer-key=k").unwrap();
    assert_eq!(c.token, TokenRef::Slot(16));
    assert_eq!(c.root_key, None);
    for (spec, needle) in [
        ("token=a,pin=env:P,issuer-key=k", "module= is missing"),
        (
            "module=/m,pin=env:P,issuer-key=k",
            "token= or slot= is missing",
        ),
        ("module=/m,token=a,issuer-key=k", "pin= is missing"),
        ("module=/m,token=a,pin=env:P", "issuer-key= is missing"),
        (
            "module=/m,token=a,pin=1234,issuer-key=k",
            "env:VAR or file:PATH",
        ),
        (
            "module=/m,token=a,slot=1,pin=env:P,issuer-key=k",
            "given twice",
        ),
        (
            "module=/m,token=a,pin=env:P,issuer-key=k,colour=red",
            "unknown key",
        ),
        ("module=/m,slot=zz,pin=env:P,issuer-key=k", "not a number"),
        ("module,token=a", "not key=value"),
    ] {
        let e = HsmConfig::parse(spec).unwrap_err().to_string();
        assert!(e.contains(needle), "{spec}: {e}");
    }
    let e = PinSource::Env("OFFPAY_TEST_SURELY_UNSET_VAR".into())
        .read()
        .unwrap_err();
    assert!(matches!(e, HsmError::Pin(_)), "{e}");
    let e = PinSource::File("/nonexistent/pin".into())
        .read()
        .unwrap_err();
    assert!(matches!(e, HsmError::Pin(_)), "{e}");
}
