-- Client applications: who they are, where their webhooks go, and how they authenticate.
CREATE TABLE apps (
    id                          text PRIMARY KEY CHECK (id ~ '^app_[0-9a-f]{24}$'),
    app_name                    text NOT NULL,
    email                       text NOT NULL,
    website                     text,
    description                 text,
    base_url                    text NOT NULL,
    -- HMAC-SHA256 of the bearer token under a server key: one indexed lookup per request.
    token_lookup                bytea NOT NULL UNIQUE,
    -- bcrypt (cost 12) of the bearer token, checked after the lookup.
    token_hash                  text NOT NULL,
    -- AES-256-GCM, hex(iv):hex(tag):hex(ciphertext), as the original Docora wrote it.
    client_auth_key_encrypted   text NOT NULL,
    -- Kept during a key rotation so deliveries can carry a signature with both keys.
    previous_client_auth_key_encrypted text,
    previous_client_auth_key_expires_at timestamptz,
    delivery_state              text NOT NULL DEFAULT 'active' CHECK (delivery_state IN ('active', 'paused')),
    paused_reason               text,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
