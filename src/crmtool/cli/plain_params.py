"""Typer's option coercion without pydantic, for the plain types crmtool's commands take.

typer (0.2x) turns every command-line value into its annotated type through a pydantic
``TypeAdapter``, built on first use per parameter: importing pydantic and building the adapters
of a ``validate`` run cost ~60 ms of a ~0.3 s start-up (issue 19). Almost all of crmtool's
options are ``str``, ``bool``, ``int``, ``float``, ``Path``, an ``Enum`` or a ``list`` of one
of those, and for the values that need no judgement the result is known: the string itself,
``Path(text)``, ``int(text)`` of plain digits, the enum member typer's own choice matcher finds.
Those are answered here; everything else (bytes, ``1e3``, a bad choice, a parser, a range, a
file ...) goes to typer's own adapter, built only then, so errors and edge cases read exactly
as before. :func:`install` swaps ``typer.core.build_runtime_param``; when typer's internals
look different it leaves typer as it is (slower start-up, same behaviour).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

_NO = object()  # "not a plain case": ask typer's adapter
_INT = re.compile(r"-?[0-9]{1,18}")
_FLOAT = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?")


def install() -> bool:
    """Route typer's parameter coercion through :func:`plain_value` first; True when in place."""
    try:
        from typer import core
        from typer._coercion import RuntimeParam
        from typer._param_types import coerce_cli_choice, coerce_cli_path
    except (ImportError, AttributeError):  # another typer: keep its own coercion
        return False
    original = getattr(core, "build_runtime_param", None)
    if original is None:
        return False
    if getattr(original, "crmtool_plain", False):
        return True

    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):  # type: ignore[misc,unused-ignore]
        descriptor: Any = None
        adapter: list[Any] = field(default_factory=list)  # typer's own, built on first need

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                out = plain_value(self.annotation, self.parameter_info, value, param, ctx,
                                  choice=coerce_cli_choice, path=coerce_cli_path)
            except TypeError:  # typer's helpers take other arguments in this version: its own way
                out = _NO
            if out is not _NO:
                return out
            if not self.adapter:
                self.adapter.append(original(self.descriptor))  # type: ignore[misc]
            return self.adapter[0]._coerce_value(value, param, ctx)

    def build_runtime_param(descriptor: Any) -> Any:
        info = descriptor.parameter_info
        if descriptor.file_annotation is not None or info.parser is not None \
                or getattr(info, "click_type", None) is not None:
            return original(descriptor)
        try:
            return PlainParam(parameter_info=info, annotation=descriptor.annotation, descriptor=descriptor)
        except TypeError:  # typer's RuntimeParam has other fields in this version
            return original(descriptor)

    build_runtime_param.crmtool_plain = True  # type: ignore[attr-defined]
    core.build_runtime_param = build_runtime_param  # type: ignore[attr-defined]
    return True


def plain_value(annotation: Any, info: Any, value: Any, param: Any, ctx: Any, *, choice: Any, path: Any) -> Any:
    """``value`` as typer's adapter would return it, or ``_NO`` when that takes the adapter."""
    if get_origin(annotation) is list:
        if not isinstance(value, (list, tuple)):
            return _NO
        (item,) = get_args(annotation)
        items = [plain_value(item, info, v, param, ctx, choice=choice, path=path) for v in value]
        return _NO if any(v is _NO for v in items) else items
    if annotation is str:
        return value if type(value) is str else _NO
    if annotation is bool:
        return value if type(value) is bool else _NO
    if annotation in (int, float):
        if info.min is not None or info.max is not None or info.clamp:
            return _NO
        if type(value) is annotation:
            return value
        pattern = _INT if annotation is int else _FLOAT
        return annotation(value) if type(value) is str and pattern.fullmatch(value) else _NO
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return choice(value, choices=tuple(annotation), case_sensitive=info.case_sensitive, ctx=ctx)
        except ValueError:  # not one of them: typer's adapter words the error
            return _NO
    if annotation is Path and info.path_type in (None, Path):
        if isinstance(value, str) and value and "\0" not in value:
            value = Path(value)
        if not isinstance(value, Path):
            return _NO
        return path(value, info, path_type=Path, param=param, ctx=ctx)
    return _NO
