#!/usr/bin/env bash
# Installs (or upgrades in place) the edge agent from an unpacked release tarball on Debian, Ubuntu
# or JetPack. Run it from the unpacked directory: sudo ./scripts/install-agent.sh
#
#   /opt/edge-agent/releases/<version>/   the release (dist/, node_modules/, configs/, docs/)
#   /opt/edge-agent/current               symlink to the running release (swapped atomically)
#   /etc/edge-agent/agent.json            config: written only if absent, never overwritten
#   /etc/edge-agent/credentials/device-secret   read by systemd (LoadCredential=), root-only;
#                                         only a box with "link" in agent.json needs one
#   /var/lib/edge-agent                   state (outbox, models); kept across upgrades
#   /etc/systemd/system/edge-agent.service     the unit (local changes belong in a drop-in:
#                                         systemctl edit edge-agent)
#   /etc/systemd/system/edge-agent.service.d/node.conf   only where /usr/bin/node is older than
#                                         20.19: the unit's ExecStart= with the node found on PATH
#
# Options:
#   --root DIR            install under DIR instead of / (DESTDIR style; no user, no systemctl)
#   --device-secret FILE  install this device secret (else keep the existing one)
#   --fleet-key FILE      install the fleet's public signing key (fleetctl key export) as
#                         /etc/edge-agent/fleet.pub, for "ota": { "publicKeyFile": "/etc/edge-agent/fleet.pub" }
#   --no-start            enable the unit but do not (re)start it
#   --keep N              releases to keep for rollback (default 3)
# Environment: DESTDIR works like --root.
set -euo pipefail

PKG="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="${DESTDIR:-}"
SECRET=""
FLEET_KEY=""
START=1
KEEP=3
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --device-secret) SECRET="$2"; shift 2 ;;
    --fleet-key) FLEET_KEY="$2"; shift 2 ;;
    --no-start) START=0; shift ;;
    --keep) KEEP="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^# Environment/p' "$0"; exit 0 ;;
    *) echo "install-agent: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
ROOT="${ROOT%/}"
REAL=0; [ -z "$ROOT" ] && REAL=1
log() { printf 'install-agent: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# The Node.js the unit runs (/usr/bin/node unless a drop-in names another, below).
NODE=/usr/bin/node
node_ok() { [ -x "$1" ] && "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' >/dev/null 2>&1; }
# The new release's check-config on the box's config, with the unit's node and the release's boards.
check_config() { EF_BOARDS_DIR="$1/configs/boards" UV_THREADPOOL_SIZE=16 "$NODE" "$1/dist/edge-agent.mjs" check-config "$ETC/agent.json" >&2; }
# Whether agent.json has a "link" section: only a box joined to a fleet needs the device secret. An
# unreadable file counts as joined (the secret is then asked for, as before).
config_has_link() {
  "$NODE" -e 'try { process.exit(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).link ? 0 : 1) } catch { process.exit(0) }' "$1"
}

[ -f "$PKG/VERSION" ] && [ -f "$PKG/dist/edge-agent.mjs" ] || die "run me from an unpacked release tarball (missing $PKG/VERSION or dist/edge-agent.mjs); build one with scripts/package-agent.sh"
VERSION="$(cat "$PKG/VERSION")"
ARCH="$(cat "$PKG/ARCH" 2>/dev/null || echo unknown)"
if [ "$REAL" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "needs root (sudo), or --root DIR for a staged install"
  # The unit runs /usr/bin/node, which is what must be new enough, not the node first on PATH: on
  # JetPack 6 / Ubuntu 22.04 apt's nodejs 12 sits in /usr/bin while Node 20 (a tarball, n) is in
  # /usr/local/bin. Then the unit is pointed at that one with a drop-in (step 5).
  if ! node_ok /usr/bin/node; then
    USR_BIN_NODE="$( { [ -x /usr/bin/node ] && /usr/bin/node -v 2>/dev/null; } || echo missing)"
    NODE="$(command -v node || true)"
    if [ -z "$NODE" ] || [ "$NODE" = /usr/bin/node ] || ! node_ok "$NODE"; then
      die "the agent needs Node.js >= 20.19, but /usr/bin/node (which the unit runs) is $USR_BIN_NODE${NODE:+ and $NODE is $("$NODE" -v 2>/dev/null || echo unusable)}; install nodejs 20 (NodeSource; docs/operations.md)"
    fi
    case "$(readlink -f "$NODE")" in
      /home/*|/root/*|/run/user/*) die "node $("$NODE" -v) at $NODE lives in a home directory, which the service cannot read (ProtectHome=yes): install Node.js >= 20.19 system-wide (NodeSource, or a tarball under /usr/local)" ;;
    esac
  fi
  case "$(uname -m)" in x86_64) M=linux-x64 ;; aarch64) M=linux-arm64 ;; *) M="linux-$(uname -m)" ;; esac
  [ "$M" = "$ARCH" ] || die "this release is for $ARCH but the machine is $M"
fi

OPT="$ROOT/opt/edge-agent"
ETC="$ROOT/etc/edge-agent"
STATE="$ROOT/var/lib/edge-agent"
UNIT_DIR="$ROOT/etc/systemd/system"
REL="$OPT/releases/$VERSION"

# 1. System user (camera devices are group video; Jetson GPU nodes are group render/video).
if [ "$REAL" = 1 ]; then
  if ! getent passwd edge-agent >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/edge-agent --no-create-home --shell /usr/sbin/nologin edge-agent
    log "created system user edge-agent"
  fi
  for g in video render; do getent group "$g" >/dev/null && usermod -aG "$g" edge-agent; done
else
  log "--root given: not creating the edge-agent user"
fi

# 2. The release, in its own directory; the running one is untouched until the symlink swap.
mkdir -p "$OPT/releases"
TMP_REL="$OPT/releases/.$VERSION.tmp.$$"
rm -rf "$TMP_REL"
mkdir -p "$TMP_REL"
for item in dist node_modules bin configs docs scripts package.json VERSION ARCH NEEDS_REBUILD; do
  [ -e "$PKG/$item" ] && cp -a "$PKG/$item" "$TMP_REL/"
done
# Addons without a prebuilt for this architecture are built here (scripts/package-agent.sh).
if [ -s "$TMP_REL/NEEDS_REBUILD" ]; then
  if [ "$REAL" = 1 ]; then
    mapfile -t rebuild < "$TMP_REL/NEEDS_REBUILD"
    log "building native addons on this machine: ${rebuild[*]} (needs build-essential python3 libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev)"
    (cd "$TMP_REL" && npm_config_nodedir="${npm_config_nodedir:-/usr}" npm rebuild --no-audit --no-fund "${rebuild[@]}" >&2) \
      || die "npm rebuild ${rebuild[*]} failed; install the build packages above and re-run"
    : > "$TMP_REL/NEEDS_REBUILD"
  else
    log "--root given: skipping npm rebuild of $(tr '\n' ' ' < "$TMP_REL/NEEDS_REBUILD")"
  fi
fi
PREVIOUS="$(readlink "$OPT/current" 2>/dev/null || true)"
# The operator's config must be accepted by the new release before `current` points at it: after the
# swap any restart (reboot, watchdog, crash) runs the new release, and one that refuses the config
# keeps the box down. Refused on an upgrade: nothing changes, the running release stays.
CONFIG_STATE=unchecked
if [ "$REAL" = 1 ] && [ -f "$ETC/agent.json" ]; then
  if check_config "$TMP_REL"; then
    CONFIG_STATE=ok
  elif [ -n "$PREVIOUS" ]; then
    rm -rf "$TMP_REL"
    die "edge-agent $VERSION refuses $ETC/agent.json (above): not installed, nothing changed, the previous release still runs (current -> $PREVIOUS). Fix the config so that $VERSION accepts it, then run this installer again"
  else
    CONFIG_STATE=refused
  fi
fi
# Re-installing the same version: move the old copy aside first, so `current` never dangles for long.
[ -e "$REL" ] && mv "$REL" "$OPT/releases/.$VERSION.old.$$"
mv "$TMP_REL" "$REL"
ln -sfn "releases/$VERSION" "$OPT/.current.tmp"
mv -T "$OPT/.current.tmp" "$OPT/current"
rm -rf "$OPT/releases/.$VERSION.old.$$"
log "release $VERSION ($ARCH) at $REL; current -> releases/$VERSION${PREVIOUS:+ (was $PREVIOUS)}"

# Keep the newest $KEEP releases (by install time), never the current one.
ls -1t "$OPT/releases" | grep -v '^\.' | tail -n +"$((KEEP + 1))" | while read -r old; do
  [ "releases/$old" = "$(readlink "$OPT/current")" ] || { rm -rf "${OPT:?}/releases/$old"; log "removed old release $old"; }
done

# 3. Config and credentials: created once, never overwritten.
mkdir -p "$ETC/credentials"
chmod 0755 "$ETC"; chmod 0700 "$ETC/credentials"
if [ ! -f "$ETC/agent.json" ]; then
  if [ -f "$REL/configs/agent.example.json" ]; then
    # The example's paths are relative to a checkout's configs/ (../assets/...): under /etc they named
    # /etc/assets. The models are looked for where docs/operations.md has them copied,
    # models/factory/NAME/ (NAME as in the checkout's assets/models/), the rest (the demo video) under
    # the state directory's assets/.
    sed -e 's#"stateDir": *"[^"]*"#"stateDir": "/var/lib/edge-agent"#' \
      -e 's#"\.\./assets/models/#"/var/lib/edge-agent/models/factory/#g' \
      -e 's#"\.\./assets/#"/var/lib/edge-agent/assets/#g' \
      "$REL/configs/agent.example.json" > "$ETC/agent.json"
  else
    printf '{\n  "deviceId": "%s",\n  "stateDir": "/var/lib/edge-agent",\n  "cameras": []\n}\n' "$(hostname)" > "$ETC/agent.json"
  fi
  chmod 0640 "$ETC/agent.json"
  log "wrote $ETC/agent.json from the example: edit it, then: edge-agent check-config $ETC/agent.json"
else
  log "kept $ETC/agent.json"
fi
cp "$REL/configs/agent.example.json" "$ETC/agent.example.json" 2>/dev/null || true
if [ -n "$SECRET" ]; then
  install -m 0600 "$SECRET" "$ETC/credentials/device-secret"
  log "installed the device secret"
elif [ ! -f "$ETC/credentials/device-secret" ]; then
  log "no device secret yet: a box joined to a fleet (\"link\" in agent.json) needs it in $ETC/credentials/device-secret (mode 0600, root) - fleetctl device add prints it; a stand-alone box does not"
fi
# systemd before 247 (JetPack 5 has 245) has no LoadCredential=: it warns and ignores the line, and
# the agent (user edge-agent) could not read a root-only secret. There the secret is readable by the
# group edge-agent, and the agent reads it from link.secretFile.
SD_VERSION="$(systemctl --version 2>/dev/null | awk 'NR == 1 { print $2 }')"
if [ "$REAL" = 1 ] && [ -n "$SD_VERSION" ] && [ "$SD_VERSION" -lt 247 ] 2>/dev/null && [ -f "$ETC/credentials/device-secret" ]; then
  chgrp edge-agent "$ETC/credentials" "$ETC/credentials/device-secret"
  chmod 0750 "$ETC/credentials"; chmod 0640 "$ETC/credentials/device-secret"
  log "systemd $SD_VERSION has no LoadCredential= (247+): the secret is readable by group edge-agent; set \"secretFile\": \"$ETC/credentials/device-secret\" in the link section of agent.json"
fi
if [ -n "$FLEET_KEY" ]; then
  grep -q 'BEGIN PUBLIC KEY' "$FLEET_KEY" || die "$FLEET_KEY is not a PEM public key (expected the output of fleetctl key export)"
  install -m 0644 "$FLEET_KEY" "$ETC/fleet.pub"
  log "installed the fleet's public key as $ETC/fleet.pub (model updates must verify against it)"
fi

# 4. State directory (systemd's StateDirectory= also creates it; made here for staged installs).
# models/factory too, owned by the agent: a first model copied there with sudo would otherwise leave
# models/ owned by root, and over-the-air updates could not create models/detector.
mkdir -p "$STATE/models/factory"
chmod 0750 "$STATE"
if [ "$REAL" = 1 ]; then
  chown -R edge-agent:edge-agent "$STATE"
  chgrp edge-agent "$ETC/agent.json"
fi

# 5. Unit and a CLI symlink.
mkdir -p "$UNIT_DIR" "$ROOT/usr/local/bin"
install -m 0644 "$REL/configs/systemd/edge-agent.service" "$UNIT_DIR/edge-agent.service"
# The unit's ExecStart with the node chosen at the top; removed again once /usr/bin/node is new enough.
# The operator's own drop-ins (systemctl edit: override.conf) are left alone.
NODE_DROPIN="$UNIT_DIR/edge-agent.service.d/node.conf"
if [ "$REAL" = 1 ] && [ "$NODE" != /usr/bin/node ]; then
  mkdir -p "${NODE_DROPIN%/*}"
  {
    printf '# Written by install-agent.sh: /usr/bin/node is %s, the agent needs >= 20.19: the unit runs %s (%s).\n' "$USR_BIN_NODE" "$NODE" "$("$NODE" -v)"
    printf '# Each run of the installer rewrites this file, or removes it when /usr/bin/node is new enough.\n[Service]\nExecStart=\n'
    sed -n "s|^ExecStart=/usr/bin/node |ExecStart=$NODE |p" "$REL/configs/systemd/edge-agent.service"
  } > "$NODE_DROPIN"
  chmod 0644 "$NODE_DROPIN"
  grep -q "^ExecStart=$NODE " "$NODE_DROPIN" || die "could not write the unit's ExecStart with $NODE into $NODE_DROPIN"
  log "/usr/bin/node is $USR_BIN_NODE: the unit runs $NODE ($("$NODE" -v)) through $NODE_DROPIN"
elif [ "$REAL" = 1 ] && [ -f "$NODE_DROPIN" ] && grep -q '^# Written by install-agent.sh' "$NODE_DROPIN"; then
  rm -f "$NODE_DROPIN"
  rmdir "${NODE_DROPIN%/*}" 2>/dev/null || true
  log "removed $NODE_DROPIN: the unit runs /usr/bin/node again"
fi
ln -sfn /opt/edge-agent/current/bin/edge-agent "$ROOT/usr/local/bin/edge-agent"

if [ "$REAL" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable edge-agent.service >&2
  if [ "$START" = 1 ]; then
    if [ "$CONFIG_STATE" = refused ]; then
      log "not starting: edge-agent $VERSION refuses $ETC/agent.json (above); fix it, then: systemctl restart edge-agent"
    elif [ ! -f "$ETC/credentials/device-secret" ] && config_has_link "$ETC/agent.json"; then
      log "not starting: agent.json has a link but there is no device secret yet: install it with --device-secret FILE, or remove \"link\" to run stand-alone"
    elif [ "$CONFIG_STATE" != ok ] && ! check_config "$REL"; then
      # A config naming a model that is not there would only restart in a loop under systemd.
      log "not starting: fix $ETC/agent.json (above), then: systemctl restart edge-agent"
    else
      systemctl restart edge-agent.service
      log "edge-agent (re)started; follow it with: journalctl -u edge-agent -f"
    fi
  fi
else
  log "systemd not running here (or --root): enable with 'systemctl daemon-reload && systemctl enable --now edge-agent'"
fi
if [ "$CONFIG_STATE" = refused ]; then
  # A first install onto a config placed beforehand: installed, but a fleet script must not read success.
  die "installed edge-agent $VERSION, but it refuses $ETC/agent.json (above): fix it, then: systemctl restart edge-agent"
fi
log "installed edge-agent $VERSION"
