"""The base of every configuration and profile model: unknown keys refused, frozen, and a
boolean never taken for a number.

Pydantic's lax mode reads ``true`` as 1 for an int or float field, so ``interval_s: true``
would poll every second. One validator here, run on every field of every model, refuses a
boolean wherever the field's type wants a number (also inside lists and dicts, keys
included) unless the type itself allows a boolean.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

_NUMBERS = (int, float)
_SEQUENCES = (list, tuple, set, frozenset)
# What a boolean can be or hide in: anything else is never a misplaced one.
_MAY_HOLD_BOOL = (bool, dict, *_SEQUENCES)


def misplaced_bool(value: object, annotation: Any) -> bool:
    """Whether ``value`` holds a boolean where ``annotation`` expects a number."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return misplaced_bool(value, get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if isinstance(value, bool) and bool in args:
            return False
        return any(misplaced_bool(value, a) for a in args)
    if isinstance(value, bool):
        if annotation in _NUMBERS:
            return True
        if origin is Literal:  # Literal[32, 64]: True == 1 must not match a 1
            return not any(isinstance(a, bool) for a in get_args(annotation))
        return False
    if origin in _SEQUENCES and isinstance(value, list | tuple | set | frozenset):
        args = get_args(annotation)
        if not args:
            return False
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            items = list(args)  # a fixed-length tuple: one type per position
        else:
            items = [args[0]] * len(value)
        return any(misplaced_bool(v, a) for v, a in zip(value, items, strict=False))
    if origin is dict and isinstance(value, dict):
        key_type, value_type = (get_args(annotation) + (Any, Any))[:2]
        return any(misplaced_bool(k, key_type) or misplaced_bool(v, value_type)
                   for k, v in value.items())
    return False


class StrictModel(BaseModel):
    """Base of the configuration and profile models."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, _MAY_HOLD_BOOL):
            return value  # a string, a number, None: nothing to look at (the usual case)
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and misplaced_bool(value, field.annotation):
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            raise ValueError(f"a boolean is not a number: got {shown}")
        return value
