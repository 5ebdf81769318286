"""What ``portside run`` imports: the guard of docs/cli-startup.md.

Python's start-up is most of the CLI's cost, and most of that is imports. The
``run`` path is kept to the modules it needs; these tests fail when a change
brings back one of the expensive ones (each costs a few milliseconds of every
``portside run``), and check the stand-ins that replaced them: the JSON wire
codec against ``json``, the image-name fast path against the grammar.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from helpers import Daemon
from portside.cli import jsonwire, threads
from portside.cli.commands import reference

# Modules the run path must not import, with what brought each in before.
NOT_ON_THE_RUN_PATH = (
    "typing",  # annotations, now for mypy only
    "dataclasses",  # records (and inspect, ast, dis, tokenize with it)
    "inspect",
    "hashlib",  # oci.digest, for references without a digest
    "re",  # json, the image-name grammar, flag validators
    "json",  # cli.jsonwire drives json's C accelerator itself
    "enum",  # re, socket.py and signal.py
    "threading",  # cli.threads, on _thread, does
    "functools",  # re, threading
    "collections",
    "socket",  # _socket does
    "selectors",
    "signal",  # _signal does
    "importlib",  # command loading (it imports warnings)
    "warnings",
    "contextlib",
    "subprocess",
    "termios",  # TTY sessions only
    "ssl",  # TLS connections only (cli/tlsclient.py)
    "portside.oci.reference",  # the grammar: names of an unusual shape only
    "portside.oci.digest",
)

# Runs the CLI in a fresh interpreter and writes the modules it imported.
_PROBE = """
import sys
before = set(sys.modules)
out = sys.argv.pop(1)
from portside.cli.main import main
status = main()
sys.stdout.flush()
with open(out, "w") as f:
    f.write("\\n".join(sorted(set(sys.modules) - before)))
sys.exit(status)
"""


def _imported_by(argv: list[str], tmp_path: object, **kw: object) -> tuple[subprocess.CompletedProcess[bytes], set[str]]:
    out = os.path.join(str(tmp_path), "modules")
    # -S: the venv's .pth files (setuptools' distutils shim...) stay out of the picture.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run([sys.executable, "-S", "-c", _PROBE, out, *argv], capture_output=True, env=env,
                            stdin=subprocess.DEVNULL, timeout=120, **kw)  # type: ignore[call-overload]
    with open(out) as f:
        return result, set(f.read().split())


def test_a_run_imports_none_of_the_expensive_modules(daemon: Daemon, busybox_image: str, tmp_path: object) -> None:
    result, modules = _imported_by(["--host", daemon.host, "run", "--rm", "busybox", "true"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "portside.cli.commands.run" in modules  # the probe saw the run path
    assert sorted(modules.intersection(NOT_ON_THE_RUN_PATH)) == []


def test_a_run_with_output_and_network_none_neither(daemon: Daemon, busybox_image: str, tmp_path: object) -> None:
    result, modules = _imported_by(
        ["--host", daemon.host, "run", "--rm", "--network", "none", "-e", "A=1", "busybox:latest", "echo", "hi"],
        tmp_path,
    )
    assert (result.returncode, result.stdout) == (0, b"hi\n"), result.stderr
    assert sorted(modules.intersection(NOT_ON_THE_RUN_PATH)) == []


def test_option_errors_need_none_of_them_either(tmp_path: object) -> None:
    """No daemon: refused options go through the same parse as a run."""
    result, modules = _imported_by(["--host", "unix:///nonexistent.sock", "run", "--rm", "--restart", "always",
                                    "busybox"], tmp_path)
    assert result.returncode == 125
    assert b"conflicting options: cannot specify both --restart and --rm" in result.stderr
    assert "portside.cli.runopts" in modules
    assert sorted(modules.intersection(NOT_ON_THE_RUN_PATH)) == []


def test_a_build_neither(daemon: Daemon, busybox_image: str, tmp_path: object) -> None:
    """``portside build``: its context goes out through cli.contexttar, not tarfile; no .dockerignore, no re."""
    ctx = os.path.join(str(tmp_path), "ctx")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nCOPY data /data\nCMD [\"cat\", \"/data\"]\n")
    with open(os.path.join(ctx, "data"), "wb") as f:
        f.write(os.urandom(300 << 10))
    result, modules = _imported_by(["--host", daemon.host, "build", "-q", "-t", "startup-build", ctx], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"sha256:")
    assert "portside.cli.contexttar" in modules
    assert sorted(modules.intersection(NOT_ON_THE_RUN_PATH + ("tarfile", "tempfile", "shutil"))) == []


# ---------------------------------------------------------------------------
# The quick exit

_EXIT_PROBE = """
import atexit, sys, types
atexit.register(lambda: print("finalised"))
fake = types.ModuleType("portside.registry.main")
fake.run = lambda argv: print("registry", *argv, end="") or 7
sys.modules["portside.registry.main"] = fake
sys.argv[0] = "portside"
from portside.cli.main import main_and_exit
main_and_exit()
"""


def _exit_probe(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _EXIT_PROBE, *argv], capture_output=True, text=True, timeout=60)


def test_a_client_command_flushes_and_leaves_without_finalisation() -> None:
    r = _exit_probe("--version")
    assert (r.returncode, r.stdout) == (0, "Portside version 0.1.0\n")  # no "finalised": atexit never ran
    r = _exit_probe("nosuchcommand")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "portside: 'nosuchcommand' is not a portside command.\n"
                                                  "See 'portside --help'\n")


def test_the_daemon_and_the_registry_exit_the_usual_way() -> None:
    r = _exit_probe("registry", "serve")
    assert (r.returncode, r.stdout) == (7, "registry serve" + "finalised\n"), r  # atexit ran


# ---------------------------------------------------------------------------
# cli.threads


def test_latch_wakes_every_waiter_once_set_and_stays_set() -> None:
    latch = threads.Latch()
    assert not latch.is_set()
    assert latch.wait(0) is False
    assert latch.wait(0.05) is False
    woken: list[bool] = []
    done = threads.Latch()
    lock = threads.Lock()

    def waiter() -> None:
        got = latch.wait(10)
        with lock:
            woken.append(got)
            if len(woken) == 3:
                done.set()

    for _ in range(3):
        threads.start(waiter, "waiter")
    latch.set()
    latch.set()  # a second set is a no-op
    assert done.wait(10)
    assert woken == [True, True, True]
    assert latch.is_set() and latch.wait() and latch.wait(0)


def test_started_threads_run_and_carry_their_name() -> None:
    import threading

    seen = threads.Latch()
    names: list[str] = []

    def body() -> None:
        names.append(threading.current_thread().name)
        seen.set()

    threads.start(body, "pump")
    assert seen.wait(10)
    assert names == ["pump"]


# ---------------------------------------------------------------------------
# cli.jsonwire == json

VALUES: list[object] = [
    None, True, False, 0, -1, 2**70, 1.5, -0.0, 1e300, float("inf"), float("nan"), "", "hi", "é\u2028\x00\"\\/",
    "\U0001f600", [], {}, [1, "a", None], {"b": 1, "a": [True, {"c": "d"}]}, {1: "int key", "x": 2.5},
    ("tuple", 1), {"Env": ["A=1", "B="], "HostConfig": {"Binds": None, "ConsoleSize": [0, 0]}},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_jsonwire_dumps_is_json_dumps(value: object) -> None:
    assert jsonwire.dumps(value) == json.dumps(value)


def test_jsonwire_dumps_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        jsonwire.dumps({"a": {1}})
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference detected"):
        jsonwire.dumps(loop)


@pytest.mark.parametrize(
    "data",
    [b"null", b" {\"Id\": \"abc\", \"Warnings\": []}\n", b"{\"StatusCode\": 0, \"Error\": null}", b"[1, 2.5, -3e2]",
     "\"\\u00e9\"".encode(), "{\"k\": \"é\"}".encode(), b"NaN", b"-Infinity", b"\xef\xbb\xbf{}", "{\"a\": 1}",
     b"\t[]\r\n"],
)
def test_jsonwire_loads_is_json_loads(data: bytes | str) -> None:
    expected, got = json.loads(data), jsonwire.loads(data)
    assert repr(got) == repr(expected)


@pytest.mark.parametrize("data", [b"", b"{", b"[1,]", b"{\"a\" 1}", b"1 2", b"\xff", "\ufeff{}", b"{\"a\": \"\x01\"}"])
def test_jsonwire_loads_fails_as_json_loads(data: bytes | str) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(data)
    with pytest.raises(ValueError) as got:
        jsonwire.loads(data)
    assert (type(got.value), str(got.value)) == (type(expected.value), str(expected.value))


# ---------------------------------------------------------------------------
# The image-name fast path accepts only what the grammar accepts


@pytest.mark.parametrize("name", ["busybox", "busybox:latest", "busybox:1.36.1", "user/app:v2_rc-1", "localhost/app",
                                  "a/b/c:X", "123/456:7"])
def test_common_image_names_take_the_fast_path(name: str) -> None:
    assert reference._plain(name)
    reference.check_any(name)
    reference.parse_any(name)


def _candidates() -> list[str]:
    from test_reference import ERRORS, VALID  # type: ignore[import-not-found]

    rng = random.Random(20261128)
    alphabet = "abz09" * 4 + "AZ_.-:/@é "  # mostly name characters, so that many take the fast path
    fuzz = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 14))) for _ in range(20000)]
    edges = ["a" * 200, "a" * 201, "a" * 64, "0" * 64 + ":x", "b:" + "t" * 128, "b:" + "t" * 129, "x" * 199 + "/y"]
    return [row[0] for row in VALID] + [row[0] for row in ERRORS] + fuzz + edges


def _verdict(check: object, name: str) -> str | None:
    try:
        check(name)  # type: ignore[operator]
    except reference.ReferenceError as e:
        return str(e)
    return None


def test_the_fast_path_is_a_subset_of_the_grammar() -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "unit"))
    try:
        candidates = _candidates()
    finally:
        sys.path.pop(0)
    taken = 0
    for name in candidates:
        grammar = _verdict(reference.parse_any, name)
        if reference._plain(name):
            taken += 1
            assert grammar is None, (name, grammar)  # the fast path let through a name the grammar refuses
        assert _verdict(reference.check_any, name) == grammar, name
    assert taken > 2000  # the fuzz exercises the fast path, not only the fallback


_MALFORMED_PROBE = """
import sys
from portside.cli import jsonwire
assert "json.decoder" not in sys.modules
for text in ['{"status":"', '{"a": 1', '"abc', '{"a": 1} x', '[1,']:
    for decode in (lambda t: jsonwire.loads(t), lambda t: jsonwire.raw_decode(t, 0)):
        try:
            decode(text)
        except ValueError as e:
            print(type(e).__name__)
        else:
            print("decoded")
"""


def test_jsonwire_malformed_documents_are_value_errors_before_json_is_imported() -> None:
    """The C scanner cannot raise JSONDecodeError until json.decoder is imported (it gave SystemError)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    r = subprocess.run([sys.executable, "-S", "-c", _MALFORMED_PROBE], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["JSONDecodeError"] * 7 + ["decoded", "JSONDecodeError", "ValueError"]
