#!/usr/bin/env bash
# Release tarball of the edge agent, one per architecture, with everything it needs at run time:
#
#   edge-agent-<version>-linux-<arch>/
#     dist/            esbuild bundles (scripts/build.ts): edge-agent.mjs, fleetctl.mjs, workers
#     node_modules/    the native addons (kept external by the bundle) and their own dependencies
#     bin/edge-agent   sh wrapper: node dist/edge-agent.mjs with the board presets next to it
#     configs/         systemd unit, board presets, model metadata, agent.example.json
#     scripts/         install-agent.sh, uninstall-agent.sh
#     docs/operations.md, VERSION, ARCH, NEEDS_REBUILD (addons to build on the target, if any)
#   + <tarball>.sha256 (sha256sum -c format)
#
# Native addons, per architecture:
#   - host architecture: copied from this checkout's node_modules, i.e. the very binaries the tests
#     ran (better-sqlite3, gstreamer-superficial, unix-dgram are built from source here).
#   - other architecture (linux-arm64 from an x64 host): `npm install --os=linux --cpu=arm64
#     --libc=glibc --ignore-scripts` in a staging dir. That brings sharp's @img/sharp-linux-arm64 +
#     libvips and onnxruntime-node (its package has linux/arm64 binaries). better-sqlite3,
#     gstreamer-superficial and unix-dgram have no prebuilt we can fetch here, so they are listed in
#     NEEDS_REBUILD and scripts/install-agent.sh runs `npm rebuild` for them on the target (needs
#     build-essential, python3, libgstreamer1.0-dev, libgstreamer-plugins-base1.0-dev).
#   - either way gstreamer-superficial carries our patch (patches/apply.sh): built here for the host,
#     as patched sources for the target's npm rebuild otherwise.
#
# Usage: scripts/package-agent.sh [--arch linux-x64|linux-arm64|all] [--out DIR] [--dist DIR]
#   --dist DIR   use bundles already built there instead of running scripts/build.ts
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARCHES=()
OUT="$ROOT/release"
DIST=""
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) [ "$2" = all ] && ARCHES=(linux-x64 linux-arm64) || ARCHES+=("$2"); shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --dist) DIST="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "package-agent: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
HOST_ARCH="linux-$(node -p 'process.arch')"
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=("$HOST_ARCH")
VERSION="$(node -p "require('$ROOT/package.json').version")"
# Kept external by scripts/build.ts (NATIVE_EXTERNALS + FILE_EXTERNALS, and thread-stream, which pino's
# transport code requires when the log module loads): shipped in node_modules with their dependencies.
NATIVE=(onnxruntime-node sharp gstreamer-superficial better-sqlite3 unix-dgram @litertjs/core thread-stream)
BUILD_FROM_SOURCE=(gstreamer-superficial better-sqlite3 unix-dgram)
log() { printf 'package-agent: %s\n' "$*" >&2; }

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ef-package.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

if [ -z "$DIST" ]; then
  DIST="$WORK/dist"
  (cd "$ROOT" && node --import tsx scripts/build.ts --outdir "$DIST" >&2)
fi

# Copies the dependency closure of the native packages from this checkout's node_modules.
copy_host_modules() {
  local dest="$1"
  node --input-type=module - "$ROOT" "$dest" "${NATIVE[@]}" <<'EOF'
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
const [root, dest, ...roots] = process.argv.slice(2);
const seen = new Set();
const queue = [...roots];
while (queue.length > 0) {
  const name = queue.shift();
  if (seen.has(name)) continue;
  const dir = join(root, 'node_modules', name);
  if (!existsSync(dir)) continue; // an optional dependency for another platform
  seen.add(name);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  queue.push(...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}));
  // Skip other platforms' onnxruntime binaries (~240 MB) and build intermediates while copying.
  const skip = new RegExp(`onnxruntime-node/bin/napi-v\\d+/(darwin|win32|linux/(?!${process.arch}(/|$)))|/build/Release/obj\\.target`);
  cpSync(dir, join(dest, 'node_modules', name), { recursive: true, dereference: true, filter: (src) => !skip.test(src) });
}
process.stderr.write(`package-agent: copied ${seen.size} packages: ${[...seen].sort().join(' ')}\n`);
EOF
}

fetch_cross_modules() {
  local dest="$1" cpu="$2"
  local deps=""
  for p in "${NATIVE[@]}"; do
    deps="$deps\"$p\": \"$(node -p "require('$ROOT/node_modules/$p/package.json').version")\","
  done
  printf '{"name":"edge-agent-runtime","private":true,"dependencies":{%s}}\n' "${deps%,}" > "$dest/package.json"
  log "npm install --os=linux --cpu=$cpu into staging"
  (cd "$dest" && ONNXRUNTIME_NODE_INSTALL=skip npm install --omit=dev --ignore-scripts --no-audit --no-fund \
    --os=linux --cpu="$cpu" --libc=glibc >&2)
  rm -f "$dest/package.json" "$dest/package-lock.json"
}

for ARCH in "${ARCHES[@]}"; do
  case "$ARCH" in linux-x64) CPU=x64 ;; linux-arm64) CPU=arm64 ;; *) log "unsupported arch $ARCH (linux-x64, linux-arm64)"; exit 2 ;; esac
  NAME="edge-agent-$VERSION-$ARCH"
  STAGE="$WORK/$NAME"
  mkdir -p "$STAGE/dist" "$STAGE/bin" "$STAGE/configs/systemd" "$STAGE/scripts" "$STAGE/docs"
  cp "$DIST"/*.mjs "$STAGE/dist/"
  cp "$DIST"/*.mjs.map "$STAGE/dist/" 2>/dev/null || true
  rm -f "$STAGE/dist/fleet-server.mjs" "$STAGE/dist/fleet-server.mjs.map"  # the server has its own release

  if [ "$ARCH" = "$HOST_ARCH" ]; then
    "$ROOT/patches/apply.sh" "$ROOT/node_modules"  # our patches (patches/), built: a no-op after setup.sh
    copy_host_modules "$STAGE"
    : > "$STAGE/NEEDS_REBUILD"
  else
    fetch_cross_modules "$STAGE" "$CPU"
    # npm's pristine sources: patch them, the target's npm rebuild (install-agent.sh) builds them so.
    "$ROOT/patches/apply.sh" --sources-only "$STAGE/node_modules"
    printf '%s\n' "${BUILD_FROM_SOURCE[@]}" > "$STAGE/NEEDS_REBUILD"
    for p in "${BUILD_FROM_SOURCE[@]}"; do rm -rf "$STAGE/node_modules/$p/build"; done
  fi
  # Keep only this architecture's onnxruntime binaries (the package ships every platform, ~290 MB).
  ORT="$STAGE/node_modules/onnxruntime-node/bin"
  if [ -d "$ORT" ]; then
    for napi in "$ORT"/napi-v*; do
      for d in "$napi"/*; do [ "$(basename "$d")" = linux ] || rm -rf "$d"; done
      for d in "$napi"/linux/*; do [ "$(basename "$d")" = "$CPU" ] || rm -rf "$d"; done
    done
  fi
  # Build intermediates are not needed at run time; sources stay for `npm rebuild` on the target.
  find "$STAGE/node_modules" -type d \( -name obj.target -o -name .deps \) -prune -exec rm -rf {} + 2>/dev/null || true
  printf '{"name":"edge-agent","version":"%s","private":true,"type":"module"}\n' "$VERSION" > "$STAGE/package.json"

  cat > "$STAGE/bin/edge-agent" <<'EOF'
#!/bin/sh
# Runs the bundled agent with the board presets shipped next to it.
# Through /usr/local/bin/edge-agent (a symlink): the release is where the link points, not beside it.
here="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
: "${EF_BOARDS_DIR:=$here/configs/boards}"
# Each camera holds two libuv threads (its GStreamer bus poll, its pending pull); with as many
# cameras as threads every camera stalls. The pool size must be set before node starts (static
# imports of native addons run before any line of the bundle), so it is set for the most cameras
# the config allows (64: 2 per camera + 4, agent/src/capture/thread-pool.ts); an idle thread costs
# only its reserved stack. A smaller value in the environment is raised.
[ "${UV_THREADPOOL_SIZE:-0}" -ge 132 ] 2>/dev/null || UV_THREADPOOL_SIZE=132
export EF_BOARDS_DIR UV_THREADPOOL_SIZE
exec node "$here/dist/edge-agent.mjs" "$@"
EOF
  chmod 755 "$STAGE/bin/edge-agent"
  cp "$ROOT/configs/systemd/edge-agent.service" "$STAGE/configs/systemd/"
  [ -d "$ROOT/configs/boards" ] && cp -r "$ROOT/configs/boards" "$STAGE/configs/"
  # Named by every unknown-field error ("check its spelling against configs/schema") and usable as "$schema".
  [ -d "$ROOT/configs/schema" ] && cp -r "$ROOT/configs/schema" "$STAGE/configs/"
  [ -d "$ROOT/configs/models" ] && cp -r "$ROOT/configs/models" "$STAGE/configs/"
  [ -f "$ROOT/configs/agent.example.json" ] && cp "$ROOT/configs/agent.example.json" "$STAGE/configs/"
  cp "$ROOT/scripts/install-agent.sh" "$ROOT/scripts/uninstall-agent.sh" "$STAGE/scripts/"
  [ -f "$ROOT/docs/operations.md" ] && cp "$ROOT/docs/operations.md" "$STAGE/docs/"
  echo "$VERSION" > "$STAGE/VERSION"
  echo "$ARCH" > "$STAGE/ARCH"

  TARBALL="$OUT/$NAME.tar.gz"
  tar -C "$WORK" --owner=0 --group=0 -czf "$TARBALL" "$NAME"
  (cd "$OUT" && sha256sum "$NAME.tar.gz" > "$NAME.tar.gz.sha256")
  log "wrote $TARBALL ($(du -h "$TARBALL" | cut -f1)) and $NAME.tar.gz.sha256"
  echo "$TARBALL"
  rm -rf "$STAGE"
done
