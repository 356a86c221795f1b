-- offpay issuer schema, member of a scheme (postgres): claims on other issuers and
-- the settlement statements posted. A standalone issuer leaves them empty.
-- One row per cross-issuer payment this issuer posted; id = the entry hash.
CREATE TABLE claims (
    id BYTEA PRIMARY KEY,
    counterparty BYTEA NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('receivable', 'payable')),
    amount BIGINT NOT NULL CHECK (amount > 0),
    state TEXT NOT NULL CHECK (state IN ('outbox', 'submitted', 'known', 'refused')),
    refusal TEXT,
    cycle BIGINT,
    payer BYTEA NOT NULL,
    seq BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX claims_state ON claims (state, created);
CREATE INDEX claims_counterparty ON claims (counterparty, cycle);
-- Claims from the scheme's inbox this issuer refused: nothing was posted.
CREATE TABLE claim_refusals (id BYTEA PRIMARY KEY, code TEXT NOT NULL, bytes BYTEA NOT NULL, time BIGINT NOT NULL);
CREATE TABLE statements (cycle BIGINT PRIMARY KEY, hash BYTEA NOT NULL, net BIGINT NOT NULL, bytes BYTEA NOT NULL, posted BIGINT NOT NULL);
