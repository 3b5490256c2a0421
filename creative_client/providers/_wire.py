"""Shared pieces for adapters' cattrs converters: strict primitives and one error boundary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn, override

from ..errors import ProviderResponseError

T = TypeVar("T")


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
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


def make_converter() -> cattrs.Converter:
    """A converter that checks JSON types instead of coercing them (cattrs' default is str(1))."""
    conv = cattrs.Converter(forbid_extra_keys=False)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], _str_tuple)
    return conv


def register_object(conv: cattrs.Converter, cls: type[T], **fields: Any) -> None:
    """Structure ``cls`` from a JSON object only; ``fields`` maps an attribute to its wire name
    (a string) or to a structuring function."""
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

    conv.register_structure_hook(cls, structure_object)


def millis_to_datetime(value: Any, _: Any = None) -> datetime | None:
    """Milliseconds since the epoch, as a UTC datetime."""
    if value is None:
        return None
    ms = _strict_float(value, None)
    try:
        return datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    except (OverflowError, OSError, ValueError):
        # A number the contract allows but no datetime can hold: the job is still good.
        return None


def iso_to_datetime(value: Any, _: Any = None) -> datetime | None:
    """An ISO 8601 string as an aware datetime; one without an offset is taken as UTC."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(_strict_str(value, None))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def structure(conv: cattrs.Converter, body: object, cls: type[T], provider: str, what: str) -> T:
    """Structure a JSON body, turning every failure into ``ProviderResponseError``."""
    if not isinstance(body, dict):
        raise ProviderResponseError(
            f"{provider} sent a {what} that is not a JSON object but {type(body).__name__}",
            provider=provider,
            body=_excerpt(body),
        )
    try:
        return conv.structure(body, cls)
    except Exception as exc:  # the parse boundary: nothing but our own error may leave it
        if isinstance(exc, cattrs.BaseValidationError):
            detail = "; ".join(cattrs.transform_error(exc))
        else:
            detail = f"{type(exc).__name__}: {exc}"
        raise ProviderResponseError(
            f"{provider} sent a {what} that breaks its contract: {detail}",
            provider=provider,
            body=_excerpt(body),
        ) from exc


def _excerpt(body: object) -> str:
    text = repr(body)
    return text[:500]


def as_mapping(body: object) -> dict[str, Any]:
    """The body as ``Job.raw``: the provider's document when it is an object, else empty."""
    return body if isinstance(body, dict) else {}
