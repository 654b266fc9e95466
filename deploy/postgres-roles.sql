-- The database's two roles for production, run by the operator with psql as a superuser:
--
--   psql -U postgres -d postgres -v db=materials \
--        -v owner_password=… -v app_password=… -f deploy/postgres-roles.sql
--
-- (without -v, the passwords are read from MATERIALS_OWNER_PASSWORD and MATERIALS_APP_PASSWORD
-- in psql's environment, which keeps them out of the process list).
--
-- materials_owner owns the database and everything in its schema and runs `materials migrate`.
-- materials_app is what the API and the workers connect as: SELECT, INSERT, UPDATE and DELETE on
-- every table the owner makes (default privileges, so tables of later migrations too), except
-- that the audit log's tables are only added to and read — migration 0011 takes UPDATE, DELETE
-- and TRUNCATE on them away again from every role but the owner, and this script does the same
-- for a database already past 0011 (and 0012's audit_prunes). Pruning archived events
-- (`materials audit archive --prune`) deletes from audit_events, so it runs as materials_owner,
-- like migrations; the app role cannot. The sequencer (in the workers and `serve`) still updates
-- audit_sequencer and audit_checkpoints.exported_at, which triggers allow.
--
-- Safe to run again: existing roles get the passwords given, and an existing database (one the
-- compose file's superuser made and migrated, say) is handed to materials_owner with its tables.
\set ON_ERROR_STOP on
\set QUIET on

\if :{?db}
\else
    DO $$ BEGIN RAISE EXCEPTION 'name the database: psql -v db=materials …'; END $$;
\endif
\if :{?owner_password}
\else
    \getenv owner_password MATERIALS_OWNER_PASSWORD
\endif
\if :{?app_password}
\else
    \getenv app_password MATERIALS_APP_PASSWORD
\endif
\if :{?owner_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'no password for materials_owner: -v owner_password=…'; END $$;
\endif
\if :{?app_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'no password for materials_app: -v app_password=…'; END $$;
\endif
SELECT :'owner_password' = '' OR :'app_password' = '' AS empty_password \gset
\if :empty_password
    DO $$ BEGIN RAISE EXCEPTION 'a password is empty'; END $$;
\endif

-- The roles: ordinary logins, neither a member of the other.
SELECT 'CREATE ROLE materials_owner'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'materials_owner') \gexec
SELECT 'CREATE ROLE materials_app'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'materials_app') \gexec
ALTER ROLE materials_owner WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    NOBYPASSRLS PASSWORD :'owner_password';
ALTER ROLE materials_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    NOBYPASSRLS PASSWORD :'app_password';
DO $$
BEGIN
    IF pg_has_role('materials_app', 'materials_owner', 'MEMBER') THEN
        RAISE EXCEPTION 'materials_app is a member of materials_owner: it would own the log';
    END IF;
END $$;

-- The database, owned by materials_owner.
SELECT format('CREATE DATABASE %I OWNER materials_owner ENCODING ''UTF8'' TEMPLATE template0', :'db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO materials_owner', :'db') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO materials_app', :'db') \gexec

\connect :"db"
-- Only the owner creates objects; the app uses what is there.
ALTER SCHEMA public OWNER TO materials_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO materials_app;

-- Tables and functions an earlier setup made as another role: the owner takes them over (the
-- sequences of their serial columns follow their tables). Extensions' objects stay as they are.
SELECT format('ALTER TABLE %s OWNER TO materials_owner', c.oid::regclass)
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
  AND c.relowner <> 'materials_owner'::regrole
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e') \gexec
SELECT format('ALTER FUNCTION %s OWNER TO materials_owner', p.oid::regprocedure)
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'
  AND p.proowner <> 'materials_owner'::regrole
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e') \gexec

-- What the app may do with tables the owner makes from now on (every later migration) …
ALTER DEFAULT PRIVILEGES FOR ROLE materials_owner
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO materials_app;
ALTER DEFAULT PRIVILEGES FOR ROLE materials_owner
    GRANT USAGE, SELECT ON SEQUENCES TO materials_app;
-- … and with those already there.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO materials_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO materials_app;

-- The audit log of a database past migration 0011: added to and read, never changed (the same
-- revoke as the migration's; the triggers it made refuse changes by the owner too).
DO $$
BEGIN
    IF to_regclass('public.audit_leaves') IS NOT NULL THEN
        REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER
            ON audit_events, audit_leaves, audit_tree_nodes, audit_legacy_chain
            FROM materials_app;
        REVOKE DELETE, TRUNCATE, TRIGGER ON audit_checkpoints FROM materials_app;
    END IF;
    IF to_regclass('public.audit_prunes') IS NOT NULL THEN
        REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER ON audit_prunes FROM materials_app;
    END IF;
END $$;

\echo 'materials_owner and materials_app are ready; run `materials migrate` as materials_owner'
