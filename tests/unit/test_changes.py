import pytest

from portside.errors import InvalidArgument
from portside.images.changes import apply_changes


@pytest.mark.parametrize("change, expected", [
    ('CMD ["sh"]', {"Cmd": ["sh"]}),
    ("CMD echo hi", {"Cmd": ["/bin/sh", "-c", "echo hi"]}),
    ('ENTRYPOINT ["/bin/app", "-x"]', {"Entrypoint": ["/bin/app", "-x"], "Cmd": None}),
    ("ENV A=1 B=\"two words\"", {"Env": ["A=1", "B=two words"]}),
    ("ENV LEGACY some value", {"Env": ["LEGACY=some value"]}),
    ("EXPOSE 80 53/udp", {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}),
    ("USER nobody", {"User": "nobody"}),
    ("WORKDIR /srv", {"WorkingDir": "/srv"}),
    ('VOLUME ["/data", "/logs"]', {"Volumes": {"/data": {}, "/logs": {}}}),
    ("VOLUME /data", {"Volumes": {"/data": {}}}),
    ("LABEL a=b c=d", {"Labels": {"a": "b", "c": "d"}}),
    ("STOPSIGNAL SIGINT", {"StopSignal": "SIGINT"}),
    ("ONBUILD RUN true", {"OnBuild": ["RUN true"]}),
    ("cmd [\"lower\"]", {"Cmd": ["lower"]}),
])
def test_each_instruction(change, expected):
    assert apply_changes({}, [change]) == expected


def test_env_replaces_and_keeps_order():
    base = {"Env": ["PATH=/bin", "A=old"]}
    assert apply_changes(base, ["ENV A=new"])["Env"] == ["PATH=/bin", "A=new"]
    assert base["Env"] == ["PATH=/bin", "A=old"]  # the input is not modified


@pytest.mark.parametrize("change, message", [
    ("RUN echo", "RUN is not a valid change command"),
    ("FROM busybox", "FROM is not a valid change command"),
    ("EXPOSE http", "invalid containerPort: http"),
    ("ENV", "ENV requires at least one argument"),
])
def test_invalid(change, message):
    with pytest.raises(InvalidArgument, match=message):
        apply_changes({}, [change])
