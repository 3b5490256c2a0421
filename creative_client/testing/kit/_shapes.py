"""Hostile wire documents for a provider, drawn by hypothesis from its fake's shapes.

``near_miss(fake)`` draws documents with the contract's keys (``FakeContract.
document_shapes``) and hostile values: they reach deep into parsing, where random
JSON stops at the first missing key. ``mutants(fake)`` goes further: the fake's own
valid documents with one to three values replaced by hostile ones or left out, so
everything else parses and the hostile value reaches the code that uses it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import strategies as st

from .._contract import PHASES, Shape
from .._replies import Reply
from .._server import FakeServer

JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

#: Every final status a server can send (1xx are not final answers).
STATUSES = st.one_of(
    st.sampled_from([200, 201, 202, 204, 301, 302, 304, 400, 401, 402, 403, 404, 409, 422,
                     429, 500, 501, 502, 503, 504]),
    st.integers(200, 599),
)  # fmt: skip

_URL_VALUES = (
    ["https://cdn.example.com/a.png", "http://[", "http://[::1", "https://h:99999/x", "ftp://x/y",
     "http://h:-1/", "http://h:port/", "//no-scheme/a.png", "", " ", "http://", "https://x/%zz",
     "javascript:alert(1)", "http://h/\x00", "https://\u00e9x.com/a b"]
)  # fmt: skip
_URLS = st.sampled_from(_URL_VALUES)
_TIME_VALUES = ["2026-01-01T00:00:00Z", "2026-13-45T99:00:00", "yesterday", "1e999", "", 10**30,
                -(10**30), 1e308, -1, 0.5, float("inf")]  # fmt: skip
_ANY_VALUES = [None, True, False, 0, -1, 10**30, 1e308, "", " ", "x", [], [None], {}, {"": None}]
_TIMES = st.integers() | st.floats() | st.sampled_from(_TIME_VALUES) | st.text(max_size=30)


def _leaves(fake: FakeServer) -> Mapping[str, st.SearchStrategy[Any]]:
    known = [fake.status_for(p) for p in PHASES]
    statuses = st.sampled_from(
        [*known, *(s.upper() for s in known), *(f" {s.capitalize()} " for s in known), "", "???"]
    )
    return {
        "id": st.text(max_size=10) | st.sampled_from(["", "  ", "../x", "a/b?c#d"]),
        "text": st.text(max_size=20),
        "status": statuses | st.text(max_size=12),
        "time": _TIMES,
        "url": st.one_of(_URLS, _URLS, _URLS, st.text(max_size=12)),  # mostly the odd ones
        "number": st.integers() | st.floats(),
        "bool": st.booleans(),
        "any": JSON,
    }


def _strategy(shape: Shape, leaves: Mapping[str, st.SearchStrategy[Any]]) -> Any:
    if isinstance(shape, str):
        return leaves[shape]
    if isinstance(shape, Mapping):
        fields = {key: _strategy(value, leaves) | JSON for key, value in shape.items()}
        return st.fixed_dictionaries({}, optional=fields)
    (item,) = shape
    return st.lists(_strategy(item, leaves) | JSON, max_size=3)


def near_miss(fake: FakeServer) -> st.SearchStrategy[Any]:
    """Documents shaped like the provider's submit, read and error answers, values hostile."""
    leaves = _leaves(fake)
    return st.one_of(*(_strategy(s, leaves) for s in fake.document_shapes().values()))


def _valid(fake: FakeServer) -> list[Any]:
    """Documents the provider may answer: read answers in every phase, submit and error."""
    docs: list[Any] = [fake.submit_answer("j-1"), fake.error_reply(400, "boom").json]
    for phase in PHASES:
        for minimal in (False, True):
            status = fake.status_for(phase)
            docs.append(fake.read_answer("j-1", status, outputs=2, minimal=minimal))
    docs.append(fake.read_answer("j-1", fake.status_for("completed"), outputs=1))
    return docs


def _slots(document: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) in a JSON document, nested ones included."""
    items = document.items() if isinstance(document, dict) else enumerate(document)
    for key, value in list(items):
        yield document, key
        if isinstance(value, dict | list):
            yield from _slots(value)


def _kind(value: Any, statuses: frozenset[str]) -> str:
    """The leaf kind a valid value looks like, so its replacement is a near miss of it."""
    if isinstance(value, str):
        if value in statuses:
            return "status"
        return "url" if value.startswith("http") else "id"
    if isinstance(value, bool) or value is None:
        return "any"
    return "time" if isinstance(value, int | float) else "any"


@st.composite
def _mutant(draw: st.DrawFn, fake: FakeServer) -> Any:
    leaves, valid = _leaves(fake), _valid(fake)
    statuses = frozenset(fake.status_for(p) for p in PHASES)
    document = copy.deepcopy(draw(st.sampled_from(valid)))
    for _ in range(draw(st.sampled_from([1, 1, 2, 3]))):  # one, mostly: the rest stays valid
        slots = list(_slots(document))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if isinstance(container, dict) and draw(st.integers(0, 4)) == 0:
            del container[key]
        elif draw(st.integers(0, 3)) == 0:
            container[key] = draw(JSON)
        else:
            container[key] = draw(leaves[_kind(container[key], statuses)])
    return document


def single_mutations(fake: FakeServer) -> Iterator[Any]:
    """Every valid document with one value swapped for each odd value of its kind (or
    of any kind), or left out: all of them, in order, no luck needed."""
    statuses = frozenset(fake.status_for(p) for p in PHASES)
    odd = [*statuses, *(s.upper() for s in statuses), " Failed ", "", "???"]
    values: dict[str, list[Any]] = {
        "url": list(_URL_VALUES),
        "time": _TIME_VALUES,
        "status": odd,
        "id": ["", "  ", "../x", "a/b?c#d"],
        "any": [],
    }
    for document in _valid(fake):
        for path in _paths(document):
            container = _at(document, path[:-1])
            for value in [*values[_kind(container[path[-1]], statuses)], *_ANY_VALUES, _GONE]:
                mutant = copy.deepcopy(document)
                target = _at(mutant, path[:-1])
                if value is not _GONE:
                    target[path[-1]] = value
                elif isinstance(target, dict):
                    del target[path[-1]]
                yield mutant


_GONE = object()


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = document.items() if isinstance(document, dict) else enumerate(document)
    for key, value in list(items):
        yield (*prefix, key)
        if isinstance(value, dict | list):
            yield from _paths(value, (*prefix, key))


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def mutants(fake: FakeServer) -> st.SearchStrategy[Any]:
    """The fake's valid documents with a few values made hostile (of the same kind,
    mostly) or left out."""
    return _mutant(fake)


def documents(fake: FakeServer) -> st.SearchStrategy[Any]:
    """Any parsed JSON value an answer may carry: mutants, near misses and random JSON."""
    return st.one_of(mutants(fake), mutants(fake), near_miss(fake), JSON)


def bodies(fake: FakeServer) -> st.SearchStrategy[bytes]:
    """Answer bodies as bytes: JSON documents, random bytes, broken and huge ones."""
    return st.one_of(
        documents(fake).map(lambda d: json.dumps(d).encode()),
        st.binary(max_size=64),
        st.sampled_from([b"", b"<html><body>502 Bad Gateway</body></html>", b"{", b"null",
                         b"\xff\xfe", b'{"jobId": 1e999}', b"[]" * 1000]),
    )  # fmt: skip


def replies(fake: FakeServer) -> st.SearchStrategy[Reply]:
    """Whole answers: any status, any body, any content type, odd Retry-After headers."""
    return st.builds(
        Reply,
        status=STATUSES,
        body=bodies(fake),
        content_type=st.sampled_from(["application/json", "text/html", "text/plain"]),
        headers=st.sampled_from([{}, {"Retry-After": "0"}, {"Retry-After": "soon"}]),
    )
