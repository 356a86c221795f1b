//! The scheme: its root key and certificate, admission of issuers, their
//! status, their CRLs and the root-signed directory.

use offpay_protocol::entropy::SharedEntropy;
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{
    CRL_FIELD_BYTES_MAX, DIRECTORY_BYTES_MAX, DIRECTORY_ISSUERS_MAX, Directory, DirectoryEntry,
};
use offpay_protocol::pki::{
    self, CSR_BYTES_MAX, Certificate, Crl, RevocationReason, RevokedEntry, SchemeTrust,
};
use offpay_protocol::{Currency, IssuerId, IssuerStatus, SigningKey, Suite, UnixSeconds};

use crate::error::SchemeError;
use crate::seal::{MASTER_KEY_BYTES, ROOT_KEY_LABEL, open_key, seal_key};
use crate::store::{
    ClaimRecord, IssuerRecord, SchemeStore, SchemeStoreError, SchemeTx, StoredStatus,
};
use crate::token;

/// Validity of the scheme root certificate.
pub const ROOT_VALIDITY_SECONDS: u64 = 20 * 365 * 86_400;
/// Validity of an issuer CA certificate (cut at the root's end).
pub const ISSUER_VALIDITY_SECONDS: u64 = 5 * 365 * 86_400;
/// How long the root-signed issuer CRL is announced as current.
pub const ISSUER_CRL_VALIDITY_SECONDS: u64 = 7 * 86_400;
/// Directory versions kept in the database (the latest and those before it).
pub const DIRECTORY_VERSIONS_KEPT: u64 = 16;
/// Attempts of a transaction that lost a race (PostgreSQL).
pub(crate) const CONFLICT_RETRIES: u32 = 8;

pub(crate) const K_ROOT_KEY: &str = "root_key";
pub(crate) const K_ROOT_CERT: &str = "root_cert";
pub(crate) const K_CURRENCY: &str = "currency";
pub(crate) const K_DIRECTORY_VERSION: &str = "directory_version";
pub(crate) const K_NEXT_SERIAL: &str = "next_serial";
pub(crate) const K_CYCLE: &str = "cycle";
pub(crate) const K_LOCK: &str = "lock";

/// What a new scheme is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeConfig {
    /// Signature suite of the root key.
    pub suite: Suite,
    /// The root certificate's commonName.
    pub root_cn: String,
    /// The one currency of the scheme.
    pub currency: Currency,
}

/// The result of an admission: what the new member issuer installs. The
/// token is shown once; the scheme keeps only its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Admission {
    /// The issuer's id.
    pub issuer: IssuerId,
    /// Its code.
    pub code: String,
    /// Its CA certificate (DER), issued by the root.
    pub ca_cert: Vec<u8>,
    /// The root certificate (DER).
    pub root_cert: Vec<u8>,
    /// Its bearer token for the scheme's issuer routes.
    pub token: String,
    /// The directory version that lists it.
    pub directory_version: u64,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("issuer", &self.issuer)
            .field("code", &self.code)
            .field("directory_version", &self.directory_version)
            .finish_non_exhaustive()
    }
}

/// An admitted issuer, as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerInfo {
    /// Its id.
    pub id: IssuerId,
    /// Its code.
    pub code: String,
    /// Its status.
    pub status: IssuerStatus,
    /// When the status was last set.
    pub status_time: UnixSeconds,
    /// Directory version of the entry's last change.
    pub changed: u64,
    /// Its CA certificate's serial number.
    pub serial: u64,
    /// Its CA certificate (DER).
    pub ca_cert: Vec<u8>,
    /// The number of its latest published CRL (0 = none).
    pub crl_number: u64,
    /// When it was admitted.
    pub admitted: UnixSeconds,
}

/// A claim, as the operator sees it.
pub type ClaimInfo = ClaimRecord;

/// Whether `code` is a valid issuer code, `[a-z0-9-]{1,32}`.
pub fn valid_code(code: &str) -> bool {
    pki::is_issuer_code(code)
}

pub(crate) fn status_of(s: StoredStatus) -> IssuerStatus {
    match s {
        StoredStatus::Active => IssuerStatus::Active,
        StoredStatus::Suspended => IssuerStatus::Suspended,
        StoredStatus::Revoked => IssuerStatus::Revoked,
    }
}

fn status_name(s: StoredStatus) -> &'static str {
    s.as_str()
}

pub(crate) fn get_u64(tx: &mut dyn SchemeTx, key: &str) -> Result<u64, SchemeError> {
    match tx.setting(key)? {
        None => Ok(0),
        Some(v) => {
            let a: [u8; 8] = v
                .as_slice()
                .try_into()
                .map_err(|_| SchemeError::Corrupt(format!("setting {key}")))?;
            Ok(u64::from_be_bytes(a))
        }
    }
}

pub(crate) fn set_u64(tx: &mut dyn SchemeTx, key: &str, v: u64) -> Result<(), SchemeError> {
    Ok(tx.set_setting(key, &v.to_be_bytes())?)
}

/// The scheme operator.
pub struct Scheme<S: SchemeStore> {
    pub(crate) store: S,
    pub(crate) root_key: SigningKey,
    pub(crate) root: Certificate,
    pub(crate) currency: Currency,
    pub(crate) entropy: SharedEntropy,
}

impl<S: SchemeStore> std::fmt::Debug for Scheme<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheme")
            .field("root", &self.root.subject_cn())
            .field("currency", &self.currency.as_str())
            .field("backend", &self.store.scheme_backend())
            .finish()
    }
}

impl<S: SchemeStore> Scheme<S> {
    /// Create a scheme in an empty scheme database: a new root key (sealed
    /// under `master`), its certificate, and directory version 1 (no issuers).
    pub fn init(
        store: S,
        master: &[u8; MASTER_KEY_BYTES],
        config: &SchemeConfig,
        now: UnixSeconds,
        entropy: SharedEntropy,
    ) -> Result<Self, SchemeError> {
        if config.root_cn.is_empty()
            || config.root_cn.len() > 64
            || !config
                .root_cn
                .bytes()
                .all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(SchemeError::InvalidConfig(
                "the root commonName must be 1 to 64 printable ASCII characters",
            ));
        }
        let root_key = SigningKey::generate_with(config.suite, entropy.as_ref())
            .map_err(|_| SchemeError::Randomness)?;
        let root = pki::issue_root(
            &root_key,
            &config.root_cn,
            1,
            now,
            now.plus(ROOT_VALIDITY_SECONDS),
        )?;
        let sealed = seal_key(master, ROOT_KEY_LABEL, &root_key, entropy.as_ref())?;
        let scheme = Scheme {
            store,
            root_key,
            root,
            currency: config.currency,
            entropy,
        };
        let mut tx = scheme.store.begin_scheme()?;
        if tx.setting(K_ROOT_CERT)?.is_some() {
            return Err(SchemeError::AlreadyInitialized);
        }
        tx.set_setting(K_LOCK, b"scheme")?;
        tx.lock_scheme()?;
        tx.set_setting(K_ROOT_KEY, &sealed)?;
        tx.set_setting(K_ROOT_CERT, scheme.root.der())?;
        tx.set_setting(K_CURRENCY, config.currency.as_str().as_bytes())?;
        set_u64(tx.as_mut(), K_NEXT_SERIAL, 2)?;
        set_u64(tx.as_mut(), K_CYCLE, 0)?;
        scheme.publish_directory(tx.as_mut(), now)?;
        tx.commit()?;
        Ok(scheme)
    }

    /// Open an initialized scheme: the master key must open the sealed root key.
    pub fn open(
        store: S,
        master: &[u8; MASTER_KEY_BYTES],
        entropy: SharedEntropy,
    ) -> Result<Self, SchemeError> {
        let (sealed, root_der, currency) = {
            let mut tx = store.begin_scheme()?;
            let root = tx
                .setting(K_ROOT_CERT)?
                .ok_or(SchemeError::NotInitialized)?;
            let sealed = tx
                .setting(K_ROOT_KEY)?
                .ok_or_else(|| SchemeError::Corrupt("no sealed root key".into()))?;
            let currency = tx
                .setting(K_CURRENCY)?
                .ok_or_else(|| SchemeError::Corrupt("no currency".into()))?;
            (sealed, root, currency)
        };
        let root_key = open_key(master, ROOT_KEY_LABEL, &sealed)?;
        let root = Certificate::from_der(&root_der)
            .map_err(|e| SchemeError::Corrupt(format!("root certificate: {e}")))?;
        if *root.public_key() != root_key.public_key() {
            return Err(SchemeError::MasterKey);
        }
        let currency = std::str::from_utf8(&currency)
            .ok()
            .and_then(Currency::new)
            .ok_or_else(|| SchemeError::Corrupt("currency".into()))?;
        Ok(Scheme {
            store,
            root_key,
            root,
            currency,
            entropy,
        })
    }

    /// The root certificate.
    pub fn root_certificate(&self) -> &Certificate {
        &self.root
    }

    /// The scheme's currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Run `f` in a transaction, committed if it succeeds; retried when it
    /// lost a race (a `Conflict`), at most [`CONFLICT_RETRIES`] times.
    pub(crate) fn with_tx<T>(
        &self,
        f: impl FnMut(&mut dyn SchemeTx) -> Result<T, SchemeError>,
    ) -> Result<T, SchemeError> {
        self.retrying(false, f)
    }

    /// Run `f` in a read-only transaction (it must not write).
    pub(crate) fn with_read<T>(
        &self,
        f: impl FnMut(&mut dyn SchemeTx) -> Result<T, SchemeError>,
    ) -> Result<T, SchemeError> {
        self.retrying(true, f)
    }

    /// [`Scheme::with_tx`] and [`Scheme::with_read`]: a lost race is retried
    /// whole after a short back-off (1, 2, 4 ... ms).
    fn retrying<T>(
        &self,
        read: bool,
        mut f: impl FnMut(&mut dyn SchemeTx) -> Result<T, SchemeError>,
    ) -> Result<T, SchemeError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let result = (|| {
                let mut tx = if read {
                    self.store.begin_scheme_read()?
                } else {
                    self.store.begin_scheme()?
                };
                let v = f(tx.as_mut())?;
                tx.commit()?;
                Ok(v)
            })();
            match result {
                Err(SchemeError::Store(SchemeStoreError::Conflict(_)))
                    if attempt < CONFLICT_RETRIES =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(1 << attempt.min(6)));
                }
                other => return other,
            }
        }
    }

    /// Admit an issuer: certify the CA key of its CSR (whose commonName must
    /// be `code`) under the root, list it in a new directory version, and
    /// return its certificate and a new bearer token.
    pub fn admit(
        &self,
        code: &str,
        csr_der: &[u8],
        now: UnixSeconds,
    ) -> Result<Admission, SchemeError> {
        if !valid_code(code) {
            return Err(SchemeError::InvalidCode);
        }
        if csr_der.len() > CSR_BYTES_MAX {
            return Err(SchemeError::TooLarge("csr", CSR_BYTES_MAX));
        }
        let csr = pki::parse_ca_csr(csr_der).map_err(|e| SchemeError::InvalidCsr(e.to_string()))?;
        if csr.common_name != code {
            return Err(SchemeError::InvalidCsr(format!(
                "the request names {:?}, not {code:?}",
                csr.common_name
            )));
        }
        if csr.public_key.suite() != self.root.suite() {
            return Err(SchemeError::InvalidCsr(format!(
                "the scheme certifies {:?} keys",
                self.root.suite()
            )));
        }
        self.with_tx(|tx| {
            tx.lock_scheme()?;
            if tx.issuer_by_code(code)?.is_some() {
                return Err(SchemeError::IssuerExists);
            }
            let issuers = tx.issuers()?;
            if issuers.len() >= DIRECTORY_ISSUERS_MAX {
                return Err(SchemeError::TooLarge("issuers", DIRECTORY_ISSUERS_MAX));
            }
            for other in issuers {
                let cert = self.stored_cert(&other)?;
                if *cert.public_key() == csr.public_key {
                    return Err(SchemeError::IssuerExists);
                }
            }
            let serial = get_u64(tx, K_NEXT_SERIAL)?;
            let not_after = std::cmp::min(now.plus(ISSUER_VALIDITY_SECONDS), self.root.not_after());
            let cert = pki::issue_issuer_ca(
                &self.root_key,
                &self.root,
                &csr.public_key,
                code,
                serial,
                now,
                not_after,
            )?;
            let id = cert.subject_issuer_id();
            if tx.issuer(&id)?.is_some() {
                return Err(SchemeError::IssuerExists);
            }
            let (token, token_hash) = token::new_token(&id, self.entropy.as_ref())?;
            let version = get_u64(tx, K_DIRECTORY_VERSION)? + 1;
            tx.insert_issuer(&IssuerRecord {
                id,
                code: code.to_string(),
                ca_cert: cert.der().to_vec(),
                serial,
                status: StoredStatus::Active,
                status_time: now,
                changed: version,
                token_hash,
                crl: None,
                crl_number: 0,
                admitted: now,
            })
            .map_err(|e| match e {
                SchemeStoreError::Duplicate(_) => SchemeError::IssuerExists,
                e => SchemeError::Store(e),
            })?;
            set_u64(tx, K_NEXT_SERIAL, serial + 1)?;
            let published = self.publish_directory(tx, now)?;
            debug_assert_eq!(published, version);
            Ok(Admission {
                issuer: id,
                code: code.to_string(),
                ca_cert: cert.der().to_vec(),
                root_cert: self.root.der().to_vec(),
                token,
                directory_version: published,
            })
        })
    }

    /// The issuer a bearer token belongs to (any status: a suspended or
    /// revoked issuer still reads its statements and acknowledges claims).
    /// The stored hash is compared in constant time.
    pub fn authenticate(&self, token: &str) -> Result<IssuerId, SchemeError> {
        let (id, presented) = token::parse_token(token)?;
        let stored = self.with_read(|tx| Ok(tx.issuer(&id)?))?;
        match stored {
            Some(r) if token::hashes_equal(&r.token_hash, &presented) => Ok(id),
            _ => Err(SchemeError::Unauthorized),
        }
    }

    /// The id of the issuer with this code.
    pub fn issuer_id(&self, code: &str) -> Result<IssuerId, SchemeError> {
        if !valid_code(code) {
            return Err(SchemeError::InvalidCode);
        }
        self.with_read(|tx| {
            tx.issuer_by_code(code)?
                .map(|r| r.id)
                .ok_or(SchemeError::UnknownIssuer)
        })
    }

    /// One issuer.
    pub fn issuer(&self, id: &IssuerId) -> Result<IssuerInfo, SchemeError> {
        self.with_read(|tx| {
            tx.issuer(id)?
                .map(|r| info(&r))
                .ok_or(SchemeError::UnknownIssuer)
        })
    }

    /// Every admitted issuer, in admission order.
    pub fn issuers(&self) -> Result<Vec<IssuerInfo>, SchemeError> {
        self.with_read(|tx| Ok(tx.issuers()?.iter().map(info).collect()))
    }

    /// Suspend an active issuer (certificateHold on the issuer CRL): its
    /// wallets are refused by payees after their next sync; claims on it stay
    /// owed. The new directory version (the current one if it already was suspended).
    pub fn suspend(&self, issuer: &IssuerId, now: UnixSeconds) -> Result<u64, SchemeError> {
        self.set_status(issuer, StoredStatus::Suspended, now)
    }

    /// Reinstate a suspended issuer (off the issuer CRL).
    pub fn reinstate(&self, issuer: &IssuerId, now: UnixSeconds) -> Result<u64, SchemeError> {
        self.set_status(issuer, StoredStatus::Active, now)
    }

    /// Revoke an issuer, for good (privilegeWithdrawn on the issuer CRL).
    pub fn revoke(&self, issuer: &IssuerId, now: UnixSeconds) -> Result<u64, SchemeError> {
        self.set_status(issuer, StoredStatus::Revoked, now)
    }

    fn set_status(
        &self,
        issuer: &IssuerId,
        to: StoredStatus,
        now: UnixSeconds,
    ) -> Result<u64, SchemeError> {
        self.with_tx(|tx| {
            tx.lock_scheme()?;
            let r = tx.issuer(issuer)?.ok_or(SchemeError::UnknownIssuer)?;
            if r.status == to {
                // A repeated request (an operator's retry) changes nothing.
                return get_u64(tx, K_DIRECTORY_VERSION);
            }
            let allowed = matches!(
                (r.status, to),
                (StoredStatus::Active, StoredStatus::Suspended)
                    | (StoredStatus::Suspended, StoredStatus::Active)
                    | (
                        StoredStatus::Active | StoredStatus::Suspended,
                        StoredStatus::Revoked
                    )
            );
            if !allowed {
                return Err(SchemeError::InvalidTransition {
                    from: status_name(r.status),
                    to: status_name(to),
                });
            }
            let version = get_u64(tx, K_DIRECTORY_VERSION)? + 1;
            tx.set_issuer_status(issuer, to, now, version)?;
            self.publish_directory(tx, now)
        })
    }

    /// Publish an issuer's new CRL (signed by its CA, a higher number than the
    /// last one) in a new directory version. The same CRL again changes nothing.
    pub fn publish_crl(
        &self,
        from: &IssuerId,
        crl_der: &[u8],
        now: UnixSeconds,
    ) -> Result<u64, SchemeError> {
        if crl_der.len() > CRL_FIELD_BYTES_MAX {
            return Err(SchemeError::TooLarge("crl", CRL_FIELD_BYTES_MAX));
        }
        let crl = Crl::from_der(crl_der).map_err(|e| SchemeError::InvalidCrl(e.to_string()))?;
        self.with_tx(|tx| {
            tx.lock_scheme()?;
            let r = tx.issuer(from)?.ok_or(SchemeError::UnknownIssuer)?;
            if r.status == StoredStatus::Revoked {
                return Err(SchemeError::IssuerRevoked);
            }
            let ca = self.stored_cert(&r)?;
            crl.verify_signed_by(&ca)
                .map_err(|e| SchemeError::InvalidCrl(format!("not signed by {}: {e}", r.code)))?;
            if r.crl.as_deref() == Some(crl_der) {
                return get_u64(tx, K_DIRECTORY_VERSION);
            }
            if crl.number() <= r.crl_number {
                return Err(SchemeError::InvalidCrl(format!(
                    "number {} is not above the published {}",
                    crl.number(),
                    r.crl_number
                )));
            }
            let version = get_u64(tx, K_DIRECTORY_VERSION)? + 1;
            tx.set_issuer_crl(from, crl_der, crl.number(), version)?;
            self.publish_directory(tx, now)
        })
    }

    /// The latest root-signed directory (`Signed<Directory>` bytes).
    pub fn directory(&self) -> Result<Vec<u8>, SchemeError> {
        self.with_read(|tx| {
            tx.latest_directory()?
                .map(|(_, d)| d)
                .ok_or_else(|| SchemeError::Corrupt("no directory".into()))
        })
    }

    /// The latest directory version.
    pub fn directory_version(&self) -> Result<u64, SchemeError> {
        self.with_read(|tx| get_u64(tx, K_DIRECTORY_VERSION))
    }

    /// The trust of the scheme: the root and every admitted issuer's CA (any
    /// status), the root-signed issuer CRL and each issuer's latest CRL.
    pub(crate) fn trust(&self, issuers: &[IssuerRecord]) -> Result<SchemeTrust, SchemeError> {
        let mut trust = SchemeTrust::new(self.root.clone());
        for r in issuers {
            trust.add_issuer(self.stored_cert(r)?)?;
        }
        Ok(trust)
    }

    pub(crate) fn stored_cert(&self, r: &IssuerRecord) -> Result<Certificate, SchemeError> {
        Certificate::from_der(&r.ca_cert)
            .map_err(|e| SchemeError::Corrupt(format!("CA certificate of {}: {e}", r.code)))
    }

    /// The root-signed CRL of issuer CA certificates: suspended issuers with
    /// certificateHold, revoked ones with privilegeWithdrawn; its number is the
    /// directory version.
    fn issuer_crl(
        &self,
        issuers: &[IssuerRecord],
        version: u64,
        now: UnixSeconds,
    ) -> Result<Crl, SchemeError> {
        let revoked: Vec<RevokedEntry> = issuers
            .iter()
            .filter_map(|r| {
                let reason = match r.status {
                    StoredStatus::Active => return None,
                    StoredStatus::Suspended => RevocationReason::CertificateHold,
                    StoredStatus::Revoked => RevocationReason::PrivilegeWithdrawn,
                };
                Some(RevokedEntry {
                    serial: r.serial,
                    revoked_at: r.status_time,
                    reason,
                })
            })
            .collect();
        Ok(pki::issue_crl(
            &self.root_key,
            &self.root,
            version,
            now,
            now.plus(ISSUER_CRL_VALIDITY_SECONDS),
            &revoked,
        )?)
    }

    /// Sign and store the next directory version (the current state of every
    /// issuer); the version.
    fn publish_directory(
        &self,
        tx: &mut dyn SchemeTx,
        now: UnixSeconds,
    ) -> Result<u64, SchemeError> {
        let version = get_u64(tx, K_DIRECTORY_VERSION)? + 1;
        let mut issuers = tx.issuers()?;
        // The directory lists issuers by ascending code.
        issuers.sort_by(|a, b| a.code.cmp(&b.code));
        let crl = self.issuer_crl(&issuers, version, now)?;
        let entries = issuers
            .iter()
            .map(|r| DirectoryEntry {
                code: r.code.clone(),
                status: status_of(r.status),
                changed: r.changed,
                ca_cert: r.ca_cert.clone(),
                crl: r.crl.clone(),
            })
            .collect();
        let body = Directory {
            version,
            time: now,
            currency: self.currency,
            issuer_crl: crl.der().to_vec(),
            issuers: entries,
        };
        let signed = Signed::sign(body, &self.root_key).into_bytes();
        if signed.len() > DIRECTORY_BYTES_MAX {
            return Err(SchemeError::TooLarge("directory", DIRECTORY_BYTES_MAX));
        }
        tx.insert_directory(version, now, &signed)?;
        set_u64(tx, K_DIRECTORY_VERSION, version)?;
        // Issuers fetch the latest version only (each entry says when it
        // changed); the last few are kept for audit, not every one (a
        // directory can be megabytes of CRLs).
        tx.prune_directory(version.saturating_sub(DIRECTORY_VERSIONS_KEPT - 1))?;
        Ok(version)
    }
}

fn info(r: &IssuerRecord) -> IssuerInfo {
    IssuerInfo {
        id: r.id,
        code: r.code.clone(),
        status: status_of(r.status),
        status_time: r.status_time,
        changed: r.changed,
        serial: r.serial,
        ca_cert: r.ca_cert.clone(),
        crl_number: r.crl_number,
        admitted: r.admitted,
    }
}
