//! The ledger's accounts as a type, the postings between them, and the
//! conversions between protocol amounts and the ledger's signed minor units.
//!
//! Accounts are stored under their text form (`external`, `customer:<id>`,
//! `pool`, `guarantee`, `wallet:<hex>`, `issuance`); [`Account`] formats to and
//! parses from exactly those strings, so the data on disk is unchanged.

use core::fmt;
use core::str::FromStr;

use offpay_protocol::{Amount, Currency, UnixSeconds, WalletId};

use crate::error::{InputError, Invariant, IssuerError};
use crate::store::{Book, Posting};

/// A ledger account.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    /// General ledger: where money comes in from and goes out to (the online rail).
    External,
    /// General ledger: a customer's online account.
    Customer(String),
    /// General ledger: the liability for all offline money.
    Pool,
    /// General ledger: the fraud-loss (guarantee) fund.
    Guarantee,
    /// Offline book: a wallet's sub-account.
    Wallet(WalletId),
    /// Offline book: the counter-account of the wallet sub-accounts.
    Issuance,
}

impl Account {
    /// The book the account is in.
    pub fn book(&self) -> Book {
        match self {
            Account::External | Account::Customer(_) | Account::Pool | Account::Guarantee => {
                Book::General
            }
            Account::Wallet(_) | Account::Issuance => Book::Offline,
        }
    }

    /// The stored account kind (`system`, `customer`, `wallet`).
    pub fn kind(&self) -> &'static str {
        match self {
            Account::Customer(_) => "customer",
            Account::Wallet(_) => "wallet",
            Account::External | Account::Pool | Account::Guarantee | Account::Issuance => "system",
        }
    }

    /// The accounts every issuer creates at initialisation.
    pub const SYSTEM: [Account; 4] = [
        Account::External,
        Account::Pool,
        Account::Guarantee,
        Account::Issuance,
    ];
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::External => f.write_str("external"),
            Account::Customer(id) => write!(f, "customer:{id}"),
            Account::Pool => f.write_str("pool"),
            Account::Guarantee => f.write_str("guarantee"),
            Account::Wallet(w) => write!(f, "wallet:{}", w.to_hex()),
            Account::Issuance => f.write_str("issuance"),
        }
    }
}

/// A stored account name that is none of the [`Account`] forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownAccount(pub String);

impl fmt::Display for UnknownAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a ledger account: {:?}", self.0)
    }
}
impl std::error::Error for UnknownAccount {}

impl FromStr for Account {
    type Err = UnknownAccount;

    fn from_str(s: &str) -> Result<Account, UnknownAccount> {
        let bad = || UnknownAccount(s.to_string());
        match s {
            "external" => Ok(Account::External),
            "pool" => Ok(Account::Pool),
            "guarantee" => Ok(Account::Guarantee),
            "issuance" => Ok(Account::Issuance),
            _ => {
                if let Some(id) = s.strip_prefix("customer:") {
                    if id.is_empty() {
                        return Err(bad());
                    }
                    Ok(Account::Customer(id.to_string()))
                } else if let Some(hex) = s.strip_prefix("wallet:") {
                    // Only the canonical (lower-case) form, so that parse and format round-trip.
                    let w = WalletId::from_hex(hex).ok_or_else(bad)?;
                    if w.to_hex() != hex {
                        return Err(bad());
                    }
                    Ok(Account::Wallet(w))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// One posting from `debit` to `credit`; both must be in the same book.
pub fn posting(
    debit: &Account,
    credit: &Account,
    amount: i64,
    kind: &'static str,
    reference: String,
    time: UnixSeconds,
) -> Result<Posting, IssuerError> {
    let book = debit.book();
    if credit.book() != book {
        return Err(Invariant::CrossBookPosting.into());
    }
    Ok(Posting {
        book,
        debit: debit.to_string(),
        credit: credit.to_string(),
        amount,
        kind,
        reference,
        time,
    })
}

/// Protocol minor units as the ledger's signed minor units.
pub fn to_i64(minor: u64) -> Result<i64, IssuerError> {
    i64::try_from(minor).map_err(|_| InputError::AmountTooLarge.into())
}

/// A ledger balance as an [`Amount`]; a negative one is an invariant broken on `account`.
pub fn to_amount(minor: i64, currency: Currency, account: &Account) -> Result<Amount, IssuerError> {
    u64::try_from(minor)
        .map(|m| Amount::new(m, currency))
        .map_err(|_| {
            Invariant::NegativeBalance {
                account: account.to_string(),
            }
            .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_round_trip_through_their_stored_names() {
        let w = WalletId::from_hex("00112233445566778899aabbccddeeff").expect("hex");
        let all = [
            (Account::External, "external"),
            (Account::Customer("alice-1".into()), "customer:alice-1"),
            (Account::Pool, "pool"),
            (Account::Guarantee, "guarantee"),
            (
                Account::Wallet(w),
                "wallet:00112233445566778899aabbccddeeff",
            ),
            (Account::Issuance, "issuance"),
        ];
        for (a, s) in all {
            assert_eq!(a.to_string(), s);
            assert_eq!(s.parse::<Account>(), Ok(a));
        }
        for bad in [
            "",
            "customer:",
            "wallet:zz",
            "wallet:00112233445566778899AABBCCDDEEFF",
            "Pool",
            "other:1",
        ] {
            assert_eq!(
                bad.parse::<Account>(),
                Err(UnknownAccount(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_posting_never_crosses_books() {
        let w = WalletId::from_hex("00112233445566778899aabbccddeeff").expect("hex");
        let t = UnixSeconds(0);
        assert_eq!(
            posting(
                &Account::Pool,
                &Account::Wallet(w),
                1,
                "load",
                String::new(),
                t
            ),
            Err(IssuerError::Invariant(Invariant::CrossBookPosting))
        );
        let p = posting(
            &Account::Issuance,
            &Account::Wallet(w),
            1,
            "load",
            String::new(),
            t,
        )
        .expect("same book");
        assert_eq!(p.book, Book::Offline);
    }

    #[test]
    fn negative_balances_are_no_amounts() {
        let eur = Currency::new("EUR").expect("EUR");
        assert_eq!(
            to_amount(-1, eur, &Account::Pool),
            Err(IssuerError::Invariant(Invariant::NegativeBalance {
                account: "pool".into()
            }))
        );
        assert_eq!(to_amount(7, eur, &Account::Pool), Ok(Amount::new(7, eur)));
        assert!(to_i64(u64::MAX).is_err());
    }
}
