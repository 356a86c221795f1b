mod common;
use common::*;
use offpay_protocol::Suite;
use offpay_protocol::messages::WalletCommand;
use offpay_wallet::vault::MemoryVault;

#[test]
fn probe_unlock_on_unlocked_wallet() {
    let mut s = Scheme::new(Suite::Ed25519);
    let mut alice = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    let mut bob = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    s.load(&mut alice, 10_000, T0);
    let report = bob.sync_report(T0.plus(1)).unwrap();
    pay(&mut alice, &mut bob, 1_000, T0.plus(2));
    let resp = s.respond(&report, T0.plus(3), WalletCommand::Unlock, vec![], None);
    let a = bob.apply_sync_response(&resp, T0.plus(3)).unwrap();
    eprintln!(
        "{a:?} bob balance {:?} unsynced {}",
        bob.balance(),
        bob.status(T0.plus(3)).unsynced_entries
    );
}
