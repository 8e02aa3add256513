#!/bin/sh
# Alertmanager of the compose profile `monitoring` (docs/OPERATIONS.md, "Alerts"):
# writes its configuration from the stack's mail settings, then runs the command
# given (the image's alertmanager). Alertmanager reads no environment variables,
# so the settings of `.env` reach it this way; the SMTP password goes to a file
# of its own (smtp_auth_password_file), never into the configuration.
#
# Alerts go to ALERTS_EMAIL (default: COORDINATORS_EMAIL) through SMTP_HOST,
# from MAIL_FROM, with STARTTLS unless SMTP_STARTTLS is false.
set -eu

config=${ALERTMANAGER_CONFIG:-/run/alertmanager/alertmanager.yml}
password_file="$(dirname "$config")/smtp_password"
: "${SMTP_HOST:?}" "${MAIL_FROM:?}"
to=${ALERTS_EMAIL:-${COORDINATORS_EMAIL:?set ALERTS_EMAIL or COORDINATORS_EMAIL}}

# A YAML double-quoted string: backslashes and quotes escaped.
quoted() {
    printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

case $(printf '%s' "${SMTP_STARTTLS:-true}" | tr '[:upper:]' '[:lower:]') in
0 | false | no | off) require_tls=false ;;
*) require_tls=true ;;
esac

umask 077
printf '%s' "${SMTP_PASSWORD:-}" >"$password_file"
{
    echo "global:"
    echo "  smtp_smarthost: $(quoted "$SMTP_HOST:${SMTP_PORT:-587}")"
    echo "  smtp_from: $(quoted "$MAIL_FROM")"
    echo "  smtp_require_tls: $require_tls"
    if [ -n "${SMTP_USERNAME:-}" ]; then
        echo "  smtp_auth_username: $(quoted "$SMTP_USERNAME")"
        echo "  smtp_auth_password_file: $(quoted "$password_file")"
    fi
    cat <<EOF
route:
  receiver: operators
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  # A problem still there is mailed again every 4 hours.
  repeat_interval: 4h
receivers:
  - name: operators
    email_configs:
      - to: $(quoted "$to")
        send_resolved: true
inhibit_rules:
  # No API at all: the alerts about what it would have measured add nothing.
  - source_matchers: [alertname = QuoteServiceApiMissing]
    target_matchers: [severity = warning]
EOF
} >"$config"
echo "alertmanager: alerts go to $to through ${SMTP_HOST}:${SMTP_PORT:-587}"

[ $# -eq 0 ] || exec "$@"
