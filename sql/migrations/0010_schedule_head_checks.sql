-- Head checks are scheduled per repository and claimed by the sweep that takes them (a lease on the row), so sweeps
-- may run side by side and one killed midway loses nothing: its claims lapse and another sweep takes the rows.
ALTER TABLE repositories
    -- When the head is next checked; NULL: at once (a repository never checked).
    ADD COLUMN next_check_at timestamptz,
    ADD COLUMN check_claimed_until timestamptz,
    -- The last scan that covered the head: a scan requested before it has nothing left to do.
    ADD COLUMN last_scanned_at timestamptz,
    -- The last verified GitHub push webhook: such repositories are polled only as a fallback.
    ADD COLUMN last_push_at timestamptz;

-- Until now the scan wrote last_checked_at, and only the scan checked heads.
UPDATE repositories SET last_scanned_at = last_checked_at;

DROP INDEX repositories_last_checked_at;
CREATE INDEX repositories_next_check_at ON repositories (next_check_at NULLS FIRST, id);
