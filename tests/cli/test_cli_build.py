"""portside build: a directory context filtered by .dockerignore, -f, --build-arg, -q, --iidfile, errors."""

from __future__ import annotations

import os
import pathlib

import pytest

from tests.helpers import Daemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds run containers: needs root")


def write(root: pathlib.Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_build_directory_with_dockerignore(daemon: Daemon, busybox_image: str, tmp_path: pathlib.Path) -> None:
    write(tmp_path, {
        "Dockerfile": "FROM busybox\nARG WHO\nENV WHO=$WHO\nCOPY . /ctx/\nWORKDIR /ctx\nRUN find . | sort > /listing\n",
        ".dockerignore": "secret*\nlogs/\n!logs/keep.log\n**/*.tmp\n",
        "app.py": "print()", "secret.key": "k", "logs/a.log": "a", "logs/keep.log": "kept", "sub/x.tmp": "t",
        "sub/y.txt": "y",
    })
    result = daemon.cli("build", "-t", "ctx:test", "--build-arg", "WHO=me", str(tmp_path))
    out = result.stdout.decode()
    assert out.startswith("Sending build context to Docker daemon  ") and "B\r\r\nStep 1/6 : FROM busybox\n" in out
    assert "Successfully tagged ctx:test\n" in out
    listing = daemon.cli("run", "--rm", "ctx:test", "cat", "/listing").stdout.decode().split()
    assert listing == [".", "./.dockerignore", "./Dockerfile", "./app.py", "./logs", "./logs/keep.log", "./sub",
                       "./sub/y.txt"]
    assert daemon.cli("run", "--rm", "ctx:test", "sh", "-c", "echo $WHO; pwd").stdout == b"me\n/ctx\n"


def test_quiet_iidfile_and_other_dockerfile(daemon: Daemon, busybox_image: str, tmp_path: pathlib.Path) -> None:
    write(tmp_path, {"build/Other.dockerfile": "FROM busybox\nLABEL stage=one\nCMD [\"echo\", \"other\"]\n"})
    iid = tmp_path / "iid"
    result = daemon.cli("build", "-q", "--iidfile", str(iid), "--label", "extra=yes", "-f",
                        str(tmp_path / "build/Other.dockerfile"), str(tmp_path / "build"))
    image_id = iid.read_text()
    assert image_id.startswith("sha256:") and result.stdout.decode() == image_id + "\n"
    labels = daemon.cli("inspect", "-f", "{{json .Config.Labels}}", image_id).stdout.decode().strip()
    assert labels == '{"extra":"yes","stage":"one"}'
    assert daemon.cli("run", "--rm", image_id).stdout == b"other\n"


def test_dockerfile_from_stdin(daemon: Daemon, busybox_image: str) -> None:
    result = daemon.cli("build", "-t", "stdin:1", "-", input=b"FROM busybox\nRUN echo from-stdin > /f\n")
    assert "Successfully tagged stdin:1" in result.stdout.decode()
    assert daemon.cli("run", "--rm", "stdin:1", "cat", "/f").stdout == b"from-stdin\n"


def test_failing_run_exit_code(daemon: Daemon, busybox_image: str, tmp_path: pathlib.Path) -> None:
    write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo out; exit 5\n"})
    result = daemon.cli("build", "-t", "bad:1", str(tmp_path), check=False)
    assert result.returncode == 5
    assert "out\n" in result.stdout.decode()
    assert result.stderr.decode().strip() == "The command '/bin/sh -c echo out; exit 5' returned a non-zero code: 5"
    assert daemon.cli("image", "inspect", "bad:1", check=False).returncode == 1


def test_parse_error_names_the_line(daemon: Daemon, busybox_image: str, tmp_path: pathlib.Path) -> None:
    write(tmp_path, {"Dockerfile": "FROM busybox\nRUNN echo\n"})
    result = daemon.cli("build", str(tmp_path), check=False)
    assert result.returncode == 1
    assert "dockerfile parse error on line 2: unknown instruction: RUNN" in result.stderr.decode()


def test_a_failed_build_leaves_no_stale_iidfile(daemon: Daemon, busybox_image: str, tmp_path: pathlib.Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    write(ctx, {"Dockerfile": "FROM busybox\nRUN exit 3\n"})
    iid = tmp_path / "iid"
    iid.write_text("sha256:stale")
    result = daemon.cli("build", "--iidfile", str(iid), str(ctx), check=False)
    assert result.returncode == 3 and not iid.exists()


def test_an_epoch_beyond_rfc3339_is_refused(daemon: Daemon, busybox_image: str, tmp_path: pathlib.Path) -> None:
    write(tmp_path, {"Dockerfile": "FROM busybox\nCMD [\"true\"]\n"})
    for epoch in ("1000000000000", "\u00b2"):
        result = daemon.cli("build", "--build-arg", f"SOURCE_DATE_EPOCH={epoch}", str(tmp_path), check=False)
        assert result.returncode != 0 and "invalid SOURCE_DATE_EPOCH" in result.stderr.decode(), result
    ok = daemon.cli("build", "-q", "--build-arg", "SOURCE_DATE_EPOCH=253402300799", str(tmp_path))
    assert ok.stdout.startswith(b"sha256:")


def test_a_dockerfile_named_dotdot_something_is_inside_the_context(daemon: Daemon, busybox_image: str,
                                                                  tmp_path: pathlib.Path) -> None:
    write(tmp_path, {"..Dockerfile": "FROM busybox\nCOPY . /ctx/\nCMD [\"ls\", \"-a\", \"/ctx\"]\n"})
    daemon.cli("build", "-t", "dotdot", "-f", str(tmp_path / "..Dockerfile"), str(tmp_path))
    listing = daemon.cli("run", "--rm", "dotdot").stdout.decode().split()
    assert [n for n in listing if "ockerfile" in n] == ["..Dockerfile"]
