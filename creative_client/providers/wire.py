"""Helpers for adapters' cattrs converters: strict primitives and one error boundary.

Public for provider plugins (see CONTRIBUTING.md, "Adding a provider"): build a
converter with ``make_converter``, register each wire document with
``register_object``, and read every answer through ``structure``, the parse boundary:
compute nothing from wire values outside it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .._models import JobStatus
from ..errors import ProviderResponseError

T = TypeVar("T")


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _strict_float(value: Any, _: Any) -> float:
    # A tuple, not `int | float`: that builds a union object on every call.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _strict_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _str_tuple(value: Any, _: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of strings, got {type(value).__name__}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"expected a list of strings, got an item of {type(item).__name__}")
    return tuple(value)


Hook = Callable[[Any, Any], Any]


def _or_none(hook: Hook) -> Hook:
    def structure(value: Any, cls: Any) -> Any:
        return None if value is None else hook(value, cls)

    return structure


def _register(conv: cattrs.Converter, cls: Any, hook: Hook) -> None:
    """``hook`` for ``cls`` and, directly, for ``cls | None``: cattrs' generic path for
    optionals re-derives the union on every call, which is most of a parse."""
    if isinstance(cls, type):
        conv.register_structure_hook(cls, hook)  # a plain class: singledispatch, which wins
    else:
        conv.register_structure_hook_func(lambda t: t == cls, hook)
    optional = cls | None
    conv.register_structure_hook_func(lambda t: t == optional, _or_none(hook))


def make_converter() -> cattrs.Converter:
    """A converter that checks JSON types instead of coercing them (cattrs' default is str(1))."""
    conv = cattrs.Converter(forbid_extra_keys=False)
    _register(conv, str, _strict_str)
    _register(conv, float, _strict_float)
    _register(conv, bool, _strict_bool)
    _register(conv, tuple[str, ...], _str_tuple)
    return conv


def register_object(conv: cattrs.Converter, cls: type[T], **fields: Any) -> Hook:
    """Structure ``cls`` from a JSON object only; ``fields`` maps an attribute to its wire name
    (a string) or to a structuring function. Returns the hook, for ``structure``."""
    overrides = {
        name: override(rename=how) if isinstance(how, str) else override(struct_hook=how)
        for name, how in fields.items()
    }
    from_dict = make_dict_structure_fn(cls, conv, **overrides)  # type: ignore[arg-type]

    def structure_object(value: Any, _: Any) -> T:
        # cattrs only asks `key in value`, so a list or string would pass as an empty object.
        if not isinstance(value, dict):
            raise TypeError(f"expected a JSON object, got {type(value).__name__}")
        return from_dict(value, cls)

    _register(conv, cls, structure_object)
    return structure_object


def lookup_status(table: Mapping[str, JobStatus], raw: str) -> JobStatus:
    """A provider's status string in the unified model: as sent, else trimmed and lower-cased;
    an unknown one is still running."""
    status = table.get(raw)
    if status is None:
        status = table.get(raw.strip().lower(), JobStatus.RUNNING)
    return status


def millis_to_datetime(value: Any, _: Any = None) -> datetime | None:
    """Milliseconds since the epoch, as a UTC datetime."""
    if value is None:
        return None
    ms = _strict_float(value, None)
    try:
        return datetime.fromtimestamp(ms / 1000.0, UTC)
    except (OverflowError, OSError, ValueError):
        # A number the contract allows but no datetime can hold: the job is still good.
        return None


def iso_to_datetime(value: Any, _: Any = None) -> datetime | None:
    """An ISO 8601 string as an aware datetime; one without an offset is taken as UTC."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(_strict_str(value, None))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def structure(hook: Hook, body: object, cls: type[T], provider: str, what: str) -> T:
    """Structure a JSON body with ``register_object``'s hook (fetched once, not dispatched
    per call), turning every failure into ``ProviderResponseError``."""
    if not isinstance(body, dict):
        raise ProviderResponseError(
            f"{provider} sent a {what} that is not a JSON object but {type(body).__name__}",
            provider=provider,
            body=repr(body),  # CreativeError keeps the first 500 characters
        )
    try:
        result: T = hook(body, cls)
        return result
    except Exception as exc:  # the parse boundary: nothing but our own error may leave it
        if isinstance(exc, cattrs.BaseValidationError):
            detail = "; ".join(cattrs.transform_error(exc))
        else:
            detail = f"{type(exc).__name__}: {exc}"
        raise ProviderResponseError(
            f"{provider} sent a {what} that breaks its contract: {detail}",
            provider=provider,
            body=repr(body),  # CreativeError keeps the first 500 characters
        ) from exc


def as_mapping(body: object) -> dict[str, Any]:
    """The body as ``Job.raw``: the provider's document when it is an object, else empty."""
    return body if isinstance(body, dict) else {}
