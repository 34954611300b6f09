-- 005_entry_listing_stats: how many live entries each directory holds, and
-- a version that changes whenever that set changes, kept by statement-level
-- triggers on entry.  The query service reads a directory's size for its
-- XEP-0059 <count/> in one index lookup instead of counting a million
-- rows, and knows from the version whether the positions it remembers for
-- that directory still hold.  No foreign key: the row of a directory whose
-- entry is gone (only ever with its repository) is removed by the delete
-- trigger.
CREATE TABLE entry_listing_stats (
    parent_id bigint PRIMARY KEY,                  -- the directory (entry.id)
    live      bigint NOT NULL,                     -- children with deleted_at IS NULL
    version   bigint NOT NULL DEFAULT 0            -- bumped when that set changes
);

INSERT INTO entry_listing_stats (parent_id, live)
SELECT parent_id, count(*) FILTER (WHERE deleted_at IS NULL)
FROM entry WHERE parent_id IS NOT NULL GROUP BY parent_id;

CREATE FUNCTION entry_listing_stats_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO entry_listing_stats AS s (parent_id, live, version)
    SELECT parent_id, count(*), 1 FROM new_rows
    WHERE parent_id IS NOT NULL AND deleted_at IS NULL GROUP BY parent_id
    ON CONFLICT (parent_id) DO UPDATE
        SET live = s.live + EXCLUDED.live, version = s.version + 1;
    RETURN NULL;
END $$;

CREATE FUNCTION entry_listing_stats_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Only rows that joined or left a directory's live set count.
    INSERT INTO entry_listing_stats AS s (parent_id, live, version)
    SELECT parent_id, sum(delta), 1 FROM (
        SELECT n.parent_id, 1 AS delta FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.parent_id IS NOT NULL AND n.deleted_at IS NULL
          AND (o.deleted_at IS NOT NULL OR o.parent_id IS DISTINCT FROM n.parent_id
               OR o.name <> n.name OR o.kind <> n.kind)
        UNION ALL
        SELECT o.parent_id, -1 FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.parent_id IS NOT NULL AND o.deleted_at IS NULL
          AND (n.deleted_at IS NOT NULL OR o.parent_id IS DISTINCT FROM n.parent_id
               OR o.name <> n.name OR o.kind <> n.kind)
    ) c GROUP BY parent_id
    ON CONFLICT (parent_id) DO UPDATE
        SET live = s.live + EXCLUDED.live, version = s.version + 1;
    RETURN NULL;
END $$;

CREATE FUNCTION entry_listing_stats_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE entry_listing_stats s SET live = s.live - d.n, version = s.version + 1
    FROM (SELECT parent_id, count(*) AS n FROM old_rows
          WHERE parent_id IS NOT NULL AND deleted_at IS NULL GROUP BY parent_id) d
    WHERE s.parent_id = d.parent_id;
    DELETE FROM entry_listing_stats WHERE parent_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE TRIGGER entry_listing_stats_insert AFTER INSERT ON entry
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION entry_listing_stats_insert();
CREATE TRIGGER entry_listing_stats_update AFTER UPDATE ON entry
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION entry_listing_stats_update();
CREATE TRIGGER entry_listing_stats_delete AFTER DELETE ON entry
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION entry_listing_stats_delete();
