-- key_encryption_keys gives each key-encryption secret a random ID: the
-- key_id stored with the ciphertexts it sealed. Earlier versions stored a
-- hash of the derived key there, which lets whoever reads it test guesses
-- of the secret; pushcert relabels such ciphertexts when it starts with
-- their secret. check_ciphertext is a fixed text sealed under the key:
-- only the right secret opens it, so a process finds the ID of each secret
-- it holds, and tells which stored keys it cannot open, without the ID
-- saying anything about the secret.
CREATE TABLE key_encryption_keys (
	id               TEXT NOT NULL PRIMARY KEY,
	check_ciphertext {blob} NOT NULL
);
