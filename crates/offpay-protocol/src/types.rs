//! Domain value types: wallet ids, amounts, currencies, time, hashes, nonces.
//!
//! Money is integer minor units with an ISO 4217 currency. Every operation on
//! [`Amount`] is checked; there are no floats anywhere in offpay.

use core::fmt;

use sha2::{Digest, Sha256};

/// Length in bytes of a [`WalletId`].
pub const WALLET_ID_BYTES: usize = 16;
/// Length in bytes of a [`Nonce`].
pub const NONCE_BYTES: usize = 16;
/// Length in bytes of an [`IssuerId`].
pub const ISSUER_ID_BYTES: usize = 16;
/// Length in bytes of a [`Hash32`].
pub const HASH_BYTES: usize = 32;

/// Seconds since the Unix epoch (UTC). The protocol never reads a clock: time
/// is always an argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixSeconds(pub u64);

impl UnixSeconds {
    /// `self + secs`, saturating at `u64::MAX` (times are never money).
    pub fn plus(self, secs: u64) -> UnixSeconds {
        UnixSeconds(self.0.saturating_add(secs))
    }
    /// Seconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: UnixSeconds) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for UnixSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! fixed_bytes {
    ($(#[$m:meta])* $name:ident, $len:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
            /// From a slice of exactly the right length.
            pub fn from_slice(s: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(s).ok().map($name)
            }
            /// Lower-case hexadecimal.
            pub fn to_hex(&self) -> String {
                crate::types::hex_lower(&self.0)
            }
            /// Parse lower- or upper-case hexadecimal of exactly the right length.
            pub fn from_hex(s: &str) -> Option<Self> {
                let v = crate::types::hex_decode(s)?;
                Self::from_slice(&v)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

fixed_bytes!(
    /// A wallet (one trusted application, one certificate subject). Random, 16 bytes.
    WalletId,
    WALLET_ID_BYTES
);
fixed_bytes!(
    /// A payee's fresh request nonce: one payment instruction is accepted once.
    Nonce,
    NONCE_BYTES
);
fixed_bytes!(
    /// An issuer of the scheme: the first 16 bytes of SHA-256 of its issuer
    /// CA certificate's subject Name (DER). Hex (32 lower-case characters) in
    /// JSON, the CLI and ledger account names.
    IssuerId,
    ISSUER_ID_BYTES
);
fixed_bytes!(
    /// A SHA-256 digest: entry hashes, payment ids, certificate references.
    Hash32,
    HASH_BYTES
);

impl Hash32 {
    /// The all-zero hash: `prev` of a wallet's first outgoing entry.
    pub const ZERO: Hash32 = Hash32([0u8; HASH_BYTES]);

    /// SHA-256 of `data`.
    pub fn digest(data: &[u8]) -> Hash32 {
        Hash32(Sha256::digest(data).into())
    }
}

impl IssuerId {
    /// The id of the issuer CA whose subject Name has this DER encoding.
    pub fn of_name_der(name_der: &[u8]) -> IssuerId {
        let d = Sha256::digest(name_der);
        let mut id = [0u8; ISSUER_ID_BYTES];
        id.copy_from_slice(&d[..ISSUER_ID_BYTES]);
        IssuerId(id)
    }
}

/// An issuer's standing in the scheme, from the root-signed issuer CRL:
/// listed with reason certificateHold = suspended, with any other reason =
/// revoked, absent = active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IssuerStatus {
    /// Admitted and in good standing: its wallets are accepted.
    Active,
    /// Temporarily barred (may be reinstated): its wallets are refused.
    Suspended,
    /// Permanently barred: its wallets are refused.
    Revoked,
}

impl IssuerStatus {
    /// The wire code (0 active, 1 suspended, 2 revoked).
    pub const fn code(self) -> u64 {
        match self {
            IssuerStatus::Active => 0,
            IssuerStatus::Suspended => 1,
            IssuerStatus::Revoked => 2,
        }
    }
    /// The status of a wire code (`None` for unknown codes).
    pub const fn from_code(code: u64) -> Option<IssuerStatus> {
        match code {
            0 => Some(IssuerStatus::Active),
            1 => Some(IssuerStatus::Suspended),
            2 => Some(IssuerStatus::Revoked),
            _ => None,
        }
    }
    /// "active", "suspended" or "revoked" (JSON, CLI, metrics).
    pub const fn as_str(self) -> &'static str {
        match self {
            IssuerStatus::Active => "active",
            IssuerStatus::Suspended => "suspended",
            IssuerStatus::Revoked => "revoked",
        }
    }
}

impl fmt::Display for IssuerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn hex_lower(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let val = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(val(p[0])? << 4 | val(p[1])?))
        .collect()
}

/// An ISO 4217 alphabetic currency code: three ASCII upper-case letters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// The euro.
    pub const EUR: Currency = Currency(*b"EUR");
    /// Parse "EUR", "INR", "BRL", ...; anything but three upper-case ASCII letters is refused.
    pub fn new(code: &str) -> Option<Currency> {
        let b: [u8; 3] = code.as_bytes().try_into().ok()?;
        b.iter().all(u8::is_ascii_uppercase).then_some(Currency(b))
    }
    /// The code as a string slice.
    pub fn as_str(&self) -> &str {
        // Invariant: always three ASCII upper-case letters.
        core::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Money: integer minor units (cents, paise, centavos) of one currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Amount {
    /// Minor units.
    pub minor: u64,
    /// ISO 4217 currency.
    pub currency: Currency,
}

/// Arithmetic on amounts that would mix currencies or leave `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmountError {
    /// The two amounts are in different currencies.
    CurrencyMismatch,
    /// The result does not fit in a `u64`.
    Overflow,
    /// The result would be negative.
    Underflow,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmountError::CurrencyMismatch => "amounts in different currencies",
            AmountError::Overflow => "amount overflow",
            AmountError::Underflow => "amount would be negative",
        })
    }
}
impl std::error::Error for AmountError {}

impl Amount {
    /// An amount.
    pub const fn new(minor: u64, currency: Currency) -> Amount {
        Amount { minor, currency }
    }
    /// Zero of a currency.
    pub const fn zero(currency: Currency) -> Amount {
        Amount { minor: 0, currency }
    }
    /// Checked addition.
    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountError> {
        if self.currency != other.currency {
            return Err(AmountError::CurrencyMismatch);
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(AmountError::Overflow)?;
        Ok(Amount {
            minor,
            currency: self.currency,
        })
    }
    /// Checked subtraction.
    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountError> {
        if self.currency != other.currency {
            return Err(AmountError::CurrencyMismatch);
        }
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(AmountError::Underflow)?;
        Ok(Amount {
            minor,
            currency: self.currency,
        })
    }
}

impl fmt::Display for Amount {
    /// "12.34 EUR" with two decimals; minor units are what the protocol carries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02} {}",
            self.minor / 100,
            self.minor % 100,
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes() {
        assert!(Currency::new("EUR").is_some());
        assert!(Currency::new("eur").is_none());
        assert!(Currency::new("EURO").is_none());
        assert!(Currency::new("E1R").is_none());
    }

    #[test]
    fn amount_arithmetic_is_checked() {
        let eur = Currency::new("EUR").unwrap();
        let inr = Currency::new("INR").unwrap();
        let a = Amount::new(u64::MAX, eur);
        assert_eq!(
            a.checked_add(Amount::new(1, eur)),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            Amount::new(1, eur).checked_sub(Amount::new(2, eur)),
            Err(AmountError::Underflow)
        );
        assert_eq!(
            Amount::new(1, eur).checked_add(Amount::new(1, inr)),
            Err(AmountError::CurrencyMismatch)
        );
        assert_eq!(Amount::new(250, eur).to_string(), "2.50 EUR");
    }

    #[test]
    fn hex_round_trip() {
        let id = WalletId([0xab; 16]);
        assert_eq!(WalletId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(WalletId::from_hex("zz"), None);
    }
}
