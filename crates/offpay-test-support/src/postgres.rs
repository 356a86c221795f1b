//! A fresh PostgreSQL schema or database per test.
//!
//! The server is `OFFPAY_TEST_POSTGRES_URL` (default [`URL_DEFAULT`]). When it
//! does not answer, the fixture prints why the test skips its PostgreSQL part
//! and returns `None`; under `OFFPAY_REQUIRE_POSTGRES=1` it fails the test
//! instead. Names carry the test's name and random hex, so tests running at
//! once never share one; each is dropped with its guard.

/// The PostgreSQL server used when `OFFPAY_TEST_POSTGRES_URL` is unset.
pub const URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `OFFPAY_TEST_POSTGRES_URL`, or [`URL_DEFAULT`].
pub fn url() -> String {
    std::env::var("OFFPAY_TEST_POSTGRES_URL").unwrap_or_else(|_| URL_DEFAULT.into())
}

/// Whether `OFFPAY_REQUIRE_POSTGRES=1`.
pub fn required() -> bool {
    std::env::var("OFFPAY_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A connection to the test server, or `None` after printing why `name`
/// skips PostgreSQL (a panic under `OFFPAY_REQUIRE_POSTGRES=1`).
pub fn connect(name: &str) -> Option<(postgres::Client, String)> {
    let url = url();
    match postgres::Client::connect(&url, postgres::NoTls) {
        Ok(c) => Some((c, url)),
        Err(e) => {
            assert!(
                !required(),
                "[{name}] PostgreSQL required (OFFPAY_REQUIRE_POSTGRES=1) but {url} does not answer: {e}"
            );
            eprintln!(
                "[{name}] SKIPPED on PostgreSQL: {url} does not answer ({e}); set OFFPAY_REQUIRE_POSTGRES=1 to fail instead"
            );
            None
        }
    }
}

/// `prefix_name_<12 random hex digits>`, a valid unquoted SQL identifier for
/// a test name of `[a-z0-9_]`.
fn unique(prefix: &str, name: &str) -> String {
    let mut rnd = [0u8; 6];
    getrandom::fill(&mut rnd).unwrap();
    let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{name}_{hex}")
}

/// A schema made for one test, dropped (with everything in it) at the end.
pub struct Schema {
    /// The server's URL.
    pub url: String,
    /// The schema's name.
    pub name: String,
}

impl Schema {
    /// A fresh schema on the test server (created by whoever opens it first,
    /// as `offpay_store::open_postgres_schema` does), or `None` (skipped).
    pub fn fresh(test: &str) -> Option<Schema> {
        let (_, url) = connect(test)?;
        Some(Schema {
            url,
            name: unique("t", test),
        })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.url, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// A database made for one test, dropped at the end.
pub struct Database {
    admin_url: String,
    /// The database's name.
    pub name: String,
    /// Its URL (the server's URL with this database).
    pub url: String,
}

impl Database {
    /// A fresh, empty database on the test server, or `None` (skipped).
    pub fn fresh(test: &str) -> Option<Database> {
        let (mut admin, admin_url) = connect(test)?;
        let name = unique("offpay", test);
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin_url.as_str(), String::new()),
        };
        let server = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
        let url = format!("{server}/{name}{query}");
        Some(Database {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
