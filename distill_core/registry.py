"""Named registries: models, datasets and pruning strategies register under a name with a one-line
description, and the CLI, the configs' checks and the app's select boxes read the names from here.

    MODELS = Registry("model")

    @MODELS.register("convnet", "ConvNet-BN ...")
    def convnet(info, width=64, depth=3): ...

    MODELS.get("convnet")        # the function; an unknown name is a ValueError listing the valid ones
    MODELS.names()               # ["convnet", ...] in registration order
    MODELS.descriptions()        # {"convnet": "ConvNet-BN ...", ...}
"""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> (item, description), in registration order."""

    def __init__(self, kind: str, hint: str = ""):
        self.kind = kind  # what an entry is, for messages: "model", "dataset", "pruning strategy"
        self.hint = hint  # appended to the unknown-name message, e.g. " (and imagefolder:<path>)"
        self._items: dict[str, tuple[T, str]] = {}

    def register(self, name: str, description: str) -> Callable[[T], T]:
        """Decorator adding the decorated function under `name`; a name registered twice is an error."""
        def deco(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = (item, description)
            return item

        return deco

    def check(self, name: str) -> None:
        """ValueError naming the valid entries when `name` is not registered."""
        if name not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(sorted(self._items))}{self.hint}")

    def get(self, name: str) -> T:
        self.check(name)
        return self._items[name][0]

    def names(self) -> list[str]:
        return list(self._items)

    def descriptions(self) -> dict[str, str]:
        return {name: desc for name, (_, desc) in self._items.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._items
