//! The TA's state and its private, versioned encoding (deterministic CBOR
//! arrays). This is what the vault seals; the REE never sees it.

use offpay_protocol::cbor::{DecodeError, Decoder, Encoder};
use offpay_protocol::{Hash32, Nonce, Suite, UnixSeconds, WalletId};
use zeroize::Zeroizing;

use crate::error::LockReason;

/// Most payment requests a payee keeps pending at once.
pub const PENDING_REQUESTS_MAX: usize = 16;
/// Most payer certificates the TA keeps sealed for by-reference payments
/// (PaymentRequest key 10), least recently used dropped first.
pub const KNOWN_PEERS_MAX: usize = offpay_protocol::messages::KNOWN_CERTS_MAX;
/// Most payers whose highest seq the TA remembers (offline rollback detection).
pub const SEEN_PAYERS_MAX: usize = 1024;
/// Most refused payments kept as rollback evidence until the next sync.
pub const EVIDENCE_MAX: usize = 64;
/// Most history lines kept (older ones drop off; the issuer keeps the full record).
pub const HISTORY_MAX: usize = 256;
/// Hard cap on the unsynced log, whatever the policy says.
pub const LOG_ENTRIES_MAX: usize = offpay_protocol::messages::SYNC_ENTRIES_MAX;

/// Version of the sealed state encoding: 2 adds the scheme directory (field
/// 26), 3 the key state (field 27: generation, device, re-keying) and the
/// payer certificates held for by-reference payments (field 28), 4 the delta
/// CRLs applied to our issuer's CRL (field 29).
const STATE_FORMAT: u64 = 4;
/// Format 3 (before delta CRLs): such states still open, with no delta.
const STATE_FORMAT_V3: u64 = 3;
/// Format 2 (before re-keying): such states still open, with generation 0.
const STATE_FORMAT_V2: u64 = 2;
/// Format 1 (before the directory): such states still open, with an empty directory.
const STATE_FORMAT_V1: u64 = 1;
/// Fields of the sealed state (the top-level array).
const STATE_FIELDS: usize = 29;
/// Fields of a format-3 state.
const STATE_FIELDS_V3: usize = 28;
/// Fields of a format-2 state.
const STATE_FIELDS_V2: usize = 26;
/// Fields of a format-1 state.
const STATE_FIELDS_V1: usize = 25;
/// What a format-1 array header said before it was corrected: the fields were
/// always these 25, but the header claimed 26 (found by the paired assertion
/// in [`TaState::encode`]); such states still open.
const STATE_FIELDS_LEGACY_HEADER: usize = 26;
/// Most bytes of certificates and CRLs the directory in the state holds
/// (1 MiB: a quarter of the vault's sealed state, whose log needs the rest).
pub const DIRECTORY_STATE_BYTES_MAX: usize = 1 << 20;
/// Most issuers the directory in the state holds.
pub const DIRECTORY_ISSUERS_MAX: usize = offpay_protocol::messages::DIRECTORY_ISSUERS_MAX;
/// Bound on the decoder for any list in the state.
const STATE_LIST_MAX: usize = 1 << 16;
/// Bound on any byte string in the state.
const STATE_BLOB_MAX: usize = 1 << 21;

/// Immutable bytes shared between the state and its next version: cloning
/// the state (once per operation) bumps a count instead of copying them.
pub(crate) type Blob = std::sync::Arc<[u8]>;

/// A payment request this wallet (as payee) issued and still accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingRequest {
    pub nonce: Nonce,
    pub amount_minor: u64,
    pub expires: UnixSeconds,
    pub bytes: Vec<u8>,
}

/// A request this wallet (as payer) paid, remembered until the request
/// expires so that paying it again returns the same Payment even after a sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PaidRequest {
    pub payee: WalletId,
    pub nonce: Nonce,
    pub expires: UnixSeconds,
    pub payment: Blob,
}

/// One unsynced change of the balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LogEntry {
    /// An outgoing chain entry (payment or redeem), with the payee's public key
    /// (payments) and its receipt once confirmed.
    Outgoing {
        entry: Blob,
        hash: Hash32,
        amount_minor: u64,
        payee_key: Option<(Suite, Blob)>,
        receipt: Option<Blob>,
    },
    /// An accepted payment and the receipt this wallet signed for it.
    Incoming { payment: Blob, receipt: Blob },
    /// An applied load voucher.
    Load { load_seq: u64, amount_minor: u64 },
}

/// What the history shows the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryKind {
    /// Paid another wallet.
    Paid,
    /// Received from another wallet.
    Received,
    /// Loaded from the online account.
    Loaded,
    /// Redeemed to the online account.
    Redeemed,
}

/// One line of the wallet's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryItem {
    /// What happened.
    pub kind: HistoryKind,
    /// Minor units, in the wallet's currency.
    pub amount_minor: u64,
    /// The other wallet, for payments.
    pub counterparty: Option<WalletId>,
    /// TA time.
    pub time: UnixSeconds,
    /// Payment id / entry hash; for loads, zero.
    pub id: Hash32,
}

/// The report last built, waiting for its response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingReport {
    pub report_seq: u64,
    pub log_len: u64,
    pub seq: u64,
    pub head: Hash32,
    pub balance_minor: u64,
    pub load_seq: u64,
    pub evidence_len: u64,
}

/// One issuer CA learnt from the scheme directory, with its latest CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DirectoryIssuerState {
    pub ca_der: Blob,
    pub crl_der: Option<Blob>,
}

/// The scheme directory as this TA holds it (every element verified against
/// the root when installed). Version 0 and empty: none yet (a standalone
/// issuer's wallets, and states sealed before format 2).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct DirectoryState {
    pub version: u64,
    pub issuer_crl: Option<Blob>,
    pub issuers: Vec<DirectoryIssuerState>,
}

impl DirectoryState {
    /// Bytes of certificates and CRLs held.
    pub(crate) fn bytes(&self) -> usize {
        self.issuer_crl.as_ref().map_or(0, |c| c.len())
            + self
                .issuers
                .iter()
                .map(|i| i.ca_der.len() + i.crl_der.as_ref().map_or(0, |c| c.len()))
                .sum::<usize>()
    }
}

/// A key the issuer asked for and the TA made, waiting for its certificate
/// (its CSR goes in every report until a sync response certifies it).
#[derive(Clone, Debug)]
pub(crate) struct PendingKey {
    pub suite: Suite,
    /// The software key's seed; `None`: key `generation + 1` of the vault's device.
    pub seed: Option<Zeroizing<[u8; 32]>>,
}

/// Which key the TA signs with, and the re-key in progress.
#[derive(Clone, Debug)]
pub(crate) struct KeyState {
    /// 0 for the wallet's first key, +1 at each re-key.
    pub generation: u32,
    /// The key is held by the vault's device ([`crate::vault::Vault::device_key`]).
    pub device: bool,
    /// The first chain seq signed by the current key (1 for the first key).
    pub since: u64,
    /// The current software key's seed after a re-key; `None` for
    /// generation 0 (the state's root seed) and for device keys.
    pub seed: Option<Zeroizing<[u8; 32]>>,
    /// A re-key waiting for its certificate.
    pub pending: Option<PendingKey>,
}

impl Default for KeyState {
    fn default() -> Self {
        KeyState {
            generation: 0,
            device: false,
            since: 1,
            seed: None,
            pending: None,
        }
    }
}

/// The whole TA state.
#[derive(Clone, Debug)]
pub(crate) struct TaState {
    pub wallet_id: WalletId,
    /// The current key's suite.
    pub suite: Suite,
    /// The wallet's root secret: the first key's seed (generation 0) and
    /// what the PIN unlock key is derived from; never changes.
    pub seed: Zeroizing<[u8; 32]>,
    pub root_der: Vec<u8>,
    pub issuer_der: Option<Vec<u8>>,
    pub cert_der: Option<Vec<u8>>,
    pub policy: Option<Vec<u8>>,
    pub crl_der: Option<Vec<u8>>,
    /// The delta CRLs (DER) applied to `crl_der`, in order (each verified
    /// when received; at most `pki::CRL_DELTAS_HELD_MAX`).
    pub crl_deltas: Vec<Blob>,
    pub balance_minor: u64,
    pub seq: u64,
    pub head: Hash32,
    pub load_seq: u64,
    pub report_seq: u64,
    pub pending_report: Option<PendingReport>,
    pub checkpoint_number: u64,
    pub last_sync: UnixSeconds,
    pub clock_floor: UnixSeconds,
    pub pending_requests: Vec<PendingRequest>,
    pub paid: Vec<PaidRequest>,
    pub seen_payers: Vec<(WalletId, u64)>,
    pub log: Vec<LogEntry>,
    pub evidence: Vec<Vec<u8>>,
    pub history: Vec<HistoryItem>,
    pub lock: Option<LockReason>,
    pub directory: DirectoryState,
    pub key: KeyState,
    /// Payer certificates (DER, each verified when first received, of this
    /// issuer's wallets), least recently used first, with their references.
    pub known_peers: Vec<(Hash32, Blob)>,
}

fn suite_code(s: Suite) -> u64 {
    match s {
        Suite::Ed25519 => 0,
        Suite::P256 => 1,
        Suite::MlDsa44 => 2,
    }
}
fn suite_from(c: u64) -> Result<Suite, DecodeError> {
    match c {
        0 => Ok(Suite::Ed25519),
        1 => Ok(Suite::P256),
        2 => Ok(Suite::MlDsa44),
        _ => Err(DecodeError::InvalidValue("suite")),
    }
}
fn opt_bytes<B: AsRef<[u8]>>(e: &mut Encoder, b: &Option<B>) {
    match b {
        Some(b) => e.array(1).bytes(b.as_ref()),
        None => e.array(0),
    };
}
fn read_opt_bytes(d: &mut Decoder<'_>, f: &'static str) -> Result<Option<Vec<u8>>, DecodeError> {
    let n = d.array(f, 1)?;
    let v = if n == 1 {
        Some(d.bytes(f, STATE_BLOB_MAX)?.to_vec())
    } else {
        None
    };
    d.leave();
    Ok(v)
}
fn list<'a, T>(
    d: &mut Decoder<'a>,
    f: &'static str,
    mut item: impl FnMut(&mut Decoder<'a>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let n = d.array(f, STATE_LIST_MAX)?;
    let mut v = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        v.push(item(d)?);
    }
    d.leave();
    Ok(v)
}
fn blob(d: &mut Decoder<'_>, f: &'static str) -> Result<Vec<u8>, DecodeError> {
    Ok(d.bytes(f, STATE_BLOB_MAX)?.to_vec())
}
fn hash(d: &mut Decoder<'_>, f: &'static str) -> Result<Hash32, DecodeError> {
    d.fixed::<32>(f).map(Hash32)
}

/// Leading bytes of an encoded state wiped with volatile writes: they hold
/// the signing seed (at offset 22, after the format, wallet id and suite).
const SECRET_PREFIX_BYTES: usize = 64;

/// An encoded state, wiped when dropped: the seed (its first bytes) with
/// volatile writes that cannot be optimised away, the rest (the log and
/// history, private but not key material) with one `memset` kept alive by
/// `black_box`. Volatile byte-by-byte writes over the whole buffer (as
/// `Zeroizing<Vec<u8>>` does) cost ~25 µs per 75 KB state, four times per
/// payment: more than the payment's three signatures.
pub(crate) struct EncodedState(Vec<u8>);

impl std::ops::Deref for EncodedState {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for EncodedState {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        let n = self.0.len().min(SECRET_PREFIX_BYTES);
        self.0[..n].zeroize();
        self.0[n..].fill(0);
        std::hint::black_box(&self.0);
    }
}

impl TaState {
    /// An upper estimate of the encoded size (the buffer is allocated once).
    fn size_hint(&self) -> usize {
        let opt = |b: &Option<Vec<u8>>| b.as_ref().map_or(0, Vec::len) + 8;
        let log: usize = self
            .log
            .iter()
            .map(|l| match l {
                LogEntry::Outgoing {
                    entry,
                    payee_key,
                    receipt,
                    ..
                } => {
                    entry.len()
                        + payee_key.as_ref().map_or(0, |(_, k)| k.len())
                        + receipt.as_ref().map_or(0, |r| r.len())
                        + 64
                }
                LogEntry::Incoming { payment, receipt } => payment.len() + receipt.len() + 16,
                LogEntry::Load { .. } => 24,
            })
            .sum();
        512 + self.root_der.len()
            + opt(&self.issuer_der)
            + opt(&self.cert_der)
            + opt(&self.policy)
            + opt(&self.crl_der)
            + self.crl_deltas.iter().map(|d| d.len() + 8).sum::<usize>()
            + self
                .pending_requests
                .iter()
                .map(|r| r.bytes.len() + 48)
                .sum::<usize>()
            + self
                .paid
                .iter()
                .map(|r| r.payment.len() + 64)
                .sum::<usize>()
            + self.seen_payers.len() * 32
            + self
                .known_peers
                .iter()
                .map(|(_, d)| d.len() + 8)
                .sum::<usize>()
            + log
            + self.evidence.iter().map(|e| e.len() + 8).sum::<usize>()
            + self.history.len() * 80
            + self.directory.issuer_crl.as_ref().map_or(0, |c| c.len())
            + self
                .directory
                .issuers
                .iter()
                .map(|i| i.ca_der.len() + i.crl_der.as_ref().map_or(0, |c| c.len()) + 16)
                .sum::<usize>()
    }

    /// The bounds every committed state keeps. Asserted (debug builds) where
    /// the state is written ([`TaState::encode`]) and again where it is read
    /// ([`TaState::decode`]); the TA enforces each with a refusal.
    pub(crate) fn debug_check_bounds(&self) {
        debug_assert!(self.pending_requests.len() <= PENDING_REQUESTS_MAX);
        debug_assert!(self.paid.len() <= LOG_ENTRIES_MAX);
        debug_assert!(self.seen_payers.len() <= SEEN_PAYERS_MAX);
        debug_assert!(self.log.len() <= LOG_ENTRIES_MAX);
        debug_assert!(self.evidence.len() <= EVIDENCE_MAX);
        debug_assert!(self.history.len() <= HISTORY_MAX);
        debug_assert!(self.directory.issuers.len() <= DIRECTORY_ISSUERS_MAX);
        debug_assert!(self.known_peers.len() <= KNOWN_PEERS_MAX);
        debug_assert!(self.crl_deltas.len() <= offpay_protocol::pki::CRL_DELTAS_HELD_MAX);
        if let Some(p) = &self.pending_report {
            // A pending report describes a prefix of what the state holds now.
            debug_assert!(p.log_len <= self.log.len() as u64);
            debug_assert!(p.evidence_len <= self.evidence.len() as u64);
            debug_assert!(p.seq <= self.seq);
            debug_assert!(p.load_seq <= self.load_seq);
            debug_assert!(p.report_seq <= self.report_seq);
        }
    }

    #[expect(clippy::too_many_lines)] // lint-exception: one sequence of steps read top to bottom; split by role when next changed
    pub(crate) fn encode(&self) -> EncodedState {
        self.debug_check_bounds();
        let mut e = Encoder::with_capacity(self.size_hint());
        e.array(STATE_FIELDS);
        e.uint(STATE_FORMAT);
        e.bytes(&self.wallet_id.0);
        e.uint(suite_code(self.suite));
        e.bytes(self.seed.as_ref());
        e.bytes(&self.root_der);
        opt_bytes(&mut e, &self.issuer_der);
        opt_bytes(&mut e, &self.cert_der);
        opt_bytes(&mut e, &self.policy);
        opt_bytes(&mut e, &self.crl_der);
        e.uint(self.balance_minor)
            .uint(self.seq)
            .bytes(&self.head.0)
            .uint(self.load_seq)
            .uint(self.report_seq);
        match &self.pending_report {
            Some(p) => {
                e.array(7)
                    .uint(p.report_seq)
                    .uint(p.log_len)
                    .uint(p.seq)
                    .bytes(&p.head.0)
                    .uint(p.balance_minor)
                    .uint(p.load_seq)
                    .uint(p.evidence_len);
            }
            None => {
                e.array(0);
            }
        }
        e.uint(self.checkpoint_number)
            .uint(self.last_sync.0)
            .uint(self.clock_floor.0);
        e.array(self.pending_requests.len());
        for r in &self.pending_requests {
            e.array(4)
                .bytes(&r.nonce.0)
                .uint(r.amount_minor)
                .uint(r.expires.0)
                .bytes(&r.bytes);
        }
        e.array(self.paid.len());
        for r in &self.paid {
            e.array(4)
                .bytes(&r.payee.0)
                .bytes(&r.nonce.0)
                .uint(r.expires.0)
                .bytes(&r.payment);
        }
        e.array(self.seen_payers.len());
        for (w, s) in &self.seen_payers {
            e.array(2).bytes(&w.0).uint(*s);
        }
        e.array(self.log.len());
        for l in &self.log {
            match l {
                LogEntry::Outgoing {
                    entry,
                    hash,
                    amount_minor,
                    payee_key,
                    receipt,
                } => {
                    e.array(6)
                        .uint(0)
                        .bytes(entry)
                        .bytes(&hash.0)
                        .uint(*amount_minor);
                    match payee_key {
                        Some((s, k)) => e.array(2).uint(suite_code(*s)).bytes(k),
                        None => e.array(0),
                    };
                    opt_bytes(&mut e, receipt);
                }
                LogEntry::Incoming { payment, receipt } => {
                    e.array(3).uint(1).bytes(payment).bytes(receipt);
                }
                LogEntry::Load {
                    load_seq,
                    amount_minor,
                } => {
                    e.array(3).uint(2).uint(*load_seq).uint(*amount_minor);
                }
            }
        }
        e.array(self.evidence.len());
        for ev in &self.evidence {
            e.bytes(ev);
        }
        e.array(self.history.len());
        for h in &self.history {
            let kind = match h.kind {
                HistoryKind::Paid => 0,
                HistoryKind::Received => 1,
                HistoryKind::Loaded => 2,
                HistoryKind::Redeemed => 3,
            };
            e.array(5).uint(kind).uint(h.amount_minor);
            match h.counterparty {
                Some(w) => e.bytes(&w.0),
                None => e.bytes(&[]),
            };
            e.uint(h.time.0).bytes(&h.id.0);
        }
        match &self.lock {
            None => e.array(0),
            Some(LockReason::RolledBack) => e.array(1).uint(0),
            Some(LockReason::Issuer(r)) => e.array(2).uint(1).text(r),
        };
        let dir = &self.directory;
        e.array(3).uint(dir.version);
        opt_bytes(&mut e, &dir.issuer_crl);
        e.array(dir.issuers.len());
        for i in &dir.issuers {
            e.array(2).bytes(&i.ca_der);
            opt_bytes(&mut e, &i.crl_der);
        }
        let k = &self.key;
        e.array(5)
            .uint(u64::from(k.generation))
            .bool(k.device)
            .uint(k.since);
        opt_bytes(&mut e, &k.seed.as_ref().map(|s| s.as_slice()));
        match &k.pending {
            None => {
                e.array(0);
            }
            Some(p) => {
                e.array(2).uint(suite_code(p.suite));
                opt_bytes(&mut e, &p.seed.as_ref().map(|s| s.as_slice()));
            }
        }
        e.array(self.known_peers.len());
        for (_, der) in &self.known_peers {
            e.bytes(der);
        }
        e.array(self.crl_deltas.len());
        for der in &self.crl_deltas {
            e.bytes(der);
        }
        let bytes = e.finish();
        debug_assert!(offpay_protocol::cbor::is_one_value(&bytes), "state counts");
        EncodedState(bytes)
    }

    #[expect(clippy::too_many_lines)] // lint-exception: one sequence of steps read top to bottom; split by role when next changed
    pub(crate) fn decode(bytes: &[u8]) -> Result<TaState, DecodeError> {
        let mut d = Decoder::new(bytes);
        let n = d.array("state", 32)?;
        let format = d.uint("state format")?;
        match format {
            STATE_FORMAT if n == STATE_FIELDS => {}
            STATE_FORMAT_V3 if n == STATE_FIELDS_V3 => {}
            STATE_FORMAT_V2 if n == STATE_FIELDS_V2 => {}
            // Format-1 states sealed before the header was corrected say 26 for the same 25 fields.
            STATE_FORMAT_V1 if n == STATE_FIELDS_V1 || n == STATE_FIELDS_LEGACY_HEADER => {}
            STATE_FORMAT | STATE_FORMAT_V3 | STATE_FORMAT_V2 | STATE_FORMAT_V1 => {
                return Err(DecodeError::BadLength { field: "state" });
            }
            _ => return Err(DecodeError::UnknownVersion(format)),
        }
        let wallet_id = WalletId(d.fixed::<16>("wallet id")?);
        let suite = suite_from(d.uint("suite")?)?;
        let seed = Zeroizing::new(d.fixed::<32>("seed")?);
        let root_der = blob(&mut d, "root")?;
        let issuer_der = read_opt_bytes(&mut d, "issuer")?;
        let cert_der = read_opt_bytes(&mut d, "certificate")?;
        let policy = read_opt_bytes(&mut d, "policy")?;
        let crl_der = read_opt_bytes(&mut d, "crl")?;
        let balance_minor = d.uint("balance")?;
        let seq = d.uint("seq")?;
        let head = hash(&mut d, "head")?;
        let load_seq = d.uint("load seq")?;
        let report_seq = d.uint("report seq")?;
        let pending_report = {
            let n = d.array("pending report", 7)?;
            let p = match n {
                0 => None,
                7 => Some(PendingReport {
                    report_seq: d.uint("report seq")?,
                    log_len: d.uint("log len")?,
                    seq: d.uint("seq")?,
                    head: hash(&mut d, "head")?,
                    balance_minor: d.uint("balance")?,
                    load_seq: d.uint("load seq")?,
                    evidence_len: d.uint("evidence len")?,
                }),
                _ => {
                    return Err(DecodeError::BadLength {
                        field: "pending report",
                    });
                }
            };
            d.leave();
            p
        };
        let checkpoint_number = d.uint("checkpoint")?;
        let last_sync = UnixSeconds(d.uint("last sync")?);
        let clock_floor = UnixSeconds(d.uint("clock floor")?);
        let pending_requests = list(&mut d, "pending requests", |d| {
            if d.array("pending request", 4)? != 4 {
                return Err(DecodeError::BadLength {
                    field: "pending request",
                });
            }
            let r = PendingRequest {
                nonce: Nonce(d.fixed::<16>("nonce")?),
                amount_minor: d.uint("amount")?,
                expires: UnixSeconds(d.uint("expires")?),
                bytes: blob(d, "request")?,
            };
            d.leave();
            Ok(r)
        })?;
        let paid = list(&mut d, "paid requests", |d| {
            if d.array("paid request", 4)? != 4 {
                return Err(DecodeError::BadLength {
                    field: "paid request",
                });
            }
            let r = PaidRequest {
                payee: WalletId(d.fixed::<16>("payee")?),
                nonce: Nonce(d.fixed::<16>("nonce")?),
                expires: UnixSeconds(d.uint("expires")?),
                payment: blob(d, "payment")?.into(),
            };
            d.leave();
            Ok(r)
        })?;
        let seen_payers = list(&mut d, "seen payers", |d| {
            if d.array("seen payer", 2)? != 2 {
                return Err(DecodeError::BadLength {
                    field: "seen payer",
                });
            }
            let r = (WalletId(d.fixed::<16>("payer")?), d.uint("seq")?);
            d.leave();
            Ok(r)
        })?;
        let log = list(&mut d, "log", |d| {
            let n = d.array("log entry", 6)?;
            let kind = d.uint("log kind")?;
            let l = match (kind, n) {
                (0, 6) => {
                    let entry = blob(d, "entry")?.into();
                    let hash = hash(d, "entry hash")?;
                    let amount_minor = d.uint("entry amount")?;
                    let k = d.array("payee key", 2)?;
                    let payee_key = match k {
                        0 => None,
                        2 => Some((suite_from(d.uint("suite")?)?, blob(d, "payee key")?.into())),
                        _ => return Err(DecodeError::BadLength { field: "payee key" }),
                    };
                    d.leave();
                    LogEntry::Outgoing {
                        entry,
                        hash,
                        amount_minor,
                        payee_key,
                        receipt: read_opt_bytes(d, "receipt")?.map(Blob::from),
                    }
                }
                (1, 3) => LogEntry::Incoming {
                    payment: blob(d, "payment")?.into(),
                    receipt: blob(d, "receipt")?.into(),
                },
                (2, 3) => LogEntry::Load {
                    load_seq: d.uint("load seq")?,
                    amount_minor: d.uint("amount")?,
                },
                _ => return Err(DecodeError::InvalidValue("log entry")),
            };
            d.leave();
            Ok(l)
        })?;
        let evidence = list(&mut d, "evidence", |d| blob(d, "evidence"))?;
        let history = list(&mut d, "history", |d| {
            if d.array("history item", 5)? != 5 {
                return Err(DecodeError::BadLength {
                    field: "history item",
                });
            }
            let kind = match d.uint("history kind")? {
                0 => HistoryKind::Paid,
                1 => HistoryKind::Received,
                2 => HistoryKind::Loaded,
                3 => HistoryKind::Redeemed,
                _ => return Err(DecodeError::InvalidValue("history kind")),
            };
            let amount_minor = d.uint("amount")?;
            let cp = d.bytes("counterparty", 16)?;
            let counterparty = match cp.len() {
                0 => None,
                16 => WalletId::from_slice(cp),
                _ => {
                    return Err(DecodeError::BadLength {
                        field: "counterparty",
                    });
                }
            };
            let h = HistoryItem {
                kind,
                amount_minor,
                counterparty,
                time: UnixSeconds(d.uint("time")?),
                id: hash(d, "id")?,
            };
            d.leave();
            Ok(h)
        })?;
        let lock = {
            let n = d.array("lock", 2)?;
            let l = match n {
                0 => None,
                1 if d.uint("lock kind")? == 0 => Some(LockReason::RolledBack),
                2 if d.uint("lock kind")? == 1 => {
                    Some(LockReason::Issuer(d.text("lock reason", 256)?.to_string()))
                }
                _ => return Err(DecodeError::InvalidValue("lock")),
            };
            d.leave();
            l
        };
        let directory = if format >= STATE_FORMAT_V2 {
            if d.array("directory", 3)? != 3 {
                return Err(DecodeError::BadLength { field: "directory" });
            }
            let version = d.uint("directory version")?;
            let issuer_crl = read_opt_bytes(&mut d, "issuer crl")?.map(Blob::from);
            let n = d.array("directory issuers", DIRECTORY_ISSUERS_MAX)?;
            let mut issuers = Vec::with_capacity(n);
            for _ in 0..n {
                if d.array("directory issuer", 2)? != 2 {
                    return Err(DecodeError::BadLength {
                        field: "directory issuer",
                    });
                }
                issuers.push(DirectoryIssuerState {
                    ca_der: blob(&mut d, "issuer CA")?.into(),
                    crl_der: read_opt_bytes(&mut d, "issuer CA crl")?.map(Blob::from),
                });
                d.leave();
            }
            d.leave();
            d.leave();
            DirectoryState {
                version,
                issuer_crl,
                issuers,
            }
        } else {
            DirectoryState::default()
        };
        let (key, known_peers) = if format >= STATE_FORMAT_V3 {
            let key = read_key_state(&mut d)?;
            let n = d.array("known peers", KNOWN_PEERS_MAX)?;
            let mut peers = Vec::with_capacity(n);
            for _ in 0..n {
                let der: Blob = blob(&mut d, "known peer")?.into();
                peers.push((Hash32::digest(&der), der));
            }
            d.leave();
            (key, peers)
        } else {
            (KeyState::default(), Vec::new())
        };
        let crl_deltas = if format == STATE_FORMAT {
            let n = d.array("crl deltas", offpay_protocol::pki::CRL_DELTAS_HELD_MAX)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(Blob::from(blob(&mut d, "crl delta")?));
            }
            d.leave();
            v
        } else {
            Vec::new()
        };
        d.leave();
        d.finish()?;
        let state = TaState {
            wallet_id,
            suite,
            seed,
            root_der,
            issuer_der,
            cert_der,
            policy,
            crl_der,
            crl_deltas,
            balance_minor,
            seq,
            head,
            load_seq,
            report_seq,
            pending_report,
            checkpoint_number,
            last_sync,
            clock_floor,
            pending_requests,
            paid,
            seen_payers,
            log,
            evidence,
            history,
            lock,
            directory,
            key,
            known_peers,
        };
        state.debug_check_bounds();
        Ok(state)
    }
}

fn read_seed(
    d: &mut Decoder<'_>,
    f: &'static str,
) -> Result<Option<Zeroizing<[u8; 32]>>, DecodeError> {
    let n = d.array(f, 1)?;
    let v = if n == 1 {
        Some(Zeroizing::new(d.fixed::<32>(f)?))
    } else {
        None
    };
    d.leave();
    Ok(v)
}

fn read_key_state(d: &mut Decoder<'_>) -> Result<KeyState, DecodeError> {
    if d.array("key state", 5)? != 5 {
        return Err(DecodeError::BadLength { field: "key state" });
    }
    let generation = u32::try_from(d.uint("key generation")?)
        .map_err(|_| DecodeError::InvalidValue("key generation"))?;
    let device = d.bool("key device")?;
    let since = d.uint("key since")?;
    let seed = read_seed(d, "key seed")?;
    let pending = match d.array("pending key", 2)? {
        0 => None,
        2 => Some(PendingKey {
            suite: suite_from(d.uint("pending key suite")?)?,
            seed: read_seed(d, "pending key seed")?,
        }),
        _ => {
            return Err(DecodeError::BadLength {
                field: "pending key",
            });
        }
    };
    d.leave();
    d.leave();
    if since == 0 || (device && seed.is_some()) || (generation == 0 && seed.is_some()) {
        return Err(DecodeError::InvalidValue("key state"));
    }
    if pending.as_ref().is_some_and(|p| p.seed.is_some() == device) {
        return Err(DecodeError::InvalidValue("pending key"));
    }
    Ok(KeyState {
        generation,
        device,
        since,
        seed,
        pending,
    })
}

#[cfg(test)]
mod wipe_tests {
    use super::*;

    /// The encoded state is one well-formed CBOR value: its array header
    /// counts exactly the fields that follow (it said 26 for 25).
    #[test]
    fn the_state_header_counts_its_fields() {
        let enc = sample([1; 32]).encode();
        assert!(offpay_protocol::cbor::is_one_value(&enc));
        assert_eq!(enc[..2], [0x98, STATE_FIELDS as u8]);
    }

    /// The format-3 encoding of a state without delta CRLs: the format-4
    /// one without its last field (`[]`), 28 fields.
    fn v3_encoding(s: &TaState) -> Vec<u8> {
        assert!(s.crl_deltas.is_empty());
        let mut enc = s.encode().to_vec();
        assert_eq!(enc[..3], [0x98, STATE_FIELDS as u8, STATE_FORMAT as u8]);
        assert_eq!(enc[enc.len() - 1..], [0x80]);
        enc.truncate(enc.len() - 1);
        enc[1] = STATE_FIELDS_V3 as u8;
        enc[2] = STATE_FORMAT_V3 as u8;
        enc
    }

    /// A format-3 state (before delta CRLs) opens with no delta and is
    /// sealed again as format 4; deltas round-trip, bounded.
    #[test]
    fn a_format_3_state_still_decodes_and_deltas_round_trip() {
        let s = sample([3; 32]);
        let enc = v3_encoding(&s);
        let back = TaState::decode(&enc).unwrap();
        assert!(back.crl_deltas.is_empty());
        assert_eq!(&*back.encode(), &*s.encode());
        let mut bad = enc.clone();
        bad[1] = STATE_FIELDS as u8;
        assert!(TaState::decode(&bad).is_err());
        let with = TaState {
            crl_deltas: vec![Blob::from(vec![0x30; 70]), Blob::from(vec![0x31; 90])],
            ..sample([3; 32])
        };
        let back = TaState::decode(&with.encode()).unwrap();
        assert_eq!(back.crl_deltas, with.crl_deltas);
        // One delta over the bound (the TA never seals it: built by hand
        // from the encoding at the bound, 16 strings of 8 bytes): refused.
        let max = offpay_protocol::pki::CRL_DELTAS_HELD_MAX;
        assert_eq!(max, 16);
        let full = TaState {
            crl_deltas: vec![Blob::from(vec![0x30; 8]); max],
            ..sample([3; 32])
        };
        let mut e = full.encode().to_vec();
        assert!(TaState::decode(&e).is_ok());
        let head = e.len() - max * 9 - 1;
        assert_eq!(e[head], 0x90);
        e[head] = 0x91;
        e.extend_from_slice(&[0x48, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30]);
        assert!(TaState::decode(&e).is_err());
    }

    /// The format-2 encoding of a state without a re-key or known peers: the
    /// format-3 one without its last two fields (`[0, false, 1, [], []]`,
    /// `[]`), 26 fields.
    fn v2_encoding(s: &TaState) -> Vec<u8> {
        assert!(s.key.generation == 0 && s.key.pending.is_none() && !s.key.device);
        assert!(s.known_peers.is_empty());
        let mut enc = v3_encoding(s);
        assert_eq!(
            enc[..3],
            [0x98, STATE_FIELDS_V3 as u8, STATE_FORMAT_V3 as u8]
        );
        assert_eq!(
            enc[enc.len() - 7..],
            [0x85, 0x00, 0xF4, 0x01, 0x80, 0x80, 0x80]
        );
        enc.truncate(enc.len() - 7);
        enc[1] = STATE_FIELDS_V2 as u8;
        enc[2] = STATE_FORMAT_V2 as u8;
        enc
    }

    /// The format-1 encoding of a state with an empty directory: the
    /// format-2 one without its last field (`[0, [], []]`), format 1, 25 fields.
    fn v1_encoding(s: &TaState) -> Vec<u8> {
        assert_eq!(s.directory, DirectoryState::default());
        let mut enc = v2_encoding(s);
        assert_eq!(enc[enc.len() - 4..], [0x83, 0x00, 0x80, 0x80]);
        enc.truncate(enc.len() - 4);
        enc[1] = STATE_FIELDS_V1 as u8;
        enc[2] = STATE_FORMAT_V1 as u8;
        enc
    }

    /// A format-2 state (before re-keying) opens with the first key, and is
    /// sealed again as format 3.
    #[test]
    fn a_format_2_state_still_decodes() {
        let s = sample([8; 32]);
        let enc = v2_encoding(&s);
        let back = TaState::decode(&enc).unwrap();
        assert_eq!(back.key.generation, 0);
        assert_eq!(back.key.since, 1);
        assert_eq!(&*back.encode(), &*s.encode());
        let mut bad = enc.clone();
        bad[1] = STATE_FIELDS as u8;
        assert!(TaState::decode(&bad).is_err());
    }

    /// The key state survives sealing; inconsistent ones are refused.
    #[test]
    fn the_key_state_round_trips() {
        let s = TaState {
            key: KeyState {
                generation: 2,
                device: false,
                since: 41,
                seed: Some(Zeroizing::new([9; 32])),
                pending: Some(PendingKey {
                    suite: Suite::MlDsa44,
                    seed: Some(Zeroizing::new([10; 32])),
                }),
            },
            ..sample([5; 32])
        };
        let enc = s.encode();
        let back = TaState::decode(&enc).unwrap();
        assert_eq!(back.key.generation, 2);
        assert_eq!(back.key.since, 41);
        assert_eq!(back.key.seed.as_deref(), Some(&[9; 32]));
        let p = back.key.pending.as_ref().unwrap();
        assert_eq!(
            (p.suite, p.seed.as_deref()),
            (Suite::MlDsa44, Some(&[10; 32]))
        );
        assert_eq!(&*back.encode(), &*enc);
        // A device key with a seed, or a software re-key without one, is refused.
        let device_with_seed = TaState {
            key: KeyState {
                device: true,
                ..s.key.clone()
            },
            ..sample([5; 32])
        };
        assert!(TaState::decode(&device_with_seed.encode()).is_err());
        let pending_without_seed = TaState {
            key: KeyState {
                pending: Some(PendingKey {
                    suite: Suite::Ed25519,
                    seed: None,
                }),
                ..s.key.clone()
            },
            ..sample([5; 32])
        };
        assert!(TaState::decode(&pending_without_seed.encode()).is_err());
    }

    /// A format-1 state (before the directory) still opens, with an empty
    /// directory, and is sealed again as format 3.
    #[test]
    fn a_format_1_state_still_decodes() {
        let s = sample([3; 32]);
        let enc = v1_encoding(&s);
        let back = TaState::decode(&enc).unwrap();
        assert_eq!(back.directory, DirectoryState::default());
        assert_eq!(&*back.encode(), &*s.encode());
        // Format 2 with 25 fields, or format 1 with 27, is refused.
        let mut bad = s.encode().to_vec();
        bad[1] = STATE_FIELDS_V1 as u8;
        assert!(TaState::decode(&bad).is_err());
        let mut bad = enc.clone();
        bad[1] = 27;
        assert!(TaState::decode(&bad).is_err());
        // An unknown format is refused.
        let mut bad = s.encode().to_vec();
        bad[2] = 5;
        assert_eq!(
            TaState::decode(&bad).err(),
            Some(DecodeError::UnknownVersion(5))
        );
    }

    /// A format-1 state sealed with the old header (26) still opens, to the same state.
    #[test]
    fn a_state_with_the_old_header_still_decodes() {
        let s = sample([2; 32]);
        let mut enc = v1_encoding(&s);
        enc[1] = STATE_FIELDS_LEGACY_HEADER as u8;
        let back = TaState::decode(&enc).unwrap();
        assert_eq!(&*back.encode(), &*s.encode());
        enc[1] = 24;
        assert!(TaState::decode(&enc).is_err());
    }

    /// The known peers survive sealing with their references; more than
    /// [`KNOWN_PEERS_MAX`] are refused.
    #[test]
    fn the_known_peers_round_trip_and_are_bounded() {
        let peer = |b: u8| {
            let der: Blob = vec![b; 300].into();
            (Hash32::digest(&der), der)
        };
        let s = TaState {
            known_peers: (0..KNOWN_PEERS_MAX as u8).map(peer).collect(),
            ..sample([6; 32])
        };
        let enc = s.encode();
        let back = TaState::decode(&enc).unwrap();
        assert_eq!(back.known_peers, s.known_peers);
        let mut over = s.clone();
        over.known_peers.push(peer(200));
        // Encoded in release builds only (debug builds assert the bound).
        let mut e = Encoder::new();
        e.array(KNOWN_PEERS_MAX + 1);
        for (_, d) in &over.known_peers {
            e.bytes(d);
        }
        let list = e.finish();
        let mut bad = enc.to_vec();
        let tail: usize = s
            .known_peers
            .iter()
            .map(|(_, d)| d.len() + 3)
            .sum::<usize>()
            + 1;
        // The known peers, then the empty list of delta CRLs (`0x80`).
        assert_eq!(bad.last(), Some(&0x80));
        bad.truncate(bad.len() - tail - 1);
        bad.extend_from_slice(&list);
        bad.push(0x80);
        assert!(matches!(
            TaState::decode(&bad),
            Err(DecodeError::TooLarge {
                field: "known peers",
                ..
            })
        ));
    }

    /// The directory survives sealing byte for byte.
    #[test]
    fn the_directory_round_trips() {
        let s = TaState {
            directory: DirectoryState {
                version: 9,
                issuer_crl: Some(Blob::from(vec![4u8; 40])),
                issuers: vec![
                    DirectoryIssuerState {
                        ca_der: Blob::from(vec![5u8; 300]),
                        crl_der: None,
                    },
                    DirectoryIssuerState {
                        ca_der: Blob::from(vec![6u8; 310]),
                        crl_der: Some(Blob::from(vec![7u8; 90])),
                    },
                ],
            },
            ..sample([4; 32])
        };
        let enc = s.encode();
        let back = TaState::decode(&enc).unwrap();
        assert_eq!(back.directory, s.directory);
        assert_eq!(&*back.encode(), &*enc);
    }

    fn sample(seed: [u8; 32]) -> TaState {
        TaState {
            wallet_id: WalletId([0xFF; 16]),
            suite: Suite::P256,
            seed: Zeroizing::new(seed),
            root_der: vec![1; 400],
            issuer_der: None,
            cert_der: None,
            policy: None,
            crl_der: None,
            crl_deltas: Vec::new(),
            balance_minor: 7,
            seq: 3,
            head: Hash32([7; 32]),
            load_seq: 2,
            report_seq: 1,
            pending_report: None,
            checkpoint_number: 1,
            last_sync: UnixSeconds(5),
            clock_floor: UnixSeconds(6),
            pending_requests: Vec::new(),
            paid: Vec::new(),
            seen_payers: Vec::new(),
            log: Vec::new(),
            evidence: Vec::new(),
            history: Vec::new(),
            lock: None,
            directory: DirectoryState::default(),
            key: KeyState::default(),
            known_peers: Vec::new(),
        }
    }

    #[test]
    fn the_seed_lies_in_the_volatile_wiped_prefix() {
        let seed = [0xA5u8; 32];
        // Every counter at its widest: the seed must still lie in the prefix.
        let s = TaState {
            balance_minor: u64::MAX,
            seq: u64::MAX,
            load_seq: u64::MAX,
            report_seq: u64::MAX,
            checkpoint_number: u64::MAX,
            last_sync: UnixSeconds(u64::MAX),
            clock_floor: UnixSeconds(u64::MAX),
            ..sample(seed)
        };
        let enc = s.encode();
        let at = enc
            .windows(32)
            .position(|w| w == seed)
            .expect("the seed is encoded");
        assert!(at + 32 <= SECRET_PREFIX_BYTES, "seed at {at}");
    }
}
