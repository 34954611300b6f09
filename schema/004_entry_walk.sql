-- 004_entry_walk: the scanner reads a repository's live entries in the
-- order its depth-first walk visits directories (parent paths with '/'
-- before every other byte, then names), as one stream: this index hands
-- them out in that order, a page at a time, without sorting the whole
-- repository first.  parent_id keeps each directory's rows together where
-- two parent paths compare equal in that order.
CREATE INDEX entry_walk ON entry (
    repository_id,
    translate(CASE WHEN strpos(path, '/') = 0 THEN ''
                   ELSE left(path, length(path) - length(name) - 1) END, '/', E'\x01'),
    parent_id,
    name)
    WHERE deleted_at IS NULL;
