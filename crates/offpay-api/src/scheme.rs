//! The bodies of the scheme server's API (`/v1/scheme/...`) and of a member
//! issuer's link to it (`/v1/admin/scheme...`).
//!
//! Issuer ids travel as 32 lower-case hex characters, claim ids (entry
//! hashes) as 64; payments, certificates, CRLs and signed statements as
//! standard base64; 128-bit nets as decimal strings.

use serde::{Deserialize, Serialize};

/// `POST /v1/scheme/issuers`: admit an issuer from its CA CSR.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AdmitRequest {
    /// The issuer code, `[a-z0-9-]{1,32}` (the CA certificate's commonName).
    #[cfg_attr(feature = "server", schema(example = "bank-a"))]
    pub code: String,
    /// The issuer's CA CSR (PKCS#10, DER), standard base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub csr: String,
}

/// The answer to an admission: what the issuer needs to join (`offpay admin scheme join`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AdmissionResponse {
    /// The issuer id, 32 hex characters.
    pub issuer: String,
    /// The issuer code.
    pub code: String,
    /// The issuer CA certificate signed by the scheme root, DER, base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub ca_cert: String,
    /// The scheme root certificate, DER, base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub root_cert: String,
    /// The issuer's bearer token for the issuer routes: shown once (stored hashed).
    pub token: String,
}

/// An admitted issuer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct IssuerView {
    /// The issuer id, hex.
    pub issuer: String,
    /// The issuer code.
    pub code: String,
    /// `active`, `suspended` or `revoked`.
    pub status: String,
    /// The directory version of its last change.
    pub changed: u64,
}

/// `GET /v1/scheme/issuers`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct IssuerList {
    /// Every admitted issuer, by code.
    pub issuers: Vec<IssuerView>,
}

/// The answer to suspend, reinstate, revoke and a CRL upload.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct DirectoryChange {
    /// The issuer concerned, hex.
    pub issuer: String,
    /// The directory version after the change.
    pub directory_version: u64,
}

/// One issuer's net position (positive: it is owed; negative: it owes).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NetPosition {
    /// The issuer, hex.
    pub issuer: String,
    /// Net, minor units, decimal string (128-bit).
    pub net_minor: String,
}

/// `POST /v1/scheme/cycles`: a closed settlement cycle.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CycleView {
    /// The cycle number (0 when nothing was left to net: no cycle was made).
    pub cycle: u64,
    /// Claims netted in it.
    pub claims: u64,
    /// Net position of every issuer in it (they sum to zero).
    pub positions: Vec<NetPosition>,
}

/// `GET /v1/scheme/claims` parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "server", into_params(parameter_in = Query))]
pub struct SchemeClaimsQuery {
    /// Only claims this issuer (hex) is party to.
    pub issuer: Option<String>,
    /// Only disputed claims (refused by a party on ack).
    pub disputed: Option<bool>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A claim as the scheme holds it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SchemeClaimView {
    /// The claim id (the payment's entry hash), hex.
    pub id: String,
    /// The payer's issuer (the debtor), hex.
    pub payer_issuer: String,
    /// The payee's issuer (the creditor), hex.
    pub payee_issuer: String,
    /// Amount, minor units.
    pub amount_minor: u64,
    /// Where it is: `one_side`, `both_sides`, `disputed`, `netted`.
    pub state: String,
    /// The cycle it was netted in.
    pub cycle: Option<u64>,
    /// When the scheme first received it (Unix seconds).
    pub created: u64,
    /// Why a party refused it, if one did.
    pub dispute: Option<String>,
}

/// `GET /v1/scheme/claims`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SchemeClaimList {
    /// Newest first.
    pub claims: Vec<SchemeClaimView>,
}

/// `GET /v1/scheme/invariants`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SchemeInvariantView {
    /// True when every invariant holds.
    pub ok: bool,
    /// What is violated, in words.
    pub violations: Vec<String>,
}

/// `POST /v1/scheme/claims`: payments (signed chain entries) the issuer claims on.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SubmitClaimsRequest {
    /// Signed Payment entries (CBOR), standard base64; at most [`CLAIMS_PER_REQUEST_MAX`].
    pub entries: Vec<String>,
}

/// Most claims in one submit, inbox page or ack.
pub const CLAIMS_PER_REQUEST_MAX: usize = 256;

/// A claim's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ClaimOutcome {
    /// The claim id, hex (64 characters).
    pub id: String,
    /// `accepted`, `already_known` or `refused`.
    pub result: String,
    /// The refusal's stable code (`not_a_party`, `not_cross_issuer`,
    /// `bad_signature`, `unknown_issuer`, `malformed_entry`, `currency`,
    /// `unknown_payee`, ...).
    pub code: Option<String>,
}

/// The answer to `POST /v1/scheme/claims`: one outcome per entry, in order.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ClaimOutcomes {
    /// In the order of the request.
    pub results: Vec<ClaimOutcome>,
}

/// `GET /v1/scheme/inbox` parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "server", into_params(parameter_in = Query))]
pub struct InboxQuery {
    /// At most this many (default and maximum [`CLAIMS_PER_REQUEST_MAX`]).
    pub limit: Option<u32>,
}

/// A claim the other party submitted, for this issuer to apply and ack.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct InboxClaim {
    /// The claim id, hex.
    pub id: String,
    /// The signed Payment entry (CBOR), base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub entry: String,
}

/// `GET /v1/scheme/inbox`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Inbox {
    /// Oldest first.
    pub claims: Vec<InboxClaim>,
}

/// `POST /v1/scheme/inbox/ack`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AckRequest {
    /// What this issuer did with each inbox claim.
    pub acks: Vec<ClaimOutcome>,
}

/// The answer to an ack.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AckResponse {
    /// Acks recorded.
    pub acked: u64,
}

/// `GET /v1/scheme/statements` parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "server", into_params(parameter_in = Query))]
pub struct StatementsQuery {
    /// Only cycles after this one (default 0: all).
    pub after: Option<u64>,
}

/// A root-signed settlement statement.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct StatementView {
    /// Its cycle.
    pub cycle: u64,
    /// The signed SettlementStatement (CBOR), base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub statement: String,
}

/// `GET /v1/scheme/statements`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct StatementList {
    /// Oldest cycle first.
    pub statements: Vec<StatementView>,
}

/// `GET /v1/scheme/cycles/{n}/claims`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CycleClaims {
    /// The cycle.
    pub cycle: u64,
    /// The authenticated issuer's claim ids in it, hex.
    pub claims: Vec<String>,
}

/// `GET /v1/roots` of the scheme server.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SchemeRoots {
    /// The scheme root certificate, PEM.
    pub root_pem: String,
    /// The scheme's currency.
    pub currency: String,
}

/// A member issuer's position with one other issuer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PeerPositionView {
    /// The other issuer, hex.
    pub peer: String,
    /// Open (not yet in a posted cycle) receivable claims, minor units.
    pub open_receivable_minor: i64,
    /// Open payable claims, minor units.
    pub open_payable_minor: i64,
    /// The `issuer:<hex>` account balance (positive: we owe it).
    pub account_minor: i64,
    /// The oldest open claim (Unix seconds).
    pub oldest_open: Option<u64>,
}

/// What one round of the scheme link did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SchemeRound {
    /// Whether our CRL was pushed (it had changed).
    pub crl_pushed: bool,
    /// The directory version installed after the round.
    pub directory_version: u64,
    /// Claims submitted.
    pub submitted: u64,
    /// Of those, refused by the scheme.
    pub refused: u64,
    /// Inbox claims applied and acked.
    pub inbox: u64,
    /// Statements applied.
    pub statements: u64,
    /// Whether work is left (a batch was full): run another round.
    pub more: bool,
}

/// `GET /v1/admin/scheme`: a member issuer's link to its scheme.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SchemeStatus {
    /// Whether this issuer is a member of a scheme.
    pub member: bool,
    /// Our issuer id, hex.
    pub issuer: String,
    /// The scheme URL configured (`scheme.url`), if any.
    pub scheme_url: Option<String>,
    /// The directory version installed.
    pub directory_version: u64,
    /// The last settlement cycle posted.
    pub last_statement_cycle: u64,
    /// Claims not yet held by the scheme (outbox).
    pub outbox: u64,
    /// Rounds run since the start.
    pub rounds: u64,
    /// When the last round ended well (Unix seconds).
    pub last_success: Option<u64>,
    /// The last round's error, if it failed.
    pub last_error: Option<String>,
    /// Positions per other issuer.
    pub positions: Vec<PeerPositionView>,
}

/// Parse an issuer id as sent (32 lower- or upper-case hex characters).
pub fn issuer_id_from_hex(s: &str) -> Option<[u8; 16]> {
    let v = hex_bytes(s)?;
    v.try_into().ok()
}

/// Parse a claim id as sent (64 hex characters).
pub fn claim_id_from_hex(s: &str) -> Option<[u8; 32]> {
    let v = hex_bytes(s)?;
    v.try_into().ok()
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_bad_lengths() {
        let id = [0xab; 16];
        assert_eq!(issuer_id_from_hex(&hex(&id)), Some(id));
        assert_eq!(issuer_id_from_hex("ab"), None);
        assert_eq!(issuer_id_from_hex(&"zz".repeat(16)), None);
        assert_eq!(claim_id_from_hex(&hex(&[1; 32])), Some([1; 32]));
        assert_eq!(claim_id_from_hex(&hex(&[1; 16])), None);
        assert_eq!(claim_id_from_hex("é"), None);
    }

    #[test]
    fn a_missing_field_is_an_error_not_a_default() {
        assert!(serde_json::from_str::<AdmitRequest>(r#"{"code":"bank-a"}"#).is_err());
        let r: SubmitClaimsRequest = serde_json::from_str(r#"{"entries":["AA=="]}"#).unwrap();
        assert_eq!(r.entries.len(), 1);
    }
}
