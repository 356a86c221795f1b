//! Privacy by retention, on SQLite and on PostgreSQL (offpay-issuer's
//! `retention.rs`): after the window, the database holds no link between
//! the two wallets of a payment (every table is read generically from the
//! catalog), while balances, both books and the invariants are unchanged
//! and a later double spend on a pruned seq is still detected and proven.
//! Before the window, while a wallet is not checkpointed past the payment,
//! while it is pending, or while a double spend holds it, nothing is pruned.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_issuer::store::{CaseKind, CaseState, Store, WalletState};
use offpay_issuer::{Account, CaseOpening, Issuer, IssuerConfig, RetentionReport};
use offpay_protocol::evidence::verify_retained_double_spend_bytes;
use offpay_protocol::messages::ChainEntry;
use offpay_protocol::{Currency, Hash32, UnixSeconds, WalletId};
use offpay_store::AnyStore;
use offpay_test_support::pay;
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

mod common;
use common::{T0, customer_with_wallet, sync};

/// The window of these tests: one hour.
const WINDOW: u64 = 3_600;

fn config() -> IssuerConfig {
    let mut c = IssuerConfig::default_for(Currency::new("EUR").unwrap());
    c.retention_seconds = Some(WINDOW);
    c
}

/// Raw access to the database under an issuer: every row of every table,
/// each rendered as one JSON-like line (bytes as `\x` and lower-case hex).
enum Raw {
    Sqlite(std::path::PathBuf),
    Postgres { url: String, schema: String },
}

impl Raw {
    fn rows(&self) -> Vec<(String, String)> {
        match self {
            Raw::Sqlite(path) => sqlite_rows(path),
            Raw::Postgres { url, schema } => postgres_rows(url, schema),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sqlite_rows(path: &std::path::Path) -> Vec<(String, String)> {
    use rusqlite::types::ValueRef;
    let c = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(tables.len() > 15, "{tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let names: Vec<String> = st.column_names().map(str::to_string).collect();
        let mut rows = st.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let mut line = String::from("{");
            for (k, n) in names.iter().enumerate() {
                let v = match r.get_ref(k).unwrap() {
                    ValueRef::Null => "null".to_string(),
                    ValueRef::Integer(i) => i.to_string(),
                    ValueRef::Real(f) => f.to_string(),
                    ValueRef::Text(s) => format!("{:?}", String::from_utf8_lossy(s)),
                    ValueRef::Blob(b) => format!("\"\\\\x{}\"", hex(b)),
                };
                if k > 0 {
                    line.push(',');
                }
                line.push_str(&format!("\"{n}\":{v}"));
            }
            line.push('}');
            out.push((t.clone(), line));
        }
    }
    out
}

fn postgres_rows(url: &str, schema: &str) -> Vec<(String, String)> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.len() > 15, "{tables:?}");
    let mut out = Vec::new();
    for t in tables {
        for r in c
            .query(
                &format!("SELECT row_to_json(x)::text FROM \"{schema}\".\"{t}\" x"),
                &[],
            )
            .unwrap()
        {
            out.push((t.clone(), r.get::<_, String>(0).replace(' ', "")));
        }
    }
    out
}

/// Whether a rendered row has an integer column equal to `n`.
fn has_int(line: &str, n: i64) -> bool {
    line.contains(&format!(":{n},")) || line.contains(&format!(":{n}}}"))
}

/// One payment to look for: its two wallets, its amount and its id.
struct Paid {
    payer: WalletId,
    payee: WalletId,
    amount: i64,
    id: Hash32,
}

fn paid(payer: &Wallet<MemoryVault>, payee: &Wallet<MemoryVault>, bytes: &[u8]) -> Paid {
    let e = ChainEntry::decode(bytes).unwrap();
    Paid {
        payer: payer.wallet_id(),
        payee: payee.wallet_id(),
        amount: i64::try_from(e.amount().minor).unwrap(),
        id: e.hash(),
    }
}

/// Every row linking the payment's two wallets, or either wallet or its id
/// to its amount, or its id to its payee.
fn links(raw: &Raw, p: &Paid) -> Vec<(String, String)> {
    let (payer, payee, id) = (hex(&p.payer.0), hex(&p.payee.0), p.id.to_hex());
    raw.rows()
        .into_iter()
        .filter(|(_, l)| {
            let names = |w: &str| l.contains(w);
            (names(&payer) && names(&payee))
                || ((names(&payer) || names(&payee) || names(&id)) && has_int(l, p.amount))
                || (names(&id) && names(&payee))
        })
        .collect()
}

/// Every row naming the payment's two wallets together, or its id with its
/// payee or its amount (a payee of one payment keeps its total, which is
/// that payment's amount).
fn pair_links(raw: &Raw, p: &Paid) -> Vec<(String, String)> {
    let (payer, payee, id) = (hex(&p.payer.0), hex(&p.payee.0), p.id.to_hex());
    raw.rows()
        .into_iter()
        .filter(|(_, l)| {
            (l.contains(&payer) && l.contains(&payee))
                || (l.contains(&id) && (l.contains(&payee) || has_int(l, p.amount)))
        })
        .collect()
}

/// Run `f` on SQLite (a file) and PostgreSQL (a fresh schema), each with raw access.
fn on_every_backend(name: &str, f: impl Fn(&Issuer<AnyStore>, &Raw)) {
    const MASTER: [u8; 32] = [7u8; 32];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offpay.sqlite");
    let store = offpay_store::open_sqlite(&path).unwrap();
    let issuer = Issuer::init(store, &MASTER, &config(), T0).unwrap();
    eprintln!("[{name}] sqlite");
    f(&issuer, &Raw::Sqlite(path));
    let Some(guard) = offpay_test_support::postgres::Schema::fresh(name) else {
        return;
    };
    let store = offpay_store::open_postgres_schema(&guard.url, &guard.name).unwrap();
    let issuer = Issuer::init(store, &MASTER, &config(), T0).unwrap();
    eprintln!("[{name}] postgres schema {}", guard.name);
    f(
        &issuer,
        &Raw::Postgres {
            url: guard.url.clone(),
            schema: guard.name.clone(),
        },
    );
}

fn assert_books(issuer: &Issuer<AnyStore>) {
    let inv = issuer.invariants().unwrap();
    assert!(inv.ok, "invariants violated: {:?}", inv.violations);
}

/// Every wallet's and customer's balance and the clearing accounts.
fn balances(issuer: &Issuer<AnyStore>, ws: &[&Wallet<MemoryVault>]) -> Vec<i64> {
    let mut out: Vec<i64> = ws
        .iter()
        .map(|w| issuer.wallet_balance(&w.wallet_id()).unwrap())
        .collect();
    for w in ws {
        let customer = issuer.wallet(&w.wallet_id()).unwrap().customer;
        out.push(issuer.customer_balance(&customer).unwrap());
    }
    let mut tx = issuer.store().begin().unwrap();
    for a in [
        Account::Pool.to_string(),
        "retention:gl".into(),
        "retention:offline".into(),
    ] {
        out.push(tx.balance(&a).unwrap().unwrap());
    }
    out
}

fn run(issuer: &Issuer<AnyStore>, now: UnixSeconds) -> RetentionReport {
    issuer.run_retention(now, 100).unwrap()
}

#[test]
fn after_the_window_no_row_links_the_two_wallets_of_a_payment_and_a_later_double_spend_is_proven() {
    on_every_backend("retention_unlinks", |issuer, raw| {
        let mut alice = customer_with_wallet(issuer, "alice", 6_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let mut carol = customer_with_wallet(issuer, "carol", 1_000, 1_000);
        let mut dave = customer_with_wallet(issuer, "dave", 0, 0);
        // The attacker copies Alice's device before she pays.
        let mut clone = Wallet::open(alice.vault().clone()).unwrap();
        let ab = pay(&mut alice, &mut bob, 2_000, T0.plus(10));
        let ad = pay(&mut alice, &mut dave, 300, T0.plus(11));
        let cb = pay(&mut carol, &mut bob, 700, T0.plus(12));
        let cd = pay(&mut carol, &mut dave, 120, T0.plus(13));
        for w in [&mut alice, &mut bob, &mut carol, &mut dave] {
            sync(issuer, w, T0.plus(100));
        }
        let payments = [
            paid(&alice, &bob, &ab),
            paid(&alice, &dave, &ad),
            paid(&carol, &bob, &cb),
            paid(&carol, &dave, &cd),
        ];
        for p in &payments {
            assert!(!links(raw, p).is_empty(), "linked before retention");
        }
        let before = balances(issuer, &[&alice, &bob, &carol, &dave]);
        // Within the window: nothing.
        let early = run(issuer, T0.plus(100 + WINDOW - 1));
        assert_eq!((early.pruned, early.enabled), (0, true));
        // After it: all four, in batches of at most three. (Every wallet's
        // totals differ from each single payment's amount: what is left is
        // per-wallet totals only.)
        let now = T0.plus(100 + WINDOW);
        let first = issuer.run_retention(now, 3).unwrap();
        assert_eq!((first.pruned, first.more), (3, true));
        let second = issuer.run_retention(now, 3).unwrap();
        assert_eq!((second.pruned, second.more), (1, false));
        assert_eq!(run(issuer, now).pruned, 0, "idempotent");
        for p in &payments {
            assert_eq!(
                links(raw, p),
                Vec::<(String, String)>::new(),
                "still linked"
            );
        }
        assert_eq!(balances(issuer, &[&alice, &bob, &carol, &dave]), before);
        assert_books(issuer);
        // Honest syncs go on as before.
        for w in [&mut alice, &mut bob, &mut carol, &mut dave] {
            let out = sync(issuer, w, now.plus(10));
            assert_eq!(out.settled, 0);
            assert!(out.double_spends.is_empty());
        }
        assert_eq!(balances(issuer, &[&alice, &bob, &carol, &dave]), before);
        // The clone pays Carol with seq 1 again: detected against the
        // retained hash, proven by the issuer's statement.
        pay(&mut clone, &mut carol, 1_500, now.plus(20));
        let out = sync(issuer, &mut carol, now.plus(30));
        assert_eq!(out.double_spends, vec![(alice.wallet_id(), 1)]);
        assert_eq!(out.settled, 1, "the honest payee is paid (finality)");
        let ds = issuer.double_spends(Some(&alice.wallet_id()), 10).unwrap();
        assert_eq!(ds.len(), 1);
        let proven =
            verify_retained_double_spend_bytes(&ds[0].proof, issuer.root_certificate()).unwrap();
        assert_eq!(proven.payer, alice.wallet_id());
        assert_eq!(proven.seq, 1);
        assert_eq!(proven.entries[0], payments[0].id);
        assert_eq!(proven.amount.minor, 1_500);
        assert!(ds[0].entries.contains(&payments[0].id));
        // Against another root it does not verify.
        let other = offpay_test_support::scheme::Scheme::new(offpay_protocol::Suite::Ed25519);
        assert!(verify_retained_double_spend_bytes(&ds[0].proof, &other.root).is_err());
        assert_eq!(
            issuer.wallet(&alice.wallet_id()).unwrap().state,
            WalletState::Revoked
        );
        assert_books(issuer);
    });
}

#[test]
fn nothing_is_pruned_while_pending_not_checkpointed_or_held_by_a_double_spend() {
    on_every_backend("retention_keeps", |issuer, raw| {
        let mut alice = customer_with_wallet(issuer, "alice", 5_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let mut carol = customer_with_wallet(issuer, "carol", 0, 0);
        let mut dave = customer_with_wallet(issuer, "dave", 2_000, 2_000);
        // Pending: Alice reports, Bob never does.
        let ab = pay(&mut alice, &mut bob, 1_000, T0.plus(10));
        sync(issuer, &mut alice, T0.plus(100));
        // Not checkpointed: Carol reports Dave's payment, Dave never syncs.
        let dc = pay(&mut dave, &mut carol, 400, T0.plus(11));
        sync(issuer, &mut carol, T0.plus(100));
        let late = T0.plus(100 + 10 * WINDOW);
        assert_eq!(run(issuer, late).pruned, 0);
        assert!(!pair_links(raw, &paid(&alice, &bob, &ab)).is_empty());
        assert!(!pair_links(raw, &paid(&dave, &carol, &dc)).is_empty());
        // Once delivered and checkpointed, both go.
        sync(issuer, &mut bob, late);
        sync(issuer, &mut dave, late);
        assert_eq!(run(issuer, late.plus(WINDOW)).pruned, 2);
        assert!(pair_links(raw, &paid(&alice, &bob, &ab)).is_empty());
        assert!(pair_links(raw, &paid(&dave, &carol, &dc)).is_empty());
        assert_books(issuer);

        // Held by a double spend: kept whole after the window.
        let mut eve = customer_with_wallet(issuer, "eve", 3_000, 3_000);
        let mut clone = Wallet::open(eve.vault().clone()).unwrap();
        let t = late.plus(2 * WINDOW);
        let eb = pay(&mut eve, &mut bob, 500, t);
        pay(&mut clone, &mut carol, 600, t.plus(1));
        sync(issuer, &mut eve, t.plus(10));
        sync(issuer, &mut bob, t.plus(10));
        let out = sync(issuer, &mut carol, t.plus(10));
        assert_eq!(out.double_spends, vec![(eve.wallet_id(), 1)]);
        assert_eq!(run(issuer, t.plus(10 * WINDOW)).pruned, 0);
        let kept = pair_links(raw, &paid(&eve, &bob, &eb));
        assert!(kept.iter().any(|(t, _)| t == "entries"), "{kept:?}");
        assert_books(issuer);
    });
}

/// A payment an open dispute case holds is kept whole past the window;
/// once the case is closed the payment is pruned, and the closed case keeps
/// its decision but no evidence naming the payee.
#[test]
fn a_payment_is_kept_while_a_case_holds_it_then_pruned_with_the_cases_evidence() {
    on_every_backend("retention_cases", |issuer, raw| {
        let mut alice = customer_with_wallet(issuer, "alice", 5_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let ab = pay(&mut alice, &mut bob, 900, T0.plus(10));
        sync(issuer, &mut alice, T0.plus(100));
        sync(issuer, &mut bob, T0.plus(100));
        let c = issuer
            .open_case(
                &CaseOpening {
                    kind: CaseKind::PaidNotReceived,
                    payer: alice.wallet_id(),
                    seq: Some(1),
                    opened_by: "ops".into(),
                    note: "the shop says no".into(),
                },
                T0.plus(200),
            )
            .unwrap();
        let late = T0.plus(100 + 10 * WINDOW);
        let out = run(issuer, late);
        assert_eq!((out.pruned, out.held_by_cases), (0, 1));
        let p = paid(&alice, &bob, &ab);
        assert!(
            pair_links(raw, &p).iter().any(|(t, _)| t == "entries"),
            "the held entry is whole"
        );
        issuer.decide_case(c.id, "ops", "", late).unwrap();
        let closed = issuer.resolve_case(c.id, "ops", "", late).unwrap();
        assert_eq!(closed.decision.as_deref(), Some("payee_holds"));
        assert_eq!(closed.state, CaseState::Rejected);
        let out = run(issuer, late.plus(1));
        assert_eq!((out.pruned, out.held_by_cases), (1, 0));
        assert_eq!(pair_links(raw, &p), Vec::<(String, String)>::new());
        let (kept, events) = issuer.case(c.id).unwrap();
        assert_eq!(kept.state, CaseState::Rejected);
        assert_eq!(kept.decision.as_deref(), Some("payee_holds"));
        assert!(kept.bundle.is_empty() && kept.entry.is_none() && kept.amount == 0);
        assert_eq!(
            events.len(),
            3,
            "opened, decided, rejected: the history stays"
        );
        assert_books(issuer);
    });
}

#[test]
fn without_a_window_nothing_is_ever_pruned() {
    on_every_backend("retention_off", |issuer, raw| {
        issuer.set_retention_seconds(None).unwrap();
        assert_eq!(issuer.retention_seconds().unwrap(), None);
        let mut alice = customer_with_wallet(issuer, "alice", 5_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let ab = pay(&mut alice, &mut bob, 1_000, T0.plus(10));
        sync(issuer, &mut alice, T0.plus(100));
        sync(issuer, &mut bob, T0.plus(100));
        let r = run(issuer, T0.plus(1_000 * WINDOW));
        assert_eq!((r.pruned, r.enabled), (0, false));
        assert!(!pair_links(raw, &paid(&alice, &bob, &ab)).is_empty());
        // A window over the maximum is refused and changes nothing.
        assert!(issuer.set_retention_seconds(Some(u64::MAX / 2)).is_err());
        assert_eq!(issuer.retention_seconds().unwrap(), None);
        issuer.set_retention_seconds(Some(WINDOW)).unwrap();
        assert_eq!(run(issuer, T0.plus(1_000 * WINDOW)).pruned, 1);
        // The export still names what the issuer holds, the pruned entry by hash only.
        let x = issuer.export_wallet(&alice.wallet_id()).unwrap();
        assert_eq!(x.entries.len(), 1);
        assert!(x.entries[0].is_pruned());
        assert_eq!(x.entries[0].payee, None);
        assert_eq!(x.vouchers.len(), 1);
        assert!(!x.checkpoints.is_empty());
        assert_books(issuer);
    });
}

#[test]
fn a_returned_payment_is_pruned_with_its_return_postings() {
    on_every_backend("retention_returned", |issuer, raw| {
        let mut dave = customer_with_wallet(issuer, "dave", 2_000, 2_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        // Dave pays; the payment never reaches Bob's TA.
        let req = bob
            .request(offpay_test_support::eur(250), 300, T0.plus(10))
            .unwrap();
        let lost = dave.pay(&req, T0.plus(10)).unwrap();
        sync(issuer, &mut dave, T0.plus(100));
        let window = issuer.lifecycle_rules().unwrap().return_after_seconds;
        let back = T0.plus(100 + window + 10);
        let out = sync(issuer, &mut bob, back);
        assert_eq!(out.returned.count, 1);
        let p = paid(&dave, &bob, &lost);
        assert!(!pair_links(raw, &p).is_empty());
        let before = balances(issuer, &[&dave, &bob]);
        let r = run(issuer, back.plus(WINDOW));
        assert_eq!(r.pruned, 1);
        assert!(r.postings_folded >= 3, "{r:?}");
        assert_eq!(pair_links(raw, &p), Vec::<(String, String)>::new());
        assert_eq!(balances(issuer, &[&dave, &bob]), before);
        assert_books(issuer);
        // Dave's rolled-back copy could not pay the same seq unseen: a
        // honest resend of the pruned entry is no double spend and settles nothing.
        let out = sync(issuer, &mut dave, back.plus(WINDOW + 10));
        assert!(out.double_spends.is_empty());
        assert_eq!(out.settled, 0);
        assert_books(issuer);
    });
}
