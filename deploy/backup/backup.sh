#!/bin/sh
# Backups of the database (docker-compose.yml, service `backup`; docs/OPERATIONS.md).
#
#   backup.sh once   one dump now, then drop the dumps older than BACKUP_KEEP_DAYS
#   backup.sh loop   the same at start and every BACKUP_INTERVAL_HOURS after
#
# The database is named by libpq's variables (PGHOST, PGPORT, PGUSER, PGPASSWORD,
# PGDATABASE). Each dump is pg_dump's custom format (compressed, restored with
# pg_restore, see restore.sh), written as BACKUP_DIR/<database>-<UTC time>.dump.
# A dump is written under a temporary name, checked to be a readable archive, and
# only then renamed: a file named *.dump is always a complete one.
#
# The dumps hold the encrypted columns as they are stored, encrypted: they are
# readable only with DATA_ENCRYPTION_KEYS, which must never be kept with them.
set -eu

BACKUP_DIR=${BACKUP_DIR:-/backups}
BACKUP_KEEP_DAYS=${BACKUP_KEEP_DAYS:-14}
BACKUP_INTERVAL_HOURS=${BACKUP_INTERVAL_HOURS:-24}
: "${PGDATABASE:?set PGDATABASE (and PGHOST, PGUSER, PGPASSWORD) to the database to dump}"

once() {
    # Dumps hold personal data: readable by this user only.
    umask 077
    mkdir -p "$BACKUP_DIR"
    target="$BACKUP_DIR/$PGDATABASE-$(date -u +%Y%m%dT%H%M%SZ).dump"
    pg_dump --format=custom --no-owner --no-privileges --file="$target.partial"
    pg_restore --list "$target.partial" >/dev/null
    mv "$target.partial" "$target"
    echo "backup: wrote $target ($(wc -c <"$target") bytes)"
    # Kept BACKUP_KEEP_DAYS days; leftovers of an interrupted dump go after a day.
    find "$BACKUP_DIR" -maxdepth 1 -type f -name "$PGDATABASE-*.dump" \
        -mmin +$((BACKUP_KEEP_DAYS * 24 * 60)) -print -exec rm -f {} + |
        sed 's/^/backup: removed old /'
    find "$BACKUP_DIR" -maxdepth 1 -type f -name "$PGDATABASE-*.dump.partial" \
        -mmin +$((24 * 60)) -exec rm -f {} +
}

case "${1:-}" in
once)
    once
    ;;
loop)
    while :; do
        # A failed dump is logged and retried at the next interval; the service's
        # health check turns unhealthy when the newest dump is too old.
        sh "$0" once || echo "backup: FAILED (exit $?); next try in ${BACKUP_INTERVAL_HOURS}h" >&2
        sleep $((BACKUP_INTERVAL_HOURS * 3600))
    done
    ;;
*)
    echo "usage: $0 once|loop" >&2
    exit 2
    ;;
esac
