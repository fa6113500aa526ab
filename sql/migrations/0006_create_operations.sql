-- Operator bulk actions (retry or resync many watches): progress that can be watched and cancelled.
CREATE TABLE operations (
    id              text PRIMARY KEY CHECK (id ~ '^op_[0-9a-f]{24}$'),
    kind            text NOT NULL CHECK (kind IN ('retry_failed', 'resync')),
    app_id          text REFERENCES apps (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'cancelled')),
    total           integer NOT NULL CHECK (total >= 0),
    done            integer NOT NULL DEFAULT 0 CHECK (done >= 0),
    -- The watches still to do, in order; a batch takes from the front.
    remaining       jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE INDEX operations_running ON operations (created_at) WHERE status = 'running';
