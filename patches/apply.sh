#!/usr/bin/env bash
# Applies our patches to npm packages, then rebuilds those with a native part. Each patch is
# patches/<package>+<version>.patch, a unified diff (-p1) against that package's directory; the
# package must be at that version. Idempotent: a patch already applied, with a build made from it
# (build/.ef-patch holds the patch's sha256), costs nothing.
#   patches/apply.sh NODE_MODULES_DIR                  patch, then rebuild (npm rebuild) what changed
#   patches/apply.sh --sources-only NODE_MODULES_DIR   patch the sources only (a release for another
#                                                      architecture: the target's npm rebuild builds them)
# Called by scripts/setup.sh after npm ci and by scripts/package-agent.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[patches] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

REBUILD=1
if [ "${1:-}" = --sources-only ]; then REBUILD=0; shift; fi
[ $# -eq 1 ] || die "usage: patches/apply.sh [--sources-only] NODE_MODULES_DIR"
NM="$(cd "$1" && pwd)" || die "no such node_modules directory: $1"
command -v patch >/dev/null || die "the patch command is missing (apt-get install patch; build-essential brings it)"
if [ -f /usr/include/node/node.h ]; then export npm_config_nodedir="${npm_config_nodedir:-/usr}"; fi

for file in "$HERE"/*.patch; do
  [ -e "$file" ] || continue
  base="$(basename "$file" .patch)"
  name="${base%+*}"; want="${base##*+}"
  dir="$NM/$name"
  [ -f "$dir/package.json" ] || die "$name is not installed in $NM (run npm ci first)"
  have="$(node -p 'require(process.argv[1]).version' "$dir/package.json")"
  [ "$have" = "$want" ] || die "$(basename "$file") is for $name $want but $have is installed: check whether $have still needs it, then rewrite the patch for $have (diff -u against its sources) and rename it"
  if patch -p1 -R --fuzz=0 --dry-run -s -f -d "$dir" < "$file" >/dev/null 2>&1; then
    :
  elif patch -p1 -N --fuzz=0 --dry-run -s -f -d "$dir" < "$file" >/dev/null 2>&1; then
    patch -p1 -N --fuzz=0 -s -f -d "$dir" < "$file" >/dev/null
    log "applied $(basename "$file")"
  else
    die "$(basename "$file") does not apply to $dir (its sources differ from npm's $name $want): reinstall it (rm -rf $dir && npm ci), then run this again"
  fi
  [ "$REBUILD" = 1 ] && [ -f "$dir/binding.gyp" ] || continue
  sum="$(sha256sum "$file" | cut -c1-64)"
  if [ "$(cat "$dir/build/.ef-patch" 2>/dev/null)" != "$sum" ] || ! ls "$dir"/build/Release/*.node >/dev/null 2>&1; then
    log "rebuilding $name with $(basename "$file") (npm rebuild)"
    (cd "$NM/.." && npm rebuild --no-audit --no-fund --loglevel=error "$name" >&2) \
      || die "npm rebuild $name failed: it needs build-essential, python3, libgstreamer1.0-dev and libgstreamer-plugins-base1.0-dev (scripts/setup.sh installs them)"
    echo "$sum" > "$dir/build/.ef-patch"
  fi
done
