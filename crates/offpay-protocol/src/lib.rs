//! offpay-protocol: the sans-IO core of offpay.
//!
//! Amounts and identifiers, deterministic CBOR, COSE_Sign1 envelopes, the
//! signature suites, X.509 certificates and CRLs, the messages of the offline
//! protocol, the per-wallet hash chain and double-spend evidence. Nothing here
//! reads a clock, a file or a socket: time and bytes are arguments.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod entropy;
pub mod pki;
pub mod seal;
pub mod suite;
pub mod types;

pub use entropy::{Entropy, EntropyError, OsEntropy, SeededEntropy, SharedEntropy};
pub use suite::{PublicKey, SignError, Signer, SigningKey, Suite};
pub use types::{
    Amount, AmountError, Currency, Hash32, IssuerId, IssuerStatus, Nonce, UnixSeconds, WalletId,
};
pub mod bundle;
pub mod cbor;
pub mod envelope;
pub mod evidence;
pub mod messages;
