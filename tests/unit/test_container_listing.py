"""GET /containers/json from memory: the store's copy of the records and the list entries encoded once.

No daemon and no monitor: a ContainerStore on a temp directory, and the list
handler of daemon/api/containers.py over it. What must hold: the copy follows
every save and forget (a change is listed at once), a caller that goes on
changing its record after saving it does not change what is listed, and the
body is byte for byte what encoding the whole list at once gives.
"""

from __future__ import annotations

import json
import os
import time
import types
from pathlib import Path
from typing import Any

import pytest

from portside.containers.record import ContainerRecord, ContainerStore, State
from portside.containers.service import ContainerService
from portside.daemon.api import containers as containers_api
from portside.daemon.api.listing import Entry, split_encode
from portside.daemon.engine import Engine
from portside.daemon.http import Request, Response


def _record(n: int, **changes: Any) -> ContainerRecord:
    now = time.time_ns()
    fields: dict[str, Any] = dict(
        id=f"{n:064x}", name=f"/c{n}", image_id="sha256:" + "a" * 64, image="busybox",
        created_ns=now - n * 1_000_000_000,
        config={"Cmd": ["sleep", "1 000"], "Entrypoint": None, "Labels": {"n": str(n), "ünï": "ç\"ode"}},
        host_config={"NetworkMode": "none"}, state=State.RUNNING, pid=100 + n, started_ns=now - 90_000_000_000,
        mount_points=[{"type": "bind", "source": "/src", "destination": "/dst", "mode": "", "rw": False,
                       "propagation": "rprivate"}],
    )
    fields.update(changes)
    return ContainerRecord(**fields)


def test_listing_follows_save_and_forget(tmp_path: Path) -> None:
    store = ContainerStore(str(tmp_path / "containers"))
    for n in range(3):
        store.save(_record(n))
    first = {item.record.id: item for item in ContainerStore(store.root).listing()}  # read from the disk
    assert {r.name for r in (item.record for item in first.values())} == {"/c0", "/c1", "/c2"}

    listed = {item.record.id: item for item in store.listing()}
    changed = store.load(_record(1).id)
    changed.move_to(State.EXITED)
    store.save(changed)
    changed.name = "/not-saved"  # the caller keeps its object: the listing has its own copy
    store.forget(_record(2).id)
    store.save(_record(3))
    after = {item.record.id: item for item in store.listing()}

    assert set(after) == {_record(n).id for n in (0, 1, 3)}
    assert after[_record(0).id] is listed[_record(0).id]  # unchanged: the same entry, the same generation
    assert after[_record(1).id].generation != listed[_record(1).id].generation
    assert after[_record(1).id].record.state is State.EXITED
    assert after[_record(1).id].record.name == "/c1"
    # and the disk agrees with the memory
    assert {r.id: r.state for r in store.all()} == {i: item.record.state for i, item in after.items()}


@pytest.mark.parametrize("key", ["a", "b", "c"])
def test_split_encode_puts_the_value_back_in_place(key: str) -> None:
    doc = {"a": 1, "b": {"x": ["é", None]}, "c": 'q"uote'}
    head, tail = split_encode(doc, key)
    for value in ("Up 2 minutes", "", "ü \\ \"x\""):
        expected = json.dumps({**doc, key: value}, separators=(",", ":"), ensure_ascii=False)
        assert head + json.dumps(value, ensure_ascii=False) + tail == expected


def test_render_appends_per_request_keys_as_a_merged_dict_would() -> None:
    doc = {"Id": "x", "Status": "", "Mounts": []}
    head, tail = split_encode(doc)
    entry = Entry(1, _record(0), head, tail)
    sizes = {"SizeRw": 12, "SizeRootFs": 34}
    assert entry.render("Up 1 second", sizes) == json.dumps({**doc, "Status": "Up 1 second", **sizes},
                                                             separators=(",", ":"))
    assert entry.render("Created", {}) == entry.render("Created") == json.dumps({**doc, "Status": "Created"},
                                                                                separators=(",", ":"))


def _handler(root: Path) -> tuple[Any, ContainerStore]:
    """The list handler over a store in ``root``, with no monitor behind it (the list never asks one)."""
    images = types.SimpleNamespace()
    service = ContainerService(str(root), str(root / "run"), images, monitor=None)  # type: ignore[arg-type]
    engine = Engine(root=str(root), images=images, exec_root=str(root / "run"),  # type: ignore[arg-type]
                    _containers=service)
    return containers_api._ContainersAPI(engine), service.store


def _get(api: Any, target: str) -> Response:
    response = api.list_containers(Request.from_target("GET", target))
    assert isinstance(response, Response) and response.status == 200
    return response


def test_list_body_is_the_whole_list_encoded_at_once_and_follows_changes(tmp_path: Path) -> None:
    api, store = _handler(tmp_path)
    for n in range(5):
        store.save(_record(n, state=State.CREATED if n == 4 else State.RUNNING))

    for target in ("/containers/json", "/containers/json?all=1", "/containers/json?limit=2",
                   '/containers/json?filters={"label":["n=3"]}', "/containers/json?filters={}"):
        body = _get(api, target).body
        listed = json.loads(body)
        assert body == Response.json(listed).body  # the encoding Response.json gives
    assert [c["Names"] for c in json.loads(_get(api, "/containers/json").body)] == [["/c0"], ["/c1"], ["/c2"],
                                                                                   ["/c3"]]
    listed = json.loads(_get(api, "/containers/json?all=1").body)
    assert [c["Id"] for c in listed] == [_record(n).id for n in range(5)]  # newest first
    one = listed[1]
    assert one["Command"] == "sleep '1 000'" and one["Labels"] == {"n": "1", "ünï": "ç\"ode"}
    assert one["State"] == "running" and one["Status"] == "Up About a minute"
    assert one["Mounts"] == [{"Type": "bind", "Source": "/src", "Destination": "/dst", "Mode": "", "RW": False,
                              "Propagation": "rprivate"}]
    assert listed[4]["Status"] == "Created"
    assert json.loads(_get(api, '/containers/json?filters={"label":["n=3"]}').body)[0]["Id"] == _record(3).id

    # a saved change is listed at once; a forgotten container is gone
    record = store.load(_record(1).id)
    record.move_to(State.EXITED)
    record.exit_code, record.finished_ns, record.name = 3, time.time_ns() - 5_000_000_000, "/renamed"
    store.save(record)
    store.forget(_record(0).id)
    listed = json.loads(_get(api, "/containers/json?all=1").body)
    assert [c["Id"] for c in listed] == [_record(n).id for n in range(1, 5)]
    assert listed[0]["Names"] == ["/renamed"] and listed[0]["State"] == "exited"
    assert listed[0]["Status"] == "Exited (3) 5 seconds ago"
    assert [c["Id"] for c in json.loads(_get(api, "/containers/json").body)] == [_record(2).id, _record(3).id]
    for n in range(1, 5):
        store.forget(_record(n).id)
    assert _get(api, "/containers/json?all=1").body == b"[]\n"
    assert not os.listdir(store.root) or all(not os.path.exists(os.path.join(store.root, d, "container.json"))
                                              for d in os.listdir(store.root))
