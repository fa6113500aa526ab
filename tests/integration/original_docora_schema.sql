-- The original TypeScript Docora's schema in its final state (Liquibase changesets 001-007), as
-- ORIGINAL-SCHEMA.md describes it: the source the importer reads in tests.
CREATE TABLE apps (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_id                      varchar(50) NOT NULL UNIQUE,
    token_hash                  varchar(255) NOT NULL,
    app_name                    varchar(100) NOT NULL,
    base_url                    varchar(2048) NOT NULL,
    email                       varchar(255) NOT NULL,
    website                     varchar(2048),
    description                 varchar(500),
    created_at                  timestamptz NOT NULL DEFAULT NOW(),
    updated_at                  timestamptz NOT NULL DEFAULT NOW(),
    client_auth_key_encrypted   varchar(500) NOT NULL
);
CREATE INDEX idx_apps_app_id ON apps (app_id);
CREATE INDEX idx_apps_token_hash ON apps (token_hash);

CREATE TABLE repositories (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    repository_id           varchar(50) NOT NULL UNIQUE,
    github_url              varchar(2048) NOT NULL UNIQUE,
    owner                   varchar(255) NOT NULL,
    name                    varchar(255) NOT NULL,
    is_private              boolean NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL DEFAULT NOW(),
    updated_at              timestamptz NOT NULL DEFAULT NOW(),
    consecutive_failures    integer NOT NULL DEFAULT 0,
    circuit_open_until      timestamptz
);
CREATE INDEX idx_repositories_repository_id ON repositories (repository_id);
CREATE INDEX idx_repositories_github_url ON repositories (github_url);
CREATE INDEX idx_repositories_circuit ON repositories (circuit_open_until);

CREATE TABLE app_repositories (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_id                  varchar(50) NOT NULL CONSTRAINT fk_app_repositories_app REFERENCES apps (app_id),
    repository_id           varchar(50) NOT NULL
                            CONSTRAINT fk_app_repositories_repo REFERENCES repositories (repository_id),
    github_token_encrypted  varchar(500),
    created_at              timestamptz NOT NULL DEFAULT NOW(),
    status                  varchar(50) NOT NULL DEFAULT 'pending_snapshot',
    retry_count             integer NOT NULL DEFAULT 0,
    last_error              text,
    last_scanned_at         timestamptz,
    CONSTRAINT uq_app_repositories_app_repo UNIQUE (app_id, repository_id)
);
CREATE INDEX idx_app_repositories_app_id ON app_repositories (app_id);
CREATE INDEX idx_app_repositories_repository_id ON app_repositories (repository_id);
CREATE INDEX idx_app_repositories_status ON app_repositories (status);
CREATE INDEX idx_app_repositories_last_scanned_at ON app_repositories (last_scanned_at);

CREATE TABLE repository_snapshots (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    repository_id   varchar(50) NOT NULL
                    CONSTRAINT fk_snapshots_repository REFERENCES repositories (repository_id),
    commit_sha      varchar(40) NOT NULL,
    branch          varchar(255) NOT NULL DEFAULT 'main',
    scanned_at      timestamptz NOT NULL DEFAULT NOW(),
    CONSTRAINT uq_repository_snapshots_repository_id UNIQUE (repository_id)
);
CREATE INDEX idx_repository_snapshots_repository_id ON repository_snapshots (repository_id);

CREATE TABLE snapshot_files (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    snapshot_id     uuid NOT NULL
                    CONSTRAINT fk_snapshot_files_snapshot REFERENCES repository_snapshots (id) ON DELETE CASCADE,
    path            varchar(2048) NOT NULL,
    sha             varchar(64) NOT NULL,
    size            integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_snapshot_files_snapshot_id ON snapshot_files (snapshot_id);
CREATE INDEX idx_snapshot_files_path ON snapshot_files (path);

CREATE TABLE app_delivered_files (
    app_id          varchar(36) NOT NULL REFERENCES apps (app_id) ON DELETE CASCADE,
    repository_id   varchar(36) NOT NULL REFERENCES repositories (repository_id) ON DELETE CASCADE,
    file_path       varchar(1024) NOT NULL,
    file_sha        varchar(64) NOT NULL,
    delivered_at    timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT pk_app_delivered_files PRIMARY KEY (app_id, repository_id, file_path)
);
CREATE INDEX idx_app_delivered_files_lookup ON app_delivered_files (app_id, repository_id);
