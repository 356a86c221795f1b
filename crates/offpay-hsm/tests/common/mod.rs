//! The SoftHSM2 fixture: a token directory private to the test process, a
//! fresh token per test. Skips (prints why) when SoftHSM2 is not installed,
//! unless `OFFPAY_REQUIRE_HSM=1`.
#![allow(dead_code)] // Each suite uses part of the fixture.

use std::path::PathBuf;
use std::sync::OnceLock;

use offpay_hsm::{Token, TokenRef};

pub(crate) const SO_PIN: &str = "so-pin-5678";
pub(crate) const PIN: &str = "user-pin-1234";

/// The value, or the test fails saying what could not be done.
pub(crate) fn must<T, E: std::fmt::Debug>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e:?}"),
    }
}

pub(crate) fn module() -> PathBuf {
    std::env::var_os("OFFPAY_HSM_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/lib/softhsm/libsofthsm2.so".into())
}

/// A fresh token labelled after the test, in a token directory private to
/// this test process; `None` (skipped) when SoftHSM2 is missing.
pub(crate) fn token(name: &str) -> Option<TokenRef> {
    let m = module();
    if !m.is_file() {
        assert!(
            std::env::var("OFFPAY_REQUIRE_HSM").as_deref() != Ok("1"),
            "[{name}] SoftHSM2 required (OFFPAY_REQUIRE_HSM=1) but {} is missing",
            m.display()
        );
        eprintln!(
            "[{name}] SKIPPED: SoftHSM2 module {} not installed (apt-get install softhsm2); set OFFPAY_REQUIRE_HSM=1 to fail instead",
            m.display()
        );
        return None;
    }
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = must(tempfile::tempdir(), "temp dir");
        let tokens = d.path().join("tokens");
        must(std::fs::create_dir(&tokens), "token dir");
        let conf = d.path().join("softhsm2.conf");
        must(
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    tokens.display()
                ),
            ),
            "softhsm2.conf",
        );
        // SAFETY: set once, before the module is loaded, under the OnceLock;
        // no other thread of this test binary reads SOFTHSM2_CONF before it.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
        d
    });
    must(
        offpay_hsm::init_free_token(&m, name, SO_PIN, PIN),
        "init token",
    );
    Some(TokenRef::Label(name.into()))
}

pub(crate) fn open(t: &TokenRef) -> Token {
    must(Token::open_with_pin(&module(), t, PIN.into()), "open token")
}

/// The error, or the test fails: `what` was to be refused.
pub(crate) fn must_err<T, E>(r: Result<T, E>, what: &str) -> E {
    match r {
        Ok(_) => panic!("{what}: accepted, expected a refusal"),
        Err(e) => e,
    }
}
