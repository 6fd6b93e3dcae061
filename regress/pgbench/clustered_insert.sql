-- regress/pgbench/clustered_insert.sql -- pgbench script of regress/concurrency-smoke.sh:
-- single-row inserts into a table with a clustered_pk_index; half the keys
-- are random, half ascend per client, so segments split under contention.
\set r random(1, 1000000)
\set k (:client_id + 1) * 10000000 + :r % 100000
INSERT INTO smoke_ck (id, payload) VALUES (:r, 'r'), (:k, 'a');
