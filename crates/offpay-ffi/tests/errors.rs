//! Every refusal of the TA and the vault arrives as its namesake
//! `OffpayError` variant, with its data.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_ffi::OffpayError;
use offpay_protocol::cbor::DecodeError;
use offpay_protocol::pki::PkiError;
use offpay_protocol::{IssuerId, WalletId};
use offpay_test_support::eur;
use offpay_wallet::vault::VaultError;
use offpay_wallet::{LockReason, WalletError};

/// The name of an enum value from its Debug form.
fn name(debug: &str) -> &str {
    debug.split(|c: char| !c.is_alphanumeric()).next().unwrap()
}

#[test]
fn every_wallet_error_maps_to_its_namesake() {
    let issuer = IssuerId([7; 16]);
    let other = IssuerId([8; 16]);
    let payer = WalletId([9; 16]);
    let all = vec![
        WalletError::Locked(LockReason::Issuer("fraud".into())),
        WalletError::NotEnrolled,
        WalletError::AlreadyEnrolled,
        WalletError::Malformed(DecodeError::Truncated),
        WalletError::BadSignature,
        WalletError::PeerCertificate(PkiError::UnsupportedAlgorithm),
        WalletError::PeerRevoked { serial: 5 },
        WalletError::PeerIssuerSuspended { issuer },
        WalletError::PeerIssuerRevoked { issuer },
        WalletError::WrongPayeeIssuer {
            expected: issuer,
            got: other,
        },
        WalletError::DirectoryRefused(PkiError::Malformed("x")),
        WalletError::StaleDirectory { held: 3, got: 2 },
        WalletError::DirectoryFull { max: 64 },
        WalletError::DirectoryTooLarge { bytes: 10, max: 5 },
        WalletError::UnknownCertificate,
        WalletError::CertificateWalletMismatch,
        WalletError::IssuerMaterial(PkiError::Malformed("y")),
        WalletError::CrlDeltaBaseMismatch {
            held: Some(4),
            base: 3,
        },
        WalletError::CrlDeltaRefused(PkiError::CrlBadSignature),
        WalletError::OwnCertificateExpired,
        WalletError::RequestExpired,
        WalletError::RequestValidityTooLong { max_seconds: 3600 },
        WalletError::ClockSkew { ahead_seconds: 99 },
        WalletError::CurrencyMismatch,
        WalletError::SelfPayment,
        WalletError::InsufficientFunds {
            balance: eur(1),
            needed: eur(2),
        },
        WalletError::LimitPerPayment { max: eur(50) },
        WalletError::LimitHolding { max_minor: 1000 },
        WalletError::LimitOfflineSpend { left_minor: 4 },
        WalletError::LimitOfflineCount { max: 10 },
        WalletError::LimitOfflineTime {
            offline_seconds: 10,
            max_seconds: 5,
        },
        WalletError::TerminalCannotPay,
        WalletError::PayerIsTerminal { payer },
        WalletError::LimitReceiveCount { max: 3 },
        WalletError::LimitReceiveAmount { left_minor: 7 },
        WalletError::LogFull { max: 100 },
        WalletError::TooManyPendingRequests,
        WalletError::ZeroAmount,
        WalletError::WrongPayee,
        WalletError::NonceUnknown,
        WalletError::AmountMismatch {
            requested: eur(5),
            paid: eur(6),
        },
        WalletError::PayerRolledBack {
            payer,
            seen: 4,
            got: 3,
        },
        WalletError::ReceiptUnknownPayment,
        WalletError::WrongWallet,
        WalletError::VoucherReplayed { load_seq: 2 },
        WalletError::VoucherOutOfOrder {
            expected: 3,
            got: 5,
        },
        WalletError::StaleSyncResponse,
        WalletError::CheckpointMismatch,
        WalletError::StalePolicy,
        WalletError::Overflow,
        WalletError::Randomness,
    ];
    for e in all {
        let debug = format!("{e:?}");
        let mapped = OffpayError::from(e);
        let mapped_debug = format!("{mapped:?}");
        assert_eq!(
            name(&mapped_debug),
            name(&debug),
            "{debug} -> {mapped_debug}"
        );
        assert!(!mapped.to_string().is_empty());
    }
}

#[test]
fn refusal_data_crosses_as_flat_fields() {
    assert_eq!(
        OffpayError::from(WalletError::InsufficientFunds {
            balance: eur(100),
            needed: eur(250),
        }),
        OffpayError::InsufficientFunds {
            balance_minor: 100,
            needed_minor: 250,
            currency: "EUR".into()
        }
    );
    assert_eq!(
        OffpayError::from(WalletError::PayerRolledBack {
            payer: WalletId([0xab; 16]),
            seen: 7,
            got: 6
        }),
        OffpayError::PayerRolledBack {
            payer: "ab".repeat(16),
            seen: 7,
            got: 6
        }
    );
    assert_eq!(
        OffpayError::from(WalletError::Locked(LockReason::RolledBack)),
        OffpayError::Locked {
            rolled_back: true,
            reason: "the wallet state was rolled back".into()
        }
    );
    let issuer_lock = OffpayError::from(WalletError::Locked(LockReason::Issuer("lost".into())));
    assert!(matches!(
        issuer_lock,
        OffpayError::Locked { rolled_back: false, ref reason } if reason.contains("lost")
    ));
    assert_eq!(
        OffpayError::from(WalletError::Malformed(DecodeError::TrailingBytes)),
        OffpayError::Malformed {
            reason: DecodeError::TrailingBytes.to_string()
        }
    );
}

#[test]
fn every_vault_refusal_has_its_own_variant() {
    let cases = [
        (VaultError::Tampered, OffpayError::Tampered),
        (
            VaultError::WrongPin { attempts_left: 2 },
            OffpayError::WrongPin { attempts_left: 2 },
        ),
        (
            VaultError::PinAttemptsExhausted,
            OffpayError::PinAttemptsExhausted,
        ),
        (
            VaultError::PinAttemptsUnreadable,
            OffpayError::PinAttemptsUnreadable,
        ),
        (
            VaultError::WrongDeviceSecret,
            OffpayError::WrongDeviceSecret,
        ),
        (VaultError::NotFound, OffpayError::VaultNotFound),
        (VaultError::AlreadyExists, OffpayError::VaultAlreadyExists),
        (
            VaultError::Corrupt("counter"),
            OffpayError::Corrupt {
                reason: "counter".into(),
            },
        ),
        (VaultError::CounterRegressed, OffpayError::CounterRegressed),
        (VaultError::CounterNotFresh, OffpayError::CounterNotFresh),
        (VaultError::TooLarge, OffpayError::StateTooLarge),
        (VaultError::InvalidKdfParams, OffpayError::InvalidKdfParams),
        (VaultError::Kdf, OffpayError::Kdf),
        (VaultError::Rng, OffpayError::Randomness),
        (
            VaultError::TokenPinRefused {
                locked: false,
                rc: 0xa0,
            },
            OffpayError::TokenPinRefused { locked: false },
        ),
        (
            VaultError::TokenPinRefused {
                locked: true,
                rc: 0xa4,
            },
            OffpayError::TokenPinRefused { locked: true },
        ),
    ];
    for (vault, sdk) in cases {
        assert_eq!(OffpayError::from(WalletError::Vault(vault)), sdk);
    }
    // An I/O error of a storage that is not the host's keeps its words.
    let io = OffpayError::from(VaultError::Io {
        op: "rename",
        kind: std::io::ErrorKind::PermissionDenied,
    });
    assert!(matches!(io, OffpayError::Vault { ref reason } if reason.contains("rename")));
    // The vault's key device arrives as the TA's own key-device refusal.
    let device = OffpayError::from(VaultError::KeyDevice {
        op: "encrypt",
        reason: "the token refused",
        rc: 0x82,
    });
    assert!(
        matches!(device, OffpayError::KeyDevice { ref reason } if reason.contains("encrypt") && reason.contains("0x82")),
        "{device:?}"
    );
}
