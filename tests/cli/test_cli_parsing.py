"""The CLI without a daemon: flag parsing, exit statuses, help, and the formatters over canned API JSON.

Subprocess tests run ``python -m portside`` against a socket path that does
not exist (or against a tiny fake Engine API on a unix socket for the client's
HTTP handling); the formatter tests call the pure ``format_*`` functions.
"""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from portside.cli.commands import base, formatting, images, reference, system
from portside.cli.commands.base import BOOL, FILTER, INT, LIST, STRING, Args, CLIError, Command, Flag, FlagError, HelpRequested
from portside.cli.commands.containers import displayable_ports, format_ps
from portside.cli.commands.formatting import StreamError, display_json_messages, ellipsis, indent_json, truncate_id

NOW = 1_700_000_000.0
ID = "sha256:" + "ab" * 32
ID2 = "sha256:" + "cd" * 32


# ---------------------------------------------------------------------------
# running the CLI


def cli(*args: str, host: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PORTSIDE_HOST"}
    env["PORTSIDE_HOST"] = host
    return subprocess.run(
        [sys.executable, "-m", "portside", *args],
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def nohost(tmp_path: Any) -> str:
    return f"unix://{tmp_path}/nothing-here.sock"


@pytest.mark.parametrize(
    "args, message",
    [
        (["images", "--foo"], "unknown flag: --foo\nSee 'portside images --help'.\n"),
        (["images", "-x"], "unknown shorthand flag: 'x' in -x\nSee 'portside images --help'.\n"),
        (["images", "-aqz"], "unknown shorthand flag: 'z' in -z\nSee 'portside images --help'.\n"),
        (["images", "--format"], "flag needs an argument: --format\nSee 'portside images --help'.\n"),
        (["image", "ls", "--bogus"], "unknown flag: --bogus\nSee 'portside image ls --help'.\n"),
        (["image", "rm", "-z", "x"], "unknown shorthand flag: 'z' in -z\nSee 'portside image rm --help'.\n"),
        (
            ["images", "-f", "dangling"],
            'invalid argument "dangling" for "-f, --filter" flag: bad format of filter (expected name=value)\n'
            "See 'portside images --help'.\n",
        ),
        (
            ["ps", "-n", "abc"],
            'invalid argument "abc" for "-n, --last" flag: strconv.ParseInt: parsing "abc": invalid syntax\n'
            "See 'portside ps --help'.\n",
        ),
        (
            ["history", "--human=maybe", "x"],
            'invalid argument "maybe" for "-H, --human" flag: strconv.ParseBool: parsing "maybe": invalid syntax\n'
            "See 'portside history --help'.\n",
        ),
    ],
)
def test_flag_errors_exit_125(args: list[str], message: str, nohost: str) -> None:
    r = cli(*args, host=nohost)
    assert r.returncode == 125
    assert r.stderr == message
    assert r.stdout == ""


def test_unknown_global_flag_prints_usage_and_exits_125(nohost: str) -> None:
    r = cli("--nope", "images", host=nohost)
    assert r.returncode == 125
    assert r.stderr.startswith("unknown flag: --nope\nSee 'portside --help'.\n\nUsage:  portside [OPTIONS] COMMAND\n")


def test_argument_count_errors_exit_1_like_docker(nohost: str) -> None:
    # cobra's argument validators return plain errors: docker prints them and exits 1.
    r = cli("images", "a", "b", host=nohost)
    assert r.returncode == 1
    assert r.stderr == (
        '"portside images" requires at most 1 argument.\n'
        "See 'portside images --help'.\n\n"
        "Usage:  portside images [OPTIONS] [REPOSITORY[:TAG]]\n\n"
        "List images\n"
    )
    r = cli("tag", "only-one", host=nohost)
    assert r.returncode == 1
    assert r.stderr.startswith('"portside tag" requires exactly 2 arguments.\n')
    r = cli("image", "prune", "extra", host=nohost)
    assert r.returncode == 1
    assert r.stderr.startswith('"portside image prune" accepts no arguments.\n')
    r = cli("rmi", host=nohost)
    assert r.returncode == 1
    assert r.stderr.startswith('"portside rmi" requires at least 1 argument.\n')


def test_unknown_command(nohost: str) -> None:
    r = cli("frobnicate", host=nohost)
    assert r.returncode == 1
    assert r.stderr == "portside: 'frobnicate' is not a portside command.\nSee 'portside --help'\n"


def test_cannot_connect_to_a_non_default_host(nohost: str) -> None:
    for args in (["images"], ["image", "ls"], ["rmi", "x"], ["history", "x"], ["system", "df"], ["ps"]):
        r = cli(*args, host=nohost)
        assert r.returncode == 1, args
        assert r.stderr == f"Cannot connect to the portside daemon at {nohost}. Is the portside daemon running?\n"
        assert r.stdout == ""


def test_host_flag_wins_over_environment(tmp_path: Any, nohost: str) -> None:
    other = f"unix://{tmp_path}/other.sock"
    r = cli("-H", other, "images", host=nohost)
    assert r.returncode == 1
    assert other in r.stderr
    r = cli("--host", other, "--host", other, "images", host=nohost)
    assert (r.returncode, r.stderr) == (1, "Specify only one -H\n")


def test_help_goes_to_stdout_with_status_0(nohost: str) -> None:
    r = cli("images", "--help", host=nohost)
    assert r.returncode == 0
    assert r.stdout.startswith("\nUsage:  portside images [OPTIONS] [REPOSITORY[:TAG]]\n\nList images\n\nAliases:\n")
    assert "  -q, --quiet           Only show image IDs\n" in r.stdout
    assert cli("image", "rm", "-h", host=nohost).stdout.startswith("\nUsage:  portside image rm [OPTIONS] IMAGE [IMAGE...]\n")
    assert cli("help", "image", "ls", host=nohost).stdout.startswith("\nUsage:  portside image ls [OPTIONS]")
    root = cli("--help", host=nohost)
    assert root.returncode == 0
    assert "Management Commands:\n" in root.stdout and "  image       Manage images\n" in root.stdout
    # a management command alone prints its usage to stderr, status 0
    group = cli("image", host=nohost)
    assert group.returncode == 0 and group.stderr.startswith("\nUsage:  portside image COMMAND\n")


def test_version_flag(nohost: str) -> None:
    from portside import __version__

    r = cli("--version", host=nohost)
    assert (r.returncode, r.stdout) == (0, f"Portside version {__version__}\n")


def test_version_without_daemon_prints_client_then_fails(nohost: str) -> None:
    r = cli("version", host=nohost)
    assert r.returncode == 1
    assert r.stdout.startswith("Client:\n Version:           ")
    assert " API version:       1.45\n" in r.stdout
    assert " Go version:        Python 3.11" in r.stdout or " Go version:        Python 3." in r.stdout
    assert "Cannot connect to the portside daemon" in r.stderr


def test_info_without_daemon(nohost: str) -> None:
    r = cli("info", host=nohost)
    assert r.returncode == 1
    assert r.stdout.startswith("Client:\n Version:    ")
    assert r.stdout.endswith("\nServer:\n")
    assert r.stderr.endswith("errors pretty printing info\n")
    assert r.stderr.startswith("ERROR: Cannot connect to the portside daemon at")


def test_client_side_validation_happens_before_connecting(tmp_path: Any, nohost: str) -> None:
    r = cli("tag", "busybox", "Busybox:1", host=nohost)
    assert r.returncode == 1
    assert r.stderr == (
        'Error parsing reference: "Busybox:1" is not a valid repository/tag: '
        "invalid reference format: repository name (library/Busybox) must be lowercase\n"
    )
    r = cli("save", "-o", str(tmp_path / "no" / "dir.tar"), "busybox", host=nohost)
    assert r.returncode == 1
    assert r.stderr == f'failed to save image: invalid output path: directory "{tmp_path}/no" does not exist\n'
    r = cli("load", "-i", str(tmp_path / "missing.tar"), host=nohost)
    assert (r.returncode, r.stderr) == (1, f"open {tmp_path}/missing.tar: no such file or directory\n")
    r = cli("inspect", "--type", "bogus", "x", host=nohost)
    assert (r.returncode, r.stderr) == (1, '"bogus" is not a valid value for --type\n')


def test_prune_declined_exits_0_without_contacting_the_daemon(nohost: str) -> None:
    r = cli("image", "prune", host=nohost, input=b"n\n")
    assert r.returncode == 0
    assert r.stdout == "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    r = cli("image", "prune", "-a", host=nohost, input=b"")
    assert r.returncode == 0
    assert "without at least one container associated to them" in r.stdout


def test_daemon_and_registry_are_dispatched_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from portside.cli import main

    seen: list[list[str]] = []
    fake = types.ModuleType("portside.registry.main")
    fake.run = lambda argv: seen.append(argv) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "portside.registry.main", fake)
    assert main.main(["registry", "serve", "--addr", "127.0.0.1:0"]) == 7
    assert seen == [["serve", "--addr", "127.0.0.1:0"]]
    fake_daemon = types.ModuleType("portside.daemon.main")
    fake_daemon.run = lambda argv: seen.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "portside.daemon.main", fake_daemon)
    assert main.main(["daemon", "--root", "/x", "--debug"]) == 0
    assert seen[-1] == ["--root", "/x", "--debug"]


def test_client_path_does_not_import_the_engine(nohost: str) -> None:
    code = (
        "import sys, os; os.environ['PORTSIDE_HOST'] = %r\n"
        "from portside.cli.main import main\n"
        "main(['images']); main(['version']); main(['image', 'inspect', 'x'])\n"
        "bad = [m for m in sys.modules if m.startswith(('portside.daemon', 'portside.images', 'portside.content',"
        " 'portside.snapshots', 'http.client', 'argparse'))]\n"
        "print(bad)\n"
    ) % nohost
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr


# ---------------------------------------------------------------------------
# flag parsing (pflag rules)

FLAGS = (
    Flag("all", "a", BOOL, ""),
    Flag("quiet", "q", BOOL, ""),
    Flag("format", None, STRING, ""),
    Flag("filter", "f", FILTER, ""),
    Flag("change", "c", LIST, ""),
    Flag("last", "n", INT, "", default=-1),
    Flag("human", "H", BOOL, "", default=True),
)


def test_parse_flags_combined_shorthands_values_and_interspersed_args() -> None:
    opts, args = base.parse_flags(FLAGS, ["-aq", "busybox", "--format={{.ID}}", "-fdangling=true", "-f", " Label = a=b "])
    assert (opts.all, opts.quiet, opts.format) == (True, True, "{{.ID}}")
    assert opts.filter == [("dangling", "true"), ("label", "a=b")]
    assert args == ["busybox"]
    assert opts.changed == {"all", "quiet", "format", "filter"}


def test_parse_flags_values_attached_and_separate() -> None:
    opts, _ = base.parse_flags(FLAGS, ["-n5", "-c", "CMD x", "--change=ENV a=b", "-c=USER 1"])
    assert opts.last == 5
    assert opts.change == ["CMD x", "ENV a=b", "USER 1"]
    opts, _ = base.parse_flags(FLAGS, ["-n=7", "--last", "-1"])
    assert opts.last == -1
    assert base.parse_flags(FLAGS, [])[0].last == -1


def test_parse_flags_booleans() -> None:
    opts, args = base.parse_flags(FLAGS, ["--human=false", "--all=1", "false"])
    assert (opts.human, opts.all, args) == (False, True, ["false"])
    with pytest.raises(FlagError, match=r'invalid argument "yes" for "-a, --all" flag: strconv.ParseBool'):
        base.parse_flags(FLAGS, ["--all=yes"])


def test_parse_flags_double_dash_and_dash() -> None:
    opts, args = base.parse_flags(FLAGS, ["-a", "--", "-q", "--format", "-"])
    assert opts.all and not opts.quiet
    assert args == ["-q", "--format", "-"]
    _, args = base.parse_flags(FLAGS, ["-", "-a"])
    assert args == ["-"]


def test_parse_flags_not_interspersed_stops_at_first_argument() -> None:
    opts, args = base.parse_flags(FLAGS, ["-a", "src", "-q"], interspersed=False)
    assert opts.all and not opts.quiet
    assert args == ["src", "-q"]


def test_parse_flags_help_and_errors() -> None:
    for argv in (["--help"], ["-h"], ["-ah"]):
        with pytest.raises(HelpRequested):
            base.parse_flags(FLAGS, argv)
    with pytest.raises(FlagError, match="^flag needs an argument: 'n' in -n$"):
        base.parse_flags(FLAGS, ["-n"])
    with pytest.raises(FlagError, match="^bad flag syntax: ---x$"):
        base.parse_flags(FLAGS, ["---x"])


def test_args_rules_render_cobra_messages() -> None:
    cmd = Command(use="history [OPTIONS] IMAGE", short="Show the history of an image", run=lambda *a: 0, args=Args(1, 1))
    with pytest.raises(CLIError) as e:
        cmd.args.check(cmd, "image history", [])
    assert str(e.value) == (
        '"portside image history" requires exactly 1 argument.\n'
        "See 'portside image history --help'.\n\n"
        "Usage:  portside image history [OPTIONS] IMAGE\n\n"
        "Show the history of an image"
    )
    Args(0, 2).check(cmd, "x", ["a", "b"])
    with pytest.raises(CLIError, match=r"requires at least 1 and at most 2 arguments\."):
        Args(1, 2).check(cmd, "x", [])


def test_flag_usages_wrap_like_pflag() -> None:
    text = base.flag_usages(
        (Flag("format", None, STRING, images.FORMAT_HELP), Flag("quiet", "q", BOOL, "Only show image IDs")), 79
    )
    assert text == (
        "      --format string   Format output using a custom template:\n"
        "                        'table':            Print output in table format\n"
        "                        with column headers (default)\n"
        "                        'table TEMPLATE':   Print output in table format\n"
        "                        using the given Go template\n"
        "                        'json':             Print in JSON format\n"
        "                        'TEMPLATE':         Print output using the given\n"
        "                        Go template.\n"
        "                        Refer to https://docs.docker.com/go/formatting/\n"
        "                        for more information about formatting output with\n"
        "                        templates\n"
        "  -q, --quiet           Only show image IDs\n"
    )
    assert "(default true)" in base.flag_usages((Flag("human", "H", BOOL, "x", default=True),), 79)
    assert "(default -1)" in base.flag_usages((Flag("last", "n", INT, "x", default=-1),), 79)


# ---------------------------------------------------------------------------
# references and tag


@pytest.mark.parametrize(
    "target, repo, tag",
    [
        ("busybox", "busybox", "latest"),
        ("busybox:1.36", "busybox", "1.36"),
        ("docker.io/library/busybox:musl", "busybox", "musl"),
        ("index.docker.io/me/app", "me/app", "latest"),
        ("localhost:5000/foo/bar", "localhost:5000/foo/bar", "latest"),
        ("localhost:5000/foo/bar:v2", "localhost:5000/foo/bar", "v2"),
        ("registry.example.com/team/app:1.0-rc", "registry.example.com/team/app", "1.0-rc"),
        ("[::1]:5000/x:y", "[::1]:5000/x", "y"),
    ],
)
def test_tag_splits_target_into_repo_and_tag(target: str, repo: str, tag: str) -> None:
    assert images.tag_query("busybox", target) == [("repo", repo), ("tag", tag)]
    assert reference.split_repo_tag(target) == (repo, tag)


@pytest.mark.parametrize(
    "target, error",
    [
        ("UPPER", "invalid reference format: repository name (library/UPPER) must be lowercase"),
        ("a:b:c", "invalid reference format"),
        ("a@sha256:" + "0" * 64, "refusing to create a tag with a digest reference"),
        ("ab" * 32, f"invalid repository name ({'ab' * 32}), cannot specify 64-byte hexadecimal strings"),
    ],
)
def test_tag_rejects_bad_targets(target: str, error: str) -> None:
    with pytest.raises(CLIError) as e:
        images.tag_query("busybox", target)
    assert error in str(e.value)


def test_tag_accepts_an_id_as_source() -> None:
    assert images.tag_query("ab" * 32, "x") == [("repo", "x"), ("tag", "latest")]
    assert images.tag_query(ID, "x:1") == [("repo", "x"), ("tag", "1")]


# ---------------------------------------------------------------------------
# images


def img(id_: str = ID, tags: list[str] | None = None, digests: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    d = {
        "Id": id_,
        "ParentId": "",
        "RepoTags": tags if tags is not None else [],
        "RepoDigests": digests if digests is not None else [],
        "Created": int(NOW - 7200),
        "Size": 4_261_296,
        "SharedSize": -1,
        "Labels": None,
        "Containers": -1,
    }
    d.update(kw)
    return d


def test_images_table_one_row_per_tag_and_dangling_rows() -> None:
    data = [
        img(tags=["busybox:latest", "busybox:1.36", "localhost:5000/bb:x"]),
        img(ID2, tags=[], digests=[], Created=int(NOW - 3 * 86400), Size=512),
    ]
    assert images.format_images(data, now=NOW) == (
        "REPOSITORY          TAG       IMAGE ID       CREATED       SIZE\n"
        "busybox             latest    abababababab   2 hours ago   4.26MB\n"
        "busybox             1.36      abababababab   2 hours ago   4.26MB\n"
        "localhost:5000/bb   x         abababababab   2 hours ago   4.26MB\n"
        "<none>              <none>    cdcdcdcdcdcd   3 days ago    512B\n"
    )


def test_images_empty_prints_the_header() -> None:
    assert images.format_images([], now=NOW) == "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"


def test_images_quiet_and_no_trunc() -> None:
    data = [img(tags=["a:1", "b:2"]), img(ID2, tags=["<none>:<none>"], digests=["<none>@<none>"])]
    # one line per row, as docker prints them (an image with two tags is listed twice)
    assert images.format_images(data, quiet=True, now=NOW) == "abababababab\nabababababab\ncdcdcdcdcdcd\n"
    assert images.format_images(data, quiet=True, no_trunc=True, now=NOW).splitlines() == [ID, ID, ID2]


def test_images_digests_column() -> None:
    dgst = "sha256:" + "ef" * 32
    data = [img(tags=["busybox:latest"], digests=[f"busybox@{dgst}"]), img(ID2, tags=[], digests=[f"alpine@{dgst}"])]
    out = images.format_images(data, digests=True, now=NOW).splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[1].split()[:4] == ["busybox", "latest", dgst, "abababababab"]
    assert out[2].split()[:4] == ["alpine", "<none>", dgst, "cdcdcdcdcdcd"]
    # without --digests a digest-only reference still gets its row, tag <none>
    plain = images.format_images(data, now=NOW).splitlines()
    assert [line.split()[:2] for line in plain[1:]] == [["busybox", "latest"], ["alpine", "<none>"]]


def test_images_json_format_has_dockers_keys() -> None:
    data = [img(tags=["busybox:latest"], Containers=2, SharedSize=1000)]
    line = images.format_images(data, fmt="{{json .}}", now=NOW)
    assert line.endswith("\n")
    row = json.loads(line)
    assert list(row) == sorted(row)
    assert row == {
        "Containers": "2",
        "CreatedAt": formatting.go_time_string(NOW - 7200),
        "CreatedSince": "2 hours ago",
        "Digest": "<none>",
        "ID": "abababababab",
        "Repository": "busybox",
        "SharedSize": "1kB",
        "Size": "4.26MB",
        "Tag": "latest",
        "UniqueSize": "4.26MB",
        "VirtualSize": "4.261MB",
    }
    assert images.format_images(data, fmt="json", now=NOW) == line


def test_images_custom_templates() -> None:
    data = [img(tags=["busybox:latest"])]
    assert images.format_images(data, fmt="{{.Repository}}:{{.Tag}} {{.ID}}", now=NOW) == "busybox:latest abababababab\n"
    assert images.format_images(data, fmt="table {{.Repository}}\\t{{.Size}}", now=NOW) == (
        "REPOSITORY   SIZE\nbusybox      4.26MB\n"
    )
    # --digests adds the column to a custom table
    assert images.format_images(data, fmt="table {{.ID}}", digests=True, now=NOW) == (
        "IMAGE ID       DIGEST\nabababababab   <none>\n"
    )
    with pytest.raises(base.StatusError) as e:
        images.format_images(data, fmt="{{.Nope}}", now=NOW)
    assert e.value.code == 1
    assert str(e.value).startswith("template parsing error: ")


def test_filters_json() -> None:
    assert images.filters_json([]) == ""
    assert json.loads(images.filters_json([("dangling", "true"), ("reference", "busy*"), ("reference", "alp*")])) == {
        "dangling": {"true": True},
        "reference": {"busy*": True, "alp*": True},
    }


# ---------------------------------------------------------------------------
# history, rmi, prune, messages


def test_history_table() -> None:
    long_cmd = "/bin/sh -c #(nop) ADD file:0123456789abcdef in / with\ta tab and more text"
    data = [
        {"Id": ID, "Created": int(NOW - 60), "CreatedBy": long_cmd, "Size": 1_048_576, "Comment": "", "Tags": ["busybox:latest"]},
        {"Id": "<missing>", "Created": 0, "CreatedBy": "", "Size": 0, "Comment": "Imported from -", "Tags": None},
    ]
    out = images.format_history(data, now=NOW)
    assert out.splitlines() == [
        "IMAGE          CREATED              CREATED BY                                      SIZE      COMMENT",
        "abababababab   About a minute ago   /bin/sh -c #(nop) ADD file:0123456789abcdef …   1.05MB    ",
        "<missing>      N/A                                                                  0B        Imported from -",
    ]
    full = images.format_history(data, no_trunc=True, human=False, now=NOW).splitlines()
    assert full[0].split() == ["IMAGE", "CREATED", "AT", "CREATED", "BY", "SIZE", "COMMENT"]
    assert formatting.go_rfc3339(NOW - 60) in full[1]
    assert long_cmd.replace("\t", " ") in full[1]
    assert ID in full[1] and "1048576" in full[1]
    assert images.format_history(data, quiet=True, now=NOW) == "abababababab\n<missing>\n"


def test_ellipsis_and_truncate_id() -> None:
    assert ellipsis("abcdef", 4) == "abc…"
    assert ellipsis("abc", 4) == "abc"
    assert ellipsis("日本語日本語", 5) == "日本…"
    assert truncate_id(ID) == "abababababab"
    assert truncate_id("<missing>") == "<missing>"


def test_rmi_and_prune_output() -> None:
    items = [{"Untagged": "busybox:latest"}, {"Untagged": "busybox@sha256:x"}, {"Deleted": ID}]
    assert images.format_deletes(items) == f"Untagged: busybox:latest\nUntagged: busybox@sha256:x\nDeleted: {ID}\n"
    report = {"ImagesDeleted": [{"Untagged": "a:1"}, {"Deleted": ID}], "SpaceReclaimed": 1_234_567}
    assert images.format_prune(report) == f"Deleted Images:\nuntagged: a:1\ndeleted: {ID}\n\nTotal reclaimed space: 1.235MB\n"
    assert images.format_prune({"ImagesDeleted": None, "SpaceReclaimed": 0}) == "Total reclaimed space: 0B\n"


def test_json_message_stream_display() -> None:
    out: list[str] = []
    display_json_messages(
        [
            {"status": ID},
            {"stream": "Loaded image: busybox:latest\n"},
            {"aux": {"ID": ID}},
            {"id": "abc", "status": "Extracting", "progressDetail": {"current": 5, "total": 10}},
            {"id": "abc", "status": "Pull complete", "progressDetail": {}},
        ],
        out.append,
    )
    assert "".join(out) == f"{ID}\nLoaded image: busybox:latest\nabc: Pull complete\n"
    with pytest.raises(StreamError, match="^bad tar$"):
        display_json_messages([{"stream": "x\n"}, {"errorDetail": {"message": "bad tar"}, "error": "bad tar"}], out.append)


def test_import_query() -> None:
    assert images.import_query("-", "me/app:1.0", "msg", ["CMD [\"sh\"]", "ENV A=b"], "Linux/AMD64") == [
        ("fromSrc", "-"),
        ("repo", "me/app"),
        ("tag", "1.0"),
        ("message", "msg"),
        ("platform", "linux/amd64"),
        ("changes", 'CMD ["sh"]'),
        ("changes", "ENV A=b"),
    ]
    assert images.import_query("-", "", "", [], "")[:3] == [("fromSrc", "-"), ("repo", ""), ("tag", "")]


# ---------------------------------------------------------------------------
# inspect


def test_indent_json_matches_go_json_indent() -> None:
    raw = '[{"Id":"sha256:x","RepoTags":["a:1","b:2"],"Empty":[],"Obj":{},"Cfg":{"Cmd":["sh","-c","echo \\"{[,:]}\\""],"N":1.50},"Html":"<&>\\u00e9"}]'
    assert indent_json(raw) == (
        "[\n"
        "    {\n"
        '        "Id": "sha256:x",\n'
        '        "RepoTags": [\n'
        '            "a:1",\n'
        '            "b:2"\n'
        "        ],\n"
        '        "Empty": [],\n'
        '        "Obj": {},\n'
        '        "Cfg": {\n'
        '            "Cmd": [\n'
        '                "sh",\n'
        '                "-c",\n'
        '                "echo \\"{[,:]}\\""\n'
        "            ],\n"
        '            "N": 1.50\n'
        "        },\n"
        '        "Html": "<&>\\u00e9"\n'
        "    }\n"
        "]"
    )
    assert formatting.compact_json('[ {"a" : [1, 2]} ,\n{} ]') == '[{"a":[1,2]},{}]'


def test_template_data_answers_to_go_field_names() -> None:
    from portside.cli import gotemplate
    from portside.cli.commands.inspect import template_data

    data = template_data('{"Id":"sha256:x","Os":"linux"}')
    assert gotemplate.render("{{.ID}} {{.Id}} {{.Os}}", data) == "sha256:x sha256:x linux"
    assert gotemplate.render("{{json .}}", data) == '{"Id":"sha256:x","Os":"linux"}'


# ---------------------------------------------------------------------------
# system


def test_df_summary() -> None:
    du = {
        "LayersSize": 10_000_000,
        "Images": [img(Containers=1, Size=6_000_000, SharedSize=1_000_000), img(ID2, Containers=0, Size=4_000_000, SharedSize=0)],
        "Containers": [{"Id": "c1", "State": "running", "SizeRw": 100}, {"Id": "c2", "State": "exited", "SizeRw": 300}],
        "Volumes": [{"Name": "v", "UsageData": {"Size": 2048, "RefCount": 0}}],
        "BuildCache": [],
    }
    assert system.format_df(du) == (
        "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"
        "Images          2         1         10MB      5MB (50%)\n"
        "Containers      2         1         400B      300B (75%)\n"
        "Local Volumes   1         0         2.048kB   2.048kB (100%)\n"
        "Build Cache     0         0         0B        0B\n"
    )
    rows = [json.loads(line) for line in system.format_df(du, fmt="{{json .}}").splitlines()]
    assert [r["Type"] for r in rows] == ["Images", "Containers", "Local Volumes", "Build Cache"]
    assert list(rows[0]) == ["Active", "Reclaimable", "Size", "TotalCount", "Type"]


def test_df_verbose_sections() -> None:
    du = {"LayersSize": 0, "Images": [img(tags=["busybox:latest"], Containers=0, SharedSize=0)], "Containers": [], "Volumes": [], "BuildCache": []}
    out = system.format_df(du, verbose=True, now=NOW)
    assert out.startswith("Images space usage:\n\nREPOSITORY   TAG       IMAGE ID       CREATED       SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS\n")
    assert "\nContainers space usage:\n\nCONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE      CREATED   STATUS    NAMES\n" in out
    assert "\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n" in out
    assert "\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n" in out


SERVER_VERSION = {
    "Platform": {"Name": "portside"},
    "Components": [
        {
            "Name": "Engine",
            "Version": "0.1.0",
            "Details": {"ApiVersion": "1.45", "MinAPIVersion": "1.24", "GoVersion": "python3.11.7", "GitCommit": "abc",
                        "BuildTime": "x", "Os": "linux", "Arch": "amd64", "Experimental": "false"},
        },
        {"Name": "runtime", "Version": "1", "Details": {"b": "2", "a": "1"}},
    ],
    "Version": "0.1.0",
    "ApiVersion": "1.45",
    "MinAPIVersion": "1.24",
}


def test_version_layout() -> None:
    client = {**system.client_version(), "GoVersion": "Python 3.11.7", "Os": "linux", "Arch": "amd64"}
    assert system.format_version(client, SERVER_VERSION) == (
        "Client:\n"
        f" Version:           {client['Version']}\n"
        " API version:       1.45\n"
        " Go version:        Python 3.11.7\n"
        " Git commit:        unknown\n"
        " Built:             unknown\n"
        " OS/Arch:           linux/amd64\n"
        " Context:           default\n"
        "\n"
        "Server: portside\n"
        " Engine:\n"
        "  Version:          0.1.0\n"
        "  API version:      1.45 (minimum version 1.24)\n"
        "  Go version:       python3.11.7\n"
        "  Git commit:       abc\n"
        "  Built:            x\n"
        "  OS/Arch:          linux/amd64\n"
        "  Experimental:     false\n"
        " runtime:\n"
        "  Version:          1\n"
        "  a:                1\n"
        "  b:                2\n"
    )
    # an Engine component is made up when the server lists none
    comps = system.server_components({"Version": "9", "ApiVersion": "1.45", "MinAPIVersion": "1.24"})
    assert comps[0]["Name"] == "Engine" and comps[0]["Details"]["ApiVersion"] == "1.45"


def test_info_server_section() -> None:
    info = {
        "Containers": 3, "ContainersRunning": 1, "ContainersPaused": 0, "ContainersStopped": 2, "Images": 5,
        "ServerVersion": "0.1.0", "Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host"], "Log": ["json-file"]},
        "Swarm": {"LocalNodeState": "inactive"}, "OSType": "linux", "NCPU": 2, "MemTotal": 25_000_000_000,
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"], "DockerRootDir": "/var/lib/portside",
        "Warnings": ["WARNING: no swap limit support"], "ContainerdCommit": {"ID": "x", "Expected": "y"},
    }
    text, warnings = system.format_server_info(info)
    lines = text.splitlines()
    assert lines[:6] == [" Containers: 3", "  Running: 1", "  Paused: 0", "  Stopped: 2", " Images: 5", " Server Version: 0.1.0"]
    assert "  Backing Filesystem: extfs" in lines
    assert "  Network: bridge host" in lines
    assert " containerd version: x (expected: y)" in lines
    assert lines[lines.index(" Security Options:") + 1 : lines.index(" Security Options:") + 4] == ["  seccomp", "   Profile: builtin", "  cgroupns"]
    assert " Total Memory: 23.28GiB" in lines
    assert " Debug Mode: false" in lines
    assert text.endswith(" Live Restore Enabled: false\n\n")
    assert warnings == ["WARNING: no swap limit support"]


def test_info_format_needs_server_only_for_server_fields() -> None:
    assert not system.needs_server_info("{{.ClientInfo.Version}}")
    assert not system.needs_server_info("{{json .ClientInfo}}")
    assert system.needs_server_info("{{.ServerVersion}}")
    assert system.needs_server_info("json")
    assert system.needs_server_info("")


# ---------------------------------------------------------------------------
# ps


def test_ps_empty_and_rows() -> None:
    assert format_ps([], now=NOW) == "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    c = {
        "Id": "f" * 64, "Names": ["/web"], "Image": "docker.io/library/busybox:latest", "ImageID": ID,
        "Command": "sh -c 'while true; do sleep 1; done'", "Created": int(NOW - 30), "State": "running",
        "Status": "Up 29 seconds",
        "Ports": [{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp", "IP": "0.0.0.0"}, {"PrivatePort": 443, "Type": "tcp"}],
    }
    lines = format_ps([c], now=NOW).splitlines()
    assert lines[1].startswith("ffffffffffff   busybox:latest   \"sh -c 'while true; …\"   30 seconds ago   Up 29 seconds   ")
    # grouped ports first, then host mappings, as docker's DisplayablePorts
    assert lines[1].endswith("443/tcp, 0.0.0.0:8080->80/tcp   web")
    assert displayable_ports([{"PrivatePort": p, "Type": "tcp"} for p in (80, 81, 82, 90)]) == "80-82/tcp, 90/tcp"


# ---------------------------------------------------------------------------
# the HTTP client against a fake Engine API on a unix socket


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: dict[tuple[str, str], Any] = {}
    seen: list[tuple[str, str, bytes, dict[str, str]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n)

    def _serve(self) -> None:
        body = self._body()
        path, _, query = self.path.partition("?")
        self.seen.append((self.command, self.path, body, dict(self.headers)))
        route = self.routes.get((self.command, path))
        if route is None:
            status, ctype, payload, chunked = 404, "application/json", b'{"message":"page not found"}', False
        else:
            status, ctype, payload, chunked = route
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in payload:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _serve


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> Any:
        sock, _ = super().get_request()
        return sock, ("local", 0)


@pytest.fixture
def fake_api(tmp_path: Any) -> Iterator[tuple[str, type[_Handler]]]:
    path = str(tmp_path / "api.sock")

    class Handler(_Handler):
        routes: dict[tuple[str, str], Any] = {}
        seen: list[tuple[str, str, bytes, dict[str, str]]] = []

    server = _UnixServer(path, Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield "unix://" + path, Handler
    finally:
        server.shutdown()
        server.server_close()


def test_images_through_the_client(fake_api: tuple[str, type[_Handler]]) -> None:
    host, h = fake_api
    h.routes[("GET", "/v1.45/images/json")] = (200, "application/json", [json.dumps([img(tags=["busybox:latest"])]).encode()[:50], json.dumps([img(tags=["busybox:latest"])]).encode()[50:]], True)
    r = cli("images", "-a", "--filter", "dangling=false", "busy*", host=host)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1].startswith("busybox      latest    abababababab   ")
    method, target, _, _ = h.seen[-1]
    assert method == "GET"
    assert target.startswith("/v1.45/images/json?filters=")
    from urllib.parse import parse_qs, urlsplit

    q = parse_qs(urlsplit(target).query)
    assert json.loads(q["filters"][0]) == {"dangling": {"false": True}, "reference": {"busy*": True}}
    assert q["all"] == ["1"]


def test_daemon_errors_and_rmi_continuing(fake_api: tuple[str, type[_Handler]]) -> None:
    host, h = fake_api
    h.routes[("DELETE", "/v1.45/images/a")] = (200, "application/json", json.dumps([{"Untagged": "a:latest"}, {"Deleted": ID}]).encode(), False)
    h.routes[("DELETE", "/v1.45/images/busy")] = (409, "application/json", b'{"message":"conflict: unable to remove repository reference \\"busy\\""}\n', False)
    h.routes[("DELETE", "/v1.45/images/text")] = (500, "text/plain", b"plain failure\n", False)
    r = cli("rmi", "-f", "nope", "a", "busy", "text", host=host)
    assert r.returncode == 1
    assert r.stdout == f"Untagged: a:latest\nDeleted: {ID}\n"
    assert r.stderr == (
        "Error response from daemon: page not found\n"
        'Error response from daemon: conflict: unable to remove repository reference "busy"\n'
        "Error response from daemon: plain failure\n"
    )
    assert [s[1] for s in h.seen] == [f"/v1.45/images/{n}?force=1" for n in ("nope", "a", "busy", "text")]
    # with -f, "not found" alone is not an error
    r = cli("rmi", "-f", "nope", host=host)
    assert (r.returncode, r.stderr) == (0, "Error response from daemon: page not found\n")


def test_empty_error_body(fake_api: tuple[str, type[_Handler]]) -> None:
    host, h = fake_api
    h.routes[("GET", "/v1.45/images/x/history")] = (500, "application/json", b"", False)
    r = cli("history", "x", host=host)
    assert r.returncode == 1
    assert r.stderr == (
        "Error response from daemon: request returned Internal Server Error for API route and version "
        "/v1.45/images/x/history, check if the server supports the requested API version\n"
    )


def test_import_streams_stdin_chunked_and_load_reports_stream_errors(fake_api: tuple[str, type[_Handler]], tmp_path: Any) -> None:
    host, h = fake_api
    h.routes[("POST", "/v1.45/images/create")] = (200, "application/json", [b'{"status":"', ID.encode() + b'"}\r\n'], True)
    payload = os.urandom(200_000)
    r = subprocess.run(
        [sys.executable, "-m", "portside", "-H", host, "import", "-c", "CMD [\"sh\"]", "-m", "hi", "-", "me/app:2"],
        input=payload, capture_output=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == ID + "\n"
    method, target, body, headers = h.seen[-1]
    assert body == payload
    assert headers.get("Transfer-Encoding") == "chunked"
    assert "fromSrc=-" in target and "repo=me%2Fapp" in target and "tag=2" in target and "changes=CMD+%5B%22sh%22%5D" in target

    tar = tmp_path / "img.tar"
    tar.write_bytes(b"x" * 1000)
    h.routes[("POST", "/v1.45/images/load")] = (
        200, "application/json",
        [b'{"stream":"Loaded image: a:1\\n"}\n', b'{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\n'],
        True,
    )
    r = cli("load", "-i", str(tar), host=host)
    assert (r.returncode, r.stdout, r.stderr) == (1, "Loaded image: a:1\n", "unexpected EOF\n")
    method, target, body, headers = h.seen[-1]
    assert target == "/v1.45/images/load?quiet=1"
    assert body == b"x" * 1000 and headers["Content-Length"] == "1000"
    assert headers["Content-Type"] == "application/x-tar"


def test_save_streams_to_file_through_a_temporary(fake_api: tuple[str, type[_Handler]], tmp_path: Any) -> None:
    host, h = fake_api
    h.routes[("GET", "/v1.45/images/get")] = (200, "application/x-tar", [b"a" * 70000, b"b" * 10], True)
    out = tmp_path / "out.tar"
    r = cli("save", "-o", str(out), "busybox", "alpine:3", host=host)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"a" * 70000 + b"b" * 10
    assert sorted(os.listdir(tmp_path)) == ["api.sock", "out.tar"]
    assert h.seen[-1][1] == "/v1.45/images/get?names=busybox&names=alpine%3A3"


def test_inspect_prints_found_objects_then_errors(fake_api: tuple[str, type[_Handler]]) -> None:
    host, h = fake_api
    h.routes[("GET", "/v1.45/images/busybox/json")] = (200, "application/json", b'{"Id":"sha256:1","Os":"linux","Size":5}', False)
    h.routes[("GET", "/v1.45/images/nope/json")] = (404, "application/json", b'{"message":"No such image: nope:latest"}', False)
    r = cli("image", "inspect", "busybox", "nope", host=host)
    assert r.returncode == 1
    assert r.stdout == '[\n    {\n        "Id": "sha256:1",\n        "Os": "linux",\n        "Size": 5\n    }\n]\n'
    assert r.stderr == "Error response from daemon: No such image: nope:latest\n"
    r = cli("inspect", "-f", "{{.ID}} {{.Os}}", "busybox", host=host)
    assert (r.returncode, r.stdout) == (0, "sha256:1 linux\n")
    # container first, then image: both tried
    assert [s[1] for s in h.seen[-2:]] == ["/v1.45/containers/busybox/json", "/v1.45/images/busybox/json"]
    r = cli("inspect", "nope", host=host)
    assert (r.returncode, r.stdout, r.stderr) == (1, "[]\n", "Error: No such object: nope\n")
    r = cli("inspect", "--format", "{{.Os", "busybox", host=host)
    assert r.returncode == 64
    assert r.stderr.startswith("template parsing error: ")
