//! Amounts on the command line: decimal major units ("12.50") or integer
//! minor units (`--minor`), parsed without floats; and their display.
//!
//! offpay shows every currency with two decimals, as
//! [`offpay_protocol::Amount`]'s `Display` does.

use crate::out::Failure;

/// Digits after the decimal point of a major-unit amount.
pub(crate) const DECIMALS: u32 = 2;
/// Minor units per major unit.
const MINOR_PER_MAJOR: u64 = 10u64.pow(DECIMALS);
/// Longest amount text accepted (a `u64` has 20 digits).
const AMOUNT_TEXT_BYTES_MAX: usize = 32;

/// An amount as typed: `text`, in minor units when `minor` is set.
pub(crate) fn parse(text: &str, minor: bool) -> Result<u64, Failure> {
    let bad = |why: &str| {
        Failure::usage(format!(
            "amount {text:?}: {why} (write 12.50 for major units, or 1250 with --minor)"
        ))
    };
    let t = text.trim();
    if t.is_empty() || t.len() > AMOUNT_TEXT_BYTES_MAX {
        return Err(bad("not an amount"));
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let value = if minor {
        if !digits(t) {
            return Err(bad("minor units are a whole number"));
        }
        t.parse::<u64>().map_err(|_| bad("too large"))?
    } else {
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w, f),
            None => (t, ""),
        };
        if !digits(whole) || (!frac.is_empty() && !digits(frac)) || t.ends_with('.') {
            return Err(bad("not a decimal number"));
        }
        if frac.len() > DECIMALS as usize {
            return Err(bad("at most two decimals"));
        }
        let whole: u64 = whole.parse().map_err(|_| bad("too large"))?;
        let mut cents: u64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad("not a decimal number"))?
        };
        for _ in frac.len()..DECIMALS as usize {
            cents *= 10;
        }
        whole
            .checked_mul(MINOR_PER_MAJOR)
            .and_then(|w| w.checked_add(cents))
            .ok_or_else(|| bad("too large"))?
    };
    if value == 0 {
        return Err(bad("must be positive"));
    }
    Ok(value)
}

/// "12.50 EUR" for minor units that may be negative (ledger balances).
pub(crate) fn show(minor: i128, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    let per = u128::from(MINOR_PER_MAJOR);
    format!(
        "{sign}{}.{:0width$} {currency}",
        m / per,
        m % per,
        width = DECIMALS as usize
    )
}

/// [`show`] for unsigned minor units.
pub(crate) fn show_u(minor: u64, currency: &str) -> String {
    show(i128::from(minor), currency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_major_units_without_floats() {
        assert_eq!(parse("12.50", false), Ok(1250));
        assert_eq!(parse("12.5", false), Ok(1250));
        assert_eq!(parse("12", false), Ok(1200));
        assert_eq!(parse("0.01", false), Ok(1));
        assert_eq!(parse(" 7.05 ", false), Ok(705));
        assert_eq!(parse("184467440737095516.15", false), Ok(u64::MAX));
        for bad in [
            "",
            "0",
            "0.00",
            "12.505",
            "-1",
            "1e3",
            "1,50",
            ".5",
            "5.",
            "abc",
            "1.2.3",
            "+1",
            "184467440737095516.16",
        ] {
            assert!(parse(bad, false).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn parses_minor_units() {
        assert_eq!(parse("1250", true), Ok(1250));
        assert_eq!(parse("18446744073709551615", true), Ok(u64::MAX));
        for bad in ["12.50", "0", "-5", "18446744073709551616", "x"] {
            assert!(parse(bad, true).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn refusals_are_usage_errors() {
        assert!(matches!(parse("1.234", false), Err(Failure::Usage(_))));
    }

    #[test]
    fn shows_two_decimals_and_signs() {
        assert_eq!(show(1250, "EUR"), "12.50 EUR");
        assert_eq!(show(5, "EUR"), "0.05 EUR");
        assert_eq!(show(-3000, "EUR"), "-30.00 EUR");
        assert_eq!(show_u(0, "INR"), "0.00 INR");
    }
}
