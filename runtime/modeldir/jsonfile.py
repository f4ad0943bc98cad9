"""Versioned JSON files (manifest.json, engines.json): read, checked against a schema, once.

A schema is plain Python data:

- a type (``str``, ``int``, ``float``, ``bool``, ``dict``, ``list``): ``isinstance`` (an int is
  not a bool; a float may be an int); ``POSITIVE`` an int >= 1;
- ``{"key": schema, "key?": schema, "*": schema}``: an object with those keys (``?``: optional;
  ``*``: every other key), others allowed;
- ``[schema]``: a list of items; ``Each(schema)``: an object whose every value matches;
- ``Nullable(schema)``: None or the schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xyrt.errors import XyrtError


@dataclass(frozen=True)
class Each:
    schema: Any


@dataclass(frozen=True)
class Nullable:
    schema: Any


POSITIVE = "positive integer"


def _expected(schema: Any) -> str:
    if schema is POSITIVE:
        return POSITIVE
    if isinstance(schema, type):
        return {dict: "an object", list: "a list", str: "a string"}.get(schema, schema.__name__)
    if isinstance(schema, (dict, Each)):
        return "an object"
    if isinstance(schema, list):
        return "a list"
    return f"null or {_expected(schema.schema)}"


def _type_ok(value: Any, schema: Any) -> bool:
    if schema is POSITIVE:
        return type(value) is int and value >= 1
    if schema is float:
        return type(value) in (int, float)
    if schema is int:
        return type(value) is int
    return isinstance(value, schema)


def validate(value: Any, schema: Any, where: str = "") -> None:
    """`XyrtError` naming the first key path that does not match ``schema``."""
    name = where or "the document"
    if isinstance(schema, Nullable):
        if value is not None:
            validate(value, schema.schema, where)
        return
    if isinstance(schema, (dict, Each)) and not isinstance(value, dict):
        raise XyrtError(f"{name} is {type(value).__name__}, expected {_expected(schema)}")
    if isinstance(schema, list) and not isinstance(value, list):
        raise XyrtError(f"{name} is {type(value).__name__}, expected {_expected(schema)}")
    if isinstance(schema, Each):
        for key, item in value.items():
            validate(item, schema.schema, f"{where}.{key}" if where else key)
    elif isinstance(schema, dict):
        for key, sub in schema.items():
            if key == "*":
                for other in value.keys() - {k.rstrip("?") for k in schema}:
                    validate(value[other], sub, f"{where}.{other}" if where else other)
                continue
            optional = key.endswith("?")
            key = key.rstrip("?")
            path = f"{where}.{key}" if where else key
            if key not in value:
                if optional:
                    continue
                raise XyrtError(f"missing key '{path}'")
            validate(value[key], sub, path)
    elif isinstance(schema, list):
        for i, item in enumerate(value):
            validate(item, schema[0], f"{where}[{i}]")
    elif not _type_ok(value, schema):
        raise XyrtError(f"{name} is {value!r}, expected {_expected(schema)}")


def read_json(path: Path) -> Any:
    """Parsed JSON of ``path``; `XyrtError` naming the file when unreadable or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise XyrtError(f"{path} is not valid JSON: {exc}") from exc
    except OSError as exc:
        raise XyrtError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_versioned(path: Path, fmt: str, version: int, schema: Any, what: str, fix: str) -> dict:
    """The object in ``path`` after checking its ``format``, ``format_version`` and ``schema``;
    ``what`` names the kind of file, ``fix`` says how to get a good one."""
    data = read_json(path)
    found = data.get("format") if isinstance(data, dict) else type(data).__name__
    if found != fmt:
        raise XyrtError(f"{path} is not {what} (format {found!r}, expected {fmt!r})")
    if data.get("format_version") != version:
        raise XyrtError(
            f"{path} has format_version {data.get('format_version')!r}; this xyrt reads "
            f"version {version}: {fix}"
        )
    try:
        validate(data, schema)
    except XyrtError as exc:
        raise XyrtError(f"{path} is damaged or was edited: {exc}; {fix}") from exc
    return data
