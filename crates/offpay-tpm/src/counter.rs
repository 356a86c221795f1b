//! [`TpmCounter`]: the vault's monotonic counter in a TPM 2.0 NV counter.

use offpay_wallet::vault::{MonotonicCounter, VaultError};

use crate::command::{NvPublic, Tpm, attr};
use crate::transport::{Endpoint, Transport};

/// Attributes of the counter index.
pub const COUNTER_ATTRS: u32 = attr::AUTHREAD | attr::AUTHWRITE | attr::NT_COUNTER | attr::NO_DA;
/// Attributes of the base index (ordinary, written once then locked).
pub const BASE_ATTRS: u32 = attr::AUTHREAD | attr::AUTHWRITE | attr::WRITEDEFINE | attr::NO_DA;
/// Lowest NV index for an owner-defined index (`TPM_HT_NV_INDEX`, owner range).
pub const INDEX_MIN: u32 = 0x0100_0000;
/// Highest counter index (the base index is `index + 1`).
pub const INDEX_MAX: u32 = 0x01BF_FFFE;

fn err(op: &'static str, reason: &'static str) -> VaultError {
    VaultError::CounterDevice { op, reason, rc: 0 }
}

/// Where a wallet's counter is and how to authorize it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpmCounterConfig {
    /// The TPM.
    pub endpoint: Endpoint,
    /// The counter's NV index; the base is at `index + 1`.
    pub index: u32,
    /// The two indices' auth value.
    pub auth: Vec<u8>,
    /// The owner hierarchy's auth (empty on a fresh TPM / swtpm).
    pub owner_auth: Vec<u8>,
}

impl TpmCounterConfig {
    /// A config with empty auth values.
    ///
    /// # Errors
    /// [`VaultError::CounterDevice`] for an index outside the owner range.
    pub fn new(endpoint: Endpoint, index: u32) -> Result<Self, VaultError> {
        if !(INDEX_MIN..=INDEX_MAX).contains(&index) {
            return Err(err("config", "NV index outside 0x01000000..=0x01BFFFFE"));
        }
        Ok(Self {
            endpoint,
            index,
            auth: Vec::new(),
            owner_auth: Vec::new(),
        })
    }

    fn base_index(&self) -> u32 {
        self.index.saturating_add(1)
    }
}

/// A [`MonotonicCounter`] in a TPM 2.0 NV counter (`TPM_NT_COUNTER`).
///
/// The value the vault sees is `raw - base`: `raw` the NV counter, `base`
/// its value right after create, kept in a second NV index that is written
/// once and write-locked for its lifetime (`TPMA_NV_WRITEDEFINE`). Both
/// live in the TPM, none on the host: restoring the whole wallet directory
/// restores nothing of the counter. The counter only grows by one per
/// `TPM2_NV_Increment`, so [`advance_to`](MonotonicCounter::advance_to)
/// increments until it gets there.
///
/// Every open checks both indices' public areas (type, attributes, size):
/// an index replaced by an ordinary one, or a base that is not locked, is
/// refused. No connection is held between calls.
#[derive(Debug)]
pub struct TpmCounter {
    config: TpmCounterConfig,
    /// Whether `base` was read from (or written to) the TPM.
    tpm_checked: bool,
    base: u64,
    /// Highest value seen or written through this handle.
    floor: u64,
}

fn check_public(
    p: &NvPublic,
    index: u32,
    want: u32,
    extra: u32,
    what: &'static str,
) -> Result<(), VaultError> {
    let must = want | extra;
    // The type field must match exactly, the wanted bits be set, and no
    // bit that would change who can write or read be added.
    let allowed = must | attr::WRITTEN | attr::WRITELOCKED;
    if p.index != index
        || p.data_size != 8
        || p.attributes & attr::NT_MASK != want & attr::NT_MASK
        || p.attributes & must != must
        || p.attributes & !allowed != 0
    {
        return Err(err("TPM2_NV_ReadPublic", what));
    }
    Ok(())
}

impl TpmCounter {
    /// Define a new counter at `config.index` (and its base at `index + 1`),
    /// increment it once and record the base: a fresh counter at 0.
    ///
    /// # Errors
    /// [`VaultError::CounterDevice`]: no TPM, the index already defined,
    /// the owner auth wrong, no NV space. On a failure after the first
    /// define, what was defined is removed again (best effort).
    pub fn create(config: TpmCounterConfig) -> Result<Self, VaultError> {
        let mut tpm = Self::connect(&config)?;
        let (i, b) = (config.index, config.base_index());
        tpm.nv_define(&config.owner_auth, i, &config.auth, COUNTER_ATTRS, 8)?;
        let init = (|| {
            tpm.nv_increment(i, &config.auth)?;
            let base = tpm.nv_read_u64(i, &config.auth)?;
            tpm.nv_define(&config.owner_auth, b, &config.auth, BASE_ATTRS, 8)?;
            tpm.nv_write(b, &config.auth, &base.to_be_bytes())?;
            tpm.nv_write_lock(b, &config.auth)?;
            Ok(base)
        })();
        match init {
            Ok(base) => Ok(Self {
                config,
                tpm_checked: true,
                base,
                floor: 0,
            }),
            Err(e) => {
                let _ = tpm.nv_undefine(&config.owner_auth, b);
                let _ = tpm.nv_undefine(&config.owner_auth, i);
                Err(e)
            }
        }
    }

    /// Open an existing counter: check both indices and read the base.
    ///
    /// # Errors
    /// [`VaultError::CounterDevice`]: no TPM, an index missing (the TPM was
    /// cleared or the index removed), of the wrong type or attributes, the
    /// auth wrong; [`VaultError::CounterRegressed`] if the counter is below
    /// its base.
    pub fn open(config: TpmCounterConfig) -> Result<Self, VaultError> {
        let mut c = Self {
            config,
            tpm_checked: false,
            base: 0,
            floor: 0,
        };
        c.read()?;
        Ok(c)
    }

    fn connect(config: &TpmCounterConfig) -> Result<Tpm, VaultError> {
        let mut tpm = Tpm::new(Transport::connect(&config.endpoint)?);
        tpm.startup()?;
        Ok(tpm)
    }

    /// Check both indices' public areas and read the base.
    fn load_base(&self, tpm: &mut Tpm) -> Result<u64, VaultError> {
        let (i, b) = (self.config.index, self.config.base_index());
        let pc = tpm.nv_read_public(i)?;
        check_public(
            &pc,
            i,
            COUNTER_ATTRS,
            attr::WRITTEN,
            "the counter index is not a TPM_NT_COUNTER with the expected attributes",
        )?;
        let pb = tpm.nv_read_public(b)?;
        check_public(
            &pb,
            b,
            BASE_ATTRS,
            attr::WRITTEN | attr::WRITELOCKED,
            "the base index is not a written, write-locked 8-byte index",
        )?;
        tpm.nv_read_u64(b, &self.config.auth)
    }

    /// A new connection (swtpm serves one client at a time, so none is
    /// held between calls), with both indices checked: a TPM reset or
    /// cleared meanwhile, or an index swapped, is seen at every call.
    fn session(&mut self) -> Result<Tpm, VaultError> {
        let mut tpm = Self::connect(&self.config)?;
        let base = self.load_base(&mut tpm)?;
        if self.tpm_checked && base != self.base {
            return Err(err(
                "open",
                "the base index changed: the index was redefined",
            ));
        }
        self.base = base;
        self.tpm_checked = true;
        Ok(tpm)
    }

    /// The current value through `tpm` (floor kept).
    fn read_on(&mut self, tpm: &mut Tpm) -> Result<u64, VaultError> {
        let raw = tpm.nv_read_u64(self.config.index, &self.config.auth)?;
        let v = raw
            .checked_sub(self.base)
            .ok_or(VaultError::CounterRegressed)?;
        if v < self.floor {
            return Err(VaultError::CounterRegressed);
        }
        self.floor = v;
        Ok(v)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &TpmCounterConfig {
        &self.config
    }

    /// The counter's raw value at create (the TPM's `base`).
    #[must_use]
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Remove both indices (owner auth): the wallet's counter is gone for
    /// good; its vault will not open again.
    ///
    /// # Errors
    /// [`VaultError::CounterDevice`].
    pub fn destroy(self) -> Result<(), VaultError> {
        let (i, b, owner) = (
            self.config.index,
            self.config.base_index(),
            self.config.owner_auth.clone(),
        );
        let mut tpm = Self::connect(&self.config)?;
        tpm.nv_undefine(&owner, b)?;
        tpm.nv_undefine(&owner, i)
    }
}

impl MonotonicCounter for TpmCounter {
    fn read(&mut self) -> Result<u64, VaultError> {
        let mut tpm = self.session()?;
        self.read_on(&mut tpm)
    }

    fn advance_to(&mut self, v: u64) -> Result<(), VaultError> {
        let mut tpm = self.session()?;
        let mut current = self.read_on(&mut tpm)?;
        if v < current {
            return Err(VaultError::CounterRegressed);
        }
        while current < v {
            tpm.nv_increment(self.config.index, &self.config.auth)?;
            let next = self.read_on(&mut tpm)?;
            if Some(next) != current.checked_add(1) {
                return Err(err(
                    "TPM2_NV_Increment",
                    "the counter did not move by exactly one (another user of the index?)",
                ));
            }
            current = next;
        }
        Ok(())
    }
}
