"""`docker import/commit --change`: moby's BuildFromConfig, instruction by instruction, with its error messages."""

from __future__ import annotations

from typing import Any

import pytest

from portside.errors import InvalidArgument
from portside.images.changes import apply_changes

SECOND = 1_000_000_000


@pytest.mark.parametrize("change, expected", [
    ('CMD ["sh"]', {"Cmd": ["sh"]}),
    ("CMD echo hi", {"Cmd": ["/bin/sh", "-c", "echo hi"]}),
    ("CMD []", {"Cmd": []}),
    ("CMD", {"Cmd": ["/bin/sh", "-c"]}),  # moby prefixes the shell even to nothing
    ('CMD ["unclosed"', {"Cmd": ["/bin/sh", "-c", '["unclosed"']}),  # not JSON: the shell form
    ('ENTRYPOINT ["/bin/app", "-x"]', {"Entrypoint": ["/bin/app", "-x"], "Cmd": None}),
    ("ENTRYPOINT []", {"Entrypoint": None, "Cmd": None}),
    ("ENV A=1 B=\"two words\"", {"Env": ["A=1", "B=two words"]}),
    ("ENV C='single' D=back\\ slash E=\"q\\\"uote\"", {"Env": ["C=single", "D=back slash", 'E=q"uote']}),
    ("ENV LEGACY some value", {"Env": ["LEGACY=some value"]}),
    ('ENV LEGACY "quoted value"', {"Env": ["LEGACY=quoted value"]}),
    ("ENV EMPTY=", {"Env": ["EMPTY="]}),
    ("EXPOSE 80 53/udp", {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}),
    ("EXPOSE 80/TCP 53/Udp", {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}),
    ("EXPOSE 8000-8002/udp", {"ExposedPorts": {"8000/udp": {}, "8001/udp": {}, "8002/udp": {}}}),
    ("EXPOSE 9000-9000", {"ExposedPorts": {"9000/tcp": {}}}),
    ("EXPOSE 127.0.0.1:8080:80/sctp", {"ExposedPorts": {"80/sctp": {}}}),
    ("USER nobody", {"User": "nobody"}),
    ("WORKDIR /srv", {"WorkingDir": "/srv"}),
    ("WORKDIR app", {"WorkingDir": "/app"}),
    ("WORKDIR /srv/../etc//x/./", {"WorkingDir": "/etc/x"}),
    ("WORKDIR //double", {"WorkingDir": "/double"}),
    ('WORKDIR "/with space"', {"WorkingDir": "/with space"}),
    ('VOLUME ["/data", "/logs"]', {"Volumes": {"/data": {}, "/logs": {}}}),
    ("VOLUME /data", {"Volumes": {"/data": {}}}),
    ("LABEL a=b c=d", {"Labels": {"a": "b", "c": "d"}}),
    ('LABEL "key with space"="v"', {"Labels": {"key with space": "v"}}),
    ("STOPSIGNAL SIGINT", {"StopSignal": "SIGINT"}),
    ("ONBUILD RUN true", {"OnBuild": ["RUN true"]}),
    ("cmd [\"lower\"]", {"Cmd": ["lower"]}),
    ("HEALTHCHECK NONE", {"Healthcheck": {"Test": ["NONE"]}}),
    ("healthcheck none", {"Healthcheck": {"Test": ["NONE"]}}),
    ("HEALTHCHECK CMD curl -f http://localhost/ || exit 1",
     {"Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]}}),
    ('HEALTHCHECK CMD ["/bin/check", "-q"]', {"Healthcheck": {"Test": ["CMD", "/bin/check", "-q"]}}),
    ("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=1.5s --start-interval=300ms --retries=3 CMD true",
     {"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30 * SECOND, "Timeout": 90 * SECOND,
                      "StartPeriod": 1_500_000_000, "StartInterval": 300_000_000, "Retries": 3}}),
    # zero durations and retries are left out, as Go's omitempty does
    ("HEALTHCHECK --interval=0s --retries=0 CMD true", {"Healthcheck": {"Test": ["CMD-SHELL", "true"]}}),
    ('HEALTHCHECK --timeout="5s" cmd true', {"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Timeout": 5 * SECOND}}),
])
def test_each_instruction(change: str, expected: dict[str, Any]) -> None:
    assert apply_changes({}, [change]) == expected


@pytest.mark.parametrize("base, changes, expected", [
    # ENTRYPOINT drops the image's CMD, but not a CMD given earlier in the same changes
    ({"Cmd": ["old"]}, ['ENTRYPOINT ["e"]'], {"Cmd": None, "Entrypoint": ["e"]}),
    ({"Cmd": ["old"]}, ['CMD ["c"]', 'ENTRYPOINT ["e"]'], {"Cmd": ["c"], "Entrypoint": ["e"]}),
    ({"Cmd": ["old"]}, ['ENTRYPOINT ["e"]', 'CMD ["c"]'], {"Cmd": ["c"], "Entrypoint": ["e"]}),
    ({"Cmd": ["old"]}, ["CMD []", 'ENTRYPOINT ["e"]'], {"Cmd": None, "Entrypoint": ["e"]}),  # an empty CMD sets nothing
    ({"Cmd": ["old"]}, ['CMD ["c"]\nENTRYPOINT ["e"]'], {"Cmd": ["c"], "Entrypoint": ["e"]}),
    # the shell form uses the image's SHELL
    ({"Shell": ["/bin/bash", "-o", "pipefail", "-c"]}, ["CMD echo"],
     {"Shell": ["/bin/bash", "-o", "pipefail", "-c"], "Cmd": ["/bin/bash", "-o", "pipefail", "-c", "echo"]}),
    ({"Cmd": ["x"], "ArgsEscaped": True}, ["CMD y"], {"Cmd": ["/bin/sh", "-c", "y"]}),
    # WORKDIR is relative to the working directory so far
    ({"WorkingDir": "/srv"}, ["WORKDIR x"], {"WorkingDir": "/srv/x"}),
    ({}, ["WORKDIR /srv", "WORKDIR x", "WORKDIR ../y"], {"WorkingDir": "/srv/y"}),
    ({"WorkingDir": "/srv"}, ["WORKDIR /abs"], {"WorkingDir": "/abs"}),
    # ENV replaces a variable where it stands
    ({"Env": ["A=old", "PATH=/bin"]}, ["ENV A=new B=2"], {"Env": ["A=new", "PATH=/bin", "B=2"]}),
    ({"Labels": {"a": "1"}}, ["LABEL b=2"], {"Labels": {"a": "1", "b": "2"}}),
    ({"ExposedPorts": {"22/tcp": {}}}, ["EXPOSE 80"], {"ExposedPorts": {"22/tcp": {}, "80/tcp": {}}}),
    ({"OnBuild": ["RUN a"]}, ["ONBUILD RUN b"], {"OnBuild": ["RUN a", "RUN b"]}),
    ({"Healthcheck": {"Test": ["CMD", "x"], "Retries": 2}}, ["HEALTHCHECK NONE"], {"Healthcheck": {"Test": ["NONE"]}}),
    # Dockerfile lines: comments, blank lines and continuations, across the list too
    ({}, ["# a comment", "", "USER x"], {"User": "x"}),
    ({}, ["ENV A=1 \\", "  B=2"], {"Env": ["A=1", "B=2"]}),
    ({}, ["LABEL a=1 \\\n# inside\n\n b=2"], {"Labels": {"a": "1", "b": "2"}}),
    # no variable expansion: a $ stays as written
    ({}, ["ENV P=$PATH:/x"], {"Env": ["P=$PATH:/x"]}),
])
def test_sequences(base: dict[str, Any], changes: list[str], expected: dict[str, Any]) -> None:
    assert apply_changes(base, changes) == expected


def test_deeply_nested_brackets_are_the_shell_form() -> None:
    assert apply_changes({}, ["CMD " + "[" * 100_000]) == {"Cmd": ["/bin/sh", "-c", "[" * 100_000]}


def test_input_is_not_modified() -> None:
    base = {"Env": ["PATH=/bin", "A=old"], "Labels": {"a": "1"}}
    apply_changes(base, ["ENV A=new", "LABEL b=2"])
    assert base == {"Env": ["PATH=/bin", "A=old"], "Labels": {"a": "1"}}


@pytest.mark.parametrize("changes, message", [
    # moby names the instruction lowercased, as its parser stores it (dockerd 20.10 says so)
    (["RUN echo"], "run is not a valid change command"),
    (["run echo"], "run is not a valid change command"),
    (["FROM busybox"], "from is not a valid change command"),
    (["COPY a b"], "copy is not a valid change command"),
    # ENV and LABEL syntax
    (["ENV"], "ENV requires at least one argument"),
    (["ENV a"], "ENV must have two arguments"),
    (["LABEL a"], "LABEL must have two arguments"),
    (["ENV A=1 B"], "Syntax error - can't find = in \"B\". Must be of the form: name=value"),
    (["LABEL a=1 'b c'"], "Syntax error - can't find = in \"'b c'\". Must be of the form: name=value"),
    (["ENV =x"], "ENV names can not be blank"),
    (["LABEL =x"], "LABEL names can not be blank"),
    (["ENV --x=1 A=b"], "unknown flag: --x"),
    # unclosed quotes: moby's word processing error, never a Python ValueError
    (['ENV a="b'], 'failed to process "\\"b": unexpected end of statement while looking for matching double-quote'),
    (["LABEL a='b"], "failed to process \"'b\": unexpected end of statement while looking for matching single-quote"),
    (['ENV "a=b'], 'failed to process "\\"a": unexpected end of statement while looking for matching double-quote'),
    (['WORKDIR "/x'], 'failed to process "\\"/x": unexpected end of statement while looking for matching double-quote'),
    (["USER 'x"], "failed to process \"'x\": unexpected end of statement while looking for matching single-quote"),
    # EXPOSE
    (["EXPOSE"], "EXPOSE requires at least one argument"),
    (["EXPOSE http"], "invalid containerPort: http"),
    (["EXPOSE 70000"], "invalid containerPort: 70000"),
    (["EXPOSE 90-80"], "invalid containerPort: 90-80"),
    (["EXPOSE 80-"], "invalid containerPort: 80-"),
    (["EXPOSE 80/icmp"], "invalid proto: icmp"),
    (["EXPOSE /tcp"], "no port specified: /tcp<empty>"),
    (["EXPOSE 80-82:90-91"], "invalid ranges specified for container and host Ports: 90-91 and 80-82"),
    (["EXPOSE 1.2.3:80:80"], "invalid IP address: 1.2.3"),
    # HEALTHCHECK
    (["HEALTHCHECK"], "HEALTHCHECK requires at least one argument"),
    (["HEALTHCHECK NONE x"], "HEALTHCHECK NONE takes no arguments"),
    (["HEALTHCHECK CMD-SHELL x"], 'Unknown type "CMD-SHELL" in HEALTHCHECK (try CMD)'),
    (["HEALTHCHECK CMD"], "Missing command after HEALTHCHECK CMD"),
    (["HEALTHCHECK CMD []"], "Missing command after HEALTHCHECK CMD"),
    (["HEALTHCHECK --interval=500us CMD x"], 'Interval "interval" cannot be less than 1ms'),
    (["HEALTHCHECK --start-period=-1s CMD x"], 'Interval "start-period" cannot be less than 1ms'),
    (["HEALTHCHECK --timeout=5 CMD x"], 'time: missing unit in duration "5"'),
    (["HEALTHCHECK --timeout=soon CMD x"], 'time: invalid duration "soon"'),
    (["HEALTHCHECK --retries=-1 CMD x"], "--retries cannot be negative (-1)"),
    (["HEALTHCHECK --retries=x CMD x"], 'strconv.ParseInt: parsing "x": invalid syntax'),
    (["HEALTHCHECK --retries=4294967296 CMD x"], 'strconv.ParseInt: parsing "4294967296": value out of range'),
    (["HEALTHCHECK --verbose=1 CMD x"], "unknown flag: --verbose"),
    (["HEALTHCHECK --interval CMD x"], "missing a value on flag: --interval"),
    (["HEALTHCHECK --interval=1s --interval=2s CMD x"], "duplicate flag specified: --interval"),
    # the others
    (["CMD [1]"], "when using JSON array syntax, arrays must be comprised of strings only"),
    (["CMD --x y"], "unknown flag: --x"),
    (["USER"], "USER requires exactly one argument"),
    (["WORKDIR"], "WORKDIR requires exactly one argument"),
    (['WORKDIR ""'], "cannot normalize nothing"),
    (["STOPSIGNAL"], "STOPSIGNAL requires exactly one argument"),
    (["VOLUME"], "VOLUME requires at least one argument"),
    (["VOLUME []"], "VOLUME requires at least one argument"),
    (['VOLUME [" "]'], "VOLUME specified can not be an empty string"),
    (['VOLUME ""'], "VOLUME specified can not be an empty string"),
    (["ONBUILD"], "ONBUILD requires at least one argument"),
    (["ONBUILD ONBUILD RUN x"], "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    (["ONBUILD from x"], "FROM isn't allowed as an ONBUILD trigger"),
    (["ONBUILD MAINTAINER me"], "MAINTAINER isn't allowed as an ONBUILD trigger"),
    # every line is parsed before any runs: the syntax error in the second line wins
    (["EXPOSE http", "ENV a"], "ENV must have two arguments"),
])
def test_invalid(changes: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        apply_changes({}, changes)
    assert str(e.value) == message
