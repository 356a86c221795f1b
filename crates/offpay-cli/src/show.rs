//! How the CLI shows certificate serials and times to people (the JSON keeps
//! the numbers): used by the wallet, admin, evidence and demo commands.

/// A certificate serial as OpenSSL prints it (`openssl x509 -serial`):
/// upper-case hex, an even number of digits.
pub(crate) fn serial_hex(serial: impl Into<u128>) -> String {
    let h = format!("{:X}", serial.into());
    if h.len() % 2 == 1 { format!("0{h}") } else { h }
}

/// "2026-01-31 12:34:56 UTC" from Unix seconds (proleptic Gregorian).
pub(crate) fn date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}
