-- 008_entry_plain_references: entries and revisions name their repository,
-- their parent, their entry and their current revision without foreign
-- keys, as the outbox does since 003.  Each key was checked row by row:
-- four checks for every new file, which cost a first index of many small
-- files about a fifth of its catalog time.  These rows are written only by
-- the catalog library, a batch in one transaction whose statements find a
-- parent by its path and take the ids they write from each other
-- (catalog/batch.c); entries and revisions are never deleted but with
-- their repository, which the triggers below still do, as ON DELETE
-- CASCADE did.  The integration tests check after every batch that each
-- reference holds.
ALTER TABLE entry DROP CONSTRAINT entry_repository_id_fkey;
ALTER TABLE entry DROP CONSTRAINT entry_parent_id_fkey;
ALTER TABLE entry DROP CONSTRAINT entry_current_revision_fk;
ALTER TABLE revision DROP CONSTRAINT revision_entry_id_fkey;

CREATE FUNCTION repository_entries_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM entry WHERE repository_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE FUNCTION entry_revisions_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM revision WHERE entry_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE TRIGGER repository_entries_delete AFTER DELETE ON repository
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION repository_entries_delete();
CREATE TRIGGER entry_revisions_delete AFTER DELETE ON entry
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION entry_revisions_delete();
