-- One app watching one repository: its GitHub token and the state of its deliveries.
CREATE TABLE watches (
    app_id                  text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    repository_id           text NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    -- AES-256-GCM like apps.client_auth_key_encrypted; NULL for public repositories.
    github_token_encrypted  text,
    status                  text NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'syncing', 'synced', 'failed')),
    attempts                integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error              text,
    next_attempt_at         timestamptz,
    last_commit_sha         text,
    last_synced_at          timestamptz,
    -- The circuit opening whose sync_failed notice this app still has to receive.
    sync_failed_pending_at  timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, repository_id)
);

CREATE INDEX watches_repository_id ON watches (repository_id);
CREATE INDEX watches_next_attempt_at ON watches (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX watches_status ON watches (status);
