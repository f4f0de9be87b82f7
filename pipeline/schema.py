"""config/schema.yaml as the one home of every default and every list of choices.

The workflow validates the config against the schema, which fills the defaults (Snakemake's
`validate`). Code outside the workflow (tests, benchmarks, `python -m pipeline.gan`) builds the
same settings dataclasses; their defaults come from the schema through `schema_defaults`, so no
default is written twice. A names list the code also holds (the losses) is checked against the
schema's enum when its module is imported.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"
# JSON pointers of the blocks that settings dataclasses mirror
EXPERIMENT = "#/$defs/experiment/properties"
SOURCES = "#/properties/sources/properties"

T = TypeVar("T")


class SchemaMismatch(TypeError):
    """A settings class and its schema block disagree (a key on one side only, no default)."""


@functools.cache
def schema() -> dict[str, Any]:
    if not SCHEMA_PATH.is_file():
        raise FileNotFoundError(
            f"{SCHEMA_PATH}: the config schema is not there; the pipeline package runs from a "
            "checkout of the workflow (pip install -e .)"
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(SCHEMA_PATH.read_text(), Loader=loader)


def block(pointer: str) -> dict[str, Any]:
    """The properties of the schema object at `pointer` ("#/$defs/experiment/properties/train")."""
    node = schema()
    for key in pointer.removeprefix("#/").split("/"):
        node = node[key]
    return node["properties"]


def _field_default(value: Any) -> Any:
    """A schema default as a dataclass default: lists are tuples, dicts get a factory."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return dataclasses.field(default_factory=functools.partial(copy.deepcopy, value))
    return value


def schema_defaults(
    pointer: str, *, code_only: Iterable[str] = (), partial: bool = False
) -> Callable[[type[T]], type[T]]:
    """Class decorator, under `@dataclass`: each field's default is the schema's at `pointer`.

    `code_only` fields are not config (the code sets them) and keep their own defaults. Every
    other field must have a default in the block, and (unless `partial`) every key of the block
    must be a field: a key added on one side only fails at import, naming both.
    """
    code_only = set(code_only)

    def apply(cls: type[T]) -> type[T]:
        properties = block(pointer)
        fields = [name for name in cls.__annotations__ if name not in code_only]
        missing = [n for n in fields if "default" not in properties.get(n, {})]
        extra = [] if partial else sorted(set(properties) - set(fields) - code_only)
        if missing or extra:
            raise SchemaMismatch(
                f"{cls.__name__} and {SCHEMA_PATH.name} {pointer} differ: fields without a "
                f"schema default {missing}, schema keys without a field {extra}"
            )
        for name in fields:
            setattr(cls, name, _field_default(properties[name]["default"]))
        cls.__schema_block__ = pointer  # type: ignore[attr-defined]
        return cls

    return apply


def check_choices(pointer: str, key: str, names: Iterable[str]) -> None:
    """Raise unless the schema's enum of `key` at `pointer` is `names` (the code's list)."""
    offered = list(block(pointer)[key]["enum"])
    if offered != list(names):
        raise SchemaMismatch(
            f"{SCHEMA_PATH.name} {pointer}/{key} offers {offered}, the code has {list(names)}"
        )
