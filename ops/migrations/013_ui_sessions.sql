-- The analyst inbox (issue 15): a browser signs in once with an API key of the analyst scope
-- and then holds a session cookie. Only the sha256 of the cookie's random id is stored, so a
-- copy of this table signs nobody in. The key's name, not its scopes, is kept: the scopes are
-- read from API_KEYS_SHA256 on every request, so a key removed from it ends its sessions.
CREATE TABLE ui_sessions (
    id_sha256  text PRIMARY KEY CHECK (id_sha256 ~ '^[0-9a-f]{64}$'),
    key_name   text NOT NULL,
    -- The synchronizer token every state change from this session must carry (X-CSRF-Token).
    csrf_token text NOT NULL CHECK (length(csrf_token) >= 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX ui_sessions_expires_idx ON ui_sessions (expires_at);

-- Gateway: signs in (insert), looks up, signs out and drops expired sessions (delete).
GRANT SELECT, INSERT, DELETE ON ui_sessions TO jalytics_gateway;
