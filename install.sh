#!/usr/bin/env bash
# Set up portside on a fresh Debian 12 machine, as root:
#   - Debian packages: python3-venv, busybox-static (the default image's source), tini (run --init)
#   - a virtualenv in .venv with portside and its dependencies (pyproject.toml)
#   - /usr/local/bin/portside
#   - busybox:latest, imported from /bin/busybox (the CLI starts the daemon on first use)
#   - a first container: portside run --rm busybox echo hello
set -euo pipefail
cd "$(dirname "$0")"

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (portside is a container engine)" >&2; exit 1; }

need=()
[ -x /bin/busybox ] || need+=(busybox-static)
[ -x /usr/bin/tini-static ] || need+=(tini)          # run --init (as docker-init)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v mount >/dev/null || need+=(mount)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
ln -sf "$PWD/.venv/bin/portside" /usr/local/bin/portside

if ! portside image inspect busybox:latest >/dev/null 2>&1; then
  .venv/bin/python -m portside.busybox | portside import --change 'CMD ["sh"]' - busybox:latest >/dev/null
fi
portside images
portside run --rm busybox echo hello
