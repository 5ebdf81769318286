"""Runs one container the way the monitor will: as a child subreaper, single-threaded.

    python runtime_runner.py JOB.json  →  prints {"exit": N, "error": ..., "pid": P} as its last line

JOB.json: {"spec": <OCI config>, "mounts": [[type, source, [options]], ...]}; the container's
stdout and stderr go to this process's stdout and stderr.
"""

import json
import os
import sys

from portside.runtime import launch, linux
from portside.snapshots.mount import Mount


def main() -> None:
    with open(sys.argv[1]) as f:
        job = json.load(f)
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    mounts = [Mount(t, s, tuple(o)) for t, s, o in job["mounts"]]
    null = os.open("/dev/null", os.O_RDONLY)
    sys.stdout.flush()
    try:
        pid = launch.start(job["spec"], mounts, stdio=(null, 1, 2))
    except launch.StartError as e:
        if e.pid:
            os.waitpid(e.pid, 0)
        print("\n" + json.dumps({"exit": e.exit_code, "error": str(e), "pid": e.pid}))
        return
    _, status = os.waitpid(pid, 0)
    print("\n" + json.dumps({"exit": os.waitstatus_to_exitcode(status), "error": None, "pid": pid}))


main()
