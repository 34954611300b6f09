-- 001_catalog: the catalog of published files, their revisions, mirrors,
-- access lists, the publisher's outbox and the transfer log.
--
-- Conventions: surrogate bigint identity keys; names compared byte-wise
-- (COLLATE "C") so listings have one stable order whatever the server's
-- locale; timestamps with time zone; every enumerated column has its CHECK.

-- A published directory tree, configured in filerepod's configuration.
CREATE TABLE repository (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text COLLATE "C" NOT NULL UNIQUE
                CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    path        text NOT NULL CHECK (path LIKE '/%'),   -- directory on disk
    title       text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    access      text NOT NULL DEFAULT 'open' CHECK (access IN ('open', 'whitelist')),
    pubsub_node text UNIQUE,                            -- root collection, once created
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The tree: one row per directory or file ever seen.  A deleted file keeps
-- its row (and its revisions) with deleted_at set; if it comes back, the
-- same row lives again.
CREATE TABLE entry (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository_id bigint NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
    parent_id     bigint REFERENCES entry (id) ON DELETE CASCADE,  -- NULL: the root
    name          text COLLATE "C" NOT NULL,        -- '' for the root
    path          text COLLATE "C" NOT NULL,        -- 'dir/sub/file', '' for the root
    kind          text NOT NULL CHECK (kind IN ('directory', 'file')),
    pubsub_node   text UNIQUE,                      -- node id, once created
    current_revision_id bigint,                     -- files: the newest live revision
    -- what the scanner compares to decide whether a file changed
    size          bigint CHECK (size >= 0),
    mtime_ns      bigint,
    ctime_ns      bigint,
    inode         bigint,
    deleted_at    timestamptz,                      -- NULL while on disk
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((parent_id IS NULL) = (name = '')),
    CHECK (name NOT LIKE '%/%' AND name NOT IN ('.', '..')),
    CHECK (parent_id IS NOT NULL OR kind = 'directory'),
    UNIQUE (repository_id, path),
    UNIQUE (parent_id, name)
);
CREATE UNIQUE INDEX entry_root ON entry (repository_id) WHERE parent_id IS NULL;
-- Keyset listing of a directory's live children in name order: a page
-- deep in a huge directory costs what the first page costs.
CREATE INDEX entry_listing ON entry (parent_id, name) WHERE deleted_at IS NULL;
-- Same, directories first (XEP-0329 listings show directories, then files).
CREATE INDEX entry_listing_kind ON entry (parent_id, kind, name) WHERE deleted_at IS NULL;

-- One recorded version of a file: numbered per file from 1.
CREATE TABLE revision (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id     bigint NOT NULL REFERENCES entry (id) ON DELETE CASCADE,
    number       integer NOT NULL CHECK (number >= 1),
    commit_id    text NOT NULL CHECK (commit_id ~ '^[0-9a-f]{40}$'),  -- git commit
    size         bigint NOT NULL CHECK (size >= 0),
    mtime        timestamptz NOT NULL,
    mime         text NOT NULL DEFAULT 'application/octet-stream',
    description  text NOT NULL DEFAULT '',
    sha256       bytea NOT NULL CHECK (length(sha256) = 32),  -- content store key
    sha1         bytea CHECK (length(sha1) = 20),
    md5          bytea CHECK (length(md5) = 16),
    sha512       bytea CHECK (length(sha512) = 64),
    crc32        bigint CHECK (crc32 BETWEEN 0 AND 4294967295),
    withdrawn_at timestamptz,                     -- retracted by an admin
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (entry_id, number)
);
-- Requests by hash (XEP-0234 with XEP-0300) find the revision directly.
CREATE INDEX revision_sha256 ON revision (sha256);
CREATE INDEX revision_commit ON revision (commit_id);

ALTER TABLE entry ADD CONSTRAINT entry_current_revision_fk
    FOREIGN KEY (current_revision_id) REFERENCES revision (id)
    ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;

-- A place that serves copies of a repository's files.
CREATE TABLE mirror (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository_id bigint NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
    url           text NOT NULL,                  -- base URL; file paths go below it
    type          text NOT NULL
                  CHECK (type IN ('http', 'https', 'ftp', 'sftp', 'smb', 'webdav')),
    description   text NOT NULL DEFAULT '',
    username      text,
    password_file text,                           -- the secret stays in that file
    credentials_public boolean NOT NULL DEFAULT false,  -- advertise user/pass in items
    state         text NOT NULL DEFAULT 'new'
                  CHECK (state IN ('new', 'ok', 'failing', 'disabled')),
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_check_at timestamptz,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (repository_id, url)
);

-- Which revision was checked on which mirror, and what was found.
CREATE TABLE mirror_copy (
    mirror_id   bigint NOT NULL REFERENCES mirror (id) ON DELETE CASCADE,
    revision_id bigint NOT NULL REFERENCES revision (id) ON DELETE CASCADE,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'verified', 'missing', 'mismatch', 'error')),
    checked_at  timestamptz,
    reason      text,                             -- why it is not verified
    PRIMARY KEY (mirror_id, revision_id)
);
-- The verified mirrors of a revision, for its pubsub item.
CREATE INDEX mirror_copy_verified ON mirror_copy (revision_id) WHERE state = 'verified';
-- The next checks due.
CREATE INDEX mirror_copy_due ON mirror_copy (mirror_id, checked_at NULLS FIRST);

-- Who may do what in a repository.  A bare JID matches every resource, a
-- full JID only itself (XEP-0129's JID lists).
CREATE TABLE acl (
    repository_id bigint NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
    jid           text NOT NULL CHECK (jid <> ''),
    role          text NOT NULL CHECK (role IN ('owner', 'publisher', 'member')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository_id, jid, role)
);
CREATE INDEX acl_jid ON acl (jid);

-- Work for the publisher, in id order.  A row is done only when the pubsub
-- service acknowledged it; failures stay pending and are retried, an error
-- that retrying cannot fix parks the row with its text.
CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository_id   bigint NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
    node            text NOT NULL,                -- pubsub node it applies to
    action          text NOT NULL CHECK (action IN (
                        'create_collection', 'create_leaf', 'configure_node',
                        'publish_item', 'retract_item', 'delete_node',
                        'set_affiliations', 'publish_feed')),
    entry_id        bigint REFERENCES entry (id) ON DELETE SET NULL,
    revision_id     bigint REFERENCES revision (id) ON DELETE SET NULL,
    payload         jsonb NOT NULL DEFAULT '{}',
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'done', 'parked')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz
);
-- Draining: the pending rows in id order.
CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';
-- Order per node: the earliest unfinished row of a node goes first.
CREATE INDEX outbox_node ON outbox (node, id) WHERE state <> 'done';

-- One row per file transfer, from request to outcome.
CREATE TABLE transfer (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    requester   text NOT NULL,                    -- full JID
    revision_id bigint REFERENCES revision (id) ON DELETE SET NULL,
    protocol    text NOT NULL CHECK (protocol IN ('jingle', 'sipub')),
    method      text CHECK (method IN ('s5b-direct', 's5b-proxy', 'ibb')),
    sid         text NOT NULL,
    range_offset bigint NOT NULL DEFAULT 0 CHECK (range_offset >= 0),
    range_length bigint CHECK (range_length >= 0),
    bytes_sent  bigint NOT NULL DEFAULT 0 CHECK (bytes_sent >= 0),
    outcome     text CHECK (outcome IN ('success', 'decline', 'cancel', 'timeout',
                    'failed-transport', 'failed-application', 'refused')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX transfer_requester ON transfer (requester, started_at);
CREATE INDEX transfer_revision ON transfer (revision_id);
