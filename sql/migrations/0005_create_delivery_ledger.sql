-- What each app has acknowledged, per watch, and a bounded log of delivery attempts.
CREATE TABLE delivered_files (
    app_id          text NOT NULL,
    repository_id   text NOT NULL,
    path            text NOT NULL,
    sha256          bytea NOT NULL CHECK (length(sha256) = 32),
    delivered_at    timestamptz NOT NULL,
    PRIMARY KEY (app_id, repository_id, path),
    FOREIGN KEY (app_id, repository_id) REFERENCES watches (app_id, repository_id) ON DELETE CASCADE
);

CREATE TABLE delivery_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id          text NOT NULL,
    repository_id   text NOT NULL,
    path            text,
    event           text NOT NULL CHECK (event IN ('create', 'update', 'delete', 'sync_failed')),
    delivery_id     text NOT NULL,
    attempt         integer NOT NULL CHECK (attempt >= 1),
    status_code     integer,
    error           text,
    duration_ms     integer NOT NULL CHECK (duration_ms >= 0),
    attempted_at    timestamptz NOT NULL,
    FOREIGN KEY (app_id, repository_id) REFERENCES watches (app_id, repository_id) ON DELETE CASCADE
);

CREATE INDEX delivery_attempts_watch ON delivery_attempts (app_id, repository_id, id DESC);
CREATE INDEX delivery_attempts_attempted_at ON delivery_attempts (attempted_at);
