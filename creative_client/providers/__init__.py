"""Provider adapters and the registry that finds them by name.

Every provider is registered the same way, under its ``Provider.name``: the
built-ins here, others by an entry point in the ``creative_client.providers``
group, declared in the plugin's ``pyproject.toml``::

    [project.entry-points."creative_client.providers"]
    replicate = "creative_replicate:Replicate"

or by ``register_provider(cls)``. Entry points are read once, on the first use of
the registry (never at import); a plugin that fails to load breaks only its own
name, for which ``get_provider`` then says what went wrong. A provider's fake (for
tests and ``creative --simulate``) is named by its ``Provider.fake``.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points

from ..errors import ConfigurationError
from ._base import HttpCall, Provider
from .deepixels import Deepixels
from .neocu import Neocu

__all__ = [
    "ENTRY_POINT_GROUP",
    "Deepixels",
    "HttpCall",
    "Neocu",
    "Provider",
    "ProviderRegistry",
    "get_provider",
    "load_entry_point",
    "provider_names",
    "register_provider",
]

#: The entry-point group a plugin package declares its ``Provider`` subclass in.
ENTRY_POINT_GROUP = "creative_client.providers"

_log = logging.getLogger(__name__)


def _installed() -> Iterable[EntryPoint]:
    return entry_points(group=ENTRY_POINT_GROUP)


class ProviderRegistry(Mapping[str, type[Provider]]):
    """Provider classes by name, in registration order: ``built_in`` first, then the
    plugins (entry points, by name), then ``register`` calls.

    ``discover`` gives the entry points (default: those of the installed packages in
    ``ENTRY_POINT_GROUP``); it is called once, on first use. ``creative_client.providers``
    holds the registry the library uses; another one is for tests of the loading itself::

        registry = ProviderRegistry([Deepixels], discover=lambda: [EntryPoint(...)])
    """

    def __init__(
        self,
        built_in: Iterable[type[Provider]] = (),
        *,
        discover: Callable[[], Iterable[EntryPoint]] = _installed,
    ) -> None:
        self._classes = {cls.name: _checked(cls) for cls in built_in}
        self._broken: dict[str, ConfigurationError] = {}
        self._explicit: set[str] = set()
        self._discover = discover
        # Held only to change the dicts, never while a plugin is imported: a plugin's
        # module may call register_provider (from the thread importing it) while another
        # thread waits for that import, which would deadlock on a lock held across it.
        self._lock = threading.Lock()
        self._importing = threading.local()
        self._loaded = False

    def names(self) -> tuple[str, ...]:
        """The usable providers' names, in registration order."""
        classes = self._loaded_classes()
        with self._lock:
            return tuple(classes)

    def lookup(self, name: str) -> type[Provider]:
        """The class registered under ``name`` (case-insensitive, trimmed).

        Raises ``ConfigurationError``: an unknown name lists the known ones; the name
        of a plugin that failed to load says which entry point and why.
        """
        classes = self._loaded_classes()
        key = name.strip().lower() if isinstance(name, str) else name
        cls = classes.get(key) if isinstance(key, str) else None
        if cls is not None:
            return cls
        broken = self._broken.get(key) if isinstance(key, str) else None
        if broken is not None:
            # A fresh error each time: one raised again would pile up tracebacks.
            raise ConfigurationError(broken.message, provider=broken.provider) from broken.__cause__
        raise ConfigurationError(f"unknown provider {name!r}; known: {', '.join(classes)}")

    def register(self, cls: type[Provider]) -> type[Provider]:
        """Make ``cls`` available under its ``name``, replacing any earlier one of that name.

        Raises ``TypeError`` for what is not a concrete ``Provider`` subclass and
        ``ConfigurationError`` for a missing or malformed ``name``, ``api_key_env``
        or ``default_base_url``.
        """
        _checked(cls)
        with self._lock:
            # An explicit call wins over an entry point of that name, loaded or not yet.
            self._classes[cls.name] = cls
            self._explicit.add(cls.name)
            self._broken.pop(cls.name, None)
        return cls

    def __getitem__(self, name: str) -> type[Provider]:
        return self._loaded_classes()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def _loaded_classes(self) -> dict[str, type[Provider]]:
        # A plugin being imported by this very thread sees the registry as it is.
        if not self._loaded and not getattr(self._importing, "now", False):
            self._importing.now = True
            try:
                loaded = self._load_plugins()  # imports: outside the lock
            finally:
                self._importing.now = False
            with self._lock:
                if not self._loaded:  # two first users at once: the first merges
                    self._merge(loaded)
                    self._loaded = True
        return self._classes

    def _load_plugins(self) -> list[tuple[EntryPoint, type[Provider] | ConfigurationError]]:
        try:
            found = sorted(self._discover(), key=lambda ep: ep.name)
        except Exception as exc:  # broken package metadata must not take the built-ins down
            _log.warning("cannot list the provider plugins (%s): %s", ENTRY_POINT_GROUP, exc)
            return []
        loaded: list[tuple[EntryPoint, type[Provider] | ConfigurationError]] = []
        for entry_point in found:
            try:
                loaded.append((entry_point, load_entry_point(entry_point)))
            except ConfigurationError as exc:
                loaded.append((entry_point, exc))
        return loaded

    def _merge(self, loaded: list[tuple[EntryPoint, type[Provider] | ConfigurationError]]) -> None:
        for entry_point, cls in loaded:
            if isinstance(cls, ConfigurationError):
                self._broken.setdefault(entry_point.name, cls)
                _log.warning("%s", cls.message)
                continue
            if cls.name in self._explicit:
                continue
            known = self._classes.get(cls.name)
            if known is not None and known is not cls:
                _log.warning(
                    "the provider plugin %r (%s) is ignored: the name is taken by %s.%s",
                    entry_point.name,
                    entry_point.value,
                    known.__module__,
                    known.__qualname__,
                )
                continue
            self._classes[cls.name] = cls


def load_entry_point(entry_point: EntryPoint) -> type[Provider]:
    """The provider class an entry point of ``ENTRY_POINT_GROUP`` names, imported and
    checked. Raises ``ConfigurationError`` naming the entry point and saying why not."""
    dist = getattr(entry_point, "dist", None)
    where = (
        f"the provider plugin {entry_point.name!r} (entry point "
        f"{entry_point.name} = {entry_point.value!r}"
        + (f" of the package {dist.name}" if dist is not None else "")
        + f", group {entry_point.group})"
    )
    try:
        loaded = entry_point.load()
    except (Exception, SystemExit) as exc:  # whatever its import raised: not the others' end
        raise ConfigurationError(
            f"{where} failed to load: {type(exc).__name__}: {exc}", provider=entry_point.name
        ) from exc
    try:
        cls = _checked(loaded)
    except (TypeError, ConfigurationError) as exc:
        raise ConfigurationError(
            f"{where} is not usable: {exc}", provider=entry_point.name
        ) from exc
    if cls.name != entry_point.name:
        raise ConfigurationError(
            f"{where} is not usable: it loads the provider {cls.name!r}; "
            "the entry point must be named as its provider",
            provider=entry_point.name,
        )
    return cls


def _checked(cls: object) -> type[Provider]:
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"{cls!r} is not a subclass of creative_client.providers.Provider")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise TypeError(f"{cls.__qualname__} does not define {missing}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or name != name.strip().lower():
        raise ConfigurationError(
            f"{cls.__qualname__}.name must be a non-empty lower-case string, got {name!r}"
        )
    examples = {"api_key_env": f"{name.upper()}_API_KEY", "default_base_url": "https://..."}
    for attribute, example in examples.items():
        value = getattr(cls, attribute, None)
        if not isinstance(value, str) or not value:
            raise ConfigurationError(
                f"{cls.__qualname__}.{attribute} must be a non-empty string (e.g. {example!r})"
            )
    return cls


#: The registry the library, the CLI and ``creative_client.testing`` use (a read-only
#: mapping of name to class; ``register_provider`` adds to it).
PROVIDERS = ProviderRegistry((Deepixels, Neocu))


def register_provider(cls: type[Provider]) -> type[Provider]:
    """Make a provider class available by its ``name`` (usable as a class decorator).

    An installed package does better with an entry point (see this module's docstring):
    then nothing has to import it first.
    """
    return PROVIDERS.register(cls)


def provider_names() -> tuple[str, ...]:
    """The names ``CreativeClient(provider=...)`` accepts, in registration order
    (the built-ins first)."""
    return PROVIDERS.names()


def get_provider(name: str) -> type[Provider]:
    """The provider class registered under ``name`` (case-insensitive).

    Raises ``ConfigurationError`` for an unknown name, and for a plugin that failed to
    load (naming its entry point and the reason).
    """
    return PROVIDERS.lookup(name)
