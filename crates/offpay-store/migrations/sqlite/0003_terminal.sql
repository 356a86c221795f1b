-- offpay issuer schema: receive-only merchant terminals (sqlite). An
-- enrollment token names the profile the enrolled wallet's certificate will
-- carry; tokens issued before this migration enroll personal wallets. (A
-- wallet's profile is read from its certificate: no column of its own.)
ALTER TABLE enrollment_tokens ADD COLUMN profile TEXT NOT NULL DEFAULT 'personal' CHECK (profile IN ('personal', 'terminal'));
