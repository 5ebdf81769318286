"""Docker's JSON progress messages (moby pkg/jsonmessage, pkg/streamformatter), built without I/O.

A pull streams one JSON object per line: ``{"status":"Pulling fs layer","progressDetail":{},"id":"<12 hex>"}``,
``Downloading`` with ``progressDetail`` ``current``/``total`` and a ``progress``
bar as the daemon renders it for a 200-column terminal, ..., then
``Digest: ...`` and ``Status: ...`` lines without an id. The docker CLI redraws
its bars from ``progressDetail``; a non-terminal prints the status lines only.
"""

from __future__ import annotations

from typing import Any

from portside.units import human_size

Message = dict[str, Any]


def status(text: str, id: str = "") -> Message:
    """A line of its own (``Digest: ...``, ``Status: ...``, ``Pulling from x`` with the tag as id)."""
    msg: Message = {"status": text}
    if id:
        msg["id"] = id
    return msg


def layer(text: str, id: str) -> Message:
    """A layer's state (``Pulling fs layer``, ``Verifying Checksum``, ``Pull complete``...)."""
    return {"status": text, "progressDetail": {}, "id": id}


def bytes_progress(text: str, id: str, current: int, total: int) -> Message:
    return {"status": text, "progressDetail": {"current": current, "total": total},
            "progress": progress_bar(current, total), "id": id}


def progress_bar(current: int, total: int, width: int = 200) -> str:
    """JSONProgress.String for a wide terminal, without the time-left box: ``[===>   ]  1.2MB/2.3MB``."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    bars = min(50, int(current / total * 100) // 2)
    box = f"[{'=' * bars}>{' ' * (50 - bars)}] " if width > 110 else ""
    numbers = f"{human_size(current):>8}/{human_size(total)}" if current <= total else f"{human_size(current):>8}"
    return box + numbers


def error(message: str) -> Message:
    return {"errorDetail": {"message": message}, "error": message}


def short_id(digest: str) -> str:
    """A layer's id in progress lines: the first 12 hex digits of its blob digest."""
    return digest.split(":", 1)[-1][:12]
