-- A sign-in link and the web session it opens belong to the SSH key that asked
-- for the link: removing the key ends them (NULL: made without a key).
ALTER TABLE login_tokens ADD COLUMN key_id INTEGER REFERENCES keys(id) ON DELETE CASCADE;
ALTER TABLE web_sessions ADD COLUMN key_id INTEGER REFERENCES keys(id) ON DELETE CASCADE;
