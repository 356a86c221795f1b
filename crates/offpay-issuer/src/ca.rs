//! The certificate factory: the scheme root and issuer CA keys, sealed at rest
//! under the operator's master key, and everything they sign.

use offpay_protocol::entropy::Entropy;
use offpay_protocol::pki::{
    self, Certificate, Crl, PolicyRef, RevocationReason, RevokedEntry, WalletProfile,
};
use offpay_protocol::seal;
use offpay_protocol::{PublicKey, Signer, SigningKey, Suite, UnixSeconds, WalletId};
use std::sync::Arc;

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

/// A CA key: in process (sealed under the master key at rest), or held by a
/// device (a PKCS#11 token, `offpay-hsm`) that signs and never gives it out.
#[derive(Clone)]
pub enum CaKey {
    /// In process; sealed in the database at rest.
    Sealed(Box<SigningKey>),
    /// In a device: only a reference is stored.
    Device(Arc<dyn Signer>),
}

impl CaKey {
    /// The key as a signer.
    pub fn signer(&self) -> &dyn Signer {
        match self {
            CaKey::Sealed(k) => k.as_ref(),
            CaKey::Device(d) => d.as_ref(),
        }
    }
    /// Whether the key is held by a device.
    pub fn in_device(&self) -> bool {
        matches!(self, CaKey::Device(_))
    }
}

/// The CA keys and certificates in memory.
pub struct CertificateFactory {
    /// Scheme root key (kept offline in a real scheme; here sealed in the
    /// database or in a token). `None` at a member issuer: the scheme holds it.
    root_key: Option<CaKey>,
    /// The scheme root certificate.
    pub root: Certificate,
    /// The issuer CA key: signs wallet certificates, CRLs, vouchers, checkpoints, policies.
    issuer_key: CaKey,
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
            root_key: Some(CaKey::Sealed(Box::new(root_key))),
            root,
            issuer_key: CaKey::Sealed(Box::new(issuer_key)),
            issuer,
        })
    }

    /// New certificates for keys held by a device (or any [`Signer`]): the
    /// root key self-signs the root and certifies the issuer CA key.
    pub fn generate_with_signers(
        root_key: Arc<dyn Signer>,
        issuer_key: Arc<dyn Signer>,
        root_cn: &str,
        issuer_cn: &str,
        now: UnixSeconds,
    ) -> Result<CertificateFactory, IssuerError> {
        let root = pki::issue_root(
            root_key.as_ref(),
            root_cn,
            1,
            now,
            now.plus(ROOT_VALIDITY_SECONDS),
        )?;
        let issuer = pki::issue_issuer_ca(
            root_key.as_ref(),
            &root,
            &issuer_key.public_key(),
            issuer_cn,
            2,
            now,
            now.plus(ISSUER_VALIDITY_SECONDS),
        )?;
        Ok(CertificateFactory {
            root_key: Some(CaKey::Device(root_key)),
            root,
            issuer_key: CaKey::Device(issuer_key),
            issuer,
        })
    }

    /// From the stored certificates and keys held by a device (after a
    /// restart): each device key must be the one its certificate names
    /// ([`IssuerError::DeviceKey`] otherwise: the token holds another key).
    pub fn with_signers(
        root_key: Option<Arc<dyn Signer>>,
        root_der: &[u8],
        issuer_key: Arc<dyn Signer>,
        issuer_der: &[u8],
    ) -> Result<CertificateFactory, IssuerError> {
        let root = Certificate::from_der(root_der)?;
        let issuer = Certificate::from_der(issuer_der)?;
        if root_key
            .as_ref()
            .is_some_and(|k| *root.public_key() != k.public_key())
        {
            return Err(IssuerError::DeviceKey(
                "the token's root key is not the key of the stored root certificate",
            ));
        }
        if *issuer.public_key() != issuer_key.public_key() {
            return Err(IssuerError::DeviceKey(
                "the token's issuer key is not the key of the stored issuer CA certificate",
            ));
        }
        Ok(CertificateFactory {
            root_key: root_key.map(CaKey::Device),
            root,
            issuer_key: CaKey::Device(issuer_key),
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
            issuer_key: CaKey::Sealed(Box::new(issuer_key)),
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
            root_key: root_key.map(|k| CaKey::Sealed(Box::new(k))),
            root,
            issuer_key: CaKey::Sealed(Box::new(issuer_key)),
            issuer,
        })
    }

    /// Sealed (root, issuer) keys; no root key at a member issuer.
    /// [`IssuerError::DeviceKey`] when a key is held by a device.
    pub fn sealed_keys(
        &self,
        master: &[u8; MASTER_KEY_BYTES],
        entropy: &dyn Entropy,
    ) -> Result<(Option<Vec<u8>>, Vec<u8>), IssuerError> {
        let seal = |label: &str, k: &CaKey| match k {
            CaKey::Sealed(k) => seal_key(master, label, k, entropy),
            CaKey::Device(_) => Err(IssuerError::DeviceKey(
                "a key held by a device cannot be sealed",
            )),
        };
        Ok((
            self.root_key
                .as_ref()
                .map(|k| seal("root", k))
                .transpose()?,
            seal("issuer", &self.issuer_key)?,
        ))
    }

    /// Whether the issuer is a member of a scheme (it holds no root key).
    pub fn is_member(&self) -> bool {
        self.root_key.is_none()
    }

    /// The key that signs vouchers, checkpoints, sync responses and policies.
    pub fn signer(&self) -> &dyn Signer {
        self.issuer_key.signer()
    }

    /// Whether the issuer CA key is held by a device.
    pub fn issuer_key_in_device(&self) -> bool {
        self.issuer_key.in_device()
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
            self.issuer_key.signer(),
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

    /// Issue a delta CRL: the changes from CRL `base` to CRL `number`.
    pub fn issue_delta_crl(
        &self,
        number: u64,
        base: u64,
        now: UnixSeconds,
        revoked: &[RevokedEntry],
        removed: &[u64],
    ) -> Result<pki::DeltaCrl, IssuerError> {
        Ok(pki::issue_delta_crl(
            self.issuer_key.signer(),
            &self.issuer,
            number,
            base,
            now,
            now.plus(CRL_VALIDITY_SECONDS),
            pki::CrlChanges { revoked, removed },
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
            self.issuer_key.signer(),
            &self.issuer,
            number,
            now,
            now.plus(CRL_VALIDITY_SECONDS),
            revoked,
        )?)
    }

    /// Root key, for re-issuing the issuer CA (rotation); `None` at a member issuer.
    pub fn root_key(&self) -> Option<&dyn Signer> {
        self.root_key.as_ref().map(CaKey::signer)
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
