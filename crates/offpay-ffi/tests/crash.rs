//! Crash at every host write, through the exported wallet object.
//!
//! For each operation, the wallet under test runs on host storage and a host
//! counter that fail write number k (storage replaces and counter advances
//! counted together), before or after the write takes effect, and every
//! call after it (a dead process), for every k the operation makes. The
//! wallet is then opened again from what the host kept: it must be exactly
//! as before or exactly as after the operation (status and history), and
//! finishing the exchange (retrying, or the next step) must end with the
//! same balances as the run without a crash: no money lost or created.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use common::*;
use offpay_ffi::{HistoryEntry, OffpayError, OffpayWallet, WalletStatusInfo};
use offpay_protocol::WalletId;
use offpay_protocol::messages::WalletCommand;
use offpay_test_support::Scheme;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    ApplyVoucher,
    Request,
    Pay,
    Receive,
    Confirm,
    Redeem,
    SyncReport,
    ApplySyncResponse,
    Open,
}

const OPS: [Op; 9] = [
    Op::ApplyVoucher,
    Op::Request,
    Op::Pay,
    Op::Receive,
    Op::Confirm,
    Op::Redeem,
    Op::SyncReport,
    Op::ApplySyncResponse,
    Op::Open,
];

/// The wallet under test (W) and its peer (P), as their hosts hold them just
/// before the operation, and the operation's input.
struct Setup {
    w: Host,
    p: Host,
    input: Vec<u8>,
}

fn id(w: &OffpayWallet) -> WalletId {
    WalletId::from_hex(&w.wallet_id().unwrap()).unwrap()
}

fn setup(op: Op, s: &mut Scheme, platform: &TestPlatform) -> Setup {
    let (hw, hp) = (Host::new(platform), Host::new(platform));
    let w = enrolled(s, &hw);
    let p = enrolled(s, &hp);
    let t = offpay_protocol::UnixSeconds(platform.now.load(std::sync::atomic::Ordering::SeqCst));
    load(s, &w, 10_000, t);
    load(s, &p, 10_000, t);
    let input = match op {
        Op::ApplyVoucher => s.voucher(id(&w), 3_000, t),
        Op::Request | Op::Redeem | Op::Open => Vec::new(),
        Op::Pay => p.request(2_500, "EUR".into(), 3600).unwrap(),
        Op::Receive => {
            let req = w.request(2_500, "EUR".into(), 3600).unwrap();
            p.pay(req).unwrap()
        }
        Op::Confirm => {
            let req = p.request(2_500, "EUR".into(), 3600).unwrap();
            let payment = w.pay(req).unwrap();
            p.receive(payment).unwrap()
        }
        Op::SyncReport => {
            pay(&w, &p, 1_000);
            Vec::new()
        }
        Op::ApplySyncResponse => {
            pay(&w, &p, 1_000);
            let report = w.sync_report().unwrap();
            let voucher = s.voucher(id(&w), 2_000, t);
            s.respond(&report, t, WalletCommand::None, vec![voucher], None)
        }
    };
    Setup {
        w: hw,
        p: hp,
        input,
    }
}

/// Run the operation on `w` (opened on `host`, for `Op::Open` opened by the op).
fn run(op: Op, host: &Host, w: &OffpayWallet, input: &[u8]) -> Result<(), OffpayError> {
    let input = input.to_vec();
    match op {
        Op::ApplyVoucher => w.apply_voucher(input).map(drop),
        Op::Request => w.request(2_500, "EUR".into(), 3600).map(drop),
        Op::Pay => w.pay(input).map(drop),
        Op::Receive => w.receive(input).map(drop),
        Op::Confirm => w.confirm(input),
        Op::Redeem => w.redeem(1_000).map(drop),
        Op::SyncReport => w.sync_report().map(drop),
        Op::ApplySyncResponse => w.apply_sync_response(input).map(drop),
        Op::Open => host.open().map(drop),
    }
}

/// Finish the exchange after the operation (or its crash), on fresh opens;
/// the final (W, P) balances.
fn finish(op: Op, w: &OffpayWallet, p: &OffpayWallet, input: &[u8]) -> (u64, u64) {
    let input = input.to_vec();
    match op {
        Op::ApplyVoucher => match w.apply_voucher(input) {
            Ok(_) | Err(OffpayError::VoucherReplayed { .. }) => {}
            Err(e) => panic!("{e:?}"),
        },
        Op::Pay => {
            // A payer left debited gets the same payment back; one left as
            // before pays now.
            let payment = w.pay(input).unwrap();
            let receipt = p.receive(payment).unwrap();
            w.confirm(receipt).unwrap();
        }
        Op::Receive => {
            let receipt = w.receive(input).unwrap();
            p.confirm(receipt).unwrap();
        }
        Op::Confirm => w.confirm(input).unwrap(),
        Op::ApplySyncResponse => match w.apply_sync_response(input) {
            Ok(_) | Err(OffpayError::StaleSyncResponse) => {}
            Err(e) => panic!("{e:?}"),
        },
        Op::SyncReport => drop(w.sync_report().unwrap()),
        // A redeem is not idempotent: the app redeems again only if the
        // balance shows it did not happen (one that did is in the log and
        // settles at sync).
        Op::Redeem => {
            if balance(w) == 10_000 {
                drop(w.redeem(1_000).unwrap());
            }
        }
        Op::Request | Op::Open => {}
    }
    (balance(w), balance(p))
}

type Obs = (WalletStatusInfo, Vec<HistoryEntry>);

fn observe(w: &OffpayWallet) -> Obs {
    (w.status().unwrap(), w.history().unwrap())
}

#[test]
fn crash_at_every_host_write_leaves_before_or_after_and_conserves_money() {
    let (mut s, platform) = start();
    for op in OPS {
        let base = setup(op, &mut s, &platform);
        let before = observe(&base.w.fork().open().unwrap());

        // The reference: no crash.
        let host = base.w.fork();
        let w = host.open().unwrap();
        host.faults.disarm();
        run(op, &host, &w, &base.input).unwrap();
        let writes = host.faults.writes();
        drop(w);
        let w = host.open().unwrap();
        let after = observe(&w);
        let peer = base.p.fork();
        let expected = finish(op, &w, &peer.open().unwrap(), &base.input);
        assert!(writes >= 1, "{op:?} writes nothing");
        // What a confirm, a report or an open change is not in the status.
        if !matches!(op, Op::Confirm | Op::SyncReport | Op::Open) {
            assert_ne!(before, after, "{op:?} changes nothing");
        }

        for k in 0..writes {
            for strike in [Strike::Before, Strike::After] {
                let host = base.w.fork();
                let w = host.open().unwrap();
                host.faults.arm(k, strike);
                let e = run(op, &host, &w, &base.input).expect_err("the fault fires");
                assert!(host.faults.fired(), "{op:?} k={k}");
                assert!(
                    matches!(e, OffpayError::Host { .. }),
                    "{op:?} k={k} {strike:?}: {e:?}"
                );
                drop(w);
                host.faults.disarm();
                let w = host.open().unwrap();
                let seen = observe(&w);
                assert!(
                    seen == before || seen == after,
                    "{op:?} k={k} {strike:?}: neither before nor after:\n{seen:?}\nbefore {before:?}\nafter {after:?}"
                );
                let peer = base.p.fork();
                let got = finish(op, &w, &peer.open().unwrap(), &base.input);
                assert_eq!(
                    got, expected,
                    "{op:?} k={k} {strike:?}: money moved differently"
                );
            }
        }
    }
}
