-- The console's signed-in sessions (package session). A browser's cookie
-- holds only a random token; a row is found by the token's SHA-256
-- (token_hash, hex), so the table holds no usable credential. handle is
-- another random value that names the session on the admin's sessions
-- page and in its revoke form. Signing out or a revocation deletes the
-- row; expired and idle rows are deleted when someone signs in. No
-- provider token is kept.
CREATE TABLE sessions (
	token_hash   TEXT NOT NULL PRIMARY KEY,
	handle       TEXT NOT NULL UNIQUE,
	subject      TEXT NOT NULL,
	name         TEXT NOT NULL DEFAULT '',
	email        TEXT NOT NULL DEFAULT '',
	role         TEXT NOT NULL DEFAULT '',
	-- signed_in_at is the provider's auth_time, NULL when it sent none.
	signed_in_at {time},
	created_at   {time} NOT NULL,
	last_seen_at {time} NOT NULL,
	expires_at   {time} NOT NULL,
	client       TEXT NOT NULL DEFAULT '',
	address      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_subject ON sessions (subject, created_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
