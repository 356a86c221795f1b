-- offpay scheme operator schema, SQLite. Every table is prefixed `scheme_`
-- so that a scheme can share a database with an issuer (demo, tests) without
-- a name clash; the scheme's migrations are numbered from 101 in the shared
-- `schema_migrations` table.
CREATE TABLE scheme_settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
-- Admitted issuers. `changed` = the directory version of the last change of
-- this entry (admission, status, CRL). The token is stored as SHA-256 only.
CREATE TABLE scheme_issuers (
    id BLOB PRIMARY KEY CHECK (length(id) = 16),
    code TEXT NOT NULL UNIQUE,
    ca_cert BLOB NOT NULL,
    serial INTEGER NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    status_time INTEGER NOT NULL,
    changed INTEGER NOT NULL,
    token_hash BLOB NOT NULL CHECK (length(token_hash) = 32),
    crl BLOB,
    crl_number INTEGER NOT NULL,
    admitted INTEGER NOT NULL
);
-- Every directory version ever published, root-signed.
CREATE TABLE scheme_directory (
    version INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    signed BLOB NOT NULL
);
-- Claims: one row per payment entry (id = entry hash), with each party's side:
-- 'none' (not yet held), 'submitted', 'acked' (held), 'refused' (the party
-- refused it on ack: the claim is disputed, never netted).
CREATE TABLE scheme_claims (
    id BLOB PRIMARY KEY CHECK (length(id) = 32),
    payer_issuer BLOB NOT NULL,
    payee_issuer BLOB NOT NULL,
    payer BLOB NOT NULL,
    seq INTEGER NOT NULL,
    payee BLOB NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    time INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    payer_side TEXT NOT NULL CHECK (payer_side IN ('none', 'submitted', 'acked', 'refused')),
    payee_side TEXT NOT NULL CHECK (payee_side IN ('none', 'submitted', 'acked', 'refused')),
    payer_refusal TEXT,
    payee_refusal TEXT,
    cycle INTEGER,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    CHECK (payer_issuer <> payee_issuer)
);
CREATE INDEX scheme_claims_payer_issuer ON scheme_claims (payer_issuer, payer_side, created);
CREATE INDEX scheme_claims_payee_issuer ON scheme_claims (payee_issuer, payee_side, created);
CREATE INDEX scheme_claims_cycle ON scheme_claims (cycle);
CREATE INDEX scheme_claims_entry ON scheme_claims (payer, seq);
-- Every refused submission: who sent it, what it was, why. Nothing else changes.
CREATE TABLE scheme_claim_refusals (
    id TEXT PRIMARY KEY,
    submitter BLOB NOT NULL,
    claim BLOB,
    bytes_hash BLOB NOT NULL,
    bytes_len INTEGER NOT NULL,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    time INTEGER NOT NULL
);
CREATE INDEX scheme_claim_refusals_submitter ON scheme_claim_refusals (submitter, time);
CREATE TABLE scheme_cycles (
    cycle INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    claims INTEGER NOT NULL,
    gross INTEGER NOT NULL
);
-- One statement per issuer with claims in the cycle, root-signed; `net` =
-- receivable - payable (positive: the scheme pays the issuer).
CREATE TABLE scheme_statements (
    cycle INTEGER NOT NULL REFERENCES scheme_cycles (cycle),
    issuer BLOB NOT NULL,
    net INTEGER NOT NULL,
    signed BLOB NOT NULL,
    PRIMARY KEY (cycle, issuer)
);
CREATE TABLE scheme_statement_lines (
    cycle INTEGER NOT NULL,
    issuer BLOB NOT NULL,
    counterparty BLOB NOT NULL,
    receivable INTEGER NOT NULL CHECK (receivable >= 0),
    payable INTEGER NOT NULL CHECK (payable >= 0),
    claims INTEGER NOT NULL,
    digest BLOB NOT NULL,
    PRIMARY KEY (cycle, issuer, counterparty),
    FOREIGN KEY (cycle, issuer) REFERENCES scheme_statements (cycle, issuer)
);
