-- The connection check of the active certificate against Apple's push
-- service (package apns).

-- apns_check is one row: the last check's result, which every replica
-- shows, and what schedules and alerts the checks. A replica makes the
-- periodic check only after claiming it with a lease (an UPDATE that
-- re-checks the lease and that the check is due), so with several
-- replicas it is made once per interval. episode_since is when the run of
-- checks with the last outcome began (for a rejection, of the last
-- certificate), and alerted says that run was alerted, so each alert goes
-- out once. The row never holds key material.
CREATE TABLE apns_check (
	singleton     INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
	checked_at    {time},
	outcome       TEXT NOT NULL DEFAULT '',
	message       TEXT NOT NULL DEFAULT '',
	serial        TEXT NOT NULL DEFAULT '',
	fingerprint   TEXT NOT NULL DEFAULT '',
	topic         TEXT NOT NULL DEFAULT '',
	server        TEXT NOT NULL DEFAULT '',
	http_status   INTEGER NOT NULL DEFAULT 0,
	reason        TEXT NOT NULL DEFAULT '',
	by_subject    TEXT NOT NULL DEFAULT '',
	by_name       TEXT NOT NULL DEFAULT '',
	by_email      TEXT NOT NULL DEFAULT '',
	lease_until   {time},
	episode_since {time},
	alerted       INTEGER NOT NULL DEFAULT 0
);
INSERT INTO apns_check (singleton) VALUES (1);
