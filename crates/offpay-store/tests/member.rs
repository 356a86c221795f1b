//! Two member issuers of one scheme, in-process, on SQLite and on
//! PostgreSQL: the root is built here (no scheme crate), the claims are
//! moved between the issuers by hand (outbox of one -> inbox of the other),
//! and the settlement statements are signed here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_issuer::store::{Store, WalletState};
use offpay_issuer::{
    Account, ClaimAck, ClaimDirection, ClaimFilter, ClaimState, Issuer, IssuerConfig, IssuerError,
    SchemeProblem,
};
use offpay_protocol::entropy::SeededEntropy;
use offpay_protocol::envelope::Signed;
use offpay_protocol::evidence::verify_double_spend_bytes;
use offpay_protocol::messages::{
    Directory, DirectoryEntry, SettlementStatement, StatementLine, statement_digest,
};
use offpay_protocol::pki::{self, Certificate};
use offpay_protocol::{Hash32, IssuerStatus, SigningKey, Suite, UnixSeconds};
use offpay_store::AnyStore;
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

use offpay_test_support::postgres::Schema;
use offpay_test_support::{eur, eur_currency, pay};

mod common;
use common::{T0, sync};

/// A customer with `online` minor units and an enrolled wallet holding
/// `offline`, synced once so that it holds the scheme directory.
fn member_wallet(
    issuer: &Issuer<AnyStore>,
    id: &str,
    online: u64,
    offline: u64,
) -> Wallet<MemoryVault> {
    let mut w = common::customer_with_wallet(issuer, id, online, offline);
    sync(issuer, &mut w, T0.plus(1));
    w
}

const MASTER: [u8; 32] = [42u8; 32];
const FAR: u64 = 10 * 365 * 86_400;

/// The scheme, as far as these tests need it: its root key and certificate.
struct Root {
    key: SigningKey,
    cert: Certificate,
}

fn root() -> Root {
    let key = SigningKey::from_seed(Suite::Ed25519, &[9u8; 32]).unwrap();
    let cert = pki::issue_root(&key, "test scheme root", 1, T0, T0.plus(FAR)).unwrap();
    Root { key, cert }
}

fn config() -> IssuerConfig {
    IssuerConfig::default_for(eur_currency())
}

/// A member issuer: CSR, certificate from the root, init.
fn member(store: AnyStore, root: &Root, code: &str, serial: u64) -> Issuer<AnyStore> {
    let entropy = SeededEntropy::shared(serial, code);
    let csr = Issuer::member_csr(&store, &MASTER, &config(), code, entropy.clone()).unwrap();
    // Idempotent: the same code gives the same CSR; another code is refused.
    assert_eq!(
        Issuer::member_csr(&store, &MASTER, &config(), code, entropy.clone()).unwrap(),
        csr
    );
    assert!(matches!(
        Issuer::member_csr(&store, &MASTER, &config(), "other", entropy.clone()),
        Err(IssuerError::Scheme(SchemeProblem::CodeMismatch { .. }))
    ));
    let req = pki::parse_ca_csr(&csr).unwrap();
    assert_eq!(req.common_name, code);
    let ca = pki::issue_issuer_ca(
        &root.key,
        &root.cert,
        &req.public_key,
        code,
        serial,
        T0,
        T0.plus(FAR),
    )
    .unwrap();
    let issuer = Issuer::init_member(
        store,
        &MASTER,
        &config(),
        root.cert.der(),
        ca.der(),
        T0,
        entropy,
    )
    .unwrap();
    assert!(issuer.is_member());
    assert_eq!(issuer.issuer_id(), ca.subject_issuer_id());
    issuer
}

/// A root-signed directory listing `issuers` at `version`.
fn directory(root: &Root, issuers: &[&Issuer<AnyStore>], version: u64) -> Vec<u8> {
    let issuer_crl = pki::issue_crl(&root.key, &root.cert, version, T0, T0.plus(FAR), &[]).unwrap();
    let mut entries: Vec<DirectoryEntry> = issuers
        .iter()
        .map(|i| DirectoryEntry {
            code: i.issuer_certificate().subject_cn().to_string(),
            status: IssuerStatus::Active,
            changed: version,
            ca_cert: i.issuer_certificate().der().to_vec(),
            crl: Some(i.crl().unwrap()),
        })
        .collect();
    entries.sort_by(|a, b| a.code.cmp(&b.code));
    Signed::sign(
        Directory {
            version,
            time: T0,
            currency: eur_currency(),
            issuer_crl: issuer_crl.der().to_vec(),
            issuers: entries,
        },
        &root.key,
    )
    .into_bytes()
}

/// Run `f` with two member issuers of one scheme on SQLite, then on PostgreSQL.
fn on_every_backend(name: &str, f: impl Fn(&Root, &Issuer<AnyStore>, &Issuer<AnyStore>)) {
    let r = root();
    let dir = tempfile::tempdir().unwrap();
    let a = offpay_store::open_sqlite(&dir.path().join("a.sqlite")).unwrap();
    let b = offpay_store::open_sqlite(&dir.path().join("b.sqlite")).unwrap();
    eprintln!("[{name}] sqlite");
    f(&r, &member(a, &r, "bank-a", 2), &member(b, &r, "bank-b", 3));

    let (Some(ga), Some(gb)) = (
        Schema::fresh(&format!("{name}_a")),
        Schema::fresh(&format!("{name}_b")),
    ) else {
        return;
    };
    let a = offpay_store::open_postgres_schema(&ga.url, &ga.name).unwrap();
    let b = offpay_store::open_postgres_schema(&gb.url, &gb.name).unwrap();
    eprintln!("[{name}] postgres schemas {} {}", ga.name, gb.name);
    f(&r, &member(a, &r, "bank-a", 2), &member(b, &r, "bank-b", 3));
}

fn sub(issuer: &Issuer<AnyStore>, w: &Wallet<MemoryVault>) -> i64 {
    issuer.wallet_balance(&w.wallet_id()).unwrap()
}

fn assert_invariants(issuer: &Issuer<AnyStore>) {
    let inv = issuer.invariants().unwrap();
    assert!(inv.ok, "invariants violated: {:?}", inv.violations);
}

fn balance(issuer: &Issuer<AnyStore>, a: &Account) -> i64 {
    let mut tx = issuer.store().begin().unwrap();
    tx.balance(&a.to_string()).unwrap().unwrap_or(0)
}

/// Move the outbox of `from` to `to` and the answers back: what the scheme does.
fn deliver(from: &Issuer<AnyStore>, to: &Issuer<AnyStore>, now: UnixSeconds) -> Vec<ClaimAck> {
    let out = from.claims_to_submit(100).unwrap();
    let acks = to.apply_scheme_claims(&out, now).unwrap();
    from.claims_submitted(&acks, now).unwrap();
    acks.into_iter().map(|(_, a)| a).collect()
}

/// The root-signed statement of `cycle` for `issuer`, from its own open claims.
fn statement_for(root: &Root, issuer: &Issuer<AnyStore>, cycle: u64) -> (Vec<u8>, Vec<Hash32>) {
    let open = issuer
        .claims(&ClaimFilter {
            open_only: true,
            ..ClaimFilter::default()
        })
        .unwrap();
    let mut lines = std::collections::BTreeMap::new();
    for c in &open {
        let l = lines
            .entry(c.counterparty)
            .or_insert((0u64, 0u64, Vec::new()));
        match c.direction {
            ClaimDirection::Receivable => l.0 += c.amount as u64,
            ClaimDirection::Payable => l.1 += c.amount as u64,
        }
        l.2.push(c.id);
    }
    let lines = lines
        .into_iter()
        .map(|(counterparty, (r, p, mut ids))| StatementLine {
            counterparty,
            receivable_minor: r,
            payable_minor: p,
            claims: ids.len() as u64,
            digest: statement_digest(&mut ids),
        })
        .collect();
    let st = Signed::sign(
        SettlementStatement {
            cycle,
            issuer: issuer.issuer_id(),
            time: T0.plus(1_000),
            currency: eur_currency(),
            lines,
        },
        &root.key,
    )
    .into_bytes();
    (st, open.iter().map(|c| c.id).collect())
}

fn install(root: &Root, a: &Issuer<AnyStore>, b: &Issuer<AnyStore>) {
    let d = directory(root, &[a, b], 1);
    assert_eq!(a.install_directory(&d, T0).unwrap(), 1);
    assert_eq!(b.install_directory(&d, T0).unwrap(), 1);
    // The same directory again is a no-op; an older one is refused.
    assert_eq!(a.install_directory(&d, T0).unwrap(), 1);
    let d2 = directory(root, &[a, b], 2);
    assert_eq!(a.install_directory(&d2, T0).unwrap(), 2);
    assert_eq!(b.install_directory(&d2, T0).unwrap(), 2);
    assert!(matches!(
        a.install_directory(&d, T0),
        Err(IssuerError::Scheme(SchemeProblem::DirectoryNotNewer { .. }))
    ));
    assert_eq!(a.directory_version(), 2);
}

#[test]
fn two_member_issuers_settle_payments_both_ways() {
    on_every_backend("member_story", |root, a, b| {
        let (mut alice, mut dave, mut erin, mut bob) = both_ways(root, a, b);
        fork_across_issuers(a, b, &mut erin, &mut bob, &mut dave);
        refusals_post_nothing(a, b, &mut alice, &mut dave);
        statements_close_the_cycle(root, a, b);
        fork_of_a_foreign_payer(root, a, b);
        unknown_issuer_until_the_directory_lists_it(root, a, b);
    });
}

/// A payment by a wallet of a third issuer C to Bob@B, brought as a claim
/// before B's directory lists C: refused (`unknown_issuer`), nothing posted;
/// once B installs a directory with C, the same claim is accepted.
fn unknown_issuer_until_the_directory_lists_it(
    root: &Root,
    a: &Issuer<AnyStore>,
    b: &Issuer<AnyStore>,
) {
    let c = member(
        offpay_store::open_sqlite_memory().unwrap(),
        root,
        "bank-c",
        4,
    );
    let d3 = directory(root, &[a, b, &c], 3);
    c.install_directory(&d3, T0).unwrap();
    let mut ivan = member_wallet(&c, "ivan", 5_000, 3_000);
    let mut jo = member_wallet(b, "jo", 0, 0);
    let req = jo.request(eur(700), 300, T0.plus(1_100)).unwrap();
    let payment = ivan.pay(&req, T0.plus(1_100)).unwrap();
    let before = b.invariants().unwrap().totals;
    let r = b
        .apply_scheme_claims(&[claim(&payment)], T0.plus(1_110))
        .unwrap();
    assert_eq!(
        r[0].1,
        ClaimAck::Refused {
            code: "unknown_issuer".into()
        }
    );
    assert_eq!(b.invariants().unwrap().totals, before, "nothing posted");
    // The claim is about B and C only: A is no party to it.
    let r = a
        .apply_scheme_claims(&[claim(&payment)], T0.plus(1_111))
        .unwrap();
    assert_eq!(
        r[0].1,
        ClaimAck::Refused {
            code: "not_a_party".into()
        }
    );
    assert_eq!(b.install_directory(&d3, T0).unwrap(), 3);
    let r = b
        .apply_scheme_claims(&[claim(&payment)], T0.plus(1_120))
        .unwrap();
    assert_eq!(r[0].1, ClaimAck::Accepted);
    assert_eq!(sub(b, &jo), 700, "finality: Jo is paid on Ivan's signature");
    assert_eq!(balance(b, &Account::Peer(c.issuer_id())), -700);
    assert_invariants(b);
    // Jo's wallet learns C at its next sync (the directory update).
    sync(b, &mut jo, T0.plus(1_130));
}

/// Frank@A and his clone pay two wallets of B: B proves the fork but does not
/// revoke (Frank is not its wallet), both payees are paid and both entries go
/// out as claims; A, given both, proves it too and revokes. Cycle 2 settles them.
fn fork_of_a_foreign_payer(root: &Root, a: &Issuer<AnyStore>, b: &Issuer<AnyStore>) {
    let mut frank = member_wallet(a, "frank", 3_000, 2_000);
    let mut gina = member_wallet(b, "gina", 0, 0);
    let mut hank = member_wallet(b, "hank", 0, 0);
    let mut clone = Wallet::open(frank.vault().clone()).unwrap();
    pay(&mut frank, &mut gina, 1_500, T0.plus(800));
    pay(&mut clone, &mut hank, 1_200, T0.plus(801));
    let og = sync(b, &mut gina, T0.plus(810));
    assert!(og.double_spends.is_empty());
    let oh = sync(b, &mut hank, T0.plus(811));
    assert_eq!(oh.double_spends, vec![(frank.wallet_id(), 1)]);
    assert_eq!((sub(b, &gina), sub(b, &hank)), (1_500, 1_200));
    let ds = b.double_spends(Some(&frank.wallet_id()), 10).unwrap();
    assert_eq!(ds.len(), 1);
    let proven = verify_double_spend_bytes(&ds[0].proof, b.root_certificate()).unwrap();
    assert_eq!(proven.payer, frank.wallet_id());
    assert!(matches!(
        b.wallet(&frank.wallet_id()),
        Err(IssuerError::UnknownWallet)
    ));
    assert_invariants(b);
    // Both entries go out; A records the first, proves the second.
    assert_eq!(b.claims_to_submit(100).unwrap().len(), 2);
    assert_eq!(
        deliver(b, a, T0.plus(820)),
        vec![ClaimAck::Accepted, ClaimAck::Accepted]
    );
    let rec = a.wallet(&frank.wallet_id()).unwrap();
    assert_eq!(rec.state, WalletState::Revoked);
    // 2,000 held, 2,700 spent: the 700 overspent comes back from his 1,000 online.
    assert_eq!((rec.clawed_back, rec.guaranteed), (700, 0));
    assert_eq!(sub(a, &frank), 0);
    for i in [a, b] {
        assert_invariants(i);
    }
    let (ida, idb) = (a.issuer_id(), b.issuer_id());
    assert_eq!(balance(a, &Account::Peer(idb)), 2_700);
    assert_eq!(balance(b, &Account::Peer(ida)), -2_700);
    // Cycle 2 closes them on both sides.
    let (sa, ids_a) = statement_for(root, a, 2);
    let (sb, ids_b) = statement_for(root, b, 2);
    assert_eq!(ids_a.len(), 2);
    assert!(a.apply_statement(&sa, &ids_a, T0.plus(900)).unwrap().posted);
    assert!(b.apply_statement(&sb, &ids_b, T0.plus(900)).unwrap().posted);
    assert_eq!(balance(a, &Account::Settlement), 5_500 + 2_700);
    assert_eq!(balance(b, &Account::Settlement), -(5_500 + 2_700));
    assert_eq!(a.last_statement_cycle().unwrap(), 2);
    for i in [a, b] {
        assert_invariants(i);
    }
}

type W = Wallet<MemoryVault>;

/// Alice@A pays Bob@B, Carol@B pays Dave@A; the claims move both ways.
fn both_ways(root: &Root, a: &Issuer<AnyStore>, b: &Issuer<AnyStore>) -> (W, W, W, W) {
    {
        install(root, a, b);
        let mut alice = member_wallet(a, "alice", 20_000, 10_000);
        let mut dave = member_wallet(a, "dave", 0, 0);
        let erin = member_wallet(a, "erin", 6_000, 5_000);
        let mut bob = member_wallet(b, "bob", 0, 0);
        let mut carol = member_wallet(b, "carol", 10_000, 5_000);

        // Alice@A pays Bob@B; Carol@B pays Dave@A (Carol does not sync).
        let p1 = pay(&mut alice, &mut bob, 2_500, T0.plus(10));
        let p2 = pay(&mut carol, &mut dave, 1_000, T0.plus(11));
        let ob = sync(b, &mut bob, T0.plus(100));
        assert_eq!(ob.settled, 1);
        assert_eq!(sub(b, &bob), 2_500);
        sync(a, &mut alice, T0.plus(101));
        sync(a, &mut dave, T0.plus(102));
        assert_eq!(sub(a, &dave), 1_000);
        assert_eq!(sub(a, &alice), 7_500);
        for i in [a, b] {
            assert_invariants(i);
        }
        let outbox_a = a.claims(&ClaimFilter {
            state: Some(ClaimState::Outbox),
            ..ClaimFilter::default()
        });
        assert_eq!(outbox_a.unwrap().len(), 2);

        // A's outbox to B: Bob's payment B already holds, Carol's B records as her issuer.
        let acks = deliver(a, b, T0.plus(200));
        assert_eq!(acks.iter().filter(|k| **k == ClaimAck::Accepted).count(), 1);
        assert_eq!(
            acks.iter()
                .filter(|k| **k == ClaimAck::AlreadyKnown)
                .count(),
            1
        );
        assert_eq!(
            sub(b, &carol),
            4_000,
            "Carol's payment settled at her issuer"
        );
        // B acknowledged Bob's receivable from A's outbox: holding it, B need not submit it.
        assert_eq!(deliver(b, a, T0.plus(201)), Vec::<ClaimAck>::new());
        let known_b = b.claims(&ClaimFilter {
            state: Some(ClaimState::Known),
            ..ClaimFilter::default()
        });
        assert_eq!(known_b.unwrap().len(), 2);
        assert!(a.claims_to_submit(100).unwrap().is_empty());
        assert!(b.claims_to_submit(100).unwrap().is_empty());

        // Replays change nothing.
        let before = (
            a.invariants().unwrap().totals,
            b.invariants().unwrap().totals,
        );
        let pays = [claim(&p1), claim(&p2)];
        for (id, bytes) in &pays {
            let again = b
                .apply_scheme_claims(&[(*id, bytes.clone())], T0.plus(300))
                .unwrap();
            assert_eq!(again[0].1, ClaimAck::AlreadyKnown);
        }
        assert_eq!(
            (
                a.invariants().unwrap().totals,
                b.invariants().unwrap().totals
            ),
            before
        );
        // Carol syncs at last: nothing settles twice.
        let oc = sync(b, &mut carol, T0.plus(310));
        assert_eq!(oc.settled, 0);
        assert_eq!(sub(b, &carol), 4_000);
        assert_eq!(carol.balance().unwrap().minor, 4_000);

        // Each side's account with the other is the mirror image.
        let (ida, idb) = (a.issuer_id(), b.issuer_id());
        assert_eq!(balance(a, &Account::Peer(idb)), 1_500);
        assert_eq!(balance(b, &Account::Peer(ida)), -1_500);
        let pa = a.peer_positions().unwrap();
        assert_eq!(pa.len(), 1);
        assert_eq!(
            (
                pa[0].peer,
                pa[0].open_payable,
                pa[0].open_receivable,
                pa[0].account
            ),
            (idb, 2_500, 1_000, 1_500)
        );
        (alice, dave, erin, bob)
    }
}

/// A fork split across the issuers: Erin@A pays Bob@B, her clone pays Dave@A.
fn fork_across_issuers(
    a: &Issuer<AnyStore>,
    b: &Issuer<AnyStore>,
    erin: &mut W,
    bob: &mut W,
    dave: &mut W,
) {
    let (ida, idb) = (a.issuer_id(), b.issuer_id());
    {
        // A fork split across the issuers: Erin@A pays Bob@B, her clone pays Dave@A.
        let mut clone = Wallet::open(erin.vault().clone()).unwrap();
        pay(erin, bob, 4_000, T0.plus(400));
        pay(&mut clone, dave, 4_000, T0.plus(401));
        sync(b, bob, T0.plus(410));
        let od = sync(a, dave, T0.plus(411));
        assert!(od.double_spends.is_empty(), "A sees one entry only");
        assert_eq!(deliver(b, a, T0.plus(420)), vec![ClaimAck::Accepted]);
        // Proven at the payer's issuer: revoked, both payees paid, the loss covered.
        let ds = a.double_spends(None, 10).unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].payer, erin.wallet_id());
        let proven = verify_double_spend_bytes(&ds[0].proof, a.root_certificate()).unwrap();
        assert_eq!(proven.payer, erin.wallet_id());
        let rec = a.wallet(&erin.wallet_id()).unwrap();
        assert_eq!(rec.state, WalletState::Revoked);
        assert_eq!((rec.clawed_back, rec.guaranteed), (1_000, 2_000));
        assert_eq!(sub(a, erin), 0);
        assert_eq!(sub(a, dave), 5_000);
        assert_eq!(sub(b, bob), 6_500);
        for i in [a, b] {
            assert_invariants(i);
        }
        assert_eq!(
            balance(a, &Account::Peer(idb)) + balance(b, &Account::Peer(ida)),
            0
        );
    }
}

/// Claims that are no claims, and unknown acknowledgements, change nothing.
fn refusals_post_nothing(a: &Issuer<AnyStore>, b: &Issuer<AnyStore>, alice: &mut W, dave: &mut W) {
    {
        // Refusals post nothing.
        let before = (
            a.invariants().unwrap().totals,
            b.invariants().unwrap().totals,
        );
        let junk = a
            .apply_scheme_claims(&[(Hash32([7; 32]), vec![1, 2, 3])], T0.plus(500))
            .unwrap();
        assert_eq!(
            junk[0].1,
            ClaimAck::Refused {
                code: "malformed_entry".into()
            }
        );
        // A payment between two wallets of A is no claim.
        let local = pay(alice, dave, 100, T0.plus(501));
        let r = a
            .apply_scheme_claims(&[claim(&local)], T0.plus(502))
            .unwrap();
        assert_eq!(
            r[0].1,
            ClaimAck::Refused {
                code: "not_cross_issuer".into()
            }
        );
        {
            let mut tx = a.store().begin().unwrap();
            assert_eq!(
                tx.claim_refusal(&claim(&local).0).unwrap().as_deref(),
                Some("not_cross_issuer"),
                "the refusal is recorded"
            );
        }
        // An id that is not the payment's.
        let r = b
            .apply_scheme_claims(&[(Hash32([1; 32]), local)], T0.plus(503))
            .unwrap();
        assert_eq!(
            r[0].1,
            ClaimAck::Refused {
                code: "claim_id_mismatch".into()
            }
        );
        assert!(matches!(
            a.claims_submitted(&[(Hash32([3; 32]), ClaimAck::Accepted)], T0.plus(504)),
            Err(IssuerError::Scheme(SchemeProblem::UnknownClaim { .. }))
        ));
        assert_eq!(
            (
                a.invariants().unwrap().totals,
                b.invariants().unwrap().totals
            ),
            before
        );
    }
}

/// Cycle 1: a statement for each side, signed by the root, posted on both.
fn statements_close_the_cycle(root: &Root, a: &Issuer<AnyStore>, b: &Issuer<AnyStore>) {
    let (ida, idb) = (a.issuer_id(), b.issuer_id());
    {
        // Cycle 1: a statement for each side, signed by the root, posted on both.
        let (sa, ids_a) = statement_for(root, a, 1);
        let (sb, ids_b) = statement_for(root, b, 1);
        assert_eq!(ids_a.len(), 3);
        // A mismatch posts nothing: B's claim list at A, a statement for B at A.
        assert!(matches!(
            a.apply_statement(&sa, &ids_a[..2], T0.plus(600)),
            Err(IssuerError::Scheme(SchemeProblem::StatementMismatch { .. }))
        ));
        assert!(matches!(
            a.apply_statement(&sb, &ids_b, T0.plus(600)),
            Err(IssuerError::Scheme(SchemeProblem::StatementNotOurs))
        ));
        let forged = Signed::sign(
            Signed::<SettlementStatement>::decode(&sa)
                .unwrap()
                .body()
                .clone(),
            &SigningKey::from_seed(Suite::Ed25519, &[5u8; 32]).unwrap(),
        )
        .into_bytes();
        assert!(matches!(
            a.apply_statement(&forged, &ids_a, T0.plus(600)),
            Err(IssuerError::BadSignature(_))
        ));
        assert_eq!(a.last_statement_cycle().unwrap(), 0);
        let oa = a.apply_statement(&sa, &ids_a, T0.plus(600)).unwrap();
        let ob = b.apply_statement(&sb, &ids_b, T0.plus(600)).unwrap();
        assert!(oa.posted && ob.posted);
        assert_eq!(oa.net, 1_000 - 6_500);
        assert_eq!(oa.net, -ob.net);
        assert_eq!(balance(a, &Account::Settlement), 5_500);
        assert_eq!(balance(b, &Account::Settlement), -5_500);
        assert_eq!(balance(a, &Account::Peer(idb)), 0);
        assert_eq!(balance(b, &Account::Peer(ida)), 0);
        assert_eq!(a.last_statement_cycle().unwrap(), 1);
        for i in [a, b] {
            assert_invariants(i);
        }
        // Replayed: nothing changes; another statement for cycle 1 is refused.
        let before = a.invariants().unwrap().totals;
        assert!(!a.apply_statement(&sa, &ids_a, T0.plus(700)).unwrap().posted);
        let mut body = Signed::<SettlementStatement>::decode(&sa)
            .unwrap()
            .body()
            .clone();
        body.time = body.time.plus(1);
        let other = Signed::sign(body, &root.key).into_bytes();
        assert!(matches!(
            a.apply_statement(&other, &ids_a, T0.plus(700)),
            Err(IssuerError::Scheme(SchemeProblem::StatementConflict {
                cycle: 1
            }))
        ));
        assert_eq!(a.invariants().unwrap().totals, before);
        assert!(
            a.claims(&ClaimFilter {
                open_only: true,
                ..ClaimFilter::default()
            })
            .unwrap()
            .is_empty()
        );
    }
}

/// A payment as a claim: (entry hash, bytes).
fn claim(payment: &[u8]) -> (Hash32, Vec<u8>) {
    let id = Signed::<offpay_protocol::messages::Payment>::decode(payment)
        .unwrap()
        .payload_hash();
    (id, payment.to_vec())
}

#[test]
fn a_standalone_issuer_refuses_scheme_calls() {
    let store = offpay_store::open_sqlite_memory().unwrap();
    let issuer = Issuer::init(store, &MASTER, &config(), T0).unwrap();
    assert!(!issuer.is_member());
    assert!(matches!(
        issuer.claims_to_submit(10),
        Err(IssuerError::Scheme(SchemeProblem::NotAMember))
    ));
    assert!(matches!(
        issuer.install_directory(&[], T0),
        Err(IssuerError::Scheme(SchemeProblem::NotAMember))
    ));
    assert!(issuer.invariants().unwrap().ok);
}

#[test]
fn init_member_refuses_a_certificate_for_another_key() {
    let r = root();
    let store = offpay_store::open_sqlite_memory().unwrap();
    let entropy = SeededEntropy::shared(1, "x");
    assert!(matches!(
        Issuer::init_member(
            store,
            &MASTER,
            &config(),
            r.cert.der(),
            r.cert.der(),
            T0,
            entropy.clone()
        ),
        Err(IssuerError::Scheme(SchemeProblem::NoPendingKey))
    ));
    let store = offpay_store::open_sqlite_memory().unwrap();
    Issuer::member_csr(&store, &MASTER, &config(), "bank-x", entropy.clone()).unwrap();
    let other = SigningKey::from_seed(Suite::Ed25519, &[3u8; 32]).unwrap();
    let ca = pki::issue_issuer_ca(
        &r.key,
        &r.cert,
        &other.public_key(),
        "bank-x",
        5,
        T0,
        T0.plus(FAR),
    )
    .unwrap();
    assert!(matches!(
        Issuer::init_member(
            store,
            &MASTER,
            &config(),
            r.cert.der(),
            ca.der(),
            T0,
            entropy
        ),
        Err(IssuerError::Scheme(SchemeProblem::MemberKeyMismatch))
    ));
}

#[test]
fn a_member_issuer_reopens_with_its_directory() {
    let r = root();
    let dir = tempfile::tempdir().unwrap();
    let pa = dir.path().join("a.sqlite");
    let pb = dir.path().join("b.sqlite");
    let a = member(offpay_store::open_sqlite(&pa).unwrap(), &r, "bank-a", 2);
    let b = member(offpay_store::open_sqlite(&pb).unwrap(), &r, "bank-b", 3);
    install(&r, &a, &b);
    let id = a.issuer_id();
    drop(a);
    let a = Issuer::open(offpay_store::open_sqlite(&pa).unwrap(), &MASTER).unwrap();
    assert!(a.is_member());
    assert_eq!(a.issuer_id(), id);
    assert_eq!(a.directory_version(), 2);
    assert!(a.invariants().unwrap().ok);
    // A member issuer never holds the root key.
    let mut tx = a.store().begin().unwrap();
    assert_eq!(tx.setting("ca.root.key").unwrap(), None);
}
