"""Block validators call the domain's rules; this turns a refusal into pydantic's ValueError."""

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from orca_flows.errors import InvalidInputError

__all__ = ["refused_as_value_error"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def refused_as_value_error(check: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``check(*args, **kwargs)``, its ``InvalidInputError`` re-raised as a plain ``ValueError``.

    The message stays the domain's word for word; pydantic reports a ``ValueError`` as the
    field's error, and the Orca error (with its field name) stays out of the block's schema
    errors.
    """
    try:
        return check(*args, **kwargs)
    except InvalidInputError as error:
        raise ValueError(str(error)) from None
