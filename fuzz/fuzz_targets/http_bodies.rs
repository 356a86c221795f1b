//! The HTTP API in process (the server's own router over a SQLite copy of the
//! fixture issuer): every route fed an arbitrary body, content type and
//! operator token. No request may panic or answer 5xx, and the ledger
//! invariants hold afterwards.
//!
//! Input: byte 0 picks the route, byte 1 the content type (bits 0-1) and
//! whether the operator token is sent (bit 2); bytes 2.. are the body. The
//! wallet routes name the fixture's payer.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, header};
use libfuzzer_sys::fuzz_target;
use offpay_fuzz::{
    Fixture, HTTP_CONTENT_TYPES, HTTP_ROUTES, MASTER, OPERATOR_TOKEN, build_fixture,
};
use offpay_issuer::Issuer;
use offpay_server::{AppState, router};
use offpay_store::{AnyStore, SqliteStore};
use tower::ServiceExt;

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    // The server reads the wall clock: build the fixture at the same clock.
    F.get_or_init(|| build_fixture(offpay_server::api::now()))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static R: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    R.get_or_init(|| {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => panic!("runtime: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let [route, flags, body @ ..] = data else {
        return;
    };
    let f = fixture();
    let (method, path) = HTTP_ROUTES[usize::from(*route) % HTTP_ROUTES.len()];
    let path = path.replace("{w}", &f.payer.to_hex());
    let Ok(db) = f.fresh_db() else {
        panic!("fixture database");
    };
    let issuer = match SqliteStore::open(&db)
        .map_err(|e| format!("{e:?}"))
        .and_then(|s| Issuer::open(AnyStore::Sqlite(s), &MASTER).map_err(|e| format!("{e:?}")))
    {
        Ok(i) => Arc::new(i),
        Err(e) => panic!("fixture issuer: {e}"),
    };
    let app = router(AppState::new(issuer.clone(), OPERATOR_TOKEN));
    let mut req = Request::builder().method(method).uri(path.as_str()).header(
        header::CONTENT_TYPE,
        HTTP_CONTENT_TYPES[usize::from(flags & 3)],
    );
    if flags & 4 != 0 {
        req = req.header(header::AUTHORIZATION, format!("Bearer {OPERATOR_TOKEN}"));
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else {
        return;
    };
    let resp = match runtime().block_on(app.oneshot(req)) {
        Ok(r) => r,
        Err(e) => match e {},
    };
    let status = resp.status();
    assert!(
        !status.is_server_error(),
        "{method} {path} answered {status}"
    );
    let report = match issuer.invariants() {
        Ok(r) => r,
        Err(e) => panic!("invariants unreadable: {e:?}"),
    };
    assert!(
        report.ok,
        "ledger invariants violated: {:?}",
        report.violations
    );
});
