-- Alerts and the audit cursor, for the alert checker (package alert).

-- alerts records every alert once, under a key that names what it is about
-- ("expiring:<fingerprint>:<days>", "expired:<fingerprint>",
-- "upload_failed:<event id>"). The primary key is what keeps an alert from
-- going out twice: every replica inserts with ON CONFLICT DO NOTHING, and a
-- replica delivers an alert only after claiming it with a lease, so one that
-- crashes mid-delivery lets another retry once the lease runs out.
CREATE TABLE alerts (
	alert_key   TEXT NOT NULL PRIMARY KEY,
	created_at  {time} NOT NULL,
	payload     TEXT NOT NULL,
	lease_until {time},
	attempts    INTEGER NOT NULL DEFAULT 0,
	failures    INTEGER NOT NULL DEFAULT 0,
	finished_at {time},
	outcome     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alerts_unfinished ON alerts (finished_at, created_at);

-- alert_cursor is the id of the newest audit event the checker has looked
-- at. It starts at the newest event when this migration runs, so turning
-- alerts on does not replay an installation's whole history.
CREATE TABLE alert_cursor (
	singleton     INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
	last_event_id BIGINT NOT NULL
);
INSERT INTO alert_cursor (singleton, last_event_id) SELECT 1, COALESCE(MAX(id), 0) FROM audit_events;
