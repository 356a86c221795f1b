//! The ledger's accounts as a type, the postings between them, and the
//! conversions between protocol amounts and the ledger's signed minor units.
//!
//! Accounts are stored under their text form (`external`, `customer:<id>`,
//! `pool`, `guarantee`, `wallet:<hex>`, `issuance`, and at a member issuer
//! `issuer:<hex>`, `foreign:<hex>`, `settlement`); [`Account`] formats to and
//! parses from exactly those strings, so the data on disk is unchanged.
//! Two more accounts are not [`Account`]s: `retention:gl` and
//! `retention:offline`, the clearing accounts of the summary postings the
//! retention rule folds a pruned payment's postings into (`retention.rs`);
//! each is zero after every retention batch.
//!
//! Sign conventions of a member issuer (balance = credits - debits): a
//! payment of x by our wallet P to a wallet of issuer B posts
//! `wallet:P -> foreign:B` (offline book) and `pool -> issuer:B` (general
//! ledger): `issuer:B` rises by x, what we owe B. A payment of x by a wallet
//! of issuer A to our wallet Q posts `foreign:A -> wallet:Q` and
//! `issuer:A -> pool`: `issuer:A` falls by x, what A owes us. A posted
//! settlement line with B of net n = receivable - payable moves the line's
//! claims out of `issuer:B` into `settlement`, so `settlement` is minus the
//! sum of the nets of every posted line (negative: the scheme owes us).

use core::fmt;
use core::str::FromStr;

use offpay_protocol::{Amount, Currency, IssuerId, UnixSeconds, WalletId};

use crate::error::{InputError, Invariant, IssuerError};
use std::collections::{BTreeMap, BTreeSet};

use crate::store::{Book, Posting, StoreError, Tx};

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
    /// General ledger: what we owe another issuer of the scheme, net of what
    /// it owes us, for claims in no posted settlement cycle yet.
    Peer(IssuerId),
    /// Offline book: offline money that crossed to (credit) or from (debit)
    /// the wallets of another issuer.
    Foreign(IssuerId),
    /// General ledger: our settlement account at the scheme.
    Settlement,
    /// General ledger: the reserve for payments of closed wallets reported
    /// after their close, and what lost wallets forfeit where the scheme
    /// does not refund them (`lifecycle.rs`).
    Reserve,
}

impl Account {
    /// The book the account is in.
    pub fn book(&self) -> Book {
        match self {
            Account::External | Account::Customer(_) | Account::Pool | Account::Guarantee => {
                Book::General
            }
            Account::Peer(_) | Account::Settlement | Account::Reserve => Book::General,
            Account::Wallet(_) | Account::Issuance | Account::Foreign(_) => Book::Offline,
        }
    }

    /// The stored account kind (`system`, `customer`, `wallet`, `peer`, `foreign`).
    pub fn kind(&self) -> &'static str {
        match self {
            Account::Customer(_) => "customer",
            Account::Wallet(_) => "wallet",
            Account::Peer(_) => "peer",
            Account::Foreign(_) => "foreign",
            Account::External
            | Account::Pool
            | Account::Guarantee
            | Account::Issuance
            | Account::Settlement
            | Account::Reserve => "system",
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
            Account::Peer(i) => write!(f, "issuer:{}", i.to_hex()),
            Account::Foreign(i) => write!(f, "foreign:{}", i.to_hex()),
            Account::Settlement => f.write_str("settlement"),
            Account::Reserve => f.write_str("reserve"),
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
            "settlement" => Ok(Account::Settlement),
            "reserve" => Ok(Account::Reserve),
            _ => {
                let issuer = |hex: &str| -> Result<IssuerId, UnknownAccount> {
                    let i = IssuerId::from_hex(hex).ok_or_else(bad)?;
                    if i.to_hex() != hex {
                        return Err(bad());
                    }
                    Ok(i)
                };
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
                } else if let Some(hex) = s.strip_prefix("issuer:") {
                    Ok(Account::Peer(issuer(hex)?))
                } else if let Some(hex) = s.strip_prefix("foreign:") {
                    Ok(Account::Foreign(issuer(hex)?))
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

/// The member invariants, in the transaction of the others: every
/// `issuer:<hex>` equals our open claims with it (payable - receivable),
/// every `foreign:<hex>` all our claims with it, and `settlement` minus the
/// nets of the posted statements.
pub(crate) fn member_violations(tx: &mut dyn Tx) -> Result<Vec<String>, StoreError> {
    let mut v = Vec::new();
    let sums = tx.claim_sums()?;
    let peer: BTreeMap<String, i64> = tx.balances_of_kind("peer")?.into_iter().collect();
    let foreign: BTreeMap<String, i64> = tx.balances_of_kind("foreign")?.into_iter().collect();
    let mut seen = BTreeSet::new();
    for s in &sums {
        let p = Account::Peer(s.counterparty).to_string();
        let f = Account::Foreign(s.counterparty).to_string();
        let open = s.open_payable - s.open_receivable;
        let all = s.all_payable - s.all_receivable;
        let pb = i128::from(peer.get(&p).copied().unwrap_or(0));
        let fb = i128::from(foreign.get(&f).copied().unwrap_or(0));
        if pb != open {
            v.push(format!("account {p} is {pb}, its open claims {open}"));
        }
        if fb != all {
            v.push(format!("account {f} is {fb}, its claims {all}"));
        }
        seen.insert(p);
        seen.insert(f);
    }
    for (a, b) in peer.iter().chain(foreign.iter()) {
        if !seen.contains(a) && *b != 0 {
            v.push(format!("account {a} is {b} without any claim"));
        }
    }
    let (_, nets) = tx.statement_totals()?;
    let settlement = i128::from(tx.balance(&Account::Settlement.to_string())?.unwrap_or(0));
    if settlement != -nets {
        v.push(format!(
            "settlement {settlement} differs from minus the posted statements' nets {}",
            -nets
        ));
    }
    Ok(v)
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
            (
                Account::Peer(IssuerId([0xab; 16])),
                "issuer:abababababababababababababababab",
            ),
            (
                Account::Foreign(IssuerId([1; 16])),
                "foreign:01010101010101010101010101010101",
            ),
            (Account::Settlement, "settlement"),
            (Account::Reserve, "reserve"),
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
            "issuer:",
            "issuer:ABABABABABABABABABABABABABABABAB",
            "foreign:0101",
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
