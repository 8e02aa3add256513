#!/bin/sh
# Restore a dump of backup.sh (docs/OPERATIONS.md, "Restoring a backup").
#
#   restore.sh DUMP [DATABASE]
#
# Replaces the content of DATABASE (default: PGDATABASE) with the dump's: other
# sessions on it are ended, its public schema (where the app keeps everything)
# is dropped and made again, and the dump is loaded in one transaction. A
# DATABASE that does not exist is created. Stop the app's services first. Give
# another DATABASE to check a dump without touching the live one (a restore
# drill). Connection: libpq's variables, as backup.sh.
#
# Emptied in place rather than dropped: DROP DATABASE forces a checkpoint, which
# takes minutes on a busy server.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 DUMP [DATABASE]" >&2
    exit 2
fi
dump=$1
database=${2:-${PGDATABASE:?give a DATABASE or set PGDATABASE}}
if [ ! -f "$dump" ]; then
    echo "restore: no such dump: $dump" >&2
    exit 2
fi
# A damaged archive is refused before anything is dropped.
pg_restore --list "$dump" >/dev/null

literal=$(printf '%s' "$database" | sed "s/'/''/g")
exists=$(psql --dbname=postgres --no-psqlrc -Atc "SELECT 1 FROM pg_database WHERE datname = '$literal'")
if [ "$exists" = 1 ]; then
    psql --dbname="$database" --no-psqlrc -q -v ON_ERROR_STOP=1 \
        -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$literal' AND pid <> pg_backend_pid()" \
        -c "DROP SCHEMA IF EXISTS public CASCADE" \
        -c "CREATE SCHEMA public" >/dev/null
else
    createdb --maintenance-db=postgres "$database"
fi
pg_restore --exit-on-error --single-transaction --no-owner --no-privileges \
    --dbname="$database" "$dump"
echo "restore: $database now holds $dump"
