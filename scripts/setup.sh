#!/usr/bin/env bash
# Sets up a Debian/Ubuntu machine for Edge Fleet: system packages, npm packages, sample assets and
# the default models. Idempotent; every step is skipped when its result is already there.
#   ./scripts/setup.sh            everything
#   EF_SETUP_SKIP_APT=1 ...       leave system packages alone (they must already be installed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '[setup] %s\n' "$*" >&2; }

# ---- 0. Node.js ---------------------------------------------------------------------------------
# package.json "engines", checked before anything is installed with a Node that cannot run it
# (Debian 12's nodejs package is 18, Ubuntu 22.04's 12).
NODE_MIN="$(sed -n 's/.*"node": *">= *\([0-9.]*\)".*/\1/p' package.json)"
NODE_FIX="install Node.js ${NODE_MIN%%.*} from NodeSource (https://github.com/nodesource/distributions: curl -fsSL https://deb.nodesource.com/setup_${NODE_MIN%%.*}.x | sudo -E bash - && sudo apt-get install -y nodejs), then run ./scripts/setup.sh again"
command -v node >/dev/null || { log "Node.js is not installed; Edge Fleet needs >= $NODE_MIN: $NODE_FIX"; exit 1; }
node -e 'const want = process.argv[1].split(".").map(Number), have = process.versions.node.split(".").map(Number);
  const d = [0, 1, 2].map((i) => (have[i] || 0) - (want[i] || 0)).find((x) => x !== 0);
  process.exit(d === undefined || d > 0 ? 0 : 1)' "$NODE_MIN" \
  || { log "node $(node -v) is too old; Edge Fleet needs >= $NODE_MIN (package.json engines): $NODE_FIX"; exit 1; }

# ---- 1. system packages -------------------------------------------------------------------------
APT_PACKAGES=(
  build-essential pkg-config python3
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav gstreamer1.0-tools
  mosquitto python3-onnx python3-numpy
  systemd
  chromium
  python3-pyarmnn libarmnn-cpuref-backend22
  # the tests' RTSP camera (test/helpers/rtsp-server.py: gst-rtsp-server with Basic auth)
  gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi
)
if [ "${EF_SETUP_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    log "installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # The test suite starts its own mosquitto on a free port; the distribution's service is not needed.
  if command -v systemctl >/dev/null && systemctl is-enabled mosquitto >/dev/null 2>&1; then
    log "note: Debian's mosquitto service is enabled on :1883; Edge Fleet does not need it"
  fi
fi

# ---- 2. npm packages ----------------------------------------------------------------------------
# onnxruntime-node's install script downloads GPU libraries from a host outside npm; its CPU build is
# inside the npm package, so skip that download. Native addons build against Node's own headers.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi
stamp_want="$(node --version) $(sha256sum package-lock.json | cut -c1-64)"
if [ ! -f node_modules/.ef-setup-stamp ] || [ "$(cat node_modules/.ef-setup-stamp)" != "$stamp_want" ]; then
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$stamp_want" > node_modules/.ef-setup-stamp
fi
# Our fixes to npm packages (patches/*.patch: gstreamer-superficial freed no pipeline, so every camera
# restart leaked one), rebuilt when changed; 0.1 s when already applied and built.
patches/apply.sh node_modules

# ---- 3. sample assets ---------------------------------------------------------------------------
# Always run: it checks each asset itself (0.1 s when all are there) and fetches only what is missing,
# so a deleted video or model comes back instead of setup saying "ready" without it.
mkdir -p assets/.cache
node scripts/fetch-assets.mjs

# ---- 4. default models (TF.js import, metadata) -------------------------------------------------
# node --import tsx rather than npx: npx's start-up alone is a good part of a second run's time.
node --import tsx scripts/prepare-models.ts

log "ready"
