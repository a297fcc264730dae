"""Map edges built lazily from the flows: the same edges as building them at once, only when read."""

from __future__ import annotations

import pickle

import pytest

import wardwatch.inventory.commmap as commmap
from tests.conftest import SAMPLE
from wardwatch.engine import Engine
from wardwatch.inventory import MapEdges, build_edges


def test_map_edges_are_built_once_when_first_read(monkeypatch: pytest.MonkeyPatch) -> None:
    analysis = Engine().analyze([SAMPLE]).analysis
    assert isinstance(analysis.edges, MapEdges)
    calls: list[int] = []
    real = commmap.build_edges

    def counting(flows: object) -> object:
        calls.append(1)
        return real(flows)  # type: ignore[arg-type]

    lazy = MapEdges(analysis.flows)
    monkeypatch.setattr(commmap, "build_edges", counting)
    assert calls == []  # nothing built yet
    eager = tuple(build_edges(list(analysis.flows)))  # the object path, for comparison
    assert len(lazy) == len(eager) > 5
    assert lazy == eager and list(lazy) == list(eager) and lazy[0] == eager[0] and lazy[-2:] == eager[-2:]
    assert calls == [1]  # built once, then kept
    assert lazy == analysis.edges and hash(lazy) == hash(eager)
    assert lazy != eager[:-1]
    assert pickle.loads(pickle.dumps(lazy)) == eager
