//! An issuer as a member of a scheme: its issuer CA key generated here and
//! certified by the scheme from a CSR (the root key never exists here), and
//! the scheme directory (every admitted issuer's CA certificate and CRL, the
//! root-signed issuer CRL) installed from the scheme and handed on to wallets
//! at sync.

use std::sync::Arc;

use offpay_protocol::entropy::SharedEntropy;
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{DIRECTORY_UPDATE_BYTES_MAX, DirectoryUpdate};
use offpay_protocol::pki::{self, Certificate};
use offpay_protocol::{Hash32, IssuerId, SigningKey, UnixSeconds};

use crate::ca::{CertificateFactory, MASTER_KEY_BYTES, open_key, seal_key};
use crate::directory::{Installed, verify_directory};
use crate::error::{IssuerError, SchemeProblem};
use crate::issuer::{
    Issuer, IssuerConfig, MEMBER_SETTING, write_ca_settings, write_initial_settings,
};
use crate::ledger::Account;
use crate::settle::Member;
use crate::store::{ClaimState, Store, StoreError};

/// Settings of a member issuer.
const PENDING_KEY: &str = "scheme.pending.key";
const PENDING_CODE: &str = "scheme.pending.code";
const PENDING_CSR: &str = "scheme.pending.csr";
const DIRECTORY: &str = "scheme.directory";

fn check_code(code: &str) -> Result<(), IssuerError> {
    if code.is_empty()
        || code.len() > 32
        || !code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(SchemeProblem::BadCode.into());
    }
    Ok(())
}

impl<S: Store> Issuer<S> {
    /// The CSR of a member issuer's CA key for the scheme operator (the
    /// first call generates and seals the key; the same code again returns
    /// the same CSR, another code is refused). The issuer is not initialised
    /// until [`Issuer::init_member`] installs the certificate.
    pub fn member_csr(
        store: &S,
        master: &[u8; MASTER_KEY_BYTES],
        config: &IssuerConfig,
        code: &str,
        entropy: SharedEntropy,
    ) -> Result<Vec<u8>, IssuerError> {
        check_code(code)?;
        let mut tx = store.begin()?;
        if tx.setting("ca.issuer.cert")?.is_some() {
            return Err(IssuerError::AlreadyInitialised);
        }
        if let Some(pending) = tx.setting(PENDING_CODE)? {
            let pending = String::from_utf8_lossy(&pending).into_owned();
            if pending != code {
                return Err(SchemeProblem::CodeMismatch { pending }.into());
            }
            return tx
                .setting(PENDING_CSR)?
                .ok_or_else(|| StoreError::Corrupt("pending CSR".into()).into());
        }
        let key = SigningKey::generate_with(config.suite, entropy.as_ref())
            .map_err(|_| IssuerError::Randomness)?;
        let csr = pki::build_ca_csr(&key, code)?;
        tx.set_setting(
            PENDING_KEY,
            &seal_key(master, "issuer", &key, entropy.as_ref())?,
        )?;
        tx.set_setting(PENDING_CODE, code.as_bytes())?;
        tx.set_setting(PENDING_CSR, &csr)?;
        tx.commit()?;
        Ok(csr)
    }

    /// Initialise a member issuer from the scheme's answer to its CSR: the
    /// root certificate and the issuer CA certificate for the pending key.
    pub fn init_member(
        store: S,
        master: &[u8; MASTER_KEY_BYTES],
        config: &IssuerConfig,
        root_der: &[u8],
        ca_cert_der: &[u8],
        now: UnixSeconds,
        entropy: SharedEntropy,
    ) -> Result<Issuer<S>, IssuerError> {
        let root = Certificate::from_der(root_der)?;
        let issuer = Certificate::from_der(ca_cert_der)?;
        let (ca, policy_bytes) = {
            let mut tx = store.begin()?;
            if tx.setting("ca.issuer.cert")?.is_some() {
                return Err(IssuerError::AlreadyInitialised);
            }
            let sealed = tx
                .setting(PENDING_KEY)?
                .ok_or(SchemeProblem::NoPendingKey)?;
            let key = open_key(master, "issuer", &sealed)?;
            let ca = CertificateFactory::member(root, key, issuer)?;
            let policy_bytes = Signed::try_sign(config.policy.clone(), ca.signer())?.into_bytes();
            let crl = ca.issue_crl(1, now, &[])?;
            write_ca_settings(tx.as_mut(), &ca, None, &sealed)?;
            write_initial_settings(tx.as_mut(), config, &policy_bytes, crl.der(), now)?;
            tx.set_setting(MEMBER_SETTING, &Hash32::digest(ca.root.der()).0)?;
            let s = Account::Settlement;
            tx.create_account(&s.to_string(), s.book(), s.kind(), now)?;
            tx.commit()?;
            (ca, policy_bytes)
        };
        Ok(Issuer::assemble(
            store,
            ca,
            config.policy.clone(),
            policy_bytes,
            config.enrollment_token_seconds,
            entropy,
        ))
    }

    /// This issuer's id (its CA certificate's subject).
    pub fn issuer_id(&self) -> IssuerId {
        self.ca.issuer.subject_issuer_id()
    }

    /// Whether this issuer is a member of a scheme (else standalone).
    pub fn is_member(&self) -> bool {
        self.ca.is_member()
    }

    /// Install a newer root-signed directory (in the issuer's currency,
    /// listing this issuer); the same directory again is a no-op. Returns
    /// the installed version.
    pub fn install_directory(
        &self,
        signed_directory: &[u8],
        now: UnixSeconds,
    ) -> Result<u64, IssuerError> {
        let _ = now;
        if !self.is_member() {
            return Err(SchemeProblem::NotAMember.into());
        }
        let fresh = verify_directory(&self.ca.root, signed_directory)?;
        if fresh.directory.currency != self.currency() {
            return Err(SchemeProblem::Currency.into());
        }
        if fresh.trust.issuer(&self.issuer_id()).is_none() {
            return Err(SchemeProblem::NotInDirectory.into());
        }
        let version = fresh.version;
        let installed = self.with_tx(|tx| {
            let current = match tx.setting(DIRECTORY)? {
                Some(b) => Some(verify_directory(&self.ca.root, &b)?.version),
                None => None,
            };
            match current {
                Some(v)
                    if v == version
                        && tx.setting(DIRECTORY)?.as_deref() == Some(signed_directory) =>
                {
                    Ok(false)
                }
                Some(v) if v >= version => Err(SchemeProblem::DirectoryNotNewer {
                    installed: v,
                    offered: version,
                }
                .into()),
                _ => {
                    tx.set_setting(DIRECTORY, signed_directory)?;
                    Ok(true)
                }
            }
        })?;
        if installed {
            self.set_installed(Some(Arc::new(fresh)));
            // Certificates verified under the old directory are checked again.
            if let Ok(mut c) = self.cert_cache.lock() {
                c.clear();
            }
        }
        Ok(version)
    }

    /// The installed directory's version (0: none).
    pub fn directory_version(&self) -> u64 {
        self.installed().map_or(0, |d| d.version)
    }

    /// Load the stored directory at open (a member issuer).
    pub(crate) fn load_directory(&self) -> Result<(), IssuerError> {
        if !self.is_member() {
            return Ok(());
        }
        let stored = self.with_tx(|tx| Ok(tx.setting(DIRECTORY)?))?;
        if let Some(b) = stored {
            let d = verify_directory(&self.ca.root, &b)
                .map_err(|e| StoreError::Corrupt(format!("stored directory: {e}")))?;
            self.set_installed(Some(Arc::new(d)));
        }
        Ok(())
    }

    pub(crate) fn installed(&self) -> Option<Arc<Installed>> {
        match self.directory.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_installed(&self, d: Option<Arc<Installed>>) {
        match self.directory.write() {
            Ok(mut g) => *g = d,
            Err(p) => *p.into_inner() = d,
        }
    }

    /// The directory changes a wallet holding `version` gets (member issuers).
    pub(crate) fn directory_update(&self, version: u64) -> Option<DirectoryUpdate> {
        self.installed().and_then(|d| {
            d.directory
                .update_since(version, DIRECTORY_UPDATE_BYTES_MAX)
        })
    }

    /// The settlement context: `Some` at a member issuer.
    pub(crate) fn member_ctx<'a>(
        &self,
        installed: &'a Option<Arc<Installed>>,
        claim_state: ClaimState,
    ) -> Option<Member<'a>> {
        self.is_member().then(|| Member {
            us: self.issuer_id(),
            trust: installed.as_deref().map(|d| &d.trust),
            claim_state,
        })
    }
}
