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
	-- delivered_settings are the target's non-secret settings the delivery
	-- was made with: a target whose settings changed needs it again.
	delivered_settings    TEXT NOT NULL DEFAULT '',
	delivered_at          {time},
	last_attempt_at       {time},
	last_error            TEXT NOT NULL DEFAULT '',
	failures              INTEGER NOT NULL DEFAULT 0,
	next_attempt_at       {time},
	-- attempt_fingerprint is the certificate of the last claim: a new one
	-- does not wait for the backoff the previous one earned.
	attempt_fingerprint   TEXT NOT NULL DEFAULT '',
	claimed_at            {time},
	lease_until           {time},
	-- requested_at is the newest "Deliver now" not yet served: a delivery
	-- that succeeds serves the requests made before its claim only.
	requested_at          {time},
	out_of_sync_since     {time},
	alerted               INTEGER NOT NULL DEFAULT 0
);
