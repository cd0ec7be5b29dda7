-- Whether a source's claim reads a partial index of its table in claim
-- order, and the index to create when it does not; for
-- source_check_index() (dispatcher/source_check.c). Reads the plan and
-- the catalog only.
--
--   $1  the claim's plan: the text of EXPLAIN (FORMAT JSON, VERBOSE)
--   $2  the table's schema, $3 the table (catalog names, unquoted)
--   $4  the status column, $5 the pending value
--   $6  the priority column (NULL: not mapped)
--   $7  the order column: order_by, else the key
--
-- ok: some Index Scan or Index Only Scan node reads the table through an
-- index with a predicate (a partial index), and no node sorts. The plan
-- was made with sorts discouraged, so a Sort still in it means no index
-- gives the claim's order. The JSON is read by PostgreSQL's own parser
-- (jsonpath .** visits every nested node), not by searching its text.
--
-- advice: the index that serves the claim, priority first when mapped,
-- its predicate the claim's own (status = the pending value, as a
-- literal). format()'s %I quotes by quote_ident() rules and %L makes a
-- literal. The name keeps its suffix within the 63 bytes of a name when
-- the table's name is ASCII (left() counts characters; a longer name is
-- cut by the server, with a NOTICE).
-- q_table: the table's name for the message.
WITH node AS (
    SELECT n
      FROM jsonb_path_query($1::jsonb, 'strict $.**') AS p(n)
     WHERE jsonb_typeof(n) = 'object' AND n ? 'Node Type'
)
SELECT EXISTS (SELECT 1
                 FROM node
                 JOIN pg_namespace AS s ON s.nspname = node.n->>'Schema'
                 JOIN pg_class AS t ON t.relnamespace = s.oid AND t.relname = node.n->>'Relation Name'
                 JOIN pg_class AS i ON i.relnamespace = s.oid AND i.relname = node.n->>'Index Name'
                 JOIN pg_index AS x ON x.indexrelid = i.oid AND x.indrelid = t.oid
                WHERE node.n->>'Node Type' IN ('Index Scan', 'Index Only Scan')
                  AND s.nspname = $2 AND t.relname = $3 AND x.indpred IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM node WHERE node.n->>'Node Type' IN ('Sort', 'Incremental Sort')) AS ok,
       format('CREATE INDEX CONCURRENTLY %I ON %I.%I (%s) WHERE %I = %L;',
              left($3::text, 42) || '_pgdispatch_claim_idx', $2::text, $3::text,
              concat_ws(', ', quote_ident($6::text) || ' DESC', quote_ident($7::text)), $4::text, $5::text) AS advice,
       quote_ident($2::text) || '.' || quote_ident($3::text) AS q_table
