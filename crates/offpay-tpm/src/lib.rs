//! A TPM 2.0 NV counter as the vault's [`MonotonicCounter`].
//!
//! `tss-esapi` links the C TSS (libtss2-esys) at build time, which would
//! break the rule that the workspace builds on a machine with nothing
//! installed. So this crate speaks the few TPM 2.0 commands a counter needs
//! itself (TPM 2.0 Library spec, Part 3): `TPM2_Startup`,
//! `TPM2_NV_DefineSpace`, `TPM2_NV_Increment`, `TPM2_NV_Read`,
//! `TPM2_NV_Write`, `TPM2_NV_WriteLock`, `TPM2_NV_ReadPublic` and
//! `TPM2_NV_UndefineSpace`, with password sessions (`TPM_RS_PW`), over the
//! swtpm / Microsoft simulator TCP socket or the kernel resource manager
//! `/dev/tpmrm0` ([`transport`]).
//!
//! [`TpmCounter`] keeps the counter in two NV indices: `index` (a
//! `TPM_NT_COUNTER`) and `index + 1` (an 8-byte ordinary index holding the
//! counter's raw value at create, written once and write-locked until it
//! is undefined, `TPMA_NV_WRITEDEFINE`). The vault sees `raw - base`, so a
//! new wallet starts at 0 although a TPM counter starts at the TPM's highest
//! counter value ever. No file on the host holds any part of the value.

pub mod command;
mod counter;
pub mod swtpm;
pub mod transport;

pub use counter::{BASE_ATTRS, COUNTER_ATTRS, INDEX_MAX, INDEX_MIN, TpmCounter, TpmCounterConfig};
pub use transport::Transport;
