-- offpay issuer schema, SQLite. Keys lead with the payer wallet id where the
-- data is per wallet, so that a distributed database shards it by payer.
CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    book TEXT NOT NULL CHECK (book IN ('gl', 'offline')),
    kind TEXT NOT NULL,
    balance INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX accounts_kind ON accounts (kind);
CREATE TABLE postings (
    id TEXT PRIMARY KEY,
    book TEXT NOT NULL,
    debit TEXT NOT NULL REFERENCES accounts (id),
    credit TEXT NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    kind TEXT NOT NULL,
    reference TEXT NOT NULL,
    time INTEGER NOT NULL
);
CREATE INDEX postings_debit ON postings (debit, time);
CREATE INDEX postings_credit ON postings (credit, time);
CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE enrollment_tokens (hash BLOB PRIMARY KEY, customer TEXT NOT NULL, expires INTEGER NOT NULL, wallet BLOB);
CREATE TABLE wallets (
    id BLOB PRIMARY KEY,
    customer TEXT NOT NULL,
    cert_der BLOB NOT NULL,
    cert_serial INTEGER NOT NULL,
    cert_not_after INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    load_seq INTEGER NOT NULL,
    checkpoint INTEGER NOT NULL,
    report_seq INTEGER NOT NULL,
    policy_epoch INTEGER NOT NULL,
    unlock_pending INTEGER NOT NULL,
    clawed_back INTEGER NOT NULL,
    guaranteed INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX wallets_customer ON wallets (customer, created);
CREATE TABLE certificates (serial INTEGER PRIMARY KEY, wallet BLOB NOT NULL, der BLOB NOT NULL);
CREATE INDEX certificates_wallet ON certificates (wallet);
CREATE TABLE vouchers (
    wallet BLOB NOT NULL, load_seq INTEGER NOT NULL, amount INTEGER NOT NULL, bytes BLOB NOT NULL, created INTEGER NOT NULL,
    PRIMARY KEY (wallet, load_seq)
);
CREATE TABLE entries (
    payer BLOB NOT NULL,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    prev BLOB NOT NULL,
    kind TEXT NOT NULL,
    payee BLOB,
    amount INTEGER NOT NULL,
    time INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    recorded INTEGER NOT NULL,
    PRIMARY KEY (payer, seq)
);
CREATE UNIQUE INDEX entries_prev ON entries (payer, prev);
CREATE TABLE settlements (
    payer BLOB NOT NULL, hash BLOB NOT NULL, payee BLOB, amount INTEGER NOT NULL, time INTEGER NOT NULL,
    PRIMARY KEY (payer, hash)
);
CREATE TABLE checkpoints (
    wallet BLOB NOT NULL, number INTEGER NOT NULL, seq INTEGER NOT NULL, head BLOB NOT NULL,
    balance INTEGER NOT NULL, load_seq INTEGER NOT NULL, time INTEGER NOT NULL,
    PRIMARY KEY (wallet, number)
);
CREATE TABLE reports (
    wallet BLOB NOT NULL, report_seq INTEGER NOT NULL, hash BLOB NOT NULL, response BLOB NOT NULL, time INTEGER NOT NULL,
    PRIMARY KEY (wallet, report_seq)
);
CREATE TABLE double_spends (
    payer BLOB NOT NULL, seq INTEGER NOT NULL, entry_a BLOB NOT NULL, entry_b BLOB NOT NULL,
    proof BLOB NOT NULL, detected INTEGER NOT NULL,
    PRIMARY KEY (payer, entry_a, entry_b)
);
CREATE TABLE revocations (serial INTEGER PRIMARY KEY, wallet BLOB NOT NULL, reason_code INTEGER NOT NULL, reason TEXT NOT NULL, time INTEGER NOT NULL);
CREATE TABLE idempotency (key TEXT PRIMARY KEY, request BLOB NOT NULL, response BLOB NOT NULL, time INTEGER NOT NULL);
