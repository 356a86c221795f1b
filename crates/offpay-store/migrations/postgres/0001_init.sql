-- offpay issuer schema, PostgreSQL. Keys lead with the payer wallet id where the
-- data is per wallet, so that a distributed database shards it by payer.
CREATE TABLE settings (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    book TEXT NOT NULL CHECK (book IN ('gl', 'offline')),
    kind TEXT NOT NULL,
    balance BIGINT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX accounts_kind ON accounts (kind);
CREATE TABLE postings (
    id TEXT PRIMARY KEY,
    book TEXT NOT NULL,
    debit TEXT NOT NULL REFERENCES accounts (id),
    credit TEXT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    kind TEXT NOT NULL,
    reference TEXT NOT NULL,
    time BIGINT NOT NULL
);
CREATE INDEX postings_debit ON postings (debit, time);
CREATE INDEX postings_credit ON postings (credit, time);
CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL, created BIGINT NOT NULL);
CREATE TABLE enrollment_tokens (hash BYTEA PRIMARY KEY, customer TEXT NOT NULL, expires BIGINT NOT NULL, wallet BYTEA);
CREATE TABLE wallets (
    id BYTEA PRIMARY KEY,
    customer TEXT NOT NULL,
    cert_der BYTEA NOT NULL,
    cert_serial BIGINT NOT NULL,
    cert_not_after BIGINT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    load_seq BIGINT NOT NULL,
    checkpoint BIGINT NOT NULL,
    report_seq BIGINT NOT NULL,
    policy_epoch BIGINT NOT NULL,
    unlock_pending BIGINT NOT NULL,
    clawed_back BIGINT NOT NULL,
    guaranteed BIGINT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX wallets_customer ON wallets (customer, created);
CREATE TABLE certificates (serial BIGINT PRIMARY KEY, wallet BYTEA NOT NULL, der BYTEA NOT NULL);
CREATE INDEX certificates_wallet ON certificates (wallet);
CREATE TABLE vouchers (
    wallet BYTEA NOT NULL, load_seq BIGINT NOT NULL, amount BIGINT NOT NULL, bytes BYTEA NOT NULL, created BIGINT NOT NULL,
    PRIMARY KEY (wallet, load_seq)
);
CREATE TABLE entries (
    payer BYTEA NOT NULL,
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    prev BYTEA NOT NULL,
    kind TEXT NOT NULL,
    payee BYTEA,
    amount BIGINT NOT NULL,
    time BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    recorded BIGINT NOT NULL,
    PRIMARY KEY (payer, seq)
);
CREATE UNIQUE INDEX entries_prev ON entries (payer, prev);
CREATE TABLE settlements (
    payer BYTEA NOT NULL, hash BYTEA NOT NULL, payee BYTEA, amount BIGINT NOT NULL, time BIGINT NOT NULL,
    PRIMARY KEY (payer, hash)
);
CREATE TABLE checkpoints (
    wallet BYTEA NOT NULL, number BIGINT NOT NULL, seq BIGINT NOT NULL, head BYTEA NOT NULL,
    balance BIGINT NOT NULL, load_seq BIGINT NOT NULL, time BIGINT NOT NULL,
    PRIMARY KEY (wallet, number)
);
CREATE TABLE reports (
    wallet BYTEA NOT NULL, report_seq BIGINT NOT NULL, hash BYTEA NOT NULL, response BYTEA NOT NULL, time BIGINT NOT NULL,
    PRIMARY KEY (wallet, report_seq)
);
CREATE TABLE double_spends (
    payer BYTEA NOT NULL, seq BIGINT NOT NULL, entry_a BYTEA NOT NULL, entry_b BYTEA NOT NULL,
    proof BYTEA NOT NULL, detected BIGINT NOT NULL,
    PRIMARY KEY (payer, entry_a, entry_b)
);
CREATE TABLE revocations (serial BIGINT PRIMARY KEY, wallet BYTEA NOT NULL, reason_code BIGINT NOT NULL, reason TEXT NOT NULL, time BIGINT NOT NULL);
CREATE TABLE idempotency (key TEXT PRIMARY KEY, request BYTEA NOT NULL, response BYTEA NOT NULL, time BIGINT NOT NULL);
