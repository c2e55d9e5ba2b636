-- Transaction control, session settings, utility statements and what pins a session.

-- name: begin_plain
-- expect: kind=transaction cacheable=false reason="transaction control" tx=begin isolation=-
BEGIN

-- name: begin_serializable
-- expect: kind=transaction cacheable=false tx=begin isolation=serializable
BEGIN ISOLATION LEVEL SERIALIZABLE

-- name: start_transaction_repeatable_read_ro
-- expect: kind=transaction cacheable=false tx=begin isolation=repeatable_read readonly=true command="START TRANSACTION"
START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY

-- name: begin_read_only_deferrable
-- expect: kind=transaction cacheable=false tx=begin readonly=true
BEGIN READ ONLY DEFERRABLE

-- name: commit
-- expect: kind=transaction cacheable=false tx=commit
COMMIT

-- name: end_is_commit
-- expect: kind=transaction cacheable=false tx=commit
END

-- name: commit_and_chain
-- expect: kind=transaction cacheable=false tx=commit
COMMIT AND CHAIN

-- name: rollback
-- expect: kind=transaction cacheable=false tx=rollback
ROLLBACK

-- name: abort
-- expect: kind=transaction cacheable=false tx=rollback
ABORT

-- name: savepoint
-- expect: kind=transaction cacheable=false tx=savepoint
SAVEPOINT before_import

-- name: release_savepoint
-- expect: kind=transaction cacheable=false tx=release
RELEASE SAVEPOINT before_import

-- name: rollback_to_savepoint
-- expect: kind=transaction cacheable=false tx=rollback_to
ROLLBACK TO SAVEPOINT before_import

-- name: prepare_transaction
-- expect: kind=transaction cacheable=false tx=prepare
PREPARE TRANSACTION 'txn-2024-05-01-42'

-- name: set_transaction_isolation
-- expect: kind=transaction cacheable=false tx=set_transaction isolation=repeatable_read
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ

-- name: set_session_characteristics_serializable
-- expect: kind=session cacheable=false setname=default_transaction_isolation setvalue=serializable known=true
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE

-- name: set_session_characteristics_two
-- expect: kind=session cacheable=false setname="session characteristics" setvalue="read uncommitted" known=true
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED, READ ONLY

-- name: set_time_zone
-- expect: kind=session cacheable=false reason="session setting" setname=timezone setvalue=UTC setlocal=false known=true
SET TIME ZONE 'UTC'

-- name: set_timezone_equals
-- expect: kind=session cacheable=false setname=timezone setvalue=Europe/Berlin known=true
SET TimeZone = 'Europe/Berlin'

-- name: set_datestyle_list
-- expect: kind=session cacheable=false setname=datestyle setvalue="iso, mdy" known=true
SET DateStyle TO ISO, MDY

-- name: set_search_path
-- expect: kind=session cacheable=false setname=search_path setvalue="$user, public, analytics" known=true
SET search_path TO "$user", public, analytics

-- name: set_local_statement_timeout
-- expect: kind=session cacheable=false setname=statement_timeout setvalue=30s setlocal=true known=true
SET LOCAL statement_timeout = '30s'

-- name: set_work_mem
-- expect: kind=session cacheable=false setname=work_mem setvalue=256MB known=true
SET work_mem = '256MB'

-- name: set_custom_guc_pins
-- expect: kind=session cacheable=false setname=app.tenant_id setvalue=42 known=false pin="SET of unknown setting app.tenant_id"
SET app.tenant_id = '42'

-- name: set_local_custom_guc
-- expect: kind=session cacheable=false setname=app.tenant_id setlocal=true known=false
SET LOCAL app.tenant_id = '42'

-- name: set_role
-- expect: kind=session cacheable=false setname=role setvalue=analyst known=true
SET ROLE analyst

-- name: reset_role
-- expect: kind=session cacheable=false setname=role known=true command=RESET
RESET ROLE

-- name: reset_all
-- expect: kind=session cacheable=false setname=- known=true
RESET ALL

-- name: discard_all
-- expect: kind=session cacheable=false command=DISCARD known=true
DISCARD ALL

-- name: set_names
-- expect: kind=session cacheable=false setname=client_encoding setvalue=UTF8 known=true
SET NAMES 'UTF8'

-- name: show_timezone
-- expect: kind=utility cacheable=false reason="utility statement" command=SHOW
SHOW TimeZone

-- name: listen_pins
-- expect: kind=utility cacheable=false pin=LISTEN
LISTEN order_events

-- name: notify
-- expect: kind=utility cacheable=false
NOTIFY order_events, 'refresh'

-- name: declare_cursor_no_hold
-- expect: kind=utility cacheable=false reads=orders
DECLARE c1 NO SCROLL CURSOR FOR SELECT * FROM orders

-- name: prepare_sql_level
-- expect: kind=utility cacheable=false pin=PREPARE reads=orders
PREPARE recent_orders (int) AS SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 10

-- name: execute_prepared
-- expect: kind=unknown cacheable=false reason="not understood"
EXECUTE recent_orders (42)

-- name: deallocate
-- expect: kind=utility cacheable=false
DEALLOCATE ALL

-- name: explain_select
-- expect: kind=utility cacheable=false reads=orders
EXPLAIN SELECT * FROM orders WHERE id = 1

-- name: explain_analyze_select
-- expect: kind=utility cacheable=false reads=orders
EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM orders

-- name: explain_analyze_delete_writes
-- expect: kind=write cacheable=false writes=orders
EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1

-- name: advisory_lock_pins
-- expect: kind=read cacheable=false reason="volatile function pg_advisory_lock()" pin="session advisory lock"
SELECT pg_advisory_lock(42)

-- name: advisory_xact_lock_no_pin
-- expect: kind=read cacheable=false reason="volatile function pg_advisory_xact_lock()"
SELECT pg_advisory_xact_lock(hashtext('nightly-load'))

-- name: set_config_session_pins
-- expect: kind=read cacheable=false pin=set_config
SELECT set_config('search_path', 'analytics, public', false)

-- name: set_config_local_no_pin
-- expect: kind=read cacheable=false
SELECT set_config('app.tenant_id', '42', true)

-- name: checkpoint
-- expect: kind=utility cacheable=false
CHECKPOINT

-- name: load_library_pins
-- expect: kind=utility cacheable=false pin=LOAD
LOAD 'auto_explain'

-- name: multi_statement_transaction
-- expect: kind=write cacheable=false statements=3 writes=counters
BEGIN; UPDATE counters SET n = n + 1 WHERE id = 1; COMMIT;

-- name: multi_statement_reads
-- expect: kind=read cacheable=true statements=2 reads=customers,orders
SELECT count(*) FROM orders; SELECT count(*) FROM customers;

-- name: empty_query_comment_only
-- expect: kind=unknown cacheable=false reason="empty query" statements=0
-- nothing to see here
