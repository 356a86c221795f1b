//! Rollback and cloning of a wallet's state (DESIGN.md §5, §8):
//!
//! - (a) a state restored from an old copy (sealed file on disk, the
//!   `state.sealed` blob of host storage, or a `MemoryVault` snapshot) opens
//!   locked (`LockReason::RolledBack`), refuses
//!   every money-moving operation, still syncs, and is unlocked by the
//!   backend, adopting the backend's checkpoint;
//! - (b) a cloned wallet (state *and* counter copied) that pays twice with one
//!   seq produces a `DoubleSpendProof` that verifies against the root alone,
//!   and tampered proofs are refused with the specific `EvidenceError`;
//! - (c) a payee that saw (payer, seq = n) refuses seq <= n offline with
//!   `PayerRolledBack`, keeps the payment as evidence and reports it at sync.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::fs;
use std::path::Path;

use offpay_protocol::cbor::DecodeError;
use offpay_protocol::envelope::Signed;
use offpay_protocol::evidence::{EvidenceError, verify_double_spend, verify_double_spend_bytes};
use offpay_protocol::messages::{
    Checkpoint, DoubleSpendProof, Payment, SyncReport, SyncResponse, WalletCommand,
};
use offpay_protocol::pki::{Certificate, PkiError};
use offpay_protocol::{Hash32, Suite, UnixSeconds};
use offpay_test_support::host::{self, SealedHost, assert_refuses_everything};
use offpay_test_support::*;
use offpay_wallet::vault::{KdfParams, MemoryVault, SealedFileVault, Vault, VaultError};
use offpay_wallet::{LockReason, Wallet, WalletError};

const PIN: &[u8] = b"1357";
const SECRET: [u8; 32] = [0x7e; 32];
const SUITES: [Suite; 3] = Suite::ALL;

fn create_sealed(dir: &Path) -> SealedFileVault {
    fs::create_dir_all(dir).unwrap();
    SealedFileVault::create(dir, PIN, &SECRET, KdfParams::TEST).unwrap()
}

fn open_sealed(dir: &Path) -> Wallet<SealedFileVault> {
    Wallet::open(SealedFileVault::open(dir, PIN, &SECRET).unwrap()).unwrap()
}

fn locked() -> WalletError {
    WalletError::Locked(LockReason::RolledBack)
}

/// The report `w` builds while locked: it says so, and carries the restored state.
fn locked_report<V: Vault>(w: &mut Wallet<V>, now: UnixSeconds) -> Vec<u8> {
    let report = w.sync_report(now).unwrap();
    let r = Signed::<SyncReport>::decode(&report).unwrap();
    assert!(r.body().locked, "a locked wallet reports locked: true");
    assert_eq!(r.body().wallet, w.wallet_id());
    assert_eq!(Some(r.body().balance), w.balance());
    assert_eq!((r.body().seq, r.body().head), w.chain_head());
    report
}

// ---- (a) restored old state --------------------------------------------------

#[test]
fn restored_sealed_state_file_opens_locked_until_the_backend_unlocks() {
    for suite in SUITES {
        let tmp = tempfile::tempdir().unwrap();
        let da = tmp.path().join("alice");
        let mut s = Scheme::new(suite);
        let mut alice = s.enroll(create_sealed(&da), suite, T0);
        let mut bob = s.enroll(MemoryVault::new(), suite, T0);
        s.load(&mut alice, 10_000, T0);
        let pending_req = alice.request(eur(300), 3600, T0).unwrap();
        let old_head = alice.chain_head();
        // The attacker keeps a copy of the sealed state ...
        let aside = tmp.path().join("state.sealed.copy");
        fs::copy(da.join("state.sealed"), &aside).unwrap();
        // ... pays ...
        let p1 = pay(&mut alice, &mut bob, 1_000, T0.plus(10));
        let paid_head = alice.chain_head();
        assert_eq!(paid_head.0, 1);
        drop(alice);
        // ... and restores the copy to spend the money again.
        fs::copy(&aside, da.join("state.sealed")).unwrap();
        let mut alice = open_sealed(&da);
        assert_eq!(alice.lock(), Some(&LockReason::RolledBack));
        assert_eq!(alice.balance().unwrap().minor, 10_000, "the restored state");
        assert_eq!(alice.chain_head(), old_head);
        let v = s.voucher(alice.wallet_id(), 500, T0.plus(20));
        assert_refuses_everything(&mut alice, &mut bob, &pending_req, &v, T0.plus(20));
        // The lock is sealed: reopening (even with the counter now in step) stays locked.
        drop(alice);
        let mut alice = open_sealed(&da);
        assert_eq!(alice.lock(), Some(&LockReason::RolledBack));
        assert_eq!(alice.balance().unwrap().minor, 10_000);

        // Sync still works, and a plain response (no command) does not unlock.
        let report = locked_report(&mut alice, T0.plus(30));
        let resp = s.respond(&report, T0.plus(30), WalletCommand::None, vec![], None);
        let applied = alice.apply_sync_response(&resp, T0.plus(30)).unwrap();
        assert!(!applied.unlocked);
        assert_eq!(alice.lock(), Some(&LockReason::RolledBack));
        assert_eq!(
            alice.pay(&bob.request(eur(1), 60, T0).unwrap(), T0.plus(31)),
            Err(locked())
        );

        // The backend knows the real chain (from Bob's sync): it unlocks the wallet
        // with its authoritative checkpoint, which the wallet adopts. The report is
        // built, then the app restarts before the answer comes: the pending report
        // is sealed too.
        let report = locked_report(&mut alice, T0.plus(40));
        drop(alice);
        let mut alice = open_sealed(&da);
        let resp = s.respond(&report, T0.plus(40), WalletCommand::Unlock, vec![], None);
        let resp = edit_checkpoint(&s, &resp, |c| {
            c.seq = paid_head.0;
            c.head = paid_head.1;
            c.balance = eur(9_000);
            c.load_seq = 1;
        });
        let applied = alice.apply_sync_response(&resp, T0.plus(40)).unwrap();
        assert!(applied.unlocked && !applied.locked);
        assert_eq!(alice.lock(), None);
        assert_eq!(alice.balance().unwrap().minor, 9_000);
        assert_eq!(alice.chain_head(), paid_head);
        assert_eq!(alice.status(T0.plus(40)).unsynced_entries, 0);
        // Durably unlocked.
        drop(alice);
        let mut alice = open_sealed(&da);
        assert_eq!(alice.lock(), None);
        assert_eq!(alice.chain_head(), paid_head);
        // The chain continues where the backend says: no fork, Bob accepts.
        let p2 = pay(&mut alice, &mut bob, 2_000, T0.plus(50));
        let p2 = Signed::<Payment>::decode(&p2).unwrap();
        assert_eq!(p2.body().seq, 2);
        assert_eq!(
            p2.body().prev,
            Signed::<Payment>::decode(&p1).unwrap().payload_hash()
        );
        assert_eq!(alice.balance().unwrap().minor, 7_000);
    }
}

/// Replace the checkpoint of a sync response and re-sign it with the issuer key.
fn edit_checkpoint(s: &Scheme, resp: &[u8], edit: impl FnOnce(&mut Checkpoint)) -> Vec<u8> {
    let mut body: SyncResponse = Signed::<SyncResponse>::decode(resp).unwrap().body().clone();
    edit(&mut body.checkpoint);
    Signed::sign(body, &s.issuer_key).into_bytes()
}

#[test]
fn restored_memory_snapshot_opens_locked_until_the_backend_unlocks() {
    for suite in SUITES {
        let mut s = Scheme::new(suite);
        let mut alice = s.enroll(MemoryVault::new(), suite, T0);
        let mut bob = s.enroll(MemoryVault::new(), suite, T0);
        let mut carol = s.enroll(MemoryVault::new(), suite, T0);
        s.load(&mut alice, 10_000, T0);
        let pending_req = alice.request(eur(300), 3600, T0).unwrap();
        let snap = alice.vault().snapshot();
        pay(&mut alice, &mut bob, 1_000, T0.plus(10));
        pay(&mut alice, &mut carol, 500, T0.plus(11));
        let mut vault = alice.into_vault();
        let counter = vault.counter();
        vault.restore(&snap);
        assert!(snap.version() < counter);
        let mut alice = Wallet::open(vault).unwrap();
        assert_eq!(alice.lock(), Some(&LockReason::RolledBack));
        assert_eq!(alice.balance().unwrap().minor, 10_000);
        assert_eq!(alice.chain_head(), (0, Hash32::ZERO));
        // The lock was sealed at a version above the counter.
        assert_eq!(alice.vault().version(), counter + 1);
        assert_eq!(alice.vault().counter(), counter + 1);
        let v = s.voucher(alice.wallet_id(), 500, T0.plus(20));
        assert_refuses_everything(&mut alice, &mut bob, &pending_req, &v, T0.plus(20));
        assert_eq!(alice.vault().version(), counter + 1, "a refusal committed");
        // Reopened, still locked.
        let mut alice = Wallet::open(alice.into_vault()).unwrap();
        assert_eq!(alice.lock(), Some(&LockReason::RolledBack));

        // Unlock (Scheme::respond: the checkpoint is what the wallet reported).
        let report = locked_report(&mut alice, T0.plus(30));
        let resp = s.respond(&report, T0.plus(30), WalletCommand::Unlock, vec![], None);
        let cp = Signed::<SyncResponse>::decode(&resp)
            .unwrap()
            .body()
            .checkpoint
            .clone();
        let applied = alice.apply_sync_response(&resp, T0.plus(30)).unwrap();
        assert!(applied.unlocked);
        assert_eq!(applied.checkpoint, cp.number);
        assert_eq!(alice.lock(), None);
        assert_eq!(alice.balance(), Some(cp.balance));
        assert_eq!(alice.chain_head(), (cp.seq, cp.head));
        assert_eq!(alice.status(T0.plus(30)).load_seq, cp.load_seq);
        assert_eq!(alice.status(T0.plus(30)).unsynced_entries, 0);
        // The restored pending request was dropped at unlock.
        let p = bob.pay(&pending_req, T0.plus(31)).unwrap();
        assert_eq!(
            alice.receive(&p, T0.plus(31)),
            Err(WalletError::NonceUnknown)
        );
        // Unlocked for good, and working.
        let mut alice = Wallet::open(alice.into_vault()).unwrap();
        assert_eq!(alice.lock(), None);
        let mut dave = s.enroll(MemoryVault::new(), suite, T0);
        pay(&mut alice, &mut dave, 700, T0.plus(40));
        assert_eq!(alice.balance().unwrap().minor, cp.balance.minor - 700);
    }
}

#[test]
fn issuer_lock_also_refuses_and_only_unlock_lifts_it() {
    let mut s = Scheme::new(Suite::Ed25519);
    let mut alice = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    let mut bob = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    s.load(&mut alice, 1_000, T0);
    let report = alice.sync_report(T0).unwrap();
    let resp = s.respond(
        &report,
        T0,
        WalletCommand::Lock {
            reason: "double spend".into(),
        },
        vec![],
        None,
    );
    assert!(alice.apply_sync_response(&resp, T0).unwrap().locked);
    let reason = LockReason::Issuer("double spend".into());
    let req = bob.request(eur(10), 60, T0).unwrap();
    assert_eq!(
        alice.pay(&req, T0),
        Err(WalletError::Locked(reason.clone()))
    );
    let report = alice.sync_report(T0.plus(1)).unwrap();
    assert!(Signed::<SyncReport>::decode(&report).unwrap().body().locked);
    let mut alice = Wallet::open(alice.into_vault()).unwrap();
    assert_eq!(alice.lock(), Some(&reason));
    let resp = s.respond(&report, T0.plus(1), WalletCommand::Unlock, vec![], None);
    assert!(
        alice
            .apply_sync_response(&resp, T0.plus(1))
            .unwrap()
            .unlocked
    );
    pay(&mut alice, &mut bob, 10, T0.plus(2));
}

#[test]
fn restored_state_blob_of_host_storage_opens_locked() {
    host::restored_state_blob_opens_locked(&SealedHost, &SUITES);
}

#[test]
fn a_counter_that_cannot_advance_stops_the_wallet_paying_past_it() {
    host::a_counter_that_cannot_advance_stops_the_wallet_paying_past_it(&SealedHost, &SUITES);
}

// ---- (b) cloned wallet and double-spend proofs ---------------------------------

/// What a clone's double spend left behind.
struct DoubleSpend {
    s: Scheme,
    payer_id: offpay_protocol::WalletId,
    payer_cert: Vec<u8>,
    bob_cert: Vec<u8>,
    /// The original's seq-1 payment to Bob and the clone's seq-1 payment to Carol
    /// (same prev: the zero hash).
    p_bob: Vec<u8>,
    p_carol: Vec<u8>,
    /// The original's seq-2 payment (prev = hash of `p_bob`).
    p_bob2: Vec<u8>,
}

fn clone_and_double_spend(suite: Suite) -> DoubleSpend {
    let mut s = Scheme::new(suite);
    let mut alice = s.enroll(MemoryVault::new(), suite, T0);
    let mut bob = s.enroll(MemoryVault::new(), suite, T0);
    let mut carol = s.enroll(MemoryVault::new(), suite, T0);
    s.load(&mut alice, 10_000, T0);
    // The whole device is copied: state and counter (`MemoryVault: Clone`).
    let mut clone = Wallet::open(alice.vault().clone()).unwrap();
    assert_eq!(clone.lock(), None, "a vault cannot see a full clone");
    assert_eq!(clone.wallet_id(), alice.wallet_id());
    let p_bob = pay(&mut alice, &mut bob, 1_000, T0.plus(10));
    let p_carol = pay(&mut clone, &mut carol, 2_500, T0.plus(11));
    // Both payees accepted offline (neither saw the other entry): finality.
    assert_eq!(bob.balance().unwrap().minor, 1_000);
    assert_eq!(carol.balance().unwrap().minor, 2_500);
    let (a, b) = (
        Signed::<Payment>::decode(&p_bob).unwrap(),
        Signed::<Payment>::decode(&p_carol).unwrap(),
    );
    assert_eq!((a.body().seq, b.body().seq), (1, 1));
    assert_eq!(a.body().prev, b.body().prev);
    assert_ne!(p_bob, p_carol);
    let p_bob2 = pay(&mut alice, &mut bob, 100, T0.plus(12));
    DoubleSpend {
        payer_id: alice.wallet_id(),
        payer_cert: alice.certificate().unwrap().der().to_vec(),
        bob_cert: bob.certificate().unwrap().der().to_vec(),
        p_bob,
        p_carol,
        p_bob2,
        s,
    }
}

#[test]
fn clone_paying_twice_with_one_seq_yields_a_proof_that_verifies_against_the_root() {
    for suite in SUITES {
        let d = clone_and_double_spend(suite);
        let issuer_der = d.s.issuer.der().to_vec();
        // Anyone holding only the root certificate can check it.
        let root = Certificate::from_der(d.s.root.der()).unwrap();
        let proof = DoubleSpendProof::new(
            d.p_carol.clone(),
            d.p_bob.clone(),
            d.payer_cert.clone(),
            issuer_der.clone(),
        );
        let bytes = proof.encode();
        assert_eq!(DoubleSpendProof::decode(&bytes).unwrap(), proof);
        let proven = verify_double_spend(&proof, &root).unwrap();
        assert_eq!(verify_double_spend_bytes(&bytes, &root).unwrap(), proven);
        assert_eq!(proven.payer, d.payer_id);
        assert_eq!(proven.seq, 1);
        assert_eq!(proven.payer_serial, d.s.serials[&d.payer_id]);
        let hashes = [&d.p_bob, &d.p_carol].map(|p| Signed::<Payment>::decode(p).unwrap());
        let mut expected = [hashes[0].payload_hash(), hashes[1].payload_hash()];
        let mut got = proven.entries;
        expected.sort_by_key(|h| h.0);
        got.sort_by_key(|h| h.0);
        assert_eq!(got, expected);
        let mut amounts: Vec<u64> = proven.amounts.iter().map(|a| a.minor).collect();
        amounts.sort_unstable();
        assert_eq!(amounts, vec![1_000, 2_500]);
        // The order the entries are given in does not matter.
        let other = DoubleSpendProof::new(
            d.p_bob.clone(),
            d.p_carol.clone(),
            d.payer_cert.clone(),
            issuer_der,
        );
        assert_eq!(other.encode(), bytes);
    }
}

#[test]
#[expect(clippy::too_many_lines)] // lint-exception: one scenario told end to end
fn tampered_double_spend_proofs_are_refused_with_the_specific_error() {
    for suite in SUITES {
        let d = clone_and_double_spend(suite);
        let root = Certificate::from_der(d.s.root.der()).unwrap();
        let issuer = d.s.issuer.der().to_vec();
        let proof = |a: &[u8], b: &[u8]| {
            DoubleSpendProof::new(a.to_vec(), b.to_vec(), d.payer_cert.clone(), issuer.clone())
        };
        let check = |p: &DoubleSpendProof| verify_double_spend_bytes(&p.encode(), &root);

        // One signature byte flipped (the signature is the envelope's last 64 bytes).
        for which in [0, 1] {
            let mut e = [d.p_bob.clone(), d.p_carol.clone()];
            let last = e[which].len() - 1;
            e[which][last] ^= 0x01;
            let p = proof(&e[0], &e[1]);
            assert_eq!(check(&p), Err(EvidenceError::BadSignature), "{suite}");
            assert_eq!(
                verify_double_spend(&p, &root),
                Err(EvidenceError::BadSignature)
            );
        }
        // Entries swapped: not the canonical order, refused when decoded.
        let good = proof(&d.p_bob, &d.p_carol);
        let swapped = DoubleSpendProof {
            entry_a: good.entry_b.clone(),
            entry_b: good.entry_a.clone(),
            ..good.clone()
        };
        assert_eq!(
            check(&swapped),
            Err(EvidenceError::Decode(DecodeError::NonCanonical(
                "proof entries not in ascending order"
            )))
        );
        // Two identical entries: not canonical as bytes, and no double spend as a value.
        let same = proof(&d.p_bob, &d.p_bob);
        assert_eq!(
            check(&same),
            Err(EvidenceError::Decode(DecodeError::NonCanonical(
                "proof entries not in ascending order"
            )))
        );
        assert_eq!(
            verify_double_spend(&same, &root),
            Err(EvidenceError::SameEntry)
        );
        // Two entries of one honest chain (seq 1 and 2, different prev): no conflict.
        assert_eq!(
            check(&proof(&d.p_bob, &d.p_bob2)),
            Err(EvidenceError::NoConflict)
        );
        // A clone entry at seq 1 and the original's seq 2: different seq and prev.
        assert_eq!(
            check(&proof(&d.p_carol, &d.p_bob2)),
            Err(EvidenceError::NoConflict)
        );
        // The issuer certificate of another root (same names, same issuer key even,
        // so the payer certificate still verifies under it): refused at the root.
        let mut foreign = Scheme::foreign(suite, 0x44);
        let fake_issuer = offpay_protocol::pki::issue_issuer_ca(
            &foreign.root_key,
            &foreign.root,
            &d.s.issuer_key.public_key(),
            "offpay test issuer",
            2,
            UnixSeconds(T0.0 - DAY),
            T0.plus(1825 * DAY),
        )
        .unwrap();
        let p = DoubleSpendProof::new(
            d.p_bob.clone(),
            d.p_carol.clone(),
            d.payer_cert.clone(),
            fake_issuer.der().to_vec(),
        );
        assert_eq!(
            check(&p),
            Err(EvidenceError::Certificate(PkiError::WrongIssuer))
        );
        // ... and the other scheme's own issuer CA: refused the same way.
        let p = DoubleSpendProof::new(
            d.p_bob.clone(),
            d.p_carol.clone(),
            d.payer_cert.clone(),
            foreign.issuer.der().to_vec(),
        );
        assert_eq!(
            check(&p),
            Err(EvidenceError::Certificate(PkiError::WrongIssuer))
        );
        // A whole foreign chain verifies against its own root, never against ours.
        let fake_payer = foreign.raw_signer(suite, 0x66, T0);
        let p = DoubleSpendProof::new(
            d.p_bob.clone(),
            d.p_carol.clone(),
            fake_payer.cert.clone(),
            foreign.issuer.der().to_vec(),
        );
        assert_eq!(
            check(&p),
            Err(EvidenceError::Certificate(PkiError::WrongIssuer))
        );
        // Another wallet's certificate: the entries are not its own.
        let p = DoubleSpendProof::new(
            d.p_bob.clone(),
            d.p_carol.clone(),
            d.bob_cert.clone(),
            issuer.clone(),
        );
        assert_eq!(check(&p), Err(EvidenceError::WalletMismatch));
        // The untampered proof still verifies (the checks above did not pass by accident).
        assert_eq!(check(&good).unwrap().payer, d.payer_id);
    }
}

#[test]
fn a_state_copied_to_a_fresh_vault_does_not_open() {
    // A fresh device's counter is 0; a state sealed at version 3 cannot be there
    // honestly: the vault refuses it (only a copy of the whole vault, counter
    // included, opens: `MemoryVault::clone`, as above).
    let mut s = Scheme::new(Suite::Ed25519);
    let mut alice = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    s.load(&mut alice, 1_000, T0);
    let snap = alice.vault().snapshot();
    assert!(snap.version() >= 2);
    let mut fresh = MemoryVault::new();
    fresh.restore(&snap);
    assert_eq!(
        Wallet::open(fresh).unwrap_err(),
        WalletError::Vault(VaultError::Corrupt("state version ahead of the counter"))
    );
}

// ---- (c) the payee catches a rolled-back or cloned payer offline ---------------

#[test]
fn payee_refuses_a_lower_or_equal_seq_keeps_it_as_evidence_and_reports_it() {
    for suite in SUITES {
        let mut s = Scheme::new(suite);
        let mut alice = s.enroll(MemoryVault::new(), suite, T0);
        let mut bob = s.enroll(MemoryVault::new(), suite, T0);
        s.load(&mut alice, 10_000, T0);
        let at_seq0 = alice.vault().clone();
        let p1 = pay(&mut alice, &mut bob, 1_000, T0.plus(1));
        let at_seq1 = alice.vault().clone();
        let p2 = pay(&mut alice, &mut bob, 2_000, T0.plus(2));
        let mut clone0 = Wallet::open(at_seq0).unwrap();
        let mut clone1 = Wallet::open(at_seq1).unwrap();
        let now = T0.plus(10);

        let before = observe(&bob, now);
        let req = bob.request(eur(3_000), 300, now).unwrap();
        let after_request = observe(&bob, now);
        let bad1 = clone0.pay(&req, now).unwrap();
        assert_eq!(Signed::<Payment>::decode(&bad1).unwrap().body().seq, 1);
        let err = WalletError::PayerRolledBack {
            payer: alice.wallet_id(),
            seen: 2,
            got: 1,
        };
        assert_eq!(bob.receive(&bad1, now), Err(err.clone()));
        let o = observe(&bob, now);
        assert_eq!(o.status.evidence, 1);
        assert_eq!(o.evidence, vec![bad1.clone()]);
        assert_eq!(
            o.status.balance, before.status.balance,
            "refused: no credit"
        );
        // Everything but the evidence is as before.
        let mut expect = after_request.clone();
        expect.status.evidence = 1;
        expect.evidence = vec![bad1.clone()];
        assert_eq!(o, expect);
        // The same payment again: refused again, kept once.
        assert_eq!(bob.receive(&bad1, now.plus(1)), Err(err));
        assert_eq!(observe(&bob, now), expect);
        // Equal seq (the clone taken after seq 1 pays seq 2 again).
        let bad2 = clone1.pay(&req, now.plus(2)).unwrap();
        assert_eq!(
            bob.receive(&bad2, now.plus(2)),
            Err(WalletError::PayerRolledBack {
                payer: alice.wallet_id(),
                seen: 2,
                got: 2,
            })
        );
        assert_eq!(bob.status(now).evidence, 2);
        assert_eq!(bob.balance().unwrap().minor, 3_000);
        // The refusals did not consume the request: the honest wallet pays it (seq 3).
        let good = alice.pay(&req, now.plus(3)).unwrap();
        let receipt = bob.receive(&good, now.plus(3)).unwrap();
        alice.confirm(&receipt).unwrap();
        assert_eq!(bob.balance().unwrap().minor, 6_000);

        // The evidence is in Bob's next report ...
        let report = bob.sync_report(now.plus(4)).unwrap();
        let r = Signed::<SyncReport>::decode(&report).unwrap();
        assert_eq!(r.body().evidence, vec![bad1.clone(), bad2.clone()]);
        assert!(!r.body().locked);
        assert_eq!(r.body().incoming, vec![p1.clone(), p2.clone(), good]);
        // ... and with the honest entries of the same seq it proves the double spend.
        let root = Certificate::from_der(s.root.der()).unwrap();
        let payer_cert = alice.certificate().unwrap().der().to_vec();
        for (bad, honest, seq) in [(&bad1, &p1, 1), (&bad2, &p2, 2)] {
            let proof = DoubleSpendProof::new(
                bad.clone(),
                honest.clone(),
                payer_cert.clone(),
                s.issuer.der().to_vec(),
            );
            let proven = verify_double_spend_bytes(&proof.encode(), &root).unwrap();
            assert_eq!((proven.payer, proven.seq), (alice.wallet_id(), seq));
        }
        // Once the backend has the report, the evidence is dropped.
        let resp = s.respond(&report, now.plus(4), WalletCommand::None, vec![], None);
        bob.apply_sync_response(&resp, now.plus(4)).unwrap();
        assert_eq!(bob.status(now.plus(4)).evidence, 0);
        // Bob still remembers seq 3 after the sync: the clones stay refused.
        let req = bob.request(eur(10), 300, now.plus(5)).unwrap();
        let bad3 = clone1.pay(&req, now.plus(5)).unwrap();
        assert!(matches!(
            bob.receive(&bad3, now.plus(5)),
            Err(WalletError::PayerRolledBack {
                seen: 3,
                got: 3,
                ..
            })
        ));
    }
}

/// Regression: `apply_sync_response` used to clear all evidence, including what
/// was kept after the report it answers (now only the reported part is dropped).
#[test]
fn evidence_received_while_a_report_is_pending_is_not_lost() {
    let mut s = Scheme::new(Suite::Ed25519);
    let mut alice = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    let mut bob = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    s.load(&mut alice, 10_000, T0);
    let at_seq0 = alice.vault().clone();
    pay(&mut alice, &mut bob, 1_000, T0.plus(1));
    let mut clone = Wallet::open(at_seq0).unwrap();
    // Bob builds a report (no evidence yet) ...
    let report = bob.sync_report(T0.plus(2)).unwrap();
    assert!(
        Signed::<SyncReport>::decode(&report)
            .unwrap()
            .body()
            .evidence
            .is_empty()
    );
    // ... then, before the answer comes, catches the clone ...
    let req = bob.request(eur(500), 300, T0.plus(3)).unwrap();
    let bad = clone.pay(&req, T0.plus(3)).unwrap();
    assert!(matches!(
        bob.receive(&bad, T0.plus(3)),
        Err(WalletError::PayerRolledBack { .. })
    ));
    assert_eq!(bob.status(T0.plus(3)).evidence, 1);
    // ... and applies the answer to the earlier report: the new evidence was not in
    // that report, so it must stay for the next one.
    let resp = s.respond(&report, T0.plus(4), WalletCommand::None, vec![], None);
    bob.apply_sync_response(&resp, T0.plus(4)).unwrap();
    assert_eq!(
        bob.status(T0.plus(4)).evidence,
        1,
        "evidence dropped unreported"
    );
    let next = bob.sync_report(T0.plus(5)).unwrap();
    assert_eq!(
        Signed::<SyncReport>::decode(&next).unwrap().body().evidence,
        vec![bad]
    );
}

#[test]
fn restoring_state_and_counter_files_together_is_caught_by_the_payee() {
    // The software vault's documented limit: an attacker who restores the old
    // `counter` file with the old `state.sealed` is not detected by the vault.
    // The hash chain is the second line: the payee who saw the seq refuses it.
    let tmp = tempfile::tempdir().unwrap();
    let da = tmp.path().join("alice");
    let mut s = Scheme::new(Suite::Ed25519);
    let mut alice = s.enroll(create_sealed(&da), Suite::Ed25519, T0);
    let mut bob = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    s.load(&mut alice, 10_000, T0);
    let aside = tmp.path().join("aside");
    fs::create_dir_all(&aside).unwrap();
    for f in ["state.sealed", "counter"] {
        fs::copy(da.join(f), aside.join(f)).unwrap();
    }
    let p1 = pay(&mut alice, &mut bob, 4_000, T0.plus(1));
    drop(alice);
    for f in ["state.sealed", "counter"] {
        fs::copy(aside.join(f), da.join(f)).unwrap();
    }
    let mut alice = open_sealed(&da);
    assert_eq!(alice.lock(), None, "not detectable by a file counter");
    assert_eq!(alice.balance().unwrap().minor, 10_000);
    let req = bob.request(eur(4_000), 300, T0.plus(2)).unwrap();
    let p1_again = alice.pay(&req, T0.plus(2)).unwrap();
    assert_eq!(
        bob.receive(&p1_again, T0.plus(2)),
        Err(WalletError::PayerRolledBack {
            payer: alice.wallet_id(),
            seen: 1,
            got: 1
        })
    );
    assert_eq!(bob.balance().unwrap().minor, 4_000);
    assert_eq!(bob.status(T0.plus(2)).evidence, 1);
    let report = bob.sync_report(T0.plus(3)).unwrap();
    let r = Signed::<SyncReport>::decode(&report).unwrap();
    assert_eq!(r.body().evidence, vec![p1_again.clone()]);
    let proof = DoubleSpendProof::new(
        p1,
        p1_again,
        alice.certificate().unwrap().der().to_vec(),
        s.issuer.der().to_vec(),
    );
    let proven = verify_double_spend_bytes(&proof.encode(), &s.root).unwrap();
    assert_eq!((proven.payer, proven.seq), (alice.wallet_id(), 1));
}

#[test]
fn an_unlock_answering_an_earlier_report_keeps_what_was_received_since() {
    let mut s = Scheme::new(Suite::Ed25519);
    let mut alice = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    let mut bob = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    s.load(&mut alice, 10_000, T0);
    let report = bob.sync_report(T0.plus(1)).unwrap();
    // Bob accepts a payment (his receipt says the money is his: finality) ...
    let payment = pay(&mut alice, &mut bob, 1_000, T0.plus(2));
    assert_eq!(bob.balance().unwrap().minor, 1_000);
    // ... then the answer to his earlier report arrives, with an Unlock (Bob was
    // never locked: e.g. the backend clears a flag it keeps for every wallet).
    let resp = s.respond(&report, T0.plus(3), WalletCommand::Unlock, vec![], None);
    let applied = bob.apply_sync_response(&resp, T0.plus(3)).unwrap();
    assert!(!applied.unlocked);
    assert_eq!(
        bob.balance().unwrap().minor,
        1_000,
        "a received payment was erased"
    );
    let next = bob.sync_report(T0.plus(4)).unwrap();
    assert_eq!(
        Signed::<SyncReport>::decode(&next).unwrap().body().incoming,
        vec![payment]
    );
}
