//! The scheme directory as a member issuer holds it: verified against the
//! scheme root, turned into a [`SchemeTrust`], and cut into the updates
//! wallets get at sync.

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::Directory;
use offpay_protocol::pki::{Certificate, Crl, SchemeTrust};

use crate::error::{IssuerError, Signature};

/// The scheme directory as installed at a member issuer.
#[derive(Debug)]
pub(crate) struct Installed {
    /// Its version.
    pub(crate) version: u64,
    /// The directory itself (root-verified).
    pub(crate) directory: Directory,
    /// The trust built from it.
    pub(crate) trust: SchemeTrust,
}

/// Verify a signed directory against the root and build its trust.
pub(crate) fn verify_directory(root: &Certificate, bytes: &[u8]) -> Result<Installed, IssuerError> {
    let signed = Signed::<Directory>::decode(bytes)?;
    signed
        .verify(root.public_key())
        .map_err(|_| IssuerError::BadSignature(Signature::Directory))?;
    let directory = signed.body().clone();
    let mut trust = SchemeTrust::new(root.clone());
    trust.set_issuer_crl(Crl::from_der(&directory.issuer_crl)?)?;
    for e in &directory.issuers {
        trust.add_issuer(Certificate::from_der(&e.ca_cert)?)?;
        if let Some(crl) = &e.crl {
            trust.set_crl(Crl::from_der(crl)?)?;
        }
    }
    Ok(Installed {
        version: directory.version,
        directory,
        trust,
    })
}
