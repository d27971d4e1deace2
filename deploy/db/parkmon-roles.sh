#!/bin/sh
# parkmon's database roles (数据库角色), run as a superuser. Idempotent: run it again whenever you like.
#   Before the first `parkmon ingest migrate`: creates the role parkmon writes as (owner of the database) and
#     Grafana's read-only role, sets both passwords from the environment (a changed password is applied), and
#     creates the TimescaleDB extension where the server has it (parkmon's role may not).
#   After every migrate: lets the read-only role SELECT every table of the schema except those holding secrets
#     (alert channels' webhook secrets and passwords, API token hashes). No default privileges: a table a later
#     migration adds is readable by Grafana once this runs again (it fails closed).
# compose runs it as the services db-roles (before migrate) and db-grants (after). Elsewhere, from any host with
# psql, connected by the usual libpq variables (PGHOST, PGPORT, PGUSER=postgres, PGPASSWORD of that superuser):
#   POSTGRES_DB=parkmon PARKMON_DB_USER=parkmon PARKMON_DB_PASSWORD=... \
#   PARKMON_GRAFANA_DB_USER=grafana_reader PARKMON_GRAFANA_DB_PASSWORD=... sh deploy/db/parkmon-roles.sh
# The passwords go from the environment into psql variables (\set ... `printenv`), never on a command line.
set -eu
: "${POSTGRES_DB:=parkmon}"
: "${PARKMON_DB_USER:=parkmon}"
: "${PARKMON_GRAFANA_DB_USER:=grafana_reader}"
: "${PARKMON_DB_PASSWORD:?the password of the role parkmon writes as}"
: "${PARKMON_GRAFANA_DB_PASSWORD:?the password of the read-only role of Grafana}"
export PARKMON_DB_PASSWORD PARKMON_GRAFANA_DB_PASSWORD

# -U only when POSTGRES_USER is set (the TimescaleDB image's superuser); otherwise libpq's PGUSER applies
exec psql -X -q -v ON_ERROR_STOP=1 ${POSTGRES_USER:+-U "$POSTGRES_USER"} -d "$POSTGRES_DB" \
    -v db="$POSTGRES_DB" -v owner="$PARKMON_DB_USER" -v reader="$PARKMON_GRAFANA_DB_USER" <<'SQL'
\set owner_password `printenv PARKMON_DB_PASSWORD`
\set reader_password `printenv PARKMON_GRAFANA_DB_PASSWORD`
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') AS make_owner,
       NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'reader') AS make_reader,
       EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb') AS has_timescaledb \gset
\if :make_owner
CREATE ROLE :"owner" LOGIN;
\endif
\if :make_reader
CREATE ROLE :"reader" LOGIN;
\endif
ALTER ROLE :"owner" WITH LOGIN NOSUPERUSER NOCREATEROLE PASSWORD :'owner_password';
ALTER ROLE :"reader" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reader_password';
\if :has_timescaledb
CREATE EXTENSION IF NOT EXISTS timescaledb;
\endif
-- parkmon creates its tables, partitions and hypertables as the database's owner
ALTER DATABASE :"db" OWNER TO :"owner";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
-- partitions and TimescaleDB chunks are read through their parent table
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
SELECT coalesce(string_agg(format('%I', c.relname), ', '), '') AS secret_tables,
       count(*) > 0 AS has_secret_tables
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname IN ('alert_subscriptions', 'api_tokens') \gset
\if :has_secret_tables
REVOKE ALL ON :secret_tables FROM :"reader";
\endif
SQL
