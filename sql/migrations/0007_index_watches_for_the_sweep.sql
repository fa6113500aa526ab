-- The sweep looks for watches left behind by crashed jobs or lost messages, oldest first.
CREATE INDEX watches_status_updated_at ON watches (status, updated_at) WHERE status IN ('pending', 'syncing');
