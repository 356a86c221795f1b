//! [`SyncClient`]: the optional built-in HTTP client for apps that let the
//! SDK talk to the issuer (others move the report and response bytes
//! themselves).

use std::sync::Arc;

use offpay_client::api::{EnrollRequest, b64, b64_decode};
use offpay_client::{Client, Error as ClientError};

use crate::types::{Money, RedeemOutcome, SyncOutcome};
use crate::{OffpayError, OffpayWallet, guarded};

impl From<ClientError> for OffpayError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Url { .. } => OffpayError::invalid(e.to_string()),
            ClientError::Unreachable { .. }
            | ClientError::Timeout { .. }
            | ClientError::Io { .. } => OffpayError::Network {
                reason: e.to_string(),
            },
            ClientError::Http {
                status,
                code,
                message,
            } => OffpayError::Server {
                status,
                code,
                reason: message,
            },
            ClientError::Malformed { .. } => OffpayError::BadResponse {
                reason: e.to_string(),
            },
        }
    }
}

/// A base64 field of an enrollment answer, decoded.
fn field(name: &str, value: &str) -> Result<Vec<u8>, OffpayError> {
    b64_decode(value).map_err(|_| OffpayError::BadResponse {
        reason: format!("the enrollment's {name} is not base64"),
    })
}

/// The issuer's HTTP API (`http://host:port`; put a TLS proxy in front of a
/// remote server), for enrollment, sync and redeem. One keep-alive
/// connection; safe to share between threads (requests are serialized).
/// The wallet is not held while a request is on the network: other calls on
/// it go on meanwhile.
#[derive(uniffi::Object)]
pub struct SyncClient {
    client: Client,
}

impl core::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SyncClient")
            .field("url", &self.client.url())
            .finish()
    }
}

#[uniffi::export]
impl SyncClient {
    /// A client for the issuer at `server_url` (`http://HOST[:PORT][/PREFIX]`).
    #[uniffi::constructor]
    pub fn new(server_url: String) -> Result<Arc<Self>, OffpayError> {
        guarded(move || {
            Ok(Arc::new(SyncClient {
                client: Client::new(&server_url)?,
            }))
        })
    }

    /// Enroll a new wallet with the one-time `enrollment_token` the issuer
    /// gave its customer: the wallet's CSR to `POST /v1/enroll`, the answer
    /// (certificate, issuer CA, policy, CRL) installed in the wallet. The
    /// server's scheme root must be the root the wallet was created with.
    pub fn enroll(
        &self,
        wallet: Arc<OffpayWallet>,
        enrollment_token: String,
    ) -> Result<(), OffpayError> {
        guarded(move || {
            let csr = wallet.csr()?;
            let answer = self.client.enroll(&EnrollRequest {
                token: enrollment_token,
                csr: b64(&csr),
            })?;
            if field("root_certificate", &answer.root_certificate)? != wallet.root_der()? {
                return Err(OffpayError::BadResponse {
                    reason: "the server's scheme root is not the root this wallet trusts".into(),
                });
            }
            if answer.wallet_id != wallet.wallet_id()? {
                return Err(OffpayError::BadResponse {
                    reason: format!(
                        "the server enrolled wallet {:?}, not this one",
                        answer.wallet_id.chars().take(64).collect::<String>()
                    ),
                });
            }
            wallet.enroll(
                field("issuer_certificate", &answer.issuer_certificate)?,
                field("certificate", &answer.certificate)?,
                field("policy", &answer.policy)?,
                Some(field("crl", &answer.crl)?),
            )
        })
    }

    /// Sync: the wallet's report to `POST /v1/sync`, the issuer's answer
    /// applied (checkpoint, vouchers, CRL, renewed certificate or policy,
    /// lock or unlock). A failed sync changes nothing that matters: sync again.
    pub fn sync(&self, wallet: Arc<OffpayWallet>) -> Result<SyncOutcome, OffpayError> {
        guarded(move || {
            let report = wallet.sync_report()?;
            let response = self.client.sync(&report)?;
            wallet.apply_sync_response(response)
        })
    }

    /// Redeem `amount_minor` to the customer's online account: the wallet
    /// debits durably, then the server settles it. When the server cannot be
    /// reached the outcome says `settled: false` and the redeem settles at
    /// the next sync; when the server refuses it, this throws
    /// [`OffpayError::Server`] and the entry (already debited) is still
    /// reported at the next sync.
    pub fn redeem(
        &self,
        wallet: Arc<OffpayWallet>,
        amount_minor: u64,
    ) -> Result<RedeemOutcome, OffpayError> {
        guarded(move || {
            let entry = wallet.redeem(amount_minor)?;
            let balance = wallet.balance()?.ok_or(OffpayError::NotEnrolled)?;
            let amount = Money {
                minor: amount_minor,
                currency: balance.currency.clone(),
            };
            match self.client.redeem(&entry) {
                Ok(answer) => Ok(RedeemOutcome {
                    amount,
                    balance,
                    settled: true,
                    customer_balance_minor: Some(answer.customer_balance_minor),
                    reason: None,
                }),
                Err(
                    e @ (ClientError::Unreachable { .. }
                    | ClientError::Timeout { .. }
                    | ClientError::Io { .. }),
                ) => Ok(RedeemOutcome {
                    amount,
                    balance,
                    settled: false,
                    customer_balance_minor: None,
                    reason: Some(e.to_string()),
                }),
                Err(e) => Err(e.into()),
            }
        })
    }
}
