//! The trusted application: the only code that changes a wallet's balance.
//!
//! Every operation works on a copy of the state and commits it durably
//! through the [`Vault`] before it releases anything: a Payment leaves the TA
//! only after the debit is sealed on disk, a Receipt only after the credit
//! is. A refused operation changes nothing. Asking again for the same payment
//! or receipt returns the same bytes, so a torn exchange can be resumed.

use std::collections::HashMap;

use offpay_protocol::entropy::{OsEntropy, SharedEntropy};
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{
    CertField, DirectoryUpdate, KNOWN_CERT_PREFIX_BYTES, LoadVoucher, Payment, PaymentRequest,
    Receipt, Redeem, RiskPolicy, SyncReport, SyncResponse, WalletCommand,
};
use offpay_protocol::pki::{
    self, Certificate, Crl, CrlState, DeltaCrl, PkiError, SchemeTrust, WalletProfile,
};
use offpay_protocol::{
    Amount, Hash32, IssuerId, IssuerStatus, Nonce, PublicKey, SigningKey, Suite, UnixSeconds,
    WalletId,
};
use zeroize::Zeroizing;

use crate::error::{LockReason, WalletError};
use crate::key::WalletKey;
// The state's own limits live with the state (which asserts them); the TA
// enforces each with a refusal.
pub use crate::state::{
    DIRECTORY_ISSUERS_MAX, DIRECTORY_STATE_BYTES_MAX, EVIDENCE_MAX, HISTORY_MAX, KNOWN_PEERS_MAX,
    LOG_ENTRIES_MAX, PENDING_REQUESTS_MAX, SEEN_PAYERS_MAX,
};
use crate::state::{
    DirectoryIssuerState, DirectoryState, HistoryItem, HistoryKind, KeyState, LogEntry,
    PaidRequest, PendingKey, PendingReport, PendingRequest, TaState,
};
use crate::vault::{Vault, VaultError};

/// Most validated peer certificates cached in memory.
pub const PEER_CACHE_MAX: usize = 256;
/// Longest validity a payee may give a payment request.
pub const REQUEST_SECONDS_MAX: u64 = 3600;
/// How far ahead of the device clock a payee's signed request time may be. A
/// request dated later is refused ([`WalletError::ClockSkew`]); one within the
/// bound moves the payer's clock forward, so a payer whose clock was set back
/// still meets its time-offline limit.
pub const PEER_CLOCK_LEAD_SECONDS_MAX: u64 = 3600;

// The limits fit their containers (checked at compile time): a report of a
// full log and full evidence, every entry at its largest, fits the report
// limit (2680 bytes bound the fixed fields and the longest signature, 3 + 9 the per-entry CBOR heads and
// a load seq), and each list fits the report's list bound.
const _: () = {
    use offpay_protocol::messages::{PAYMENT_BYTES_MAX, SYNC_ENTRIES_MAX, SYNC_REPORT_BYTES_MAX};
    assert!(LOG_ENTRIES_MAX <= SYNC_ENTRIES_MAX && EVIDENCE_MAX <= SYNC_ENTRIES_MAX);
    assert!(
        2680 + (LOG_ENTRIES_MAX + EVIDENCE_MAX) * (3 + PAYMENT_BYTES_MAX + 9)
            <= SYNC_REPORT_BYTES_MAX
    );
};

/// A wallet's status for the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletStatus {
    /// The wallet.
    pub wallet_id: WalletId,
    /// Enrolled (holds a certificate).
    pub enrolled: bool,
    /// Why it is locked, if it is.
    pub locked: Option<LockReason>,
    /// Offline balance.
    pub balance: Option<Amount>,
    /// Outgoing chain length.
    pub seq: u64,
    /// Last applied load voucher.
    pub load_seq: u64,
    /// Unsynced log entries.
    pub unsynced_entries: usize,
    /// Seconds left before the wallet refuses to pay until it syncs.
    pub seconds_until_sync_required: Option<u64>,
    /// Minor units that may still be paid offline before a sync.
    pub offline_spend_left_minor: Option<u64>,
    /// Payments that may still be made offline before a sync.
    pub offline_payments_left: Option<u32>,
    /// The wallet certificate's expiry.
    pub certificate_expires: Option<UnixSeconds>,
    /// Refused payments kept as evidence.
    pub evidence: usize,
    /// The risk policy in force.
    pub policy: Option<RiskPolicy>,
    /// Payment requests issued and still accepted (at most [`PENDING_REQUESTS_MAX`]).
    pub pending_requests: usize,
    /// When the oldest-expiring pending request expires (frees its slot).
    pub pending_request_next_expiry: Option<UnixSeconds>,
    /// What the certificate lets this wallet do ([`Wallet::profile`]).
    pub profile: WalletProfile,
    /// A terminal: payments it may still receive before a sync (None: a
    /// personal wallet, or a policy without terminal limits).
    pub receive_payments_left: Option<u32>,
    /// A terminal: minor units it may still receive before a sync.
    pub receive_left_minor: Option<u64>,
}

/// A payment request this wallet (as payee) issued and still accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRequestInfo {
    /// Its nonce: the request's identity (`cancel_request` takes it).
    pub nonce: Nonce,
    /// The amount asked.
    pub amount: Amount,
    /// When it stops being accepted.
    pub expires: UnixSeconds,
    /// The signed request, as handed to the payer.
    pub bytes: Vec<u8>,
}

/// What applying a sync response did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SyncApplied {
    /// Checkpoint number now in force.
    pub checkpoint: u64,
    /// Vouchers applied (load seqs).
    pub vouchers_applied: Vec<u64>,
    /// Vouchers left for later (holding limit).
    pub vouchers_deferred: Vec<u64>,
    /// A new certificate was installed.
    pub certificate_renewed: bool,
    /// A new policy was installed.
    pub policy_updated: bool,
    /// A newer CRL was installed.
    pub crl_updated: bool,
    /// The wallet was locked by the issuer.
    pub locked: bool,
    /// The wallet was unlocked.
    pub unlocked: bool,
    /// A scheme directory update was installed (its version).
    pub directory_version: Option<u64>,
    /// The issuer asked for a new key in this suite: the TA made it and
    /// sends its CSR in the next reports.
    pub rekey_started: Option<Suite>,
    /// The vault's key device could not make the key the issuer asked for
    /// (e.g. a suite the token does not hold); the issuer asks again.
    pub rekey_refused: Option<VaultError>,
    /// The new key was certified: from the next entry on the TA signs with
    /// it (its suite).
    pub rekeyed: Option<Suite>,
}

/// The trusted application of one wallet, over its vault.
pub struct Wallet<V: Vault> {
    vault: V,
    state: TaState,
    key: WalletKey,
    root: Certificate,
    issuer: Option<Certificate>,
    cert: Option<Certificate>,
    policy: Option<RiskPolicy>,
    /// Our issuer's CRL: the complete CRL with the delta CRLs applied to it.
    crl: Option<CrlState>,
    /// The root, our issuer and every issuer learnt from the scheme directory,
    /// their CRLs and the issuer CRL: what peers are validated against.
    trust: SchemeTrust,
    peers: HashMap<Hash32, Certificate>,
    /// Where the TA's random bytes come from (wallet id, key, request nonces).
    entropy: SharedEntropy,
}

impl<V: Vault> std::fmt::Debug for Wallet<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("wallet_id", &self.state.wallet_id)
            .field("seq", &self.state.seq)
            .finish()
    }
}

fn random<const N: usize>(e: &SharedEntropy) -> Result<[u8; N], WalletError> {
    offpay_protocol::entropy::random(e.as_ref()).map_err(|_| WalletError::Randomness)
}

fn map_peer(e: PkiError, issuer: IssuerId) -> WalletError {
    match e {
        PkiError::Revoked { serial } => WalletError::PeerRevoked { serial },
        PkiError::IssuerSuspended => WalletError::PeerIssuerSuspended { issuer },
        PkiError::IssuerRevoked => WalletError::PeerIssuerRevoked { issuer },
        e => WalletError::PeerCertificate(e),
    }
}

/// The trust a state describes: the root, our issuer (if enrolled), the
/// directory's issuers and issuer CRL, then our issuer's CRL (each CRL kept
/// only if newer than what is held). Our CRL was verified against our issuer
/// CA when installed; if the directory has since replaced that CA by a
/// re-keyed one, the old CRL no longer applies and is left out (the next
/// sync brings the new CA's).
/// The first bytes of a certificate reference, as a PaymentRequest lists them.
fn prefix(h: &Hash32) -> [u8; KNOWN_CERT_PREFIX_BYTES] {
    let mut p = [0u8; KNOWN_CERT_PREFIX_BYTES];
    p.copy_from_slice(&h.0[..KNOWN_CERT_PREFIX_BYTES]);
    p
}

/// How the payer names its certificate: by reference when the payee's
/// request lists it and the payee is of the same issuer (which holds every
/// certificate it issued, so its reconciliation resolves the reference;
/// across issuers the certificate travels inline, as claims need it); else
/// inline.
fn own_cert_field(
    own: &Certificate,
    payee: &Certificate,
    known: &[[u8; KNOWN_CERT_PREFIX_BYTES]],
) -> CertField {
    if !known.is_empty() && payee.issuer_id() == own.issuer_id() {
        let reference = Hash32::digest(own.der());
        if known.contains(&prefix(&reference)) {
            return CertField::Reference(reference);
        }
    }
    CertField::Inline(own.der().to_vec())
}

/// Keep `der` (a validated payer certificate) as the most recently used
/// known peer, dropping the least recently used beyond [`KNOWN_PEERS_MAX`].
fn remember_peer(next: &mut TaState, reference: Hash32, der: &[u8]) {
    let entry = match next.known_peers.iter().position(|(h, _)| *h == reference) {
        Some(i) => next.known_peers.remove(i),
        None => (reference, der.into()),
    };
    next.known_peers.push(entry);
    if next.known_peers.len() > KNOWN_PEERS_MAX {
        next.known_peers.remove(0);
    }
}

/// [`WalletError::SuiteRetired`] if the policy retires keys of `suite` at `now`.
fn check_suite(policy: &RiskPolicy, suite: Suite, now: UnixSeconds) -> Result<(), WalletError> {
    match policy.required_suite {
        Some(r) if r.retires(suite, now) => Err(WalletError::SuiteRetired {
            suite,
            required: r.suite,
        }),
        _ => Ok(()),
    }
}

/// The key the state says the TA signs with: the root seed (generation 0),
/// a re-key's seed, or the vault device's key of that generation.
fn current_key<V: Vault>(vault: &mut V, state: &TaState) -> Result<WalletKey, WalletError> {
    let corrupt = |_| WalletError::Vault(VaultError::Corrupt("key"));
    if state.key.device {
        return vault
            .device_key(state.suite, state.key.generation, false)?
            .map(WalletKey::Device)
            .ok_or(WalletError::Vault(VaultError::Corrupt(
                "the vault holds no device key for this wallet",
            )));
    }
    let seed = state.key.seed.as_ref().unwrap_or(&state.seed);
    SigningKey::from_seed(state.suite, seed)
        .map(|k| WalletKey::Software(Box::new(k)))
        .map_err(corrupt)
}

fn build_trust(
    root: &Certificate,
    issuer: Option<&Certificate>,
    crl: Option<&CrlState>,
    dir: &DirectoryState,
) -> Result<SchemeTrust, PkiError> {
    let mut t = SchemeTrust::new(root.clone());
    if let Some(i) = issuer {
        t.add_issuer(i.clone())?;
    }
    for i in &dir.issuers {
        t.add_issuer(Certificate::from_der(&i.ca_der)?)?;
        if let Some(c) = &i.crl_der {
            t.set_crl(Crl::from_der(c)?)?;
        }
    }
    if let Some(c) = &dir.issuer_crl {
        t.set_issuer_crl(Crl::from_der(c)?)?;
    }
    if let Some(c) = crl
        && let Err(e) = t.set_crl_state(c.clone())
        && dir.issuers.is_empty()
    {
        return Err(e);
    }
    Ok(t)
}

/// Verify a directory update and apply it to a copy of the trust: every CA
/// chains to the root, every CRL is signed by its CA, the issuer CRL by the
/// root (an older one is ignored), at most [`DIRECTORY_ISSUERS_MAX`] issuers
/// in all. The new trust and the directory to seal; any refusal changes nothing.
fn updated_trust(
    trust: &SchemeTrust,
    held: u64,
    u: &DirectoryUpdate,
) -> Result<(SchemeTrust, DirectoryState), WalletError> {
    if u.version <= held {
        return Err(WalletError::StaleDirectory {
            held,
            got: u.version,
        });
    }
    let mut t = trust.clone();
    for i in &u.issuers {
        let ca = Certificate::from_der(&i.ca_cert).map_err(WalletError::DirectoryRefused)?;
        let id = t.add_issuer(ca).map_err(WalletError::DirectoryRefused)?;
        if let Some(der) = &i.crl {
            let c = Crl::from_der(der).map_err(WalletError::DirectoryRefused)?;
            if c.issuer_id() != id {
                return Err(WalletError::DirectoryRefused(PkiError::CrlWrongIssuer));
            }
            t.set_crl(c).map_err(WalletError::DirectoryRefused)?;
        }
    }
    if t.issuer_count() > DIRECTORY_ISSUERS_MAX {
        return Err(WalletError::DirectoryFull {
            max: DIRECTORY_ISSUERS_MAX,
        });
    }
    if let Some(der) = &u.issuer_crl {
        let c = Crl::from_der(der).map_err(WalletError::DirectoryRefused)?;
        t.set_issuer_crl(c).map_err(WalletError::DirectoryRefused)?;
    }
    let dir = DirectoryState {
        version: u.version,
        issuer_crl: t.issuer_crl().map(|c| c.der().into()),
        issuers: t
            .issuer_ids()
            .filter_map(|id| {
                Some(DirectoryIssuerState {
                    ca_der: t.issuer(id)?.der().into(),
                    crl_der: t.crl(id).map(|c| c.der().into()),
                })
            })
            .collect(),
    };
    if dir.bytes() > DIRECTORY_STATE_BYTES_MAX {
        return Err(WalletError::DirectoryTooLarge {
            bytes: dir.bytes(),
            max: DIRECTORY_STATE_BYTES_MAX,
        });
    }
    Ok((t, dir))
}

impl<V: Vault> Wallet<V> {
    /// Create a wallet in an empty vault: the key is generated inside the TA and
    /// never leaves it unsealed. `root_der` is the scheme root certificate the
    /// app ships with (the trust anchor).
    pub fn create(
        vault: V,
        suite: Suite,
        root_der: &[u8],
        now: UnixSeconds,
    ) -> Result<Wallet<V>, WalletError> {
        Wallet::create_with_entropy(vault, suite, root_der, now, OsEntropy::shared())
    }

    /// [`Wallet::create`] drawing every random byte (key, wallet id, and
    /// later the request nonces) from `entropy`.
    pub fn create_with_entropy(
        mut vault: V,
        suite: Suite,
        root_der: &[u8],
        now: UnixSeconds,
        entropy: SharedEntropy,
    ) -> Result<Wallet<V>, WalletError> {
        let root = Certificate::from_der(root_der).map_err(WalletError::IssuerMaterial)?;
        root.verify_signed_by(&root)
            .map_err(WalletError::IssuerMaterial)?;
        if vault.load()?.state.is_some() {
            return Err(WalletError::Vault(VaultError::AlreadyExists));
        }
        let root_cert_copy = root.clone();
        let root_key = SigningKey::generate_with(suite, entropy.as_ref())
            .map_err(|_| WalletError::Randomness)?;
        let seed = root_key.to_seed();
        // A vault with a key device holds the signing key; the root seed
        // then only derives the PIN unlock key.
        let (key, device) = match vault.device_key(suite, 0, true)? {
            Some(d) => (WalletKey::Device(d), true),
            None => (WalletKey::Software(Box::new(root_key)), false),
        };
        let state = TaState {
            wallet_id: WalletId(random(&entropy)?),
            suite,
            seed,
            root_der: root_der.to_vec(),
            issuer_der: None,
            cert_der: None,
            policy: None,
            crl_der: None,
            crl_deltas: Vec::new(),
            balance_minor: 0,
            seq: 0,
            head: Hash32::ZERO,
            load_seq: 0,
            report_seq: 0,
            pending_report: None,
            checkpoint_number: 0,
            last_sync: now,
            clock_floor: now,
            pending_requests: Vec::new(),
            paid: Vec::new(),
            seen_payers: Vec::new(),
            log: Vec::new(),
            evidence: Vec::new(),
            history: Vec::new(),
            lock: None,
            directory: DirectoryState::default(),
            key: KeyState {
                device,
                ..KeyState::default()
            },
            known_peers: Vec::new(),
        };
        vault.commit(&state.encode())?;
        Ok(Wallet {
            vault,
            state,
            key,
            root,
            issuer: None,
            cert: None,
            policy: None,
            crl: None,
            trust: SchemeTrust::new(root_cert_copy),
            peers: HashMap::new(),
            entropy,
        })
    }

    /// Open the wallet in `vault`. A state older than the vault's monotonic
    /// counter (a restored copy) opens locked: it can only sync.
    pub fn open(vault: V) -> Result<Wallet<V>, WalletError> {
        Wallet::open_with_entropy(vault, OsEntropy::shared())
    }

    /// [`Wallet::open`] drawing every random byte from `entropy`.
    pub fn open_with_entropy(
        mut vault: V,
        entropy: SharedEntropy,
    ) -> Result<Wallet<V>, WalletError> {
        let loaded = vault.load()?;
        let bytes = Zeroizing::new(
            loaded
                .state
                .ok_or(WalletError::Vault(VaultError::NotFound))?,
        );
        let mut state = TaState::decode(&bytes)
            .map_err(|_| WalletError::Vault(VaultError::Corrupt("TA state")))?;
        let key = current_key(&mut vault, &state)?;
        let parse = |d: &Option<Vec<u8>>| -> Result<Option<Certificate>, WalletError> {
            d.as_deref()
                .map(Certificate::from_der)
                .transpose()
                .map_err(|_| WalletError::Vault(VaultError::Corrupt("certificate")))
        };
        let root = Certificate::from_der(&state.root_der)
            .map_err(|_| WalletError::Vault(VaultError::Corrupt("root")))?;
        let issuer = parse(&state.issuer_der)?;
        let cert = parse(&state.cert_der)?;
        let policy = match &state.policy {
            Some(p) => Some(
                Signed::<RiskPolicy>::decode(p)
                    .map_err(|_| WalletError::Vault(VaultError::Corrupt("policy")))?
                    .body()
                    .clone(),
            ),
            None => None,
        };
        let crl = match (&state.crl_der, &issuer) {
            (Some(der), Some(i)) => {
                let corrupt = |_| WalletError::Vault(VaultError::Corrupt("crl"));
                let deltas = state
                    .crl_deltas
                    .iter()
                    .map(|d| DeltaCrl::from_der(d))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(corrupt)?;
                Some(
                    CrlState::from_parts(Crl::from_der(der).map_err(corrupt)?, deltas, i)
                        .map_err(corrupt)?,
                )
            }
            (Some(_), None) => return Err(WalletError::Vault(VaultError::Corrupt("crl"))),
            (None, _) => None,
        };
        let trust = build_trust(&root, issuer.as_ref(), crl.as_ref(), &state.directory)
            .map_err(|_| WalletError::Vault(VaultError::Corrupt("directory")))?;
        if loaded.rollback.is_some() && state.lock != Some(LockReason::RolledBack) {
            // A restored old state: lock it and seal the lock at a new version so it sticks.
            state.lock = Some(LockReason::RolledBack);
            vault.commit(&state.encode())?;
        }
        Ok(Wallet {
            vault,
            state,
            key,
            root,
            issuer,
            cert,
            policy,
            crl,
            trust,
            peers: HashMap::new(),
            entropy,
        })
    }

    /// The vault (read-only: to inspect versions in tests and tools).
    pub fn vault(&self) -> &V {
        &self.vault
    }

    /// Consume the wallet, giving its vault back.
    pub fn into_vault(self) -> V {
        self.vault
    }

    /// The wallet id.
    pub fn wallet_id(&self) -> WalletId {
        self.state.wallet_id
    }

    /// What this wallet may do, as its certificate names it: a
    /// [`WalletProfile::Terminal`] requests and receives but never pays
    /// ([`WalletError::TerminalCannotPay`]) and sweeps its takings at sync.
    /// [`WalletProfile::Personal`] before enrollment.
    pub fn profile(&self) -> WalletProfile {
        self.cert
            .as_ref()
            .map_or(WalletProfile::Personal, Certificate::wallet_profile)
    }

    /// The wallet's public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// What the vault keeps outside the PIN so that, PIN-locked, it can
    /// still ask the issuer for an unlock ([`crate::recovery`]): the unlock
    /// key (derived from the wallet key's seed), the wallet key's grant
    /// naming it, and the issuer CA key that signs unlocks. Needs an
    /// enrolled wallet (the issuer CA).
    pub fn pin_recovery(&self) -> Result<crate::recovery::PinRecovery, WalletError> {
        let (issuer, _, _) = self.enrolled()?;
        let unlock = crate::recovery::unlock_key(&self.state.seed)?;
        let unlock_key: [u8; 32] = unlock
            .public_key()
            .to_bytes()
            .try_into()
            .map_err(|_| WalletError::Vault(VaultError::Kdf))?;
        let grant = self
            .key
            .sign(offpay_protocol::messages::PinUnlockGrant {
                wallet: self.state.wallet_id,
                unlock_key,
            })?
            .into_bytes();
        Ok(crate::recovery::PinRecovery {
            wallet: self.state.wallet_id,
            unlock_seed: unlock.to_seed(),
            grant,
            issuer_key: issuer.public_key().clone(),
            pending: None,
        })
    }

    /// A PKCS#10 certificate signing request for this wallet's key (DER).
    pub fn csr(&self) -> Result<Vec<u8>, WalletError> {
        pki::build_csr(self.key.signer(), self.state.wallet_id).map_err(WalletError::IssuerMaterial)
    }

    /// Install the issuer CA certificate, this wallet's certificate, the risk
    /// policy and optionally the CRL, all checked against the trusted root.
    pub fn enroll(
        &mut self,
        issuer_der: &[u8],
        cert_der: &[u8],
        policy_bytes: &[u8],
        crl_der: Option<&[u8]>,
        now: UnixSeconds,
    ) -> Result<(), WalletError> {
        if self.cert.is_some() {
            return Err(WalletError::AlreadyEnrolled);
        }
        let now = self.clock(now);
        let issuer = Certificate::from_der(issuer_der).map_err(WalletError::IssuerMaterial)?;
        issuer
            .verify_signed_by(&self.root)
            .map_err(WalletError::IssuerMaterial)?;
        if !issuer.is_ca() {
            return Err(WalletError::IssuerMaterial(PkiError::NotACa));
        }
        let cert = Certificate::from_der(cert_der).map_err(WalletError::IssuerMaterial)?;
        let id = pki::validate_wallet_chain(&self.root, &issuer, &cert, now, None)
            .map_err(WalletError::IssuerMaterial)?;
        if id != self.state.wallet_id || *cert.public_key() != self.key.public_key() {
            return Err(WalletError::CertificateWalletMismatch);
        }
        let policy = Signed::<RiskPolicy>::decode(policy_bytes)?;
        policy
            .verify(issuer.public_key())
            .map_err(|_| WalletError::BadSignature)?;
        let crl = match crl_der {
            Some(d) => {
                let c = Crl::from_der(d).map_err(WalletError::IssuerMaterial)?;
                c.verify_signed_by(&issuer)
                    .map_err(WalletError::IssuerMaterial)?;
                Some(CrlState::new(c))
            }
            None => None,
        };
        let trust = build_trust(
            &self.root,
            Some(&issuer),
            crl.as_ref(),
            &self.state.directory,
        )
        .map_err(WalletError::IssuerMaterial)?;
        let mut next = self.state.clone();
        next.issuer_der = Some(issuer_der.to_vec());
        next.cert_der = Some(cert_der.to_vec());
        next.policy = Some(policy_bytes.to_vec());
        next.crl_der = crl_der.map(<[u8]>::to_vec);
        next.crl_deltas.clear();
        next.last_sync = now;
        next.clock_floor = now;
        self.commit(next)?;
        self.issuer = Some(issuer);
        self.cert = Some(cert);
        self.policy = Some(policy.body().clone());
        self.crl = crl;
        self.trust = trust;
        self.peers.clear();
        Ok(())
    }

    // ---- helpers -----------------------------------------------------------

    /// The TA's notion of now: never before the last trusted time it saw.
    fn clock(&self, device_now: UnixSeconds) -> UnixSeconds {
        device_now.max(self.state.clock_floor)
    }

    /// The key a re-key made (generation `current + 1`).
    fn pending_key(&mut self, p: &PendingKey, current: u32) -> Result<WalletKey, WalletError> {
        let corrupt = WalletError::Vault(VaultError::Corrupt("pending key"));
        match &p.seed {
            Some(seed) => SigningKey::from_seed(p.suite, seed)
                .map(|k| WalletKey::Software(Box::new(k)))
                .map_err(|_| corrupt),
            None => {
                let g = current.checked_add(1).ok_or(WalletError::Overflow)?;
                self.vault
                    .device_key(p.suite, g, false)?
                    .map(WalletKey::Device)
                    .ok_or(corrupt)
            }
        }
    }

    /// Make the key a re-key asks for: a fresh software seed, or the next
    /// generation's key in the vault's device.
    fn make_pending_key(
        &mut self,
        suite: Suite,
        current: u32,
        device: bool,
    ) -> Result<PendingKey, WalletError> {
        if device {
            let g = current.checked_add(1).ok_or(WalletError::Overflow)?;
            self.vault
                .device_key(suite, g, true)?
                .ok_or(WalletError::Vault(VaultError::Corrupt(
                    "the vault holds no device keys",
                )))?;
            return Ok(PendingKey { suite, seed: None });
        }
        let k = SigningKey::generate_with(suite, self.entropy.as_ref())
            .map_err(|_| WalletError::Randomness)?;
        Ok(PendingKey {
            suite,
            seed: Some(k.to_seed()),
        })
    }

    fn commit(&mut self, next: TaState) -> Result<(), WalletError> {
        // What only moves forward (every list's bound is asserted in encode).
        // The one way back is a sync response's checkpoint, which may only
        // replace the chain position by the issuer's view of the same chain.
        debug_assert_eq!(next.wallet_id, self.state.wallet_id);
        debug_assert!(next.seq >= self.state.seq, "seq went back");
        debug_assert!(next.load_seq >= self.state.load_seq, "load seq went back");
        debug_assert!(
            next.report_seq >= self.state.report_seq,
            "report seq went back"
        );
        debug_assert!(
            next.checkpoint_number >= self.state.checkpoint_number,
            "checkpoint went back"
        );
        debug_assert!(
            next.clock_floor >= self.state.clock_floor,
            "clock floor went back"
        );
        self.vault.commit(&next.encode())?;
        self.state = next;
        Ok(())
    }

    fn unlocked(&self) -> Result<(), WalletError> {
        match &self.state.lock {
            Some(r) => Err(WalletError::Locked(r.clone())),
            None => Ok(()),
        }
    }

    fn enrolled(&self) -> Result<(&Certificate, &Certificate, &RiskPolicy), WalletError> {
        match (&self.issuer, &self.cert, &self.policy) {
            (Some(i), Some(c), Some(p)) => Ok((i, c, p)),
            _ => Err(WalletError::NotEnrolled),
        }
    }

    fn own_cert_valid(&self, now: UnixSeconds) -> Result<(), WalletError> {
        let (_, cert, _) = self.enrolled()?;
        if now > cert.not_after() {
            return Err(WalletError::OwnCertificateExpired);
        }
        Ok(())
    }

    /// Validate a peer's certificate offline with the scheme trust: chain to
    /// the root through an admitted, active issuer (ours or one learnt from
    /// the directory), validity at `now`, not on its issuer's CRL, and naming
    /// `wallet`.
    /// Also its reference (the SHA-256 of its DER), computed once.
    fn peer_certificate(
        &mut self,
        field: &CertField,
        wallet: WalletId,
        now: UnixSeconds,
    ) -> Result<(Certificate, Hash32), WalletError> {
        self.enrolled()?;
        let reference = field.reference();
        let cert = match (self.peers.get(&reference), field) {
            (Some(c), _) => {
                // Cached: its signature verified; re-check status, time and revocation.
                self.trust
                    .revalidate_wallet(c, now)
                    .map_err(|e| map_peer(e, c.issuer_id()))?;
                c.clone()
            }
            (None, CertField::Reference(r)) => {
                // Held sealed (a payer of earlier payments): validate it afresh.
                let der = self
                    .state
                    .known_peers
                    .iter()
                    .find(|(h, _)| h == r)
                    .map(|(_, d)| d.clone())
                    .ok_or(WalletError::UnknownCertificate)?;
                let c = Certificate::from_der(&der)
                    .map_err(|_| WalletError::Vault(VaultError::Corrupt("known peer")))?;
                self.admit_peer(reference, c, now)?
            }
            (None, CertField::Inline(der)) => {
                let c = Certificate::from_der(der).map_err(WalletError::PeerCertificate)?;
                self.admit_peer(reference, c, now)?
            }
        };
        if cert.wallet_id() != Some(wallet) {
            return Err(WalletError::CertificateWalletMismatch);
        }
        Ok((cert, reference))
    }

    /// Validate a peer certificate not in the parsed cache against the
    /// trust and cache it. Every CA certificate and CRL in the trust was
    /// verified when installed.
    fn admit_peer(
        &mut self,
        reference: Hash32,
        c: Certificate,
        now: UnixSeconds,
    ) -> Result<Certificate, WalletError> {
        self.trust
            .validate_wallet(&c, now)
            .map_err(|e| map_peer(e, c.issuer_id()))?;
        if self.peers.len() >= PEER_CACHE_MAX {
            self.peers.clear();
        }
        self.peers.insert(reference, c.clone());
        Ok(c)
    }

    fn amount(&self, minor: u64) -> Result<Amount, WalletError> {
        let (_, _, p) = self.enrolled()?;
        Ok(Amount::new(minor, p.currency()))
    }

    /// Outgoing payments in the unsynced log: (count, total minor units).
    fn offline_spend(&self) -> (u32, u64) {
        let mut n = 0u32;
        let mut total = 0u64;
        for l in &self.state.log {
            if let LogEntry::Outgoing {
                payee_key: Some(_),
                amount_minor,
                ..
            } = l
            {
                n += 1;
                total = total.saturating_add(*amount_minor);
            }
        }
        (n, total)
    }

    /// Incoming payments in the unsynced log: (count, total minor units).
    /// Each was decoded and checked when it was received.
    fn offline_received(&self) -> Result<(u32, u64), WalletError> {
        let mut n = 0u32;
        let mut total = 0u64;
        for l in &self.state.log {
            if let LogEntry::Incoming { payment, .. } = l {
                let p = Signed::<Payment>::decode(payment)?;
                n = n.saturating_add(1);
                total = total.saturating_add(p.body().amount.minor);
            }
        }
        Ok((n, total))
    }

    /// A terminal's receive limits for one more payment of `minor` units.
    fn check_receive_limits(&self, policy: &RiskPolicy, minor: u64) -> Result<(), WalletError> {
        let Some(limits) = policy.terminal else {
            return Ok(());
        };
        let (count, received) = self.offline_received()?;
        if count >= limits.max_receive_payments {
            return Err(WalletError::LimitReceiveCount {
                max: limits.max_receive_payments,
            });
        }
        let left = limits.max_receive_minor.saturating_sub(received);
        if minor > left {
            return Err(WalletError::LimitReceiveAmount { left_minor: left });
        }
        Ok(())
    }

    fn log_limit(&self, p: &RiskPolicy) -> usize {
        (p.max_log_entries as usize).min(LOG_ENTRIES_MAX)
    }

    fn push_history(next: &mut TaState, item: HistoryItem) {
        if next.history.len() >= HISTORY_MAX {
            next.history.remove(0);
        }
        next.history.push(item);
    }

    // ---- payee: request ------------------------------------------------------

    /// Ask for a payment: a signed request with a fresh nonce, valid for `valid_seconds`.
    pub fn request(
        &mut self,
        amount: Amount,
        valid_seconds: u64,
        now: UnixSeconds,
    ) -> Result<Vec<u8>, WalletError> {
        self.unlocked()?;
        let now = self.clock(now);
        let (_, cert, policy) = self.enrolled()?;
        if amount.minor == 0 {
            return Err(WalletError::ZeroAmount);
        }
        if amount.currency != policy.currency() {
            return Err(WalletError::CurrencyMismatch);
        }
        self.own_cert_valid(now)?;
        let mut next = self.state.clone();
        next.pending_requests.retain(|r| r.expires >= now);
        if next.pending_requests.len() >= PENDING_REQUESTS_MAX {
            return Err(WalletError::TooManyPendingRequests);
        }
        let expires = now.plus(valid_seconds.min(REQUEST_SECONDS_MAX));
        let body = PaymentRequest {
            payee: self.state.wallet_id,
            amount,
            nonce: Nonce(random(&self.entropy)?),
            created: now,
            expires,
            payee_cert: CertField::Inline(cert.der().to_vec()),
            // The payer certificates held, most recently used first.
            known_certs: self
                .state
                .known_peers
                .iter()
                .rev()
                .take(offpay_protocol::messages::KNOWN_CERTS_MAX)
                .map(|(h, _)| prefix(h))
                .collect(),
        };
        let signed = self.key.sign(body)?;
        next.pending_requests.push(PendingRequest {
            nonce: signed.body().nonce,
            amount_minor: amount.minor,
            expires,
            bytes: signed.bytes().to_vec(),
        });
        next.clock_floor = now;
        self.commit(next)?;
        Ok(signed.into_bytes())
    }

    /// The payment requests this wallet still accepts, soonest to expire first.
    /// Expired ones are left out (they free their slot at `now`).
    pub fn pending_requests(&self, now: UnixSeconds) -> Vec<PendingRequestInfo> {
        let now = self.clock(now);
        let Some(currency) = self.policy.as_ref().map(RiskPolicy::currency) else {
            return Vec::new();
        };
        let mut v: Vec<PendingRequestInfo> = self
            .state
            .pending_requests
            .iter()
            .filter(|r| r.expires >= now)
            .map(|r| PendingRequestInfo {
                nonce: r.nonce,
                amount: Amount::new(r.amount_minor, currency),
                expires: r.expires,
                bytes: r.bytes.clone(),
            })
            .collect();
        v.sort_by_key(|r| r.expires);
        v
    }

    /// Withdraw a pending request, durably: a payment for it is refused from now
    /// on ([`WalletError::NonceUnknown`]), as after expiry, and its slot is free.
    /// Works on a locked wallet (it only narrows what the TA accepts). Returns
    /// the amount the request asked.
    pub fn cancel_request(
        &mut self,
        nonce: &Nonce,
        now: UnixSeconds,
    ) -> Result<Amount, WalletError> {
        let now = self.clock(now);
        let (_, _, policy) = self.enrolled()?;
        let currency = policy.currency();
        let Some(pos) = self
            .state
            .pending_requests
            .iter()
            .position(|r| r.nonce == *nonce && r.expires >= now)
        else {
            return Err(WalletError::NonceUnknown);
        };
        let mut next = self.state.clone();
        let r = next.pending_requests.remove(pos);
        next.pending_requests.retain(|r| r.expires >= now);
        next.clock_floor = now;
        self.commit(next)?;
        Ok(Amount::new(r.amount_minor, currency))
    }

    /// Outgoing payments still in the unsynced log without the payee's receipt
    /// (their ids). The issuer settles each to its payee when this wallet
    /// reports it, receipt or not.
    pub fn payments_without_receipt(&self) -> Vec<Hash32> {
        self.state
            .log
            .iter()
            .filter_map(|l| match l {
                LogEntry::Outgoing {
                    hash,
                    payee_key: Some(_),
                    receipt: None,
                    ..
                } => Some(*hash),
                _ => None,
            })
            .collect()
    }

    // ---- payer: pay -----------------------------------------------------------

    /// Pay a request. Checks the payee's certificate, the request and every risk
    /// limit, durably debits, then returns the signed Payment. Paying the same
    /// request again returns the same bytes.
    #[expect(clippy::too_many_lines)] // lint-exception: one sequence of steps read top to bottom; split by role when next changed
    pub fn pay(&mut self, request_bytes: &[u8], now: UnixSeconds) -> Result<Vec<u8>, WalletError> {
        self.unlocked()?;
        let now = self.clock(now);
        self.enrolled()?;
        if self.profile() == WalletProfile::Terminal {
            return Err(WalletError::TerminalCannotPay);
        }
        let req = Signed::<PaymentRequest>::decode(request_bytes)?;
        let r = req.body().clone();
        if r.created > now.plus(PEER_CLOCK_LEAD_SECONDS_MAX) {
            return Err(WalletError::ClockSkew {
                ahead_seconds: r.created.since(now),
            });
        }
        if r.expires.since(r.created) > REQUEST_SECONDS_MAX {
            return Err(WalletError::RequestValidityTooLong {
                max_seconds: REQUEST_SECONDS_MAX,
            });
        }
        // The payee's signed time is a time this TA has verified (DESIGN §8): a payer
        // clock set back cannot hide its time offline or an expired certificate.
        let now = now.max(r.created);
        let (payee_cert, _) = self.peer_certificate(&r.payee_cert, r.payee, now)?;
        req.verify(payee_cert.public_key())
            .map_err(|_| WalletError::BadSignature)?;
        // Idempotent: this request already paid -> the same Payment, even after a sync.
        if let Some(p) = self
            .state
            .paid
            .iter()
            .find(|p| p.payee == r.payee && p.nonce == r.nonce)
        {
            return Ok(p.payment.to_vec());
        }
        if r.payee == self.state.wallet_id {
            return Err(WalletError::SelfPayment);
        }
        if now > r.expires {
            return Err(WalletError::RequestExpired);
        }
        let (_, cert, policy) = self.enrolled()?;
        if r.amount.currency != policy.currency() {
            return Err(WalletError::CurrencyMismatch);
        }
        self.own_cert_valid(now)?;
        if r.amount.minor > policy.max_payment.minor {
            return Err(WalletError::LimitPerPayment {
                max: policy.max_payment,
            });
        }
        if self.state.balance_minor < r.amount.minor {
            return Err(WalletError::InsufficientFunds {
                balance: self.amount(self.state.balance_minor)?,
                needed: r.amount,
            });
        }
        let (count, spent) = self.offline_spend();
        if count >= policy.max_offline_payments {
            return Err(WalletError::LimitOfflineCount {
                max: policy.max_offline_payments,
            });
        }
        let left = policy.max_offline_spend_minor.saturating_sub(spent);
        if r.amount.minor > left {
            return Err(WalletError::LimitOfflineSpend { left_minor: left });
        }
        let offline = now.since(self.state.last_sync);
        if offline > policy.max_offline_seconds {
            return Err(WalletError::LimitOfflineTime {
                offline_seconds: offline,
                max_seconds: policy.max_offline_seconds,
            });
        }
        if self.state.log.len() >= self.log_limit(policy) {
            return Err(WalletError::LogFull {
                max: policy.max_log_entries,
            });
        }
        check_suite(policy, self.state.suite, now)?;
        let seq = self.state.seq.checked_add(1).ok_or(WalletError::Overflow)?;
        let body = Payment {
            payer: self.state.wallet_id,
            seq,
            prev: self.state.head,
            payee: r.payee,
            amount: r.amount,
            nonce: r.nonce,
            time: now,
            payer_cert: own_cert_field(cert, &payee_cert, &r.known_certs),
            payee_issuer: payee_cert.issuer_id(),
        };
        let signed = self.key.sign(body)?;
        let mut next = self.state.clone();
        next.balance_minor = next
            .balance_minor
            .checked_sub(r.amount.minor)
            .ok_or(WalletError::Overflow)?;
        next.seq = seq;
        next.head = signed.payload_hash();
        next.log.push(LogEntry::Outgoing {
            entry: signed.bytes().into(),
            hash: signed.payload_hash(),
            amount_minor: r.amount.minor,
            payee_key: Some((
                payee_cert.suite(),
                payee_cert.public_key().to_bytes().into(),
            )),
            receipt: None,
        });
        next.paid.retain(|p| p.expires >= now);
        if next.paid.len() >= LOG_ENTRIES_MAX {
            next.paid.remove(0);
        }
        next.paid.push(PaidRequest {
            payee: r.payee,
            nonce: r.nonce,
            expires: r.expires,
            payment: signed.bytes().into(),
        });
        let id = next.head;
        Self::push_history(
            &mut next,
            HistoryItem {
                kind: HistoryKind::Paid,
                amount_minor: r.amount.minor,
                counterparty: Some(r.payee),
                time: now,
                id,
            },
        );
        next.clock_floor = now;
        self.commit(next)?;
        Ok(signed.into_bytes())
    }

    // ---- payee: receive -------------------------------------------------------

    /// Accept a payment for one of this wallet's pending requests. Checks the
    /// payer's certificate and signature, the nonce, amount and currency, and
    /// that the payer has not rolled back; durably credits; returns the signed
    /// Receipt. Receiving the same payment again returns the same Receipt.
    #[expect(clippy::too_many_lines)] // lint-exception: one sequence of steps read top to bottom; split by role when next changed
    pub fn receive(
        &mut self,
        payment_bytes: &[u8],
        now: UnixSeconds,
    ) -> Result<Vec<u8>, WalletError> {
        self.unlocked()?;
        let now = self.clock(now);
        self.enrolled()?;
        let pay = Signed::<Payment>::decode(payment_bytes)?;
        let id = pay.payload_hash();
        for l in &self.state.log {
            if let LogEntry::Incoming { payment, receipt } = l
                && **payment == *payment_bytes
            {
                return Ok(receipt.to_vec());
            }
        }
        let p = pay.body().clone();
        if p.payee != self.state.wallet_id {
            return Err(WalletError::WrongPayee);
        }
        let own_issuer = self.enrolled()?.0.subject_issuer_id();
        if p.payee_issuer != own_issuer {
            return Err(WalletError::WrongPayeeIssuer {
                expected: own_issuer,
                got: p.payee_issuer,
            });
        }
        let (payer_cert, payer_ref) = self.peer_certificate(&p.payer_cert, p.payer, now)?;
        pay.verify(payer_cert.public_key())
            .map_err(|_| WalletError::BadSignature)?;
        if payer_cert.wallet_profile() == WalletProfile::Terminal {
            return Err(WalletError::PayerIsTerminal { payer: p.payer });
        }
        let (_, _, policy) = self.enrolled()?;
        if p.amount.currency != policy.currency() {
            return Err(WalletError::CurrencyMismatch);
        }
        let Some(pos) = self
            .state
            .pending_requests
            .iter()
            .position(|r| r.nonce == p.nonce)
        else {
            return Err(WalletError::NonceUnknown);
        };
        let pending = &self.state.pending_requests[pos];
        if pending.amount_minor != p.amount.minor {
            return Err(WalletError::AmountMismatch {
                requested: self.amount(pending.amount_minor)?,
                paid: p.amount,
            });
        }
        if now > pending.expires {
            return Err(WalletError::RequestExpired);
        }
        if let Some(&(_, seen)) = self.state.seen_payers.iter().find(|(w, _)| *w == p.payer)
            && p.seq <= seen
        {
            // Offline rollback detection: keep the evidence (bounded) and refuse.
            if self.state.evidence.len() < EVIDENCE_MAX
                && !self.state.evidence.iter().any(|e| e == payment_bytes)
            {
                let mut next = self.state.clone();
                next.evidence.push(payment_bytes.to_vec());
                self.commit(next)?;
            }
            return Err(WalletError::PayerRolledBack {
                payer: p.payer,
                seen,
                got: p.seq,
            });
        }
        let new_balance = self
            .state
            .balance_minor
            .checked_add(p.amount.minor)
            .ok_or(WalletError::Overflow)?;
        if new_balance > policy.max_balance_minor {
            return Err(WalletError::LimitHolding {
                max_minor: policy.max_balance_minor,
            });
        }
        if self.profile() == WalletProfile::Terminal {
            self.check_receive_limits(policy, p.amount.minor)?;
        }
        check_suite(policy, payer_cert.suite(), now)?;
        if self.state.log.len() >= self.log_limit(policy) {
            return Err(WalletError::LogFull {
                max: policy.max_log_entries,
            });
        }
        let receipt = self.key.sign(Receipt {
            payment_id: id,
            payee: self.state.wallet_id,
            payer: p.payer,
            seq: p.seq,
            time: now,
        })?;
        let mut next = self.state.clone();
        next.balance_minor = new_balance;
        next.pending_requests.remove(pos);
        match next.seen_payers.iter_mut().find(|(w, _)| *w == p.payer) {
            Some(s) => s.1 = p.seq,
            None => {
                if next.seen_payers.len() >= SEEN_PAYERS_MAX {
                    next.seen_payers.remove(0);
                }
                next.seen_payers.push((p.payer, p.seq));
            }
        }
        if payer_cert.issuer_id() == self.enrolled()?.1.issuer_id() {
            // Held for this payer's next payments by reference.
            remember_peer(&mut next, payer_ref, payer_cert.der());
        }
        next.log.push(LogEntry::Incoming {
            payment: payment_bytes.into(),
            receipt: receipt.bytes().into(),
        });
        Self::push_history(
            &mut next,
            HistoryItem {
                kind: HistoryKind::Received,
                amount_minor: p.amount.minor,
                counterparty: Some(p.payer),
                time: now,
                id,
            },
        );
        next.clock_floor = now;
        self.commit(next)?;
        Ok(receipt.into_bytes())
    }

    // ---- payer: confirm ---------------------------------------------------------

    /// Record the payee's receipt for one of this wallet's payments.
    pub fn confirm(&mut self, receipt_bytes: &[u8]) -> Result<(), WalletError> {
        let receipt = Signed::<Receipt>::decode(receipt_bytes)?;
        let r = receipt.body();
        let mut found = None;
        for (i, l) in self.state.log.iter().enumerate() {
            if let LogEntry::Outgoing {
                hash,
                payee_key: Some((suite, key)),
                receipt: have,
                ..
            } = l
                && *hash == r.payment_id
            {
                if have.as_deref() == Some(receipt_bytes) {
                    return Ok(());
                }
                found = Some((i, *suite, key.clone()));
                break;
            }
        }
        let Some((i, suite, key)) = found else {
            return Err(WalletError::ReceiptUnknownPayment);
        };
        let key = PublicKey::from_bytes(suite, &key).map_err(|_| WalletError::BadSignature)?;
        receipt
            .verify(&key)
            .map_err(|_| WalletError::BadSignature)?;
        if r.payer != self.state.wallet_id {
            return Err(WalletError::WrongWallet);
        }
        let mut next = self.state.clone();
        if let LogEntry::Outgoing { receipt: slot, .. } = &mut next.log[i] {
            *slot = Some(receipt_bytes.into());
        }
        self.commit(next)
    }

    // ---- load and redeem ----------------------------------------------------------

    /// Apply an issuer-signed load voucher: exactly once, in load-seq order.
    pub fn apply_voucher(
        &mut self,
        voucher_bytes: &[u8],
        now: UnixSeconds,
    ) -> Result<Amount, WalletError> {
        self.unlocked()?;
        let now = self.clock(now);
        let mut next = self.state.clone();
        let amount = self.voucher_into(&mut next, voucher_bytes, now)?;
        next.clock_floor = now;
        self.commit(next)?;
        Ok(amount)
    }

    fn voucher_into(
        &self,
        next: &mut TaState,
        voucher_bytes: &[u8],
        now: UnixSeconds,
    ) -> Result<Amount, WalletError> {
        let (issuer, _, policy) = self.enrolled()?;
        let v = Signed::<LoadVoucher>::decode(voucher_bytes)?;
        v.verify(issuer.public_key())
            .map_err(|_| WalletError::BadSignature)?;
        let b = v.body();
        if b.wallet != next.wallet_id {
            return Err(WalletError::WrongWallet);
        }
        if b.load_seq <= next.load_seq {
            return Err(WalletError::VoucherReplayed {
                load_seq: b.load_seq,
            });
        }
        if b.load_seq != next.load_seq + 1 {
            return Err(WalletError::VoucherOutOfOrder {
                expected: next.load_seq + 1,
                got: b.load_seq,
            });
        }
        if b.amount.currency != policy.currency() {
            return Err(WalletError::CurrencyMismatch);
        }
        let nb = next
            .balance_minor
            .checked_add(b.amount.minor)
            .ok_or(WalletError::Overflow)?;
        if nb > policy.max_balance_minor {
            return Err(WalletError::LimitHolding {
                max_minor: policy.max_balance_minor,
            });
        }
        if next.log.len() >= LOG_ENTRIES_MAX {
            return Err(WalletError::LogFull {
                max: LOG_ENTRIES_MAX as u32,
            });
        }
        next.balance_minor = nb;
        next.load_seq = b.load_seq;
        next.log.push(LogEntry::Load {
            load_seq: b.load_seq,
            amount_minor: b.amount.minor,
        });
        Self::push_history(
            next,
            HistoryItem {
                kind: HistoryKind::Loaded,
                amount_minor: b.amount.minor,
                counterparty: None,
                time: now,
                id: v.payload_hash(),
            },
        );
        Ok(b.amount)
    }

    /// Move offline money back to the holder's online account: a signed
    /// outgoing chain entry for the issuer, durably debited before it is returned.
    pub fn redeem(&mut self, amount: Amount, now: UnixSeconds) -> Result<Vec<u8>, WalletError> {
        self.unlocked()?;
        let now = self.clock(now);
        let (_, _, policy) = self.enrolled()?;
        if amount.minor == 0 {
            return Err(WalletError::ZeroAmount);
        }
        if amount.currency != policy.currency() {
            return Err(WalletError::CurrencyMismatch);
        }
        if self.state.balance_minor < amount.minor {
            return Err(WalletError::InsufficientFunds {
                balance: self.amount(self.state.balance_minor)?,
                needed: amount,
            });
        }
        if self.state.log.len() >= LOG_ENTRIES_MAX {
            return Err(WalletError::LogFull {
                max: LOG_ENTRIES_MAX as u32,
            });
        }
        let mut next = self.state.clone();
        let signed = self.redeem_into(&mut next, amount, now)?;
        next.clock_floor = now;
        self.commit(next)?;
        Ok(signed.into_bytes())
    }

    /// Append a redeem of `amount` to `next`'s chain: debit, seq, head, log,
    /// history. The caller has checked the amount, currency, balance and log room.
    fn redeem_into(
        &self,
        next: &mut TaState,
        amount: Amount,
        now: UnixSeconds,
    ) -> Result<Signed<Redeem>, WalletError> {
        let seq = next.seq.checked_add(1).ok_or(WalletError::Overflow)?;
        let body = Redeem {
            wallet: next.wallet_id,
            seq,
            prev: next.head,
            amount,
            time: now,
        };
        let signed = self.key.sign(body)?;
        next.balance_minor = next
            .balance_minor
            .checked_sub(amount.minor)
            .ok_or(WalletError::Overflow)?;
        next.seq = seq;
        next.head = signed.payload_hash();
        next.log.push(LogEntry::Outgoing {
            entry: signed.bytes().into(),
            hash: signed.payload_hash(),
            amount_minor: amount.minor,
            payee_key: None,
            receipt: None,
        });
        let id = next.head;
        Self::push_history(
            next,
            HistoryItem {
                kind: HistoryKind::Redeemed,
                amount_minor: amount.minor,
                counterparty: None,
                time: now,
                id,
            },
        );
        Ok(signed)
    }

    /// What a terminal sweeps at this sync: its balance above the policy's
    /// float (0 without terminal limits), in minor units; 0 for a personal
    /// wallet, a locked terminal (a lock is lifted online first), or a full
    /// log (the next sync, after this one's checkpoint empties it, sweeps).
    pub fn sweep_due_minor(&self) -> u64 {
        let Some(policy) = &self.policy else {
            return 0;
        };
        if self.profile() != WalletProfile::Terminal
            || self.state.lock.is_some()
            || self.state.log.len() >= LOG_ENTRIES_MAX
        {
            return 0;
        }
        let float = policy.terminal.map_or(0, |t| t.sweep_float_minor);
        self.state.balance_minor.saturating_sub(float)
    }

    // ---- sync -------------------------------------------------------------------

    /// Build (and remember) a signed report of everything since the last
    /// checkpoint. Works on a locked wallet: that is how a lock is lifted.
    ///
    /// A terminal first sweeps ([`Wallet::sweep_due_minor`]): a redeem of its
    /// balance above the float is appended to its chain and debited in the
    /// same commit as the report, so the report carries it and the issuer
    /// credits the merchant's online account when it settles it. Asking for
    /// a report again sweeps nothing more (the balance is at the float).
    pub fn sync_report(&mut self, now: UnixSeconds) -> Result<Vec<u8>, WalletError> {
        let now = self.clock(now);
        let currency = self.enrolled()?.2.currency();
        let mut next = self.state.clone();
        let sweep = self.sweep_due_minor();
        if sweep > 0 {
            self.redeem_into(&mut next, Amount::new(sweep, currency), now)?;
        }
        let mut outgoing = Vec::new();
        let mut incoming = Vec::new();
        let mut loads = Vec::new();
        for l in &next.log {
            match l {
                LogEntry::Outgoing { entry, .. } => outgoing.push(entry.to_vec()),
                LogEntry::Incoming { payment, .. } => incoming.push(payment.to_vec()),
                LogEntry::Load { load_seq, .. } => loads.push(*load_seq),
            }
        }
        next.report_seq = next
            .report_seq
            .checked_add(1)
            .ok_or(WalletError::Overflow)?;
        let csr = match &next.key.pending {
            Some(p) => {
                let key = self.pending_key(p, next.key.generation)?;
                Some(
                    pki::build_csr(key.signer(), next.wallet_id)
                        .map_err(WalletError::IssuerMaterial)?,
                )
            }
            None => None,
        };
        let body = SyncReport {
            wallet: next.wallet_id,
            report_seq: next.report_seq,
            time: now,
            base_checkpoint: next.checkpoint_number,
            outgoing,
            incoming,
            loads,
            balance: Amount::new(next.balance_minor, currency),
            seq: next.seq,
            head: next.head,
            load_seq: next.load_seq,
            evidence: next.evidence.clone(),
            locked: next.lock.is_some(),
            directory_version: next.directory.version,
            csr,
            key_generation: next.key.generation,
            key_since: next.key.since,
            // At its bound of deltas the TA asks for the complete CRL.
            crl_number: self
                .crl
                .as_ref()
                .filter(|c| c.accepts_deltas())
                .map(CrlState::number),
        };
        next.pending_report = Some(PendingReport {
            report_seq: next.report_seq,
            log_len: next.log.len() as u64,
            seq: next.seq,
            head: next.head,
            balance_minor: next.balance_minor,
            load_seq: next.load_seq,
            evidence_len: next.evidence.len() as u64,
        });
        next.clock_floor = now;
        let signed = self.key.sign(body)?;
        self.commit(next)?;
        Ok(signed.into_bytes())
    }

    /// Apply the issuer's answer to the last report: checkpoint, CRL,
    /// certificate, policy, scheme directory update, vouchers, lock or
    /// unlock. The directory update is verified whole against the root
    /// ([`WalletError::StaleDirectory`], [`WalletError::DirectoryRefused`],
    /// [`WalletError::DirectoryFull`]); any refusal commits nothing.
    #[expect(clippy::too_many_lines)] // lint-exception: one sequence of steps read top to bottom; split by role when next changed
    pub fn apply_sync_response(
        &mut self,
        bytes: &[u8],
        now: UnixSeconds,
    ) -> Result<SyncApplied, WalletError> {
        let (issuer, _, _) = self.enrolled()?;
        let issuer = issuer.clone();
        let resp = Signed::<SyncResponse>::decode(bytes)?;
        resp.verify(issuer.public_key())
            .map_err(|_| WalletError::BadSignature)?;
        let r = resp.body();
        if r.wallet != self.state.wallet_id {
            return Err(WalletError::WrongWallet);
        }
        let Some(pending) = self.state.pending_report.clone() else {
            return Err(WalletError::StaleSyncResponse);
        };
        if r.report_seq != pending.report_seq || r.checkpoint.number <= self.state.checkpoint_number
        {
            return Err(WalletError::StaleSyncResponse);
        }
        let currency = self.enrolled()?.2.currency();
        let cp = &r.checkpoint;
        // Adopting the issuer's checkpoint wholesale is only right for a locked wallet,
        // which cannot have moved since its report. On an unlocked wallet Unlock is a
        // no-op command: the checkpoint must match, and what happened since is kept.
        let unlock = r.command == WalletCommand::Unlock && self.state.lock.is_some();
        if cp.balance.currency != currency {
            return Err(WalletError::CurrencyMismatch);
        }
        if !unlock
            && (cp.seq != pending.seq
                || cp.head != pending.head
                || cp.balance.minor != pending.balance_minor
                || cp.load_seq != pending.load_seq)
        {
            return Err(WalletError::CheckpointMismatch);
        }
        let mut out = SyncApplied {
            checkpoint: cp.number,
            ..SyncApplied::default()
        };
        let mut next = self.state.clone();
        let mut new_cert = None;
        let mut new_key = None;
        let mut new_policy = None;
        let mut new_crl = None;
        // The CRL this TA already holds needs no second verification.
        if let Some(der) = r
            .crl
            .as_ref()
            .filter(|d| Some(*d) != self.state.crl_der.as_ref())
        {
            let c = Crl::from_der(der).map_err(WalletError::IssuerMaterial)?;
            c.verify_signed_by(&issuer)
                .map_err(WalletError::IssuerMaterial)?;
            // A complete CRL of the number our deltas reached replaces them.
            if self.crl.as_ref().is_none_or(|old| {
                c.number() > old.number()
                    || (c.number() == old.number() && !old.deltas().is_empty())
            }) {
                next.crl_der = Some(der.clone());
                next.crl_deltas.clear();
                new_crl = Some(CrlState::new(c));
                out.crl_updated = true;
            }
        }
        if let Some(der) = &r.crl_delta {
            let d = DeltaCrl::from_der(der).map_err(WalletError::CrlDeltaRefused)?;
            d.verify_signed_by(&issuer)
                .map_err(WalletError::CrlDeltaRefused)?;
            let base = d.base_number();
            let mut st = self
                .crl
                .clone()
                .ok_or(WalletError::CrlDeltaBaseMismatch { held: None, base })?;
            st.apply(d).map_err(|e| match e {
                PkiError::CrlDeltaBaseMismatch { held, base } => {
                    WalletError::CrlDeltaBaseMismatch {
                        held: Some(held),
                        base,
                    }
                }
                e => WalletError::CrlDeltaRefused(e),
            })?;
            next.crl_deltas.push(der.as_slice().into());
            new_crl = Some(st);
            out.crl_updated = true;
        }
        // The trust after this response: our newer CRL, then the directory update.
        let mut trust = self.trust.clone();
        if let Some(c) = &new_crl {
            trust
                .set_crl_state(c.clone())
                .map_err(WalletError::IssuerMaterial)?;
        }
        if let Some(u) = &r.directory {
            let (t, dir) = updated_trust(&trust, self.state.directory.version, u)?;
            trust = t;
            next.directory = dir;
            out.directory_version = Some(u.version);
        }
        if let Some(der) = &r.certificate {
            let c = Certificate::from_der(der).map_err(WalletError::IssuerMaterial)?;
            let id = pki::validate_wallet_chain(
                &self.root,
                &issuer,
                &c,
                self.clock(now).max(r.time),
                None,
            )
            .map_err(WalletError::IssuerMaterial)?;
            if id != self.state.wallet_id {
                return Err(WalletError::CertificateWalletMismatch);
            }
            if *c.public_key() != self.key.public_key() {
                // Not a renewal: it must certify the key made for the re-key.
                let p = self
                    .state
                    .key
                    .pending
                    .clone()
                    .ok_or(WalletError::CertificateWalletMismatch)?;
                let k = self.pending_key(&p, self.state.key.generation)?;
                if *c.public_key() != k.public_key() {
                    return Err(WalletError::CertificateWalletMismatch);
                }
                new_key = Some(k);
            }
            next.cert_der = Some(der.clone());
            new_cert = Some(c);
            out.certificate_renewed = true;
        }
        if let Some(pb) = &r.policy {
            let p = Signed::<RiskPolicy>::decode(pb)?;
            p.verify(issuer.public_key())
                .map_err(|_| WalletError::BadSignature)?;
            let cur = self.enrolled()?.2;
            if p.body().id == cur.id && p.body().epoch < cur.epoch {
                return Err(WalletError::StalePolicy);
            }
            if p.body().currency() != currency {
                return Err(WalletError::CurrencyMismatch);
            }
            if p.body() != cur {
                next.policy = Some(pb.clone());
                new_policy = Some(p.body().clone());
                out.policy_updated = true;
            }
        }
        // The entries the report carried are now on the issuer's books.
        let n = (pending.log_len as usize).min(next.log.len());
        next.log.drain(..n);
        let reported = (pending.evidence_len as usize).min(next.evidence.len());
        next.evidence.drain(..reported);
        next.pending_report = None;
        next.checkpoint_number = cp.number;
        if unlock {
            // The issuer's checkpoint is authoritative after a rollback: adopt it.
            next.seq = cp.seq;
            next.head = cp.head;
            next.balance_minor = cp.balance.minor;
            next.load_seq = cp.load_seq;
            next.report_seq = next.report_seq.max(cp.report_seq);
            next.log.clear();
            next.pending_requests.clear();
            if next.lock.is_some() {
                out.unlocked = true;
            }
            next.lock = None;
        }
        next.last_sync = r.time;
        next.clock_floor = next.clock_floor.max(r.time).max(cp.time);
        if let WalletCommand::Lock { reason } = &r.command {
            next.lock = Some(LockReason::Issuer(reason.clone()));
            out.locked = true;
        }
        let retired = match &new_key {
            Some(_) => {
                // The switch: the next entry is the new key's first; it links
                // to the head the old key signed (the chain continues).
                let p = next
                    .key
                    .pending
                    .take()
                    .ok_or(WalletError::CertificateWalletMismatch)?;
                let old = next.key.generation;
                next.suite = p.suite;
                next.key.generation = old.checked_add(1).ok_or(WalletError::Overflow)?;
                next.key.since = next.seq.checked_add(1).ok_or(WalletError::Overflow)?;
                next.key.seed = p.seed;
                out.rekeyed = Some(next.suite);
                next.key.device.then_some(old)
            }
            None => None,
        };
        if let Some(suite) = r.rekey
            && new_key.is_none()
            && next.key.pending.as_ref().is_none_or(|p| p.suite != suite)
        {
            match self.make_pending_key(suite, next.key.generation, next.key.device) {
                Ok(p) => {
                    next.key.pending = Some(p);
                    out.rekey_started = Some(suite);
                }
                Err(WalletError::Vault(e)) if next.key.device => out.rekey_refused = Some(e),
                Err(e) => return Err(e),
            }
        }
        // Install what changed before applying vouchers (the policy bounds them).
        let saved = (
            self.cert.clone(),
            self.policy.clone(),
            self.crl.clone(),
            std::mem::replace(&mut self.trust, trust),
        );
        if let Some(c) = new_cert {
            self.cert = Some(c);
        }
        if let Some(p) = new_policy {
            self.policy = Some(p);
        }
        if let Some(c) = new_crl {
            self.crl = Some(c);
        }
        let now_t = self.clock(now).max(r.time);
        for v in &r.vouchers {
            match self.voucher_into(&mut next, v, now_t) {
                Ok(_) => out.vouchers_applied.push(next.load_seq),
                Err(WalletError::VoucherReplayed { .. }) => {}
                Err(WalletError::LimitHolding { .. })
                | Err(WalletError::VoucherOutOfOrder { .. })
                | Err(WalletError::LogFull { .. }) => {
                    if let Ok(v) = Signed::<LoadVoucher>::decode(v) {
                        out.vouchers_deferred.push(v.body().load_seq);
                    }
                }
                Err(e) => {
                    (self.cert, self.policy, self.crl, self.trust) = saved;
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.commit(next) {
            (self.cert, self.policy, self.crl, self.trust) = saved;
            return Err(e);
        }
        if let Some(k) = new_key {
            self.key = k;
            // The old device key signs nothing the issuer accepts after the
            // switch; a key left behind by a failed delete is harmless.
            if let Some(g) = retired {
                let _ = self.vault.retire_device_key(g);
            }
        }
        if out.directory_version.is_some() {
            // Issuer CAs may have been replaced: validate peers afresh.
            self.peers.clear();
        }
        Ok(out)
    }

    // ---- read-only ------------------------------------------------------------------

    /// The offline balance (`None` before enrollment).
    pub fn balance(&self) -> Option<Amount> {
        self.policy
            .as_ref()
            .map(|p| Amount::new(self.state.balance_minor, p.currency()))
    }

    /// The most recent history, oldest first.
    pub fn history(&self) -> &[HistoryItem] {
        &self.state.history
    }

    /// Refused payments kept as rollback evidence.
    pub fn evidence(&self) -> &[Vec<u8>] {
        &self.state.evidence
    }

    /// This wallet's certificate.
    pub fn certificate(&self) -> Option<&Certificate> {
        self.cert.as_ref()
    }

    /// The issuer CA certificate.
    pub fn issuer_certificate(&self) -> Option<&Certificate> {
        self.issuer.as_ref()
    }

    /// The trusted root.
    pub fn root_certificate(&self) -> &Certificate {
        &self.root
    }

    /// Our issuer's CRL as this wallet holds it: the complete CRL and the
    /// delta CRLs applied to it (`None` before the first CRL).
    pub fn crl_state(&self) -> Option<&CrlState> {
        self.crl.as_ref()
    }

    /// The version of the scheme directory this wallet holds (0: none).
    pub fn directory_version(&self) -> u64 {
        self.state.directory.version
    }

    /// What this wallet validates peers against: the root, its issuer, the
    /// issuers of the scheme directory, their CRLs and the issuer CRL.
    pub fn scheme_trust(&self) -> &SchemeTrust {
        &self.trust
    }

    /// An issuer's standing as this wallet knows it (`None`: unknown issuer).
    pub fn issuer_status(&self, issuer: &IssuerId) -> Option<IssuerStatus> {
        self.trust.issuer_status(issuer)
    }

    /// The outgoing chain's (seq, head).
    pub fn chain_head(&self) -> (u64, Hash32) {
        (self.state.seq, self.state.head)
    }

    /// Whether and why the wallet is locked.
    pub fn lock(&self) -> Option<&LockReason> {
        self.state.lock.as_ref()
    }

    /// Outgoing entries not yet acknowledged by a checkpoint (envelope bytes).
    pub fn unsynced_outgoing(&self) -> Vec<Vec<u8>> {
        self.state
            .log
            .iter()
            .filter_map(|l| match l {
                LogEntry::Outgoing { entry, .. } => Some(entry.to_vec()),
                _ => None,
            })
            .collect()
    }

    /// Everything the app may show.
    pub fn status(&self, now: UnixSeconds) -> WalletStatus {
        let now = self.clock(now);
        let (count, spent) = self.offline_spend();
        let p = self.policy.as_ref();
        let terminal = p
            .and_then(|p| p.terminal)
            .filter(|_| self.profile() == WalletProfile::Terminal);
        let received = self.offline_received().ok();
        WalletStatus {
            wallet_id: self.state.wallet_id,
            enrolled: self.cert.is_some(),
            locked: self.state.lock.clone(),
            balance: self.balance(),
            seq: self.state.seq,
            load_seq: self.state.load_seq,
            unsynced_entries: self.state.log.len(),
            seconds_until_sync_required: p.map(|p| {
                p.max_offline_seconds
                    .saturating_sub(now.since(self.state.last_sync))
            }),
            offline_spend_left_minor: p.map(|p| p.max_offline_spend_minor.saturating_sub(spent)),
            offline_payments_left: p.map(|p| p.max_offline_payments.saturating_sub(count)),
            certificate_expires: self.cert.as_ref().map(Certificate::not_after),
            evidence: self.state.evidence.len(),
            policy: self.policy.clone(),
            pending_requests: self
                .state
                .pending_requests
                .iter()
                .filter(|r| r.expires >= now)
                .count(),
            pending_request_next_expiry: self
                .state
                .pending_requests
                .iter()
                .filter(|r| r.expires >= now)
                .map(|r| r.expires)
                .min(),
            profile: self.profile(),
            receive_payments_left: terminal
                .zip(received)
                .map(|(t, (n, _))| t.max_receive_payments.saturating_sub(n)),
            receive_left_minor: terminal
                .zip(received)
                .map(|(t, (_, total))| t.max_receive_minor.saturating_sub(total)),
        }
    }
}
