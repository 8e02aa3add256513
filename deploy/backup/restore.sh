#!/bin/sh
# Restore a dump of backup.sh (docs/OPERATIONS.md, "Restoring a backup").
#
#   restore.sh DUMP [DATABASE]
#
# Replaces DATABASE (default: PGDATABASE) with the dump's content: the database
# is dropped (its open connections ended), created empty and filled. Stop the
# app's services first. Give another DATABASE to check a dump without touching
# the live one (a restore drill). Connection: libpq's variables, as backup.sh.
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

dropdb --maintenance-db=postgres --if-exists --force "$database"
createdb --maintenance-db=postgres "$database"
pg_restore --exit-on-error --no-owner --no-privileges --dbname="$database" "$dump"
echo "restore: $database now holds $dump"
