-- offpay scheme operator schema, PostgreSQL. Every table is prefixed `scheme_`
-- so that a scheme can share a database with an issuer (demo, tests) without
-- a name clash; the scheme's migrations are numbered from 101 in the shared
-- `schema_migrations` table.
CREATE TABLE scheme_settings (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
-- Admitted issuers. `changed` = the directory version of the last change of
-- this entry (admission, status, CRL). The token is stored as SHA-256 only.
CREATE TABLE scheme_issuers (
    id BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),
    code TEXT NOT NULL UNIQUE,
    ca_cert BYTEA NOT NULL,
    serial BIGINT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    status_time BIGINT NOT NULL,
    changed BIGINT NOT NULL,
    token_hash BYTEA NOT NULL CHECK (octet_length(token_hash) = 32),
    crl BYTEA,
    crl_number BIGINT NOT NULL,
    admitted BIGINT NOT NULL
);
-- Every directory version ever published, root-signed.
CREATE TABLE scheme_directory (
    version BIGINT PRIMARY KEY,
    time BIGINT NOT NULL,
    signed BYTEA NOT NULL
);
-- Claims: one row per payment entry (id = entry hash), with each party's side:
-- 'none' (not yet held), 'submitted', 'acked' (held), 'refused' (the party
-- refused it on ack: the claim is disputed, never netted).
CREATE TABLE scheme_claims (
    id BYTEA PRIMARY KEY CHECK (octet_length(id) = 32),
    payer_issuer BYTEA NOT NULL,
    payee_issuer BYTEA NOT NULL,
    payer BYTEA NOT NULL,
    seq BIGINT NOT NULL,
    payee BYTEA NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    time BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    payer_side TEXT NOT NULL CHECK (payer_side IN ('none', 'submitted', 'acked', 'refused')),
    payee_side TEXT NOT NULL CHECK (payee_side IN ('none', 'submitted', 'acked', 'refused')),
    payer_refusal TEXT,
    payee_refusal TEXT,
    cycle BIGINT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    CHECK (payer_issuer <> payee_issuer)
);
CREATE INDEX scheme_claims_payer_issuer ON scheme_claims (payer_issuer, payer_side, created);
CREATE INDEX scheme_claims_payee_issuer ON scheme_claims (payee_issuer, payee_side, created);
CREATE INDEX scheme_claims_cycle ON scheme_claims (cycle);
CREATE INDEX scheme_claims_entry ON scheme_claims (payer, seq);
-- Every refused submission: who sent it, what it was, why. Nothing else changes.
CREATE TABLE scheme_claim_refusals (
    id TEXT PRIMARY KEY,
    submitter BYTEA NOT NULL,
    claim BYTEA,
    bytes_hash BYTEA NOT NULL,
    bytes_len BIGINT NOT NULL,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    time BIGINT NOT NULL
);
CREATE INDEX scheme_claim_refusals_submitter ON scheme_claim_refusals (submitter, time);
CREATE TABLE scheme_cycles (
    cycle BIGINT PRIMARY KEY,
    time BIGINT NOT NULL,
    claims BIGINT NOT NULL,
    gross BIGINT NOT NULL
);
-- One statement per issuer with claims in the cycle, root-signed; `net` =
-- receivable - payable (positive: the scheme pays the issuer).
CREATE TABLE scheme_statements (
    cycle BIGINT NOT NULL REFERENCES scheme_cycles (cycle),
    issuer BYTEA NOT NULL,
    net BIGINT NOT NULL,
    signed BYTEA NOT NULL,
    PRIMARY KEY (cycle, issuer)
);
CREATE TABLE scheme_statement_lines (
    cycle BIGINT NOT NULL,
    issuer BYTEA NOT NULL,
    counterparty BYTEA NOT NULL,
    receivable BIGINT NOT NULL CHECK (receivable >= 0),
    payable BIGINT NOT NULL CHECK (payable >= 0),
    claims BIGINT NOT NULL,
    digest BYTEA NOT NULL,
    PRIMARY KEY (cycle, issuer, counterparty),
    FOREIGN KEY (cycle, issuer) REFERENCES scheme_statements (cycle, issuer)
);
