//! The certificate factory: the scheme root and issuer CA keys, sealed at rest
//! under the operator's master key, and everything they sign.

use offpay_protocol::entropy::Entropy;
use offpay_protocol::pki::{
    self, Certificate, Crl, PolicyRef, RevocationReason, RevokedEntry, WalletProfile,
};
use offpay_protocol::seal;
use offpay_protocol::{PublicKey, SigningKey, Suite, UnixSeconds, WalletId};

use crate::error::IssuerError;

/// Length of the operator's master key.
pub use offpay_protocol::seal::MASTER_KEY_BYTES;
/// Validity of the scheme root certificate.
pub const ROOT_VALIDITY_SECONDS: u64 = 20 * 365 * 86_400;
/// Validity of the issuer CA certificate.
pub const ISSUER_VALIDITY_SECONDS: u64 = 5 * 365 * 86_400;
/// How long a CRL is announced as current.
pub const CRL_VALIDITY_SECONDS: u64 = 86_400;

/// Seal a CA key under the master key ([`offpay_protocol::seal`], the one
/// format of every sealed key; `label` names its role).
pub fn seal_key(
    master: &[u8; MASTER_KEY_BYTES],
    label: &str,
    key: &SigningKey,
    entropy: &dyn Entropy,
) -> Result<Vec<u8>, IssuerError> {
    seal::seal_key(master, label, key, entropy).map_err(|e| match e {
        seal::SealError::Randomness => IssuerError::Randomness,
        seal::SealError::Open => IssuerError::MasterKey,
    })
}

/// Open a sealed CA key: [`IssuerError::MasterKey`] for a wrong master key,
/// a wrong label or damaged bytes.
pub fn open_key(
    master: &[u8; MASTER_KEY_BYTES],
    label: &str,
    sealed: &[u8],
) -> Result<SigningKey, IssuerError> {
    seal::open_key(master, label, sealed).map_err(|_| IssuerError::MasterKey)
}

/// The CA keys and certificates in memory.
pub struct CertificateFactory {
    /// Scheme root key (kept offline in a real scheme; here sealed in the
    /// database). `None` at a member issuer: the scheme holds it.
    root_key: Option<SigningKey>,
    /// The scheme root certificate.
    pub root: Certificate,
    /// The issuer CA key: signs wallet certificates, CRLs, vouchers, checkpoints, policies.
    issuer_key: SigningKey,
    /// The issuer CA certificate.
    pub issuer: Certificate,
}

impl std::fmt::Debug for CertificateFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateFactory")
            .field("root", &self.root.subject_cn())
            .field("issuer", &self.issuer.subject_cn())
            .field("member", &self.root_key.is_none())
            .finish()
    }
}

impl CertificateFactory {
    /// New keys and certificates.
    pub fn generate(
        suite: Suite,
        root_cn: &str,
        issuer_cn: &str,
        now: UnixSeconds,
        entropy: &dyn Entropy,
    ) -> Result<CertificateFactory, IssuerError> {
        let root_key =
            SigningKey::generate_with(suite, entropy).map_err(|_| IssuerError::Randomness)?;
        let issuer_key =
            SigningKey::generate_with(suite, entropy).map_err(|_| IssuerError::Randomness)?;
        let root = pki::issue_root(&root_key, root_cn, 1, now, now.plus(ROOT_VALIDITY_SECONDS))?;
        let issuer = pki::issue_issuer_ca(
            &root_key,
            &root,
            &issuer_key.public_key(),
            issuer_cn,
            2,
            now,
            now.plus(ISSUER_VALIDITY_SECONDS),
        )?;
        Ok(CertificateFactory {
            root_key: Some(root_key),
            root,
            issuer_key,
            issuer,
        })
    }

    /// A member issuer's factory: its own issuer CA key, the certificate the
    /// scheme issued for it, and the scheme root certificate (no root key).
    /// The CA certificate must be a CA certificate for exactly this key,
    /// signed by the root, and the root must be self-signed.
    pub fn member(
        root: Certificate,
        issuer_key: SigningKey,
        issuer: Certificate,
    ) -> Result<CertificateFactory, IssuerError> {
        root.verify_signed_by(&root)?;
        issuer.verify_signed_by(&root)?;
        if !root.is_ca() || !issuer.is_ca() {
            return Err(IssuerError::Certificate(pki::PkiError::NotACa));
        }
        if *issuer.public_key() != issuer_key.public_key() {
            return Err(crate::error::SchemeProblem::MemberKeyMismatch.into());
        }
        Ok(CertificateFactory {
            root_key: None,
            root,
            issuer_key,
            issuer,
        })
    }

    /// From sealed keys and certificates; `root_sealed` is `None` at a member issuer.
    pub fn open(
        master: &[u8; MASTER_KEY_BYTES],
        root_sealed: Option<&[u8]>,
        root_der: &[u8],
        issuer_sealed: &[u8],
        issuer_der: &[u8],
    ) -> Result<CertificateFactory, IssuerError> {
        let root_key = root_sealed
            .map(|s| open_key(master, "root", s))
            .transpose()?;
        let issuer_key = open_key(master, "issuer", issuer_sealed)?;
        let root = Certificate::from_der(root_der)?;
        let issuer = Certificate::from_der(issuer_der)?;
        if root_key
            .as_ref()
            .is_some_and(|k| *root.public_key() != k.public_key())
            || *issuer.public_key() != issuer_key.public_key()
        {
            return Err(IssuerError::MasterKey);
        }
        Ok(CertificateFactory {
            root_key,
            root,
            issuer_key,
            issuer,
        })
    }

    /// Sealed (root, issuer) keys; no root key at a member issuer.
    pub fn sealed_keys(
        &self,
        master: &[u8; MASTER_KEY_BYTES],
        entropy: &dyn Entropy,
    ) -> Result<(Option<Vec<u8>>, Vec<u8>), IssuerError> {
        Ok((
            self.root_key
                .as_ref()
                .map(|k| seal_key(master, "root", k, entropy))
                .transpose()?,
            seal_key(master, "issuer", &self.issuer_key, entropy)?,
        ))
    }

    /// Whether the issuer is a member of a scheme (it holds no root key).
    pub fn is_member(&self) -> bool {
        self.root_key.is_none()
    }

    /// The key that signs vouchers, checkpoints, sync responses and policies.
    pub fn signing_key(&self) -> &SigningKey {
        &self.issuer_key
    }

    /// The issuer CA public key.
    pub fn issuer_public(&self) -> &PublicKey {
        self.issuer.public_key()
    }

    /// Issue a wallet certificate of `profile`.
    #[allow(clippy::too_many_arguments)]
    pub fn issue_wallet(
        &self,
        public: &PublicKey,
        wallet: WalletId,
        policy: PolicyRef,
        profile: WalletProfile,
        serial: u64,
        now: UnixSeconds,
        validity_seconds: u64,
    ) -> Result<Certificate, IssuerError> {
        Ok(pki::issue_wallet_certificate(
            &self.issuer_key,
            &self.issuer,
            &pki::WalletCertificate {
                wallet_public: public,
                wallet_id: wallet,
                policy,
                profile,
                serial,
                not_before: now,
                not_after: now.plus(validity_seconds),
            },
        )?)
    }

    /// Issue a CRL.
    pub fn issue_crl(
        &self,
        number: u64,
        now: UnixSeconds,
        revoked: &[RevokedEntry],
    ) -> Result<Crl, IssuerError> {
        Ok(pki::issue_crl(
            &self.issuer_key,
            &self.issuer,
            number,
            now,
            now.plus(CRL_VALIDITY_SECONDS),
            revoked,
        )?)
    }

    /// Root key, for re-issuing the issuer CA (rotation); `None` at a member issuer.
    pub fn root_key(&self) -> Option<&SigningKey> {
        self.root_key.as_ref()
    }
}

/// The RFC 5280 reason code offpay records for a reason.
pub fn reason_code(r: RevocationReason) -> u8 {
    r.code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_round_trip_and_refuse_wrong_master() {
        let f = CertificateFactory::generate(
            Suite::Ed25519,
            "root",
            "issuer",
            UnixSeconds(1_795_000_000),
            &offpay_protocol::OsEntropy,
        )
        .unwrap();
        let master = [7u8; 32];
        let (r, i) = f.sealed_keys(&master, &offpay_protocol::OsEntropy).unwrap();
        let r = r.unwrap();
        let g =
            CertificateFactory::open(&master, Some(&r), f.root.der(), &i, f.issuer.der()).unwrap();
        assert_eq!(g.issuer_public(), f.issuer_public());
        assert!(matches!(
            CertificateFactory::open(&[8u8; 32], Some(&r), f.root.der(), &i, f.issuer.der()),
            Err(IssuerError::MasterKey)
        ));
        // A sealed key cannot be swapped for the other one (label in the AAD).
        assert!(matches!(
            CertificateFactory::open(&master, Some(&i), f.root.der(), &r, f.issuer.der()),
            Err(IssuerError::MasterKey)
        ));
    }

    #[test]
    fn seeded_entropy_gives_the_same_ca() {
        let make = || {
            let e = offpay_protocol::SeededEntropy::from_u64(7, "ca");
            let f = CertificateFactory::generate(
                Suite::Ed25519,
                "root",
                "issuer",
                UnixSeconds(1_795_000_000),
                &e,
            )
            .unwrap();
            let sealed = f.sealed_keys(&[7u8; 32], &e).unwrap();
            (f.root.der().to_vec(), f.issuer.der().to_vec(), sealed)
        };
        assert_eq!(make(), make());
    }
}
