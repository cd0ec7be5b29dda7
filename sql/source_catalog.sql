-- What the catalog says about a source's table, for source_check()
-- (dispatcher/source_check.c). Reads the catalog only: every name arrives
-- as a parameter and is compared as a value, never spliced into SQL, and
-- nothing here needs a privilege on the table itself.
--
--   $1       the table as the config writes it: schema.table, parsed by
--            parse_ident() (unquoted parts fold to lower case)
--   $2       the key column; NULL: the table's primary key, if it has one column
--   $3       the status column
--   $4, $5   the payload column, the order_by column (NULL: none)
--   $6..$14  the mapped columns, in enum source_column order (NULL: not mapped)
--   $15..$18 the pending, in_progress, complete and failed values
--
-- One row per column slot $2..$14 (ord 1..13), each repeating the table's
-- facts; the row of a column that does not exist has a NULL attname, and
-- every table fact is NULL when the table does not exist. For an enum
-- column, labels lists its labels and has_* say whether $15..$18 are among
-- them. q_* are names
-- quoted by quote_ident() rules, for the messages and the GRANT advice.
-- A domain counts as its base type (one level: a domain of a domain is
-- taken at its declared type).
WITH ident AS (
    SELECT parse_ident($1) AS part
), tbl AS (
    SELECT cardinality(i.part) AS nparts, n.oid AS nspoid, n.nspname, c.oid AS reloid, c.relname, c.relkind
      FROM ident AS i
      LEFT JOIN pg_namespace AS n ON cardinality(i.part) = 2 AND n.nspname = i.part[1]
      LEFT JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = i.part[2]
), pk AS (
    -- indkey is an int2vector: its subscripts start at 0.
    SELECT x.indnkeyatts AS ncols, x.indkey[0] AS attnum
      FROM tbl JOIN pg_index AS x ON x.indrelid = tbl.reloid AND x.indisprimary
), wanted AS (
    SELECT w.name, w.ord
      FROM unnest(ARRAY[$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14]::text[])
           WITH ORDINALITY AS w(name, ord)
)
SELECT tbl.nparts,
       tbl.nspname AS schema,
       tbl.relname AS "table",
       tbl.relkind,
       quote_ident(tbl.nspname) || '.' || quote_ident(tbl.relname) AS q_table,
       quote_ident(tbl.nspname) AS q_schema,
       quote_ident(current_user) AS q_role,
       has_schema_privilege(tbl.nspoid, 'USAGE') AS schema_usage,
       has_table_privilege(tbl.reloid, 'SELECT') AS table_select,
       (SELECT pk.ncols FROM pk) AS pk_columns,
       wanted.ord,
       a.attname,
       quote_ident(a.attname) AS q_column,
       a.atttypid AS type_oid,
       CASE WHEN bt.typtype = 'e' THEN quote_ident(bn.nspname) || '.' || quote_ident(bt.typname)
            ELSE format_type(a.atttypid, a.atttypmod) END AS type_name,
       bt.oid AS base_type_oid,
       bt.typtype = 'e' AS is_enum,
       array_to_string(en.labels, ', ') AS labels,
       $15 = ANY (en.labels) AS has_pending,
       $16 = ANY (en.labels) AS has_in_progress,
       $17 = ANY (en.labels) AS has_complete,
       $18 = ANY (en.labels) AS has_failed,
       a.attnotnull AS not_null,
       EXISTS (SELECT 1 FROM pg_index AS x
                WHERE x.indrelid = tbl.reloid AND x.indisunique AND x.indisvalid
                  AND x.indpred IS NULL AND x.indexprs IS NULL
                  AND x.indnkeyatts = 1 AND x.indkey[0] = a.attnum) AS is_unique,
       has_column_privilege(tbl.reloid, a.attnum, 'UPDATE') AS can_update
  FROM tbl
 CROSS JOIN wanted
  LEFT JOIN pg_attribute AS a
         ON a.attrelid = tbl.reloid AND a.attnum > 0 AND NOT a.attisdropped
        AND (a.attname = wanted.name
             OR (wanted.ord = 1 AND wanted.name IS NULL AND a.attnum = (SELECT pk.attnum FROM pk WHERE pk.ncols = 1)))
  LEFT JOIN pg_type AS dt ON dt.oid = a.atttypid
  LEFT JOIN pg_type AS bt ON bt.oid = CASE WHEN dt.typtype = 'd' THEN dt.typbasetype ELSE dt.oid END
  LEFT JOIN pg_namespace AS bn ON bn.oid = bt.typnamespace
  LEFT JOIN LATERAL (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
                       FROM pg_enum AS e WHERE e.enumtypid = bt.oid) AS en ON true
 ORDER BY wanted.ord
