#!/usr/bin/env bash
# Removes the edge agent installed by scripts/install-agent.sh. Config (/etc/edge-agent) and state
# (/var/lib/edge-agent: the outbox may still hold alerts) are kept unless --purge is given.
#
# Options:
#   --root DIR   act under DIR instead of / (DESTDIR style; no systemctl, no userdel)
#   --purge      also remove config, credentials, state and the edge-agent user
set -euo pipefail

ROOT="${DESTDIR:-}"
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "uninstall-agent: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
ROOT="${ROOT%/}"
REAL=0; [ -z "$ROOT" ] && REAL=1
log() { printf 'uninstall-agent: %s\n' "$*" >&2; }
[ "$REAL" = 0 ] || [ "$(id -u)" = 0 ] || { log "needs root (sudo), or --root DIR"; exit 1; }

if [ "$REAL" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now edge-agent.service >&2 || log "edge-agent.service was not enabled"
fi
rm -f "$ROOT/etc/systemd/system/edge-agent.service"
# The installer's node.conf drop-in belongs to the unit (it names the node ExecStart= runs), not to
# the operator: it goes with it. The operator's own drop-ins (systemctl edit) are kept unless purging.
NODE_DROPIN="$ROOT/etc/systemd/system/edge-agent.service.d/node.conf"
if [ -f "$NODE_DROPIN" ] && grep -q '^# Written by install-agent.sh' "$NODE_DROPIN"; then
  rm -f "$NODE_DROPIN"
  rmdir "${NODE_DROPIN%/*}" 2>/dev/null || true
fi
[ "$REAL" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ] && systemctl daemon-reload
if [ "$(readlink "$ROOT/usr/local/bin/edge-agent" 2>/dev/null)" = /opt/edge-agent/current/bin/edge-agent ]; then
  rm -f "$ROOT/usr/local/bin/edge-agent"
fi
rm -rf "$ROOT/opt/edge-agent"
log "removed /opt/edge-agent and the unit"

if [ "$PURGE" = 1 ]; then
  # The operator's unit drop-ins (systemctl edit) are configuration too: kept unless purging.
  rm -rf "$ROOT/etc/edge-agent" "$ROOT/var/lib/edge-agent" "$ROOT/var/cache/edge-agent" "$ROOT/var/log/edge-agent" \
    "$ROOT/etc/systemd/system/edge-agent.service.d"
  if [ "$REAL" = 1 ] && getent passwd edge-agent >/dev/null; then userdel edge-agent; fi
  log "purged config, credentials, state and the user"
else
  log "kept /etc/edge-agent and /var/lib/edge-agent (use --purge to remove them)"
fi
