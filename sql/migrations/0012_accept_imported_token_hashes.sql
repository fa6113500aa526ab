-- Apps imported from the original Docora (python -m chalicelib.import_original) bring only a bcrypt hash of their
-- bearer token: the original kept no lookup key. Their lookup key stays NULL until the token first authenticates
-- (docs/migrating.md), and only those apps are ever checked without one.
ALTER TABLE apps
    ALTER COLUMN token_lookup DROP NOT NULL,
    ADD COLUMN imported_at timestamptz;

CREATE INDEX apps_awaiting_token_lookup ON apps (created_at, id) WHERE token_lookup IS NULL;

-- Imported repositories keep the original's spelling of their URL (receivers must get the same github_url), which
-- may have capitals or `.git`; registrations and push webhooks spell it Docora's way and must still find them. One
-- repository per comparable URL and branch (chalicelib/domain/github_urls.py: comparable).
CREATE UNIQUE INDEX repositories_comparable_url
    ON repositories (lower(regexp_replace(github_url, '\.git$', '')), branch);
