-- 002_indexer_progress: what the indexer is doing now, for `filerepo status`.
-- One row per repository while a batch runs (written every few seconds by
-- filerepod); the row is removed when the batch ends.
CREATE TABLE indexer_progress (
    repository_id bigint PRIMARY KEY REFERENCES repository (id) ON DELETE CASCADE,
    files_total   bigint NOT NULL CHECK (files_total >= 0),
    files_done    bigint NOT NULL CHECK (files_done >= 0),
    bytes_total   bigint NOT NULL CHECK (bytes_total >= 0),
    bytes_done    bigint NOT NULL CHECK (bytes_done >= 0),
    started_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
