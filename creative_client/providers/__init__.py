"""Provider adapters and the registry that finds them by name.

A third provider is one module with a ``Provider`` subclass and one line in
``_REGISTRY`` (or a call to ``register_provider`` from outside the package).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..errors import ConfigurationError
from ._base import HttpCall, Provider
from .deepixels import Deepixels
from .neocu import Neocu

__all__ = [
    "Deepixels",
    "HttpCall",
    "Neocu",
    "Provider",
    "get_provider",
    "provider_names",
    "register_provider",
]

_REGISTRY: dict[str, type[Provider]] = {
    Deepixels.name: Deepixels,
    Neocu.name: Neocu,
}

PROVIDERS: Mapping[str, type[Provider]] = MappingProxyType(_REGISTRY)


def register_provider(cls: type[Provider]) -> type[Provider]:
    """Make a provider class available by its ``name`` (usable as a class decorator)."""
    _REGISTRY[cls.name] = cls
    return cls


def provider_names() -> tuple[str, ...]:
    """The names ``CreativeClient(provider=...)`` accepts."""
    return tuple(sorted(_REGISTRY))


def get_provider(name: str) -> type[Provider]:
    """The provider class registered under ``name`` (case-insensitive)."""
    key = name.strip().lower() if isinstance(name, str) else name
    try:
        return _REGISTRY[key]
    except (KeyError, TypeError):
        raise ConfigurationError(
            f"unknown provider {name!r}; known: {', '.join(provider_names())}"
        ) from None
