//! Issuer bearer tokens: `<issuer id hex>.<64 hex of 32 random bytes>`. The
//! scheme stores SHA-256 of the secret only; a presented token is looked up
//! by its issuer id and its secret's hash compared in constant time.

use offpay_protocol::entropy::Entropy;
use offpay_protocol::{Hash32, IssuerId};
use zeroize::Zeroizing;

use crate::error::SchemeError;

/// Random bytes of a token's secret.
pub const TOKEN_SECRET_BYTES: usize = 32;
/// Length of a token: 32 hex, a dot, 64 hex.
pub const TOKEN_CHARS: usize = 32 + 1 + 2 * TOKEN_SECRET_BYTES;

/// A new token for `issuer` and the hash to store.
pub fn new_token(
    issuer: &IssuerId,
    entropy: &dyn Entropy,
) -> Result<(String, Hash32), SchemeError> {
    let secret = Zeroizing::new(
        offpay_protocol::entropy::random::<TOKEN_SECRET_BYTES>(entropy)
            .map_err(|_| SchemeError::Randomness)?,
    );
    let token = format!("{}.{}", hex::encode(issuer.0), hex::encode(secret.as_ref()));
    Ok((token, Hash32::digest(secret.as_ref())))
}

/// Split a presented token into its issuer id and its secret's hash.
pub fn parse_token(token: &str) -> Result<(IssuerId, Hash32), SchemeError> {
    if token.len() != TOKEN_CHARS {
        return Err(SchemeError::Unauthorized);
    }
    let (id, secret) = token.split_once('.').ok_or(SchemeError::Unauthorized)?;
    let id = lower_hex::<16>(id)?;
    let secret = Zeroizing::new(lower_hex::<TOKEN_SECRET_BYTES>(secret)?);
    Ok((IssuerId(id), Hash32::digest(secret.as_ref())))
}

fn lower_hex<const N: usize>(s: &str) -> Result<[u8; N], SchemeError> {
    if s.len() != 2 * N
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(SchemeError::Unauthorized);
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| SchemeError::Unauthorized)?;
    Ok(out)
}

/// Constant-time equality of two hashes.
pub fn hashes_equal(a: &Hash32, b: &Hash32) -> bool {
    let mut d = 0u8;
    for (x, y) in a.0.iter().zip(b.0.iter()) {
        d |= x ^ y;
    }
    core::hint::black_box(d) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_refusals() {
        let e = offpay_protocol::SeededEntropy::from_u64(3, "token");
        let id = IssuerId([7u8; 16]);
        let (token, hash) = new_token(&id, &e).unwrap();
        assert_eq!(token.len(), TOKEN_CHARS);
        let (pid, phash) = parse_token(&token).unwrap();
        assert_eq!(pid, id);
        assert!(hashes_equal(&phash, &hash));
        let mut other = token.clone().into_bytes();
        let last = other.len() - 1;
        other[last] = if other[last] == b'0' { b'1' } else { b'0' };
        let (_, h2) = parse_token(core::str::from_utf8(&other).unwrap()).unwrap();
        assert!(!hashes_equal(&h2, &hash));
        for bad in [
            "",
            "x",
            &token.to_uppercase(),
            &token.replace('.', "-"),
            &token[1..],
        ] {
            assert_eq!(
                parse_token(bad).err(),
                Some(SchemeError::Unauthorized),
                "{bad}"
            );
        }
    }
}
