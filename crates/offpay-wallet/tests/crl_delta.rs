//! Delta CRLs at sync: the TA reports the CRL number it holds, applies a
//! delta on exactly that number signed by its issuer, keeps the signed base
//! and deltas sealed, refuses a forged or mismatched delta with nothing
//! changed, and a complete CRL replaces base and deltas.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{Checkpoint, SyncReport, SyncResponse, WalletCommand};
use offpay_protocol::pki::{self, CRL_DELTAS_HELD_MAX, PkiError, RevocationReason, RevokedEntry};
use offpay_protocol::{SigningKey, Suite, UnixSeconds};
use offpay_test_support::scheme::{DAY, Scheme, T0};
use offpay_test_support::{eur, pay};
use offpay_wallet::vault::{MemoryVault, Vault};
use offpay_wallet::{Wallet, WalletError};

fn at(hours: u64) -> UnixSeconds {
    T0.plus(hours * 3600)
}

/// A delta CRL of the test issuer: CRL `number` on `base`.
fn delta(s: &Scheme, number: u64, base: u64, add: &[u64], remove: &[u64]) -> Vec<u8> {
    let add: Vec<RevokedEntry> = add
        .iter()
        .map(|serial| RevokedEntry {
            serial: *serial,
            revoked_at: T0,
            reason: RevocationReason::KeyCompromise,
        })
        .collect();
    pki::issue_delta_crl(
        &s.issuer_key,
        &s.issuer,
        number,
        base,
        T0,
        T0.plus(DAY),
        pki::CrlChanges {
            revoked: &add,
            removed: remove,
        },
    )
    .unwrap()
    .der()
    .to_vec()
}

/// A complete CRL of the test issuer numbered `number`.
fn full(s: &Scheme, number: u64, revoked: &[u64]) -> Vec<u8> {
    let revoked: Vec<RevokedEntry> = revoked
        .iter()
        .map(|serial| RevokedEntry {
            serial: *serial,
            revoked_at: T0,
            reason: RevocationReason::KeyCompromise,
        })
        .collect();
    pki::issue_crl(&s.issuer_key, &s.issuer, number, T0, T0.plus(DAY), &revoked)
        .unwrap()
        .der()
        .to_vec()
}

/// A delta CRL 6 on 5 signed by another issuer CA the root certified
/// (common name `cn`, serial `serial`, its own key).
fn foreign_delta(s: &Scheme, cn: &str, serial: u64) -> Vec<u8> {
    let k2 = SigningKey::from_seed(Suite::Ed25519, &[0x44; 32]).unwrap();
    let ca = pki::issue_issuer_ca(
        &s.root_key,
        &s.root,
        &k2.public_key(),
        cn,
        serial,
        T0,
        T0.plus(DAY),
    )
    .unwrap();
    pki::issue_delta_crl(
        &k2,
        &ca,
        6,
        5,
        T0,
        T0.plus(DAY),
        pki::CrlChanges {
            revoked: &[],
            removed: &[],
        },
    )
    .unwrap()
    .der()
    .to_vec()
}

/// The response to `report` carrying this CRL part, signed by `key`.
fn respond(
    report: &[u8],
    now: UnixSeconds,
    crl: Option<Vec<u8>>,
    crl_delta: Option<Vec<u8>>,
    key: &SigningKey,
) -> Vec<u8> {
    let r = Signed::<SyncReport>::decode(report).unwrap();
    let b = r.body();
    Signed::sign(
        SyncResponse {
            wallet: b.wallet,
            report_seq: b.report_seq,
            time: now,
            checkpoint: Checkpoint {
                number: b.base_checkpoint + 1,
                seq: b.seq,
                head: b.head,
                balance: b.balance,
                load_seq: b.load_seq,
                time: now,
                report_seq: b.report_seq,
            },
            vouchers: Vec::new(),
            crl,
            crl_delta,
            certificate: None,
            policy: None,
            command: WalletCommand::None,
            directory: None,
            rekey: None,
        },
        key,
    )
    .into_bytes()
}

/// The CRL number a report names.
fn reported(report: &[u8]) -> Option<u64> {
    Signed::<SyncReport>::decode(report)
        .unwrap()
        .body()
        .crl_number
}

/// Sync `w` with this CRL part; the report's CRL number and the result.
fn sync<V: Vault>(
    s: &Scheme,
    w: &mut Wallet<V>,
    now: UnixSeconds,
    crl: Option<Vec<u8>>,
    crl_delta: Option<Vec<u8>>,
) -> (Option<u64>, Result<offpay_wallet::SyncApplied, WalletError>) {
    let report = w.sync_report(now).unwrap();
    let resp = respond(&report, now, crl, crl_delta, &s.issuer_key);
    (reported(&report), w.apply_sync_response(&resp, now))
}

fn number<V: Vault>(w: &Wallet<V>) -> Option<(u64, usize)> {
    w.crl_state().map(|c| (c.number(), c.deltas().len()))
}

#[test]
fn deltas_apply_in_sequence_and_a_revoked_payer_is_refused() {
    let mut s = Scheme::new(Suite::Ed25519);
    let mut payer = s.memory_wallet(Suite::Ed25519);
    let mut other = s.memory_wallet(Suite::Ed25519);
    let mut payee = s.memory_wallet(Suite::Ed25519);
    s.load(&mut payer, 5_000, T0);
    s.load(&mut other, 5_000, T0);
    let payer_serial = s.serials[&payer.wallet_id()];
    let other_serial = s.serials[&other.wallet_id()];

    // No CRL yet: the report names none, the complete CRL 1 is installed.
    let (n, r) = sync(&s, &mut payee, at(1), Some(full(&s, 1, &[])), None);
    assert_eq!(n, None);
    assert!(r.unwrap().crl_updated);
    assert_eq!(number(&payee), Some((1, 0)));
    pay(&mut payer, &mut payee, 100, at(1));

    // Delta 2 on 1 revokes the payer; delta 3 on 2 the other wallet.
    let (n, r) = sync(
        &s,
        &mut payee,
        at(2),
        None,
        Some(delta(&s, 2, 1, &[payer_serial], &[])),
    );
    assert_eq!(n, Some(1));
    assert!(r.unwrap().crl_updated);
    let (n, r) = sync(
        &s,
        &mut payee,
        at(3),
        None,
        Some(delta(&s, 3, 2, &[other_serial], &[])),
    );
    assert_eq!(n, Some(2));
    assert!(r.unwrap().crl_updated);
    assert_eq!(number(&payee), Some((3, 2)));
    // Nothing changed: no CRL in the response, nothing installed.
    let (n, r) = sync(&s, &mut payee, at(4), None, None);
    assert_eq!(n, Some(3));
    assert!(!r.unwrap().crl_updated);

    // The payee, which only ever got deltas after CRL 1, refuses both.
    for (w, serial) in [(&mut payer, payer_serial), (&mut other, other_serial)] {
        let req = payee.request(eur(100), 300, at(5)).unwrap();
        let payment = w.pay(&req, at(5)).unwrap();
        assert_eq!(
            payee.receive(&payment, at(5)).unwrap_err(),
            WalletError::PeerRevoked { serial }
        );
    }

    // Sealed: a reopened TA holds the same base and deltas and still refuses.
    let mut payee = Wallet::open(payee.into_vault()).unwrap();
    assert_eq!(number(&payee), Some((3, 2)));
    let req = payee.request(eur(100), 300, at(6)).unwrap();
    let payment = payer.pay(&req, at(6)).unwrap();
    assert_eq!(
        payee.receive(&payment, at(6)).unwrap_err(),
        WalletError::PeerRevoked {
            serial: payer_serial
        }
    );

    // Delta 4 removes the other wallet (its certificate left the CRL): accepted again.
    sync(
        &s,
        &mut payee,
        at(7),
        None,
        Some(delta(&s, 4, 3, &[], &[other_serial])),
    )
    .1
    .unwrap();
    pay(&mut other, &mut payee, 100, at(7));

    // The complete CRL of the same number replaces the base and deltas.
    let (_, r) = sync(
        &s,
        &mut payee,
        at(8),
        Some(full(&s, 4, &[payer_serial])),
        None,
    );
    assert!(r.unwrap().crl_updated);
    assert_eq!(number(&payee), Some((4, 0)));
    // An older complete CRL is ignored.
    let (_, r) = sync(&s, &mut payee, at(9), Some(full(&s, 3, &[])), None);
    assert!(!r.unwrap().crl_updated);
    assert_eq!(number(&payee), Some((4, 0)));
}

#[test]
fn bad_deltas_are_refused_and_change_nothing() {
    let mut s = Scheme::new(Suite::Ed25519);
    let mut payee: Wallet<MemoryVault> = s.memory_wallet(Suite::Ed25519);

    // Holding no CRL, a delta has nothing to apply to.
    let (_, r) = sync(
        &s,
        &mut payee,
        at(1),
        None,
        Some(delta(&s, 2, 1, &[7], &[])),
    );
    assert_eq!(
        r.unwrap_err(),
        WalletError::CrlDeltaBaseMismatch {
            held: None,
            base: 1
        }
    );
    assert_eq!(number(&payee), None);
    // The report is still pending: a good answer to it applies.
    let report = payee.sync_report(at(1)).unwrap();
    let resp = respond(&report, at(1), Some(full(&s, 5, &[])), None, &s.issuer_key);
    payee.apply_sync_response(&resp, at(1)).unwrap();
    assert_eq!(number(&payee), Some((5, 0)));

    let refuse = |payee: &mut Wallet<MemoryVault>, d: Vec<u8>, want: WalletError| {
        let before = payee.vault().version();
        let (_, r) = sync(&s, payee, at(2), None, Some(d));
        assert_eq!(r.unwrap_err(), want);
        assert_eq!(number(payee), Some((5, 0)));
        assert_eq!(
            payee.vault().version(),
            before + 1,
            "only the report was sealed"
        );
    };
    // Wrong base.
    refuse(
        &mut payee,
        delta(&s, 7, 6, &[7], &[]),
        WalletError::CrlDeltaBaseMismatch {
            held: Some(5),
            base: 6,
        },
    );
    // Bad signature.
    let mut forged = delta(&s, 6, 5, &[7], &[]);
    *forged.last_mut().unwrap() ^= 1;
    refuse(
        &mut payee,
        forged,
        WalletError::CrlDeltaRefused(PkiError::CrlBadSignature),
    );
    // Same issuer name, another key (a CA the root certified, not ours); another issuer.
    for (cn, serial) in [("offpay test issuer", 9), ("another issuer", 10)] {
        refuse(
            &mut payee,
            foreign_delta(&s, cn, serial),
            WalletError::CrlDeltaRefused(PkiError::CrlWrongIssuer),
        );
    }
    // A complete CRL where a delta belongs, and garbage.
    refuse(
        &mut payee,
        full(&s, 6, &[]),
        WalletError::CrlDeltaRefused(PkiError::CrlNotDelta),
    );
    let mut garbage = delta(&s, 6, 5, &[], &[]);
    garbage.truncate(garbage.len() - 3);
    let before = payee.vault().version();
    let (_, r) = sync(&s, &mut payee, at(3), None, Some(garbage));
    assert!(matches!(
        r.unwrap_err(),
        WalletError::CrlDeltaRefused(PkiError::Malformed(_))
    ));
    assert_eq!(payee.vault().version(), before + 1);
    // A good delta still applies after all that.
    sync(
        &s,
        &mut payee,
        at(4),
        None,
        Some(delta(&s, 6, 5, &[7], &[])),
    )
    .1
    .unwrap();
    assert_eq!(number(&payee), Some((6, 1)));
}

#[test]
fn at_its_bound_of_deltas_the_ta_asks_for_the_complete_crl() {
    let mut s = Scheme::new(Suite::Ed25519);
    let mut payee = s.memory_wallet(Suite::Ed25519);
    sync(&s, &mut payee, at(1), Some(full(&s, 1, &[])), None)
        .1
        .unwrap();
    for k in 0..CRL_DELTAS_HELD_MAX as u64 {
        let (n, r) = sync(
            &s,
            &mut payee,
            at(2 + k),
            None,
            Some(delta(&s, k + 2, k + 1, &[100 + k], &[])),
        );
        assert_eq!(n, Some(k + 1));
        r.unwrap();
    }
    let top = CRL_DELTAS_HELD_MAX as u64 + 1;
    assert_eq!(number(&payee), Some((top, CRL_DELTAS_HELD_MAX)));
    // Full: the report names no number; one more delta would be refused.
    let (n, r) = sync(
        &s,
        &mut payee,
        at(40),
        None,
        Some(delta(&s, top + 1, top, &[], &[])),
    );
    assert_eq!(n, None);
    assert_eq!(
        r.unwrap_err(),
        WalletError::CrlDeltaRefused(PkiError::CrlDeltasFull)
    );
    // The complete CRL of the number reached collapses the deltas.
    let all: Vec<u64> = (100..100 + CRL_DELTAS_HELD_MAX as u64).collect();
    let report = payee.sync_report(at(41)).unwrap();
    assert_eq!(reported(&report), None);
    let resp = respond(
        &report,
        at(41),
        Some(full(&s, top, &all)),
        None,
        &s.issuer_key,
    );
    assert!(
        payee
            .apply_sync_response(&resp, at(41))
            .unwrap()
            .crl_updated
    );
    assert_eq!(number(&payee), Some((top, 0)));
    assert_eq!(
        payee.crl_state().unwrap().entries().len(),
        CRL_DELTAS_HELD_MAX
    );
    let report = payee.sync_report(at(42)).unwrap();
    assert_eq!(reported(&report), Some(top));
}
