-- 003_outbox_plain_references: the outbox names the entry and revision it
-- is about without foreign keys.  Outbox rows are written only by the
-- catalog library, in the same transaction as the rows they name, and
-- entries and revisions are never deleted on their own (only with their
-- repository, whose foreign key stays); the per-row checks cost a first
-- index of many small files more than the rows themselves.  A publisher
-- that finds no row behind an id treats the work as gone.
ALTER TABLE outbox DROP CONSTRAINT outbox_entry_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_revision_id_fkey;
