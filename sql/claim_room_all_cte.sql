-- Every row c locked is claimed: no kind in the batch has a limit of its
-- own (claim.sql, complete_and_claim.sql). $7 and $8, the limited
-- statements' kinds and rooms, are named so that both kinds of statement
-- take the same parameters; the caller passes them empty here.
room AS (
    SELECT id FROM c WHERE cardinality($7::text[]) = 0 OR $8::int[] IS NOT NULL
)
