//! PIN lockout recovery (`offpay_wallet::recovery`): the locked vault asks
//! with its granted unlock key, and only an issuer-signed unlock bound to
//! this wallet, this count and this vault's nonce resets the count. Every
//! refused unlock leaves the count and the pending request as they were.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::fs;
use std::path::Path;

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{PinLockedRequest, PinUnlock, PinUnlockGrant};
use offpay_protocol::{Nonce, PublicKey, SigningKey, Suite, UnixSeconds, WalletId};
use offpay_test_support::*;
use offpay_wallet::recovery::{self, RecoveryError};
use offpay_wallet::vault::{KdfParams, PIN_ATTEMPTS_MAX, SealedFileVault, VaultError};

const PIN: &[u8] = b"2468";
const SECRET: [u8; 32] = [0x5a; 32];

fn lock_out(dir: &Path) {
    for _ in 0..PIN_ATTEMPTS_MAX {
        assert!(matches!(
            SealedFileVault::open(dir, b"0000", &SECRET),
            Err(VaultError::WrongPin { .. })
        ));
    }
    assert_eq!(
        SealedFileVault::open(dir, PIN, &SECRET).err(),
        Some(VaultError::PinAttemptsExhausted)
    );
}

fn files(dir: &Path) -> [Vec<u8>; 2] {
    ["pin-attempts", recovery::RECOVERY_FILE].map(|n| fs::read(dir.join(n)).unwrap())
}

fn unlock(key: &SigningKey, wallet: WalletId, attempts: u64, nonce: Nonce) -> Vec<u8> {
    Signed::sign(
        PinUnlock {
            wallet,
            attempts,
            nonce,
            issued: T0,
        },
        key,
    )
    .into_bytes()
}

#[test]
#[expect(clippy::too_many_lines)] // lint-exception: one table or story, read top to bottom
fn only_the_issuers_unlock_for_this_request_resets_the_count() {
    for suite in [Suite::Ed25519, Suite::P256] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut scheme = Scheme::new(suite);
        let vault = SealedFileVault::create(dir, PIN, &SECRET, KdfParams::TEST).unwrap();
        let w = scheme.enroll(vault, suite, T0);
        let id = w.wallet_id();
        let wallet_key = w.public_key();
        recovery::save(dir, &SECRET, &w.pin_recovery().unwrap()).unwrap();
        drop(w);

        // Not locked: nothing to ask.
        assert_eq!(
            recovery::locked_request(dir, &SECRET, T0),
            Err(RecoveryError::NotLocked { attempts: 0 })
        );
        lock_out(dir);

        // The request: the unlock key (granted by the wallet key) signs it.
        let bytes = recovery::locked_request(dir, &SECRET, T0).unwrap();
        let req = Signed::<PinLockedRequest>::decode(&bytes).unwrap();
        assert_eq!(req.body().wallet, id);
        assert_eq!(req.body().attempts, u64::from(PIN_ATTEMPTS_MAX));
        let grant = Signed::<PinUnlockGrant>::decode(&req.body().grant).unwrap();
        grant.verify(&wallet_key).unwrap();
        assert_eq!(grant.body().wallet, id);
        let unlock_key = PublicKey::from_bytes(Suite::Ed25519, &grant.body().unlock_key).unwrap();
        req.verify(&unlock_key).unwrap();
        // The unlock key is not the wallet key: it cannot sign a payment.
        assert_ne!(unlock_key, wallet_key);
        let nonce = req.body().nonce;
        // Asking again sends the same nonce (the approval is for it).
        let again = recovery::locked_request(dir, &SECRET, T0.plus(5)).unwrap();
        assert_eq!(
            Signed::<PinLockedRequest>::decode(&again)
                .unwrap()
                .body()
                .nonce,
            nonce
        );

        // Every wrong unlock is refused and changes nothing.
        let before = files(dir);
        let attempts = u64::from(PIN_ATTEMPTS_MAX);
        let other_issuer = SigningKey::from_seed(suite, &[0x99; 32]).unwrap();
        let cases: Vec<(Vec<u8>, RecoveryError)> = vec![
            (
                unlock(&other_issuer, id, attempts, nonce),
                RecoveryError::BadSignature,
            ),
            (
                unlock(&scheme.issuer_key, WalletId([7; 16]), attempts, nonce),
                RecoveryError::Mismatch("another wallet"),
            ),
            (
                unlock(&scheme.issuer_key, id, attempts, Nonce([1; 16])),
                RecoveryError::Mismatch("another request (nonce)"),
            ),
            (
                unlock(&scheme.issuer_key, id, attempts - 1, nonce),
                RecoveryError::Mismatch("another attempt count"),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(recovery::apply_unlock(dir, &SECRET, &bytes), Err(expected));
            assert_eq!(files(dir), before);
        }
        let mut tampered = unlock(&scheme.issuer_key, id, attempts, nonce);
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            recovery::apply_unlock(dir, &SECRET, &tampered),
            Err(RecoveryError::BadSignature)
        );
        assert!(matches!(
            recovery::apply_unlock(dir, &SECRET, b"not an unlock"),
            Err(RecoveryError::Malformed(_))
        ));
        // Another device secret cannot read the record.
        assert_eq!(
            recovery::apply_unlock(
                dir,
                &[0; 32],
                &unlock(&scheme.issuer_key, id, attempts, nonce)
            ),
            Err(RecoveryError::Vault(VaultError::WrongDeviceSecret))
        );
        assert_eq!(files(dir), before);
        assert_eq!(
            SealedFileVault::open(dir, PIN, &SECRET).err(),
            Some(VaultError::PinAttemptsExhausted)
        );

        // The right one resets the count, once.
        let right = unlock(&scheme.issuer_key, id, attempts, nonce);
        recovery::apply_unlock(dir, &SECRET, &right).unwrap();
        SealedFileVault::open(dir, PIN, &SECRET).unwrap();
        lock_out(dir);
        assert_eq!(
            recovery::apply_unlock(dir, &SECRET, &right),
            Err(RecoveryError::NoPendingRequest)
        );
        // A new lockout is a new request with a new nonce.
        let second = recovery::locked_request(dir, &SECRET, T0).unwrap();
        let second_nonce = Signed::<PinLockedRequest>::decode(&second)
            .unwrap()
            .body()
            .nonce;
        assert_ne!(second_nonce, nonce);
        assert_eq!(
            recovery::apply_unlock(dir, &SECRET, &right),
            Err(RecoveryError::Mismatch("another request (nonce)"))
        );
        recovery::apply_unlock(
            dir,
            &SECRET,
            &unlock(&scheme.issuer_key, id, attempts, second_nonce),
        )
        .unwrap();
        SealedFileVault::open(dir, PIN, &SECRET).unwrap();
    }
}

#[test]
fn a_lost_attempt_counter_is_recovered_the_same_way() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut scheme = Scheme::new(Suite::Ed25519);
    let vault = SealedFileVault::create(dir, PIN, &SECRET, KdfParams::TEST).unwrap();
    let w = scheme.enroll(vault, Suite::Ed25519, T0);
    let id = w.wallet_id();
    recovery::save(dir, &SECRET, &w.pin_recovery().unwrap()).unwrap();
    drop(w);
    fs::remove_file(dir.join("pin-attempts")).unwrap();
    assert_eq!(
        SealedFileVault::open(dir, PIN, &SECRET).err(),
        Some(VaultError::PinAttemptsUnreadable)
    );
    let bytes = recovery::locked_request(dir, &SECRET, T0).unwrap();
    let req = Signed::<PinLockedRequest>::decode(&bytes).unwrap();
    assert_eq!(
        req.body().attempts,
        offpay_protocol::messages::PIN_ATTEMPTS_FIELD_MAX
    );
    recovery::apply_unlock(
        dir,
        &SECRET,
        &unlock(
            &scheme.issuer_key,
            id,
            req.body().attempts,
            req.body().nonce,
        ),
    )
    .unwrap();
    SealedFileVault::open(dir, PIN, &SECRET).unwrap();
}

#[test]
fn no_record_no_request() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let v = SealedFileVault::create(dir, PIN, &SECRET, KdfParams::TEST).unwrap();
    drop(v);
    lock_out(dir);
    assert_eq!(
        recovery::locked_request(dir, &SECRET, UnixSeconds(1)),
        Err(RecoveryError::NoRecord)
    );
}
