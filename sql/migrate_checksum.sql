-- The checksum recorded for a migration file: sha256 of its UTF-8 text.
-- Computed by the server so the binary carries no hash code of its own.
SELECT encode(sha256(convert_to($1::text, 'UTF8')), 'hex')
