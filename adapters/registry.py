"""The adapter registry, filled from the `broker.adapters` entry-point group.

A carrier's own package adds an adapter by declaring, in its packaging metadata:

    [options.entry_points]
    broker.adapters =
        mycarrier = mycarrier_broker.adapter:MyCarrierAdapter

Every entry point is loaded when the registry is built (at start-up, from create_app or the
CLI, never at import), so a broken adapter stops the service with a clear message instead of
failing on the first sync.

`CarrierAdapters` is the process's pool of adapter instances, one per carrier, built from the
registry and the carriers' settings.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import threading
from typing import Any, Iterable, Mapping

import requests

from adapters.base import CarrierAdapter, CarrierConfig, ConfigurationError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "broker.adapters"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class AdapterRegistryError(LookupError):
    """An adapter name is unknown, duplicated or its entry point can't be loaded."""


class AdapterRegistry:
    """Adapter classes by name. Build it from entry points, or from a mapping in tests."""

    def __init__(self, adapters: Mapping[str, type[CarrierAdapter]] | None = None) -> None:
        self._adapters: dict[str, type[CarrierAdapter]] = {}
        for name, adapter_cls in (adapters or {}).items():
            self.register(name, adapter_cls)

    @classmethod
    def from_entry_points(
        cls,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
        *,
        group: str = ENTRY_POINT_GROUP,
    ) -> AdapterRegistry:
        """Load every adapter declared in the entry-point group; fail on the first broken one."""
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=group)
        entry_points = list(entry_points)
        declared = sorted({ep.name for ep in entry_points})
        registry = cls()
        for ep in entry_points:
            try:
                adapter_cls = ep.load()
            except Exception as error:  # an adapter's import can fail in any way
                raise AdapterRegistryError(
                    f"Adapter {ep.name!r} ({ep.value}) failed to load: "
                    f"{type(error).__name__}: {error}. Declared adapters: {', '.join(declared)}."
                ) from error
            registry.register(ep.name, adapter_cls)
        log.debug("Loaded adapters: %s", ", ".join(registry.names()) or "none")
        return registry

    def register(self, name: str, adapter_cls: type[CarrierAdapter]) -> None:
        if not _NAME.match(name):
            raise AdapterRegistryError(
                f"Invalid adapter name {name!r}: use lower-case letters, digits and _."
            )
        if name in self._adapters:
            raise AdapterRegistryError(
                f"Duplicate adapter name {name!r}: {self._adapters[name].__module__}."
                f"{self._adapters[name].__qualname__} and {adapter_cls.__module__}."
                f"{adapter_cls.__qualname__}."
            )
        if not (isinstance(adapter_cls, type) and issubclass(adapter_cls, CarrierAdapter)):
            raise AdapterRegistryError(
                f"Adapter {name!r} is {adapter_cls!r}, not a CarrierAdapter subclass."
            )
        if getattr(adapter_cls, "name", None) != name:
            raise AdapterRegistryError(
                f"Adapter {name!r} is registered under a different name than its class "
                f"declares ({getattr(adapter_cls, 'name', None)!r})."
            )
        self._adapters[name] = adapter_cls

    def names(self) -> list[str]:
        return sorted(self._adapters)

    def __contains__(self, name: object) -> bool:
        return name in self._adapters

    def get(self, name: str) -> type[CarrierAdapter]:
        try:
            return self._adapters[name]
        except KeyError:
            valid = ", ".join(self.names()) or "none registered"
            raise AdapterRegistryError(
                f"Unknown adapter {name!r}; valid adapters: {valid}."
            ) from None

    def create(
        self,
        name: str,
        config: CarrierConfig,
        session: requests.Session | None = None,
        **kwargs: object,
    ) -> CarrierAdapter:
        """An adapter instance for one carrier. Keep it for the process's life: it owns the
        carrier's circuit breaker and connection pool."""
        return self.get(name)(config, session, **kwargs)


class CarrierAdapters:
    """The process's adapter instances, one per carrier code, built on first use from settings.

    An adapter owns its carrier's circuit breaker and connection pool, so it is kept for the
    life of the process; it is rebuilt only if its carrier's settings object is replaced.
    """

    def __init__(self, registry: Any, carriers: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
        self.registry = registry
        self.carriers = carriers  # config.CarrierSettings by code (the app's config mapping, not a copy)
        self._environ = environ
        self._lock = threading.Lock()
        self._built: dict[str, tuple[Any, str, CarrierAdapter]] = {}

    def settings(self, code: str) -> Any:
        try:
            return self.carriers[code]
        except KeyError:
            configured = ", ".join(sorted(self.carriers)) or "none"
            raise ConfigurationError(
                f"carrier {code!r} has no settings (BROKER_CARRIERS_FILE); configured carriers: {configured}",
                carrier=code,
            ) from None

    def get(self, code: str, adapter_name: str) -> CarrierAdapter:
        """The adapter for carrier `code`; ConfigurationError if it can't be built."""
        settings = self.settings(code)
        with self._lock:
            cached = self._built.get(code)
            if cached is not None and cached[0] is settings and cached[1] == adapter_name:
                return cached[2]
            kwargs = {} if self._environ is None else {"environ": self._environ}
            adapter = self.registry.create(adapter_name, settings.adapter, **kwargs)
            self._built[code] = (settings, adapter_name, adapter)
            return adapter

    def webhook_secret(self, code: str) -> str:
        """The carrier's webhook secret, read from the variable its settings name ("" if none)."""
        import os

        variable = self.settings(code).webhook_secret_variable
        environ = os.environ if self._environ is None else self._environ
        return environ.get(variable, "") if variable else ""
