//! The `Signer` seam: what an issuer signs through a device (a PKCS#11 token,
//! a secure element) is byte-identical to what it signs in process, and a
//! device's failure or bad output is refused before anything is released.

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::LoadVoucher;
use offpay_protocol::pki::{self, PkiError};
use offpay_protocol::{PublicKey, SignError, Signer, SigningKey, Suite, UnixSeconds, WalletId};
use offpay_test_support::eur;

/// A device stand-in: signs with a key it holds, or fails, or corrupts.
struct Device {
    key: SigningKey,
    mode: Mode,
}
#[derive(Clone, Copy)]
enum Mode {
    Honest,
    Fails,
    FlipsABit,
    Truncates,
}
impl Signer for Device {
    fn suite(&self) -> Suite {
        self.key.suite()
    }
    fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut sig = self.key.sign(msg).to_vec();
        match self.mode {
            Mode::Honest => {}
            Mode::Fails => {
                return Err(SignError::Device {
                    what: "sign",
                    code: 0x30,
                });
            }
            Mode::FlipsABit => sig[5] ^= 1,
            Mode::Truncates => sig.truncate(40),
        }
        Ok(sig)
    }
}

fn voucher() -> LoadVoucher {
    LoadVoucher {
        wallet: WalletId([3; 16]),
        load_seq: 1,
        amount: eur(500),
        issued: UnixSeconds(1_700_000_000),
    }
}

#[test]
fn envelope_through_a_signer_is_the_same_bytes() {
    for suite in Suite::ALL {
        let key = SigningKey::from_seed(suite, &[9; 32]).unwrap();
        let direct = Signed::sign(voucher(), &key);
        let dev = Device {
            key: key.clone(),
            mode: Mode::Honest,
        };
        let via = Signed::try_sign(voucher(), &dev).unwrap();
        assert_eq!(direct.bytes(), via.bytes());
        via.verify(&key.public_key()).unwrap();
        for (mode, want) in [
            (
                Mode::Fails,
                SignError::Device {
                    what: "sign",
                    code: 0x30,
                },
            ),
            (Mode::FlipsABit, SignError::BadOutput),
            (Mode::Truncates, SignError::BadOutput),
        ] {
            let dev = Device {
                key: key.clone(),
                mode,
            };
            assert_eq!(Signed::try_sign(voucher(), &dev).unwrap_err(), want);
        }
    }
}

#[test]
fn certificates_through_a_signer() {
    let t0 = UnixSeconds(1_700_000_000);
    let t1 = UnixSeconds(1_800_000_000);
    let key = SigningKey::from_seed(Suite::Ed25519, &[1; 32]).unwrap();
    let dev = Device {
        key: key.clone(),
        mode: Mode::Honest,
    };
    let root_direct = pki::issue_root(&key, "root", 1, t0, t1).unwrap();
    let root_dev = pki::issue_root(&dev, "root", 1, t0, t1).unwrap();
    assert_eq!(root_direct.der(), root_dev.der());
    for mode in [Mode::Fails, Mode::FlipsABit, Mode::Truncates] {
        let dev = Device {
            key: key.clone(),
            mode,
        };
        let err = pki::issue_root(&dev, "root", 1, t0, t1).unwrap_err();
        assert!(matches!(err, PkiError::Signer(_)), "{err:?}");
    }
}
