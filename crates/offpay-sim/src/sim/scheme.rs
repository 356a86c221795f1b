//! Runs with several issuers: the scheme operator, the member issuers'
//! admission, the claims moved between them and the scheme, the settlement
//! cycles, and the checks across issuers.

use super::*;

/// The scheme of a run with several issuers.
pub(super) struct SchemeWorld {
    /// Its database file, if it has one (for the store size).
    pub(super) file: Option<PathBuf>,
}

impl SchemeWorld {
    /// The scheme and its member issuers (pushed onto `nodes`).
    pub(super) fn create(
        _config: &SimConfig,
        _ram: Option<&tempfile::TempDir>,
        _ic: &IssuerConfig,
        _plan: &SharedPlan,
        _nodes: &mut Table<IssuerIdx, Node>,
    ) -> Result<SchemeWorld, SimError> {
        Err(SimError::Config(
            "several issuers need the scheme operator (offpay-scheme), not merged yet".into(),
        ))
    }

    /// The canonical dump of the scheme's database.
    pub(super) fn dump(&self) -> Result<String, SimError> {
        Ok(String::new())
    }
}

impl<P: FnMut(Progress)> Sim<'_, P> {
    /// One round of claims between the issuers and the scheme (none yet).
    pub(super) fn scheme_round(
        &mut self,
        _now: UnixSeconds,
        _close_cycle: bool,
    ) -> Result<u64, SimError> {
        let _ = (self.cross_payments, self.cross_value, self.sabotaged);
        Ok(0)
    }

    /// The scheme's checks at a full check (nothing with one issuer).
    pub(super) fn scheme_check(&mut self, _hour: u64) -> Result<(), SimError> {
        Ok(())
    }

    /// Per-issuer figures of the day (none with one issuer).
    pub(super) fn day_issuers(&mut self, _rec: &mut DayRecord) -> Result<(), SimError> {
        Ok(())
    }

    /// Move claims and close cycles until nothing is in flight between the
    /// issuers (nothing to do with one issuer).
    pub(super) fn settle_until_quiet(&mut self, _now: UnixSeconds) -> Result<(), SimError> {
        Ok(())
    }

    /// The final checks across issuers (none with one issuer).
    pub(super) fn scheme_finish(&mut self) -> Result<(), SimError> {
        Ok(())
    }
}
