-- 007_outbox_repository_reference: the outbox names its repository without
-- a foreign key, as 003 did for its entry and revision.  Outbox rows are
-- written only by the catalog library, for a repository it has just read,
-- and repositories are never removed (the configuration upserts them); the
-- check ran twice for every file of a first index (a leaf to create and an
-- item to publish), about a tenth of the catalog's time for many small
-- files.  A row left by a repository removed by hand is never fetched: the
-- publisher reads the outbox joined with its repository.
ALTER TABLE outbox DROP CONSTRAINT outbox_repository_id_fkey;
