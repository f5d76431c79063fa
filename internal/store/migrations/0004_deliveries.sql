-- Delivery of the active certificate and its key to the configured MDM
-- servers (package delivery).

-- deliveries has one row per delivery target, named as in the delivery
-- configuration, created the first time the target is tried. A replica
-- delivers only after claiming the row with a lease (an UPDATE that
-- re-checks the lease), so with several replicas each delivery is made
-- once, and one that crashes mid-delivery lets another retry once the
-- lease runs out. The row never holds key material.
CREATE TABLE deliveries (
	target                TEXT NOT NULL PRIMARY KEY,
	delivered_serial      TEXT NOT NULL DEFAULT '',
	delivered_fingerprint TEXT NOT NULL DEFAULT '',
	delivered_at          {time},
	last_attempt_at       {time},
	last_error            TEXT NOT NULL DEFAULT '',
	failures              INTEGER NOT NULL DEFAULT 0,
	next_attempt_at       {time},
	lease_until           {time},
	redeliver             INTEGER NOT NULL DEFAULT 0,
	out_of_sync_since     {time},
	alerted               INTEGER NOT NULL DEFAULT 0
);
