-- The current snapshot of each repository: its commit and the files of that commit's tree.
CREATE TABLE snapshots (
    repository_id   text PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
    commit_sha      text NOT NULL,
    file_count      integer NOT NULL CHECK (file_count >= 0),
    taken_at        timestamptz NOT NULL
);

CREATE TABLE snapshot_files (
    repository_id   text NOT NULL REFERENCES snapshots (repository_id) ON DELETE CASCADE,
    path            text NOT NULL,
    blob_id         bytea NOT NULL CHECK (length(blob_id) = 20),
    sha256          bytea NOT NULL CHECK (length(sha256) = 32),
    size            bigint NOT NULL CHECK (size >= 0),
    is_binary       boolean NOT NULL,
    PRIMARY KEY (repository_id, path)
);

-- SHA-256 and text/binary are computed once per git blob id; rescans reuse them from here.
CREATE INDEX snapshot_files_blob_id ON snapshot_files (blob_id);

-- Files of the tree that are not delivered (over MAX_FILE_BYTES, path not UTF-8), so the status API can say why.
CREATE TABLE snapshot_skipped_files (
    repository_id   text NOT NULL REFERENCES snapshots (repository_id) ON DELETE CASCADE,
    path            text NOT NULL,
    reason          text NOT NULL,
    size            bigint,
    PRIMARY KEY (repository_id, path)
);
