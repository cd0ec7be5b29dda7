-- Per-kind limits, kept by the claim itself (claim_limited.sql,
-- complete_and_claim_limited.sql): of the rows c locked, a kind named in $7
-- gets no more than its room in $8; the rest of the batch still fills, and
-- what is left stays pending (its locks go at commit). Statements whose
-- kinds have no limit of their own use claim_room_all_cte.sql instead: the ranking
-- costs planning time on every call (custom plans: sql/work_session.sql).
room AS (
    SELECT ranked.id
      FROM (SELECT c.id, c.kind,
                   row_number() OVER (PARTITION BY c.kind ORDER BY c.priority DESC, c.run_at, c.id) AS nth
              FROM c) AS ranked
      LEFT JOIN unnest($7::text[], $8::int[]) AS r(kind, room) ON r.kind = ranked.kind
     WHERE r.room IS NULL OR ranked.nth <= r.room
)
