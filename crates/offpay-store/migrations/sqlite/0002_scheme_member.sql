-- offpay issuer schema, member of a scheme (sqlite): claims on other issuers and
-- the settlement statements posted. A standalone issuer leaves them empty.
-- One row per cross-issuer payment this issuer posted; id = the entry hash.
CREATE TABLE claims (
    id BLOB PRIMARY KEY,
    counterparty BLOB NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('receivable', 'payable')),
    amount INTEGER NOT NULL CHECK (amount > 0),
    state TEXT NOT NULL CHECK (state IN ('outbox', 'submitted', 'known', 'refused')),
    refusal TEXT,
    cycle INTEGER,
    payer BLOB NOT NULL,
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX claims_state ON claims (state, created);
CREATE INDEX claims_counterparty ON claims (counterparty, cycle);
-- Claims from the scheme's inbox this issuer refused: nothing was posted.
CREATE TABLE claim_refusals (id BLOB PRIMARY KEY, code TEXT NOT NULL, bytes BLOB NOT NULL, time INTEGER NOT NULL);
CREATE TABLE statements (cycle INTEGER PRIMARY KEY, hash BLOB NOT NULL, net INTEGER NOT NULL, bytes BLOB NOT NULL, posted INTEGER NOT NULL);
