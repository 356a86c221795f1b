//! The scheme server's endpoints (`/v1/scheme/...`) and a member issuer's
//! link endpoints (`/v1/admin/scheme...`). Operator routes take the scheme
//! operator token, issuer routes the issuer's own token (from the admission):
//! set it with [`Client::with_token`].

use offpay_api::{
    AckRequest, AckResponse, AdmissionResponse, AdmitRequest, ClaimOutcome, ClaimOutcomes,
    CycleClaims, CycleView, DirectoryChange, Inbox, InboxQuery, IssuerList, SchemeClaimList,
    SchemeClaimsQuery, SchemeInvariantView, SchemeRoots, SchemeRound, SchemeStatus, StatementList,
    StatementsQuery, SubmitClaimsRequest, b64,
};

use crate::{CBOR, Client, Error, query, segment};

/// `Content-Type` of a DER CRL.
pub const PKIX_CRL: &str = "application/pkix-crl";

impl Client {
    // ---- scheme operator -----------------------------------------------------------------

    /// `POST /v1/scheme/issuers`: admit an issuer from its CA CSR (DER).
    pub fn scheme_admit(&self, code: &str, csr_der: &[u8]) -> Result<AdmissionResponse, Error> {
        let req = AdmitRequest {
            code: code.to_string(),
            csr: b64(csr_der),
        };
        self.post_typed("the admission", "/v1/scheme/issuers", &req)
    }

    /// `GET /v1/scheme/issuers`.
    pub fn scheme_issuers(&self) -> Result<IssuerList, Error> {
        self.get_typed("the issuer list", "/v1/scheme/issuers")
    }

    /// `POST /v1/scheme/issuers/{code}/{action}` with `action` one of
    /// `suspend`, `reinstate`, `revoke`.
    pub fn scheme_issuer_action(&self, code: &str, action: &str) -> Result<DirectoryChange, Error> {
        self.post_empty_typed(
            &format!("the {action}"),
            &format!("/v1/scheme/issuers/{}/{}", segment(code), segment(action)),
        )
    }

    /// `POST /v1/scheme/cycles`: close a settlement cycle.
    pub fn scheme_close_cycle(&self) -> Result<CycleView, Error> {
        self.post_empty_typed("the cycle close", "/v1/scheme/cycles")
    }

    /// `GET /v1/scheme/claims`.
    pub fn scheme_claims(&self, q: &SchemeClaimsQuery) -> Result<SchemeClaimList, Error> {
        let qs = query(&[
            ("issuer", q.issuer.clone()),
            ("disputed", q.disputed.map(|d| d.to_string())),
            ("limit", q.limit.map(|l| l.to_string())),
        ]);
        self.get_typed("the claims", &format!("/v1/scheme/claims{qs}"))
    }

    /// `GET /v1/scheme/invariants`.
    pub fn scheme_invariants(&self) -> Result<SchemeInvariantView, Error> {
        self.get_typed("the scheme invariants", "/v1/scheme/invariants")
    }

    // ---- public --------------------------------------------------------------------------

    /// `GET /v1/scheme/directory`: the root-signed Directory (CBOR).
    pub fn scheme_directory(&self) -> Result<Vec<u8>, Error> {
        let r = self.get_ok("the directory", "/v1/scheme/directory")?;
        if r.content_type.as_deref() != Some(CBOR) {
            return Err(Error::Malformed {
                url: self.url(),
                what: format!(
                    "the directory is {}, not {CBOR}",
                    r.content_type.as_deref().unwrap_or("untyped")
                ),
            });
        }
        Ok(r.body)
    }

    /// `GET /v1/roots` of a scheme server.
    pub fn scheme_roots(&self) -> Result<SchemeRoots, Error> {
        self.get_typed("the scheme root (GET /v1/roots)", "/v1/roots")
    }

    // ---- issuer (its own token) ----------------------------------------------------------

    /// `POST /v1/scheme/claims`: signed Payment entries; one outcome each, in order.
    pub fn scheme_submit(&self, entries: &[Vec<u8>]) -> Result<ClaimOutcomes, Error> {
        let req = SubmitClaimsRequest {
            entries: entries.iter().map(|e| b64(e)).collect(),
        };
        let out: ClaimOutcomes = self.post_typed("the claims", "/v1/scheme/claims", &req)?;
        if out.results.len() != entries.len() {
            return Err(Error::Malformed {
                url: self.url(),
                what: format!("{} results for {} claims", out.results.len(), entries.len()),
            });
        }
        Ok(out)
    }

    /// `GET /v1/scheme/inbox?limit=`.
    pub fn scheme_inbox(&self, q: &InboxQuery) -> Result<Inbox, Error> {
        let qs = query(&[("limit", q.limit.map(|l| l.to_string()))]);
        self.get_typed("the inbox", &format!("/v1/scheme/inbox{qs}"))
    }

    /// `POST /v1/scheme/inbox/ack`.
    pub fn scheme_ack(&self, acks: &[ClaimOutcome]) -> Result<AckResponse, Error> {
        let req = AckRequest {
            acks: acks.to_vec(),
        };
        self.post_typed("the acks", "/v1/scheme/inbox/ack", &req)
    }

    /// `PUT /v1/scheme/crl`: our CRL (DER).
    pub fn scheme_put_crl(&self, crl_der: &[u8]) -> Result<DirectoryChange, Error> {
        let url = self.url();
        self.request(
            "the CRL upload",
            "PUT",
            "/v1/scheme/crl",
            Some(PKIX_CRL),
            crl_der,
        )?
        .ok()?
        .decode(&url)
    }

    /// `GET /v1/scheme/statements?after=`.
    pub fn scheme_statements(&self, q: &StatementsQuery) -> Result<StatementList, Error> {
        let qs = query(&[("after", q.after.map(|a| a.to_string()))]);
        self.get_typed("the statements", &format!("/v1/scheme/statements{qs}"))
    }

    /// `GET /v1/scheme/cycles/{n}/claims`: our claim ids in cycle `n`.
    pub fn scheme_cycle_claims(&self, cycle: u64) -> Result<CycleClaims, Error> {
        self.get_typed(
            "the cycle's claims",
            &format!("/v1/scheme/cycles/{cycle}/claims"),
        )
    }

    // ---- a member issuer's operator ------------------------------------------------------

    /// `GET /v1/admin/scheme`: the member issuer's link status.
    pub fn admin_scheme_status(&self) -> Result<SchemeStatus, Error> {
        self.get_typed("the scheme link status", "/v1/admin/scheme")
    }

    /// `POST /v1/admin/scheme/sync`: one round of the link now.
    pub fn admin_scheme_sync(&self) -> Result<SchemeRound, Error> {
        self.post_empty_typed("the scheme sync", "/v1/admin/scheme/sync")
    }
}
