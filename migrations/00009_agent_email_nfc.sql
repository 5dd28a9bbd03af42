-- +goose Up
-- Agent emails are now stored and looked up in Unicode normalization form C.
-- Rows written before keep the form they were typed in; this rewrites them,
-- except where that would collide with another agent's address. Only a UTF8
-- database can normalize, and only there can non-ASCII emails differ.
-- +goose StatementBegin
DO $$
BEGIN
    IF current_setting('server_encoding') = 'UTF8' THEN
        UPDATE agents a SET email = normalize(a.email, NFC)
        WHERE a.email IS NOT NFC NORMALIZED
          AND NOT EXISTS (
              SELECT 1 FROM agents b
              WHERE b.id <> a.id AND lower(b.email) = lower(normalize(a.email, NFC)));
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The forms the emails were typed in are not kept, so nothing is undone.
SELECT 1;
