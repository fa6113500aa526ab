-- Each app's requests in flight at once (docs/protocol.md §1.5), and how its receiver has been answering: a receiver
-- that keeps timing out gets fewer requests and shorter timeouts, and one that takes nothing for long enough has its
-- app paused.
ALTER TABLE apps
    ADD COLUMN max_in_flight integer NOT NULL DEFAULT 8 CHECK (max_in_flight >= 1),
    ADD COLUMN consecutive_timeouts integer NOT NULL DEFAULT 0 CHECK (consecutive_timeouts >= 0),
    -- Since when its receivers have refused or failed everything; NULL while they take what is sent.
    ADD COLUMN failing_since timestamptz,
    ADD COLUMN last_success_at timestamptz,
    -- Who paused it: an app may resume what its own receiver caused (a 410, or failing too long), not an operator.
    ADD COLUMN paused_by text CHECK (paused_by IN ('operator', 'receiver'));

UPDATE apps
   SET paused_by = CASE WHEN paused_reason = 'paused by the operator' THEN 'operator' ELSE 'receiver' END
 WHERE delivery_state = 'paused';
