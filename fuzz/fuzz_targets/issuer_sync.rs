//! The issuer's sync on a SQLite copy of the fixture's database, fed
//! arbitrary report bytes (raw, or edits of the payer's valid report): the
//! ledger invariants hold after every input, and a refused report changes
//! nothing the issuer holds (ledger sums, both wallets' records, double spends).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use offpay_fuzz::{Fixture, IssuerSnapshot, T0, build_fixture, message, open_issuer};

struct Case {
    fixture: Fixture,
    before: IssuerSnapshot,
}

fn case() -> &'static Case {
    static C: OnceLock<Case> = OnceLock::new();
    C.get_or_init(|| {
        let fixture = build_fixture(T0);
        let before = match fixture.fresh_db().and_then(|p| open_issuer(&p)) {
            Ok(i) => IssuerSnapshot::of(&i, &fixture.payer, &fixture.payee),
            Err(e) => panic!("fixture issuer: {e:?}"),
        };
        Case { fixture, before }
    })
}

fuzz_target!(|data: &[u8]| {
    let c = case();
    let f = &c.fixture;
    let report = message(data, &f.report);
    let issuer = match f.fresh_db().and_then(|p| open_issuer(&p)) {
        Ok(i) => i,
        Err(e) => panic!("fixture issuer: {e:?}"),
    };
    let result = issuer.sync(&report, f.report_at.plus(1));
    let after = IssuerSnapshot::of(&issuer, &f.payer, &f.payee);
    match result {
        Err(e) => assert!(after == c.before, "refused report ({e}) changed the issuer"),
        Ok(out) => {
            // Only the payer's own signed report is accepted, and it settles at
            // most its own entries (one payment, one redeem).
            assert!(out.settled <= 2, "settled {} entries", out.settled);
            assert!(
                out.entries_recorded <= 2,
                "recorded {}",
                out.entries_recorded
            );
        }
    }
});
