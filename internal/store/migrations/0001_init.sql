-- The first schema. Tokens in braces are replaced per database:
-- {time} is a UTC timestamp with microseconds, {blob} bytes, {bool} a
-- boolean and {serial} an auto-incrementing integer primary key.

-- installation holds the one row describing this installation's push
-- certificate resource, its active certificate and that certificate's
-- private key (encrypted). A certificate is never stored without its key.
CREATE TABLE installation (
	singleton             INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
	id                    TEXT NOT NULL,
	version               BIGINT NOT NULL,
	apple_id              TEXT NOT NULL DEFAULT '',
	topic                 TEXT NOT NULL DEFAULT '',
	common_name           TEXT NOT NULL DEFAULT '',
	serial                TEXT NOT NULL DEFAULT '',
	issuer                TEXT NOT NULL DEFAULT '',
	fingerprint           TEXT NOT NULL DEFAULT '',
	not_before            {time},
	not_after             {time},
	cert_pem              TEXT NOT NULL DEFAULT '',
	key_ciphertext        {blob},
	key_id                TEXT NOT NULL DEFAULT '',
	upload_status         TEXT NOT NULL DEFAULT 'notUploaded',
	upload_failure_reason TEXT NOT NULL DEFAULT '',
	last_modified         {time},
	last_modified_subject TEXT NOT NULL DEFAULT '',
	last_modified_name    TEXT NOT NULL DEFAULT '',
	last_modified_email   TEXT NOT NULL DEFAULT '',
	CHECK ((cert_pem = '') = (key_ciphertext IS NULL))
);

-- pending_keys holds the keys made for CSRs handed to an admin.
CREATE TABLE pending_keys (
	seq                {serial},
	id                 TEXT NOT NULL UNIQUE,
	created_at         {time} NOT NULL,
	created_by_subject TEXT NOT NULL,
	created_by_name    TEXT NOT NULL,
	created_by_email   TEXT NOT NULL,
	key_ciphertext     {blob} NOT NULL,
	key_id             TEXT NOT NULL,
	csr_der            {blob} NOT NULL,
	request            TEXT NOT NULL,
	vendor_signed      {bool} NOT NULL,
	public_key_hash    TEXT NOT NULL,
	consumed_at        {time}
);
CREATE INDEX pending_keys_created_at ON pending_keys (created_at);

-- certificate_history keeps every certificate that was replaced, with its key.
CREATE TABLE certificate_history (
	seq            {serial},
	id             TEXT NOT NULL UNIQUE,
	replaced_at    {time} NOT NULL,
	apple_id       TEXT NOT NULL,
	topic          TEXT NOT NULL,
	common_name    TEXT NOT NULL,
	serial         TEXT NOT NULL,
	issuer         TEXT NOT NULL,
	fingerprint    TEXT NOT NULL,
	not_before     {time} NOT NULL,
	not_after      {time} NOT NULL,
	cert_pem       TEXT NOT NULL,
	key_ciphertext {blob} NOT NULL,
	key_id         TEXT NOT NULL
);

-- audit_events is the audit history.
CREATE TABLE audit_events (
	id            {serial},
	at            {time} NOT NULL,
	kind          TEXT NOT NULL,
	actor_subject TEXT NOT NULL,
	actor_name    TEXT NOT NULL,
	actor_email   TEXT NOT NULL,
	serial        TEXT NOT NULL,
	topic         TEXT NOT NULL,
	not_after     {time},
	detail        TEXT NOT NULL
);
