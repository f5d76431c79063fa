-- file_name is the name of the file a refused upload came in, as the
-- browser sent it (clipped; empty for API uploads and other events), so
-- the status page and history can say which file was refused.
ALTER TABLE audit_events ADD COLUMN file_name TEXT NOT NULL DEFAULT '';
