"""The embedded default image: a busybox root filesystem made from the host's static busybox.

No public registry is reachable from every machine portside runs on, so
``portside`` builds its ``busybox:latest`` from Debian's ``busybox-static``:
the binary at /bin/busybox, a hard link per applet (as Docker's busybox image
has), and the few files a shell and ``id`` expect::

    python -m portside.busybox > rootfs.tar
    portside import --change 'CMD ["sh"]' rootfs.tar busybox:latest
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from typing import BinaryIO

DEFAULT_BUSYBOX = "/bin/busybox"
CHANGES = ['CMD ["sh"]']

_DIRS = {
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755, "root": 0o700,
    "sbin": 0o755, "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
    "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755,
}
_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                  "bin:x:2:2:bin:/bin:/bin/false\nsys:x:3:3:sys:/dev:/bin/false\nsync:x:4:100:sync:/bin:/bin/sync\n"
                  "mail:x:8:8:mail:/var/spool/mail:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\n"
                  "operator:x:37:37:Operator:/var:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    "etc/group": "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\nlp:x:7:\n"
                 "mail:x:8:\nkmem:x:9:\nwheel:x:10:root\ncdrom:x:11:\ndialout:x:18:\nfloppy:x:19:\nvideo:x:28:\n"
                 "audio:x:29:\ntape:x:32:\nwww-data:x:33:\noperator:x:37:\nutmp:x:43:\nplugdev:x:46:\n"
                 "staff:x:50:\nlock:x:54:\nnetdev:x:82:\nusers:x:100:\nnogroup:x:65534:\n",
    "etc/shadow": "root:*::0:::::\nnobody:*::0:::::\n",
    "etc/nsswitch.conf": "hosts: files dns\n",
}


def applets(busybox: str = DEFAULT_BUSYBOX) -> list[str]:
    out = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True).stdout
    return sorted({line.strip() for line in out.splitlines() if line.strip() and line.strip() != "bin/busybox"})


def write_rootfs(out: BinaryIO, busybox: str = DEFAULT_BUSYBOX, *, mtime: int | None = None) -> None:
    """Write the root filesystem as an uncompressed tar stream."""
    st = os.stat(busybox)
    when = int(st.st_mtime if mtime is None else mtime)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for name, mode in sorted(_DIRS.items()):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, when
            tf.addfile(info)
        with open(busybox, "rb") as f:
            info = tarfile.TarInfo("bin/busybox")
            info.size, info.mode, info.mtime = st.st_size, 0o755, when
            tf.addfile(info, f)
        for applet in applets(busybox):
            info = tarfile.TarInfo(applet)
            info.type, info.linkname, info.mode, info.mtime = tarfile.LNKTYPE, "bin/busybox", 0o755, when
            tf.addfile(info)
        for name, text in sorted(_FILES.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o640 if name == "etc/shadow" else 0o644, when
            tf.addfile(info, io.BytesIO(data))


def main() -> int:
    busybox = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BUSYBOX
    if not os.path.exists(busybox):
        print(f"{busybox} not found: install Debian's busybox-static", file=sys.stderr)
        return 1
    if sys.stdout.isatty():
        print("refusing to write a tarball to a terminal; redirect the output", file=sys.stderr)
        return 1
    write_rootfs(sys.stdout.buffer, busybox)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
