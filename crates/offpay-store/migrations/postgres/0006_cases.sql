-- offpay issuer schema: dispute cases (postgres). A case is what a customer says
-- about one payment (payer, seq) or one wallet (seq NULL), with the system's
-- own evidence attached as the issuer's signed evidence bundle (re-signed at
-- each state change): open -> decided -> resolved or rejected. Every state
-- change is a row of case_events, never updated or deleted. A payment is
-- refunded by a case at most once: case_refunds is keyed by the payment.
CREATE TABLE cases (
    id BIGINT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('paid_not_received', 'not_my_payment', 'refused_but_debited')),
    state TEXT NOT NULL CHECK (state IN ('open', 'decided', 'resolved', 'rejected')),
    payer BYTEA NOT NULL,
    seq BIGINT,
    entry BYTEA,
    opened_at BIGINT NOT NULL,
    opened_by TEXT NOT NULL,
    note TEXT NOT NULL,
    decision TEXT,
    resolved_at BIGINT,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    paid BIGINT NOT NULL CHECK (paid >= 0),
    window_closed_at BIGINT,
    bundle BYTEA NOT NULL
);
CREATE INDEX cases_state ON cases (state, id);
CREATE INDEX cases_payment ON cases (payer, seq);
CREATE INDEX cases_entry ON cases (payer, entry);
CREATE TABLE case_events (
    case_id BIGINT NOT NULL,
    n BIGINT NOT NULL,
    at BIGINT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (case_id, n)
);
CREATE TABLE case_refunds (
    payer BYTEA NOT NULL,
    seq BIGINT NOT NULL,
    case_id BIGINT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    PRIMARY KEY (payer, seq)
);
