"""Service refusals shown where the user can act on them: under the field they concern."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from orca_flows.errors import OrcaError

__all__ = ["FieldErrors", "flash", "refusals", "show_flash"]


class FieldErrors:
    """Error slots under a form's fields, filled from an ``OrcaError``'s ``field``.

    Each field sits in a container keyed ``<form>-<field>`` (tests and the browser find
    the message there); a refusal without a matching field goes under the form.
    """

    def __init__(self, form: str) -> None:
        self._form = form
        self._slots: dict[str, DeltaGenerator] = {}

    @contextmanager
    def field(self, name: str) -> Iterator[None]:
        """Lay out one field inside this block; its error slot goes right under it."""
        with st.container(key=f"{self._form}-{name}"):
            yield
            self._slots[name] = st.empty()

    def general(self) -> None:
        """Place the slot for refusals that concern no single field (call it last)."""
        with st.container(key=f"{self._form}-form"):
            self._slots["form"] = st.empty()

    @contextmanager
    def catch(self, kinds: dict[str, str] | None = None) -> Iterator[None]:
        """Show an ``OrcaError`` raised in the block under the field it concerns.

        Args:
            kinds: Field of errors that name a kind of thing instead of a field
                (``AlreadyExistsError``/``NotFoundError``), e.g. ``{"link": "name"}``.
        """
        try:
            yield
        except OrcaError as error:
            field = getattr(error, "field", None) or (kinds or {}).get(getattr(error, "kind", ""))
            slot = self._slots.get(field or "") or self._slots.get("form") or st
            slot.error(str(error))


_FLASH_KEY = "orca_flash"


def flash(message: str) -> None:
    """Keep a success message for the next run (the page reruns to show fresh data)."""
    st.session_state[_FLASH_KEY] = message


def show_flash() -> None:
    """Show, once, the message kept by ``flash``."""
    message = st.session_state.pop(_FLASH_KEY, None)
    if message:
        st.success(message)


@contextmanager
def refusals() -> Iterator[None]:
    """Show an ``OrcaError`` raised in the block right here, as the service worded it."""
    try:
        yield
    except OrcaError as error:
        st.error(str(error))
