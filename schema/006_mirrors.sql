-- 006_mirrors: what the mirror checker needs beyond 001's mirror and
-- mirror_copy tables: when each mirror's next round of checks is due, why
-- its state last changed, and the channel the CLI NOTIFYs when an admin
-- changes a mirror (the checker LISTENs on 'filerepo_mirrors').
ALTER TABLE mirror
    ADD COLUMN next_check_at    timestamptz,        -- NULL: due now
    ADD COLUMN state_reason     text,               -- why it entered its state
    ADD COLUMN state_changed_at timestamptz;

-- A mirror's URL is stored with its trailing '/'; file paths go below it.
ALTER TABLE mirror ADD CONSTRAINT mirror_url_base CHECK (url ~ '^[a-z]+://[^/]+/(.*/)?$');

-- The verified copies of a mirror, for the health probe's random pick and
-- for withdrawing a failing mirror from every item.
CREATE INDEX mirror_copy_mirror_verified ON mirror_copy (mirror_id) WHERE state = 'verified';
