#!/usr/bin/env bash
# Set up portside on a fresh Debian 12 machine, as root:
#   - Debian packages: python3-venv, busybox-static (the default image's source), tini (run --init)
#   - a virtualenv in .venv with portside and its dependencies (pyproject.toml)
#   - .venv/bin/portside, a console script that starts quickly, and /usr/local/bin/portside
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

# The command starts fast (docs/cli-startup.md): its modules compiled now, as
# an installed package has them (an editable install does not, and a shell
# with PYTHONDONTWRITEBYTECODE would compile them on every run), and our own
# console script in place of pip's, which imports re and runs the site module
# (.pth files included): the client needs neither, `portside daemon` loads
# site itself.
.venv/bin/python -m compileall -q src
cat > .venv/bin/portside <<EOF
#!$PWD/.venv/bin/python -S
# portside's command, written by install.sh: see docs/cli-startup.md.
import sys
sys.path.append("$PWD/src")
from portside.cli.main import main_and_exit
main_and_exit()
EOF
chmod 755 .venv/bin/portside
ln -sf "$PWD/.venv/bin/portside" /usr/local/bin/portside

if ! portside image inspect busybox:latest >/dev/null 2>&1; then
  .venv/bin/python -m portside.busybox | portside import --change 'CMD ["sh"]' - busybox:latest >/dev/null
fi
portside images
portside run --rm busybox echo hello
