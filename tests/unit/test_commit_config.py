"""The config side of a commit, without a daemon: the request's Config, moby's merge, the child image's config."""

from __future__ import annotations

import pytest

from portside.containers.commit import merge_config
from portside.errors import InvalidArgument
from portside.images.commit import Commit, child_config
from portside.images.containerconfig import decode, document


def test_decode_reads_config_fields_like_go() -> None:
    assert decode(None) is None
    assert decode({}) is None  # no Config field: Go leaves the embedded *Config nil
    assert decode({"HostConfig": {"Memory": 1}}) is None
    assert decode({"cmd": "x", "ENV": ["A=1"], "Volumes": {"/v": {"ignored": 1}}}) == {
        "Cmd": ["x"], "Env": ["A=1"], "Volumes": {"/v": {}}}
    assert decode({"Cmd": None, "Tty": None}) == {"Cmd": None, "Tty": False}
    # an exact key wins over a case-insensitive one, whatever the order
    assert decode({"user": "a", "User": "b"}) == {"User": "b"}
    assert decode({"User": "b", "user": "a"}) == {"User": "b"}


@pytest.mark.parametrize("body, message", [
    ([], "json: cannot unmarshal array into Go value of type container.ContainerConfigWrapper"),
    ({"Env": "A=1"}, "Go struct field ContainerConfigWrapper.Env of type []string"),
    ({"Cmd": [1]}, "cannot unmarshal array into Go struct field ContainerConfigWrapper.Cmd of type strslice.StrSlice"),
    ({"Tty": "yes"}, "cannot unmarshal string into Go struct field ContainerConfigWrapper.Tty of type bool"),
    ({"Labels": {"a": 1}}, "ContainerConfigWrapper.Labels of type map[string]string"),
    ({"StopTimeout": True}, "cannot unmarshal bool into Go struct field ContainerConfigWrapper.StopTimeout of type int"),
])
def test_decode_refuses_wrong_types(body: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        decode(body)


def test_document_is_go_s_struct_order_with_omitempty() -> None:
    doc = document({"Cmd": ["sh"], "Labels": {"a": "b"}, "StopSignal": "", "ExposedPorts": {"80/tcp": {}},
                    "Unknown": 1})
    assert list(doc) == ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
                         "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes",
                         "WorkingDir", "Entrypoint", "OnBuild", "Labels"]
    assert (doc["Env"], doc["Cmd"], doc["Labels"], doc["Hostname"]) == (None, ["sh"], {"a": "b"}, "")


CONTAINER = {"User": "u", "Env": ["PATH=/bin", "A=c"], "Cmd": ["c"], "Entrypoint": None, "Labels": {"x": "c"},
             "ExposedPorts": {"1/tcp": {}}, "WorkingDir": "/w", "Volumes": {"/v": {}}, "StopSignal": "SIGINT",
             "Healthcheck": {"Test": ["CMD", "c"], "Interval": 5, "Retries": 3}}


def test_merge_fills_what_the_commit_config_leaves_empty() -> None:
    merged = merge_config({"Env": ["A=u"], "Labels": {"x": "u"}, "ExposedPorts": {"2/tcp": {}},
                           "Volumes": {"/w": {}}, "Healthcheck": {"Retries": 9}}, CONTAINER)
    assert merged["User"] == "u" and merged["WorkingDir"] == "/w" and merged["StopSignal"] == "SIGINT"
    assert merged["Env"] == ["A=u", "PATH=/bin"]
    assert merged["Labels"] == {"x": "u"}
    assert merged["ExposedPorts"] == {"1/tcp": {}, "2/tcp": {}}
    assert merged["Volumes"] == {"/w": {}, "/v": {}}
    assert merged["Cmd"] == ["c"] and merged["Entrypoint"] is None
    assert merged["Healthcheck"] == {"Test": ["CMD", "c"], "Interval": 5, "Retries": 9}


def test_merge_keeps_an_entrypoint_s_own_command() -> None:
    assert merge_config({"Entrypoint": ["e"]}, CONTAINER).get("Cmd") is None
    assert merge_config({"Entrypoint": [], "Cmd": ["mine"]}, CONTAINER)["Entrypoint"] == []
    assert merge_config({"Cmd": ["mine"]}, {**CONTAINER, "Entrypoint": ["e"]})["Entrypoint"] == ["e"]


def test_child_config_without_a_parent_and_with_an_empty_diff() -> None:
    doc = child_config(None, Commit(config={"Cmd": ["x"]}, created_by="x", comment="c"),
                       created="2024-01-01T00:00:00Z", diff_id=None)
    assert list(doc) == sorted(doc)
    assert doc["rootfs"] == {"type": "layers", "diff_ids": []}
    assert doc["history"] == [{"created": "2024-01-01T00:00:00Z", "created_by": "x", "comment": "c",
                               "empty_layer": True}]
    assert doc["os"] == "linux" and doc["architecture"] and "author" not in doc and "container" not in doc
