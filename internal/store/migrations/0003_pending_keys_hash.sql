-- An upload finds the pending key its certificate was issued for by the
-- hash of its public key, and reads only that row.
CREATE INDEX pending_keys_public_key_hash ON pending_keys (public_key_hash);
