//! The bodies of the privacy routes: the retention pass
//! (`POST /v1/admin/retention/run`) and the data-subject export of a wallet
//! (`GET /v1/admin/wallets/{id}/export`).
//!
//! Wallet ids travel as 32 lower-case hex characters, entry hashes as 64;
//! signed messages and certificates as standard base64.

use serde::{Deserialize, Serialize};

/// `POST /v1/admin/retention/run`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RetentionRunRequest {
    /// Prune at most this many payments (default and cap: 1,000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// What one retention batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RetentionReportView {
    /// Whether a retention window is set (false: nothing is ever pruned).
    pub enabled: bool,
    /// The window in seconds, when set.
    pub retention_seconds: Option<u64>,
    /// Payments whose payer-payee pairing was deleted.
    pub pruned: u32,
    /// Postings folded into summaries.
    pub postings_folded: u32,
    /// Summary postings written (one per account of the batch).
    pub summaries: u32,
    /// Due payments kept because an open case holds them.
    pub held_by_cases: u32,
    /// More payments are due than `limit` allowed: call again.
    pub more: bool,
}

/// A certificate issued to the wallet.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ExportCertificate {
    /// Serial, decimal.
    pub serial: String,
    /// DER, base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub der: String,
}

/// A load voucher of the wallet (funding: tied to identity).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ExportVoucher {
    /// Its load seq.
    pub load_seq: u64,
    /// Minor units.
    pub amount_minor: i64,
    /// The signed LoadVoucher, base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub voucher: String,
}

/// A checkpoint the issuer gave the wallet.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ExportCheckpoint {
    /// Its number.
    pub number: u64,
    /// Chain seq.
    pub seq: u64,
    /// Chain head, hex.
    pub head: String,
    /// Balance, minor units.
    pub balance_minor: i64,
    /// Load seq.
    pub load_seq: u64,
    /// Issuer time of the checkpoint.
    pub issued_at: u64,
}

/// One outgoing chain entry of the wallet.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ExportEntry {
    /// Its seq.
    pub seq: u64,
    /// Entry hash (payment id), hex.
    pub hash: String,
    /// Previous entry hash, hex.
    pub prev: String,
    /// `payment` or `redeem`.
    pub kind: String,
    /// Pruned by the retention rule: payee, amount, time and entry are gone.
    pub pruned: bool,
    /// The payee, hex (payments not pruned).
    pub payee: Option<String>,
    /// Minor units (0 once pruned).
    pub amount_minor: i64,
    /// Payer TA time (0 once pruned).
    pub signed_at: u64,
    /// The signed entry, base64 (none once pruned).
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub entry: Option<String>,
}

/// A settlement the wallet is the payer or the payee of.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ExportSettlement {
    /// The payer, hex.
    pub payer: String,
    /// The entry hash, hex.
    pub hash: String,
    /// The payee, hex (none for a redeem or once pruned).
    pub payee: Option<String>,
    /// Minor units (0 once pruned).
    pub amount_minor: i64,
    /// When it settled (0 once pruned).
    pub settled_at: u64,
    /// `pending`, `delivered` or `returned`.
    pub delivery: String,
    /// Pruned by the retention rule.
    pub pruned: bool,
}

/// A posting of the wallet's sub-account or its customer's online account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ExportPosting {
    /// `gl` or `offline`.
    pub book: String,
    /// Account debited.
    pub debit: String,
    /// Account credited.
    pub credit: String,
    /// Minor units.
    pub amount_minor: i64,
    /// What caused it.
    pub kind: String,
    /// The cause's id.
    pub reference: String,
    /// When it was posted.
    pub posted_at: u64,
}

/// A double spend of the wallet.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ExportDoubleSpend {
    /// The seq.
    pub seq: u64,
    /// The two entry hashes, hex.
    pub entries: Vec<String>,
    /// The proof (a DoubleSpendProof or a RetainedDoubleSpendProof), base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub proof: String,
    /// When it was detected.
    pub detected: u64,
}

/// A revocation of one of the wallet's certificates.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ExportRevocation {
    /// Certificate serial, decimal.
    pub serial: String,
    /// Why.
    pub reason: String,
    /// When.
    pub revoked_at: u64,
}

/// `GET /v1/admin/wallets/{id}/export`: everything the issuer still holds
/// about a wallet and its customer (data-subject access). What the retention
/// rule pruned is gone and not in it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct WalletExportView {
    /// The wallet, hex.
    pub wallet_id: String,
    /// Its customer.
    pub customer: String,
    /// The issuer's currency (every `*_minor` amount).
    pub currency: String,
    /// The customer's display name.
    pub customer_name: Option<String>,
    /// Lifecycle state.
    pub state: String,
    /// Why locked or revoked.
    pub reason: Option<String>,
    /// When it was enrolled.
    pub created: u64,
    /// Certificates issued to it.
    pub certificates: Vec<ExportCertificate>,
    /// Its loads.
    pub vouchers: Vec<ExportVoucher>,
    /// Its checkpoints.
    pub checkpoints: Vec<ExportCheckpoint>,
    /// Its outgoing entries.
    pub entries: Vec<ExportEntry>,
    /// Settlements naming it.
    pub settlements: Vec<ExportSettlement>,
    /// Postings of its sub-account.
    pub wallet_postings: Vec<ExportPosting>,
    /// Postings of its customer's online account.
    pub customer_postings: Vec<ExportPosting>,
    /// Its double spends.
    pub double_spends: Vec<ExportDoubleSpend>,
    /// Revocations of its certificates.
    pub revocations: Vec<ExportRevocation>,
    /// A list was cut at 10,000 rows.
    pub truncated: bool,
}

#[cfg(feature = "server")]
mod from_issuer {
    use offpay_issuer::export::WalletExport;
    use offpay_issuer::store::StoredPosting;

    use super::*;
    use crate::b64;

    impl RetentionReportView {
        /// From the issuer's report and the window in force.
        pub fn new(
            r: &offpay_issuer::RetentionReport,
            retention_seconds: Option<u64>,
        ) -> RetentionReportView {
            RetentionReportView {
                enabled: r.enabled || retention_seconds.is_some(),
                retention_seconds,
                pruned: r.pruned,
                postings_folded: r.postings_folded,
                summaries: r.summaries,
                held_by_cases: r.held_by_cases,
                more: r.more,
            }
        }
    }

    fn posting(p: &StoredPosting) -> ExportPosting {
        ExportPosting {
            book: p.book.as_str().to_string(),
            debit: p.debit.clone(),
            credit: p.credit.clone(),
            amount_minor: p.amount,
            kind: p.kind.clone(),
            reference: p.reference.clone(),
            posted_at: p.time.0,
        }
    }

    fn delivery(d: offpay_issuer::store::Delivery) -> String {
        use offpay_issuer::store::Delivery;
        match d {
            Delivery::Pending => "pending",
            Delivery::Delivered => "delivered",
            Delivery::Returned => "returned",
        }
        .to_string()
    }

    fn entries(x: &WalletExport) -> Vec<ExportEntry> {
        x.entries
            .iter()
            .map(|e| ExportEntry {
                seq: e.seq,
                hash: e.hash.to_hex(),
                prev: e.prev.to_hex(),
                kind: e.kind.to_string(),
                pruned: e.is_pruned(),
                payee: e.payee.map(|p| p.to_hex()),
                amount_minor: e.amount,
                signed_at: e.time.0,
                entry: (!e.is_pruned()).then(|| b64(&e.bytes)),
            })
            .collect()
    }

    fn settlements(x: &WalletExport) -> Vec<ExportSettlement> {
        x.settlements
            .iter()
            .map(|s| ExportSettlement {
                payer: s.payer.to_hex(),
                hash: s.hash.to_hex(),
                payee: s.payee.map(|p| p.to_hex()),
                amount_minor: s.amount,
                settled_at: s.time.0,
                delivery: delivery(s.delivery),
                pruned: s.pruned,
            })
            .collect()
    }

    impl WalletExportView {
        /// From the issuer's export, amounts in `currency`.
        pub fn new(x: &WalletExport, currency: &str) -> WalletExportView {
            let w = &x.wallet;
            WalletExportView {
                wallet_id: w.id.to_hex(),
                customer: w.customer.clone(),
                currency: currency.to_string(),
                customer_name: x.customer_name.clone(),
                state: w.state.as_str().to_string(),
                reason: w.reason.clone(),
                created: w.created.0,
                certificates: x
                    .certificates
                    .iter()
                    .map(|(serial, der)| ExportCertificate {
                        serial: serial.to_string(),
                        der: b64(der),
                    })
                    .collect(),
                vouchers: x
                    .vouchers
                    .iter()
                    .map(|(load_seq, amount, bytes)| ExportVoucher {
                        load_seq: *load_seq,
                        amount_minor: *amount,
                        voucher: b64(bytes),
                    })
                    .collect(),
                checkpoints: x
                    .checkpoints
                    .iter()
                    .map(|c| ExportCheckpoint {
                        number: c.number,
                        seq: c.seq,
                        head: c.head.to_hex(),
                        balance_minor: c.balance,
                        load_seq: c.load_seq,
                        issued_at: c.time.0,
                    })
                    .collect(),
                entries: entries(x),
                settlements: settlements(x),
                wallet_postings: x.wallet_postings.iter().map(posting).collect(),
                customer_postings: x.customer_postings.iter().map(posting).collect(),
                double_spends: x
                    .double_spends
                    .iter()
                    .map(|d| ExportDoubleSpend {
                        seq: d.seq,
                        entries: d.entries.iter().map(|h| h.to_hex()).collect(),
                        proof: b64(&d.proof),
                        detected: d.detected.0,
                    })
                    .collect(),
                revocations: x
                    .revocations
                    .iter()
                    .map(|r| ExportRevocation {
                        serial: r.serial.to_string(),
                        reason: r.reason.clone(),
                        revoked_at: r.time.0,
                    })
                    .collect(),
                truncated: x.truncated,
            }
        }
    }
}
