//! The TA's signing key: a software key whose seed lives in the sealed state,
//! or a key held by the vault's hardware (a PKCS#11 token, the secure-element
//! stand-in), reached through [`Vault::device_key`](crate::vault::Vault::device_key).
//!
//! Every signature the TA releases is made *before* the state that records
//! it is committed, so a device that fails to sign leaves the state as it
//! was ([`WalletError::KeyDevice`]).

use offpay_protocol::envelope::{Body, Signed};
use offpay_protocol::{PublicKey, Signer, SigningKey};

use crate::error::WalletError;
use crate::vault::DeviceKey;

/// The key the TA signs with.
pub(crate) enum WalletKey {
    /// In process, from the seed sealed in the TA state.
    Software(Box<SigningKey>),
    /// In the vault's hardware.
    Device(DeviceKey),
}

impl WalletKey {
    /// The key as a [`Signer`] (for certificate signing requests).
    pub(crate) fn signer(&self) -> &dyn Signer {
        match self {
            WalletKey::Software(k) => k.as_ref(),
            WalletKey::Device(d) => d.as_ref(),
        }
    }

    pub(crate) fn public_key(&self) -> PublicKey {
        self.signer().public_key()
    }

    /// Sign `body`. A software key cannot fail; a device's output is checked
    /// (length, and that it verifies under the device's public key) before
    /// it is used.
    pub(crate) fn sign<T: Body>(&self, body: T) -> Result<Signed<T>, WalletError> {
        match self {
            WalletKey::Software(k) => Ok(Signed::sign(body, k)),
            WalletKey::Device(d) => {
                Signed::try_sign(body, d.as_ref()).map_err(WalletError::KeyDevice)
            }
        }
    }
}
