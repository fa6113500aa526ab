-- Watched GitHub repositories, one row per (normalised URL, branch), fetched once for every app.
CREATE TABLE repositories (
    id                      text PRIMARY KEY CHECK (id ~ '^repo_[0-9a-f]{24}$'),
    github_url              text NOT NULL,
    owner                   text NOT NULL,
    name                    text NOT NULL,
    branch                  text NOT NULL,
    is_private              boolean NOT NULL,
    consecutive_failures    integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    circuit_open_until      timestamptz,
    last_error              text,
    last_head               text,
    last_checked_at         timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (github_url, branch)
);

CREATE INDEX repositories_last_checked_at ON repositories (last_checked_at NULLS FIRST);
