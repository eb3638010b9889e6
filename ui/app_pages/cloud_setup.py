"""Cloud Setup: the link wizard (kit, ExternalId, role ARN), the local sandbox, checks."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from orca_flows.domain.states import CheckStatus
from orca_flows.domain.views import CheckStep, LinkView
from orca_flows.errors import ExternalIdNotIssuedError, InvalidInputError
from orca_flows.services.link_check import check_link
from orca_flows.services.link_creation import create_link, create_local_link, sandbox_available
from orca_flows.services.link_kits import generate_kit
from orca_flows.services.links import list_links, remove_link
from ui.forms import FieldErrors, flash, refusals, show_flash
from ui.session import current_actor, orca_settings

KIT_KEY = "cloud_setup_kit"
# The services word these refusals for the CLI; the page names its own step 1 instead.
_NO_KIT = (
    "ExternalIds are issued by Orca: generate a kit in step 1 first; the link then uses "
    "the newest ExternalId issued to you that no link uses."
)
_NOT_ISSUED = (
    "ExternalIds are issued by Orca: generate a kit in step 1 and put its ExternalId in your "
    "stack (leave this field empty to use it); this one was not issued to you, or another "
    "link uses it already."
)
_MARKS = {
    CheckStatus.PASSED: "✅",
    CheckStatus.FAILED: "❌",
    CheckStatus.UNVERIFIED: "➖",
    CheckStatus.SKIPPED: "⏭️",
}


def _show_steps(steps: Sequence[CheckStep]) -> None:
    for step in steps:
        st.markdown(f"{_MARKS[step.status]} **{step.name}** ({step.status}): {step.detail}")
        if step.fix:
            st.caption(f"Fix: {step.fix}")


def _link_panel(link: LinkView) -> None:
    status = link.last_check_status or "never checked"
    with st.expander(f"{link.name} · {link.account_id} · {link.region} · {status}"):
        where = " · local sandbox" if link.local else ""
        st.markdown(f"Role `{link.role_arn}` · bucket `{link.bucket}`{where}")
        check, remove = st.columns(2)
        if check.button("Check", key=f"check-{link.name}"):
            with refusals():
                result = check_link(orca_settings(), current_actor(), link.name)
                verdict = CheckStatus.PASSED if result.passed else CheckStatus.FAILED
                (st.success if result.passed else st.error)(f"Link check {verdict}.")
                _show_steps(result.steps)
        elif link.last_check:
            st.caption(f"Last check at {link.last_check_at}:")
            _show_steps(link.last_check)
        if remove.button("Remove link", key=f"remove-{link.name}"):
            with refusals():
                removal = remove_link(orca_settings(), current_actor(), link.name)
                note = (
                    f" Prefect kept its block documents {', '.join(removal.leftover_blocks)}: "
                    "delete them in the Prefect UI."
                    if removal.leftover_blocks
                    else ""
                )
                flash(
                    f"Removed link {link.name!r}; the stack in your account stays until you "
                    f"delete it.{note}"
                )
                st.rerun()


def _sandbox_section(sandbox_running: bool) -> None:
    st.subheader("Use the local sandbox")
    if not sandbox_running:
        st.caption(
            "The local sandbox is not running; start it with `orca local up` to link it here."
        )
        return
    errors = FieldErrors("sandbox")
    with st.form("sandbox"):
        with errors.field("name"):
            name = st.text_input("Link name", value="sandbox")
        submitted = st.form_submit_button("Link the local sandbox", type="primary")
        errors.general()
    if submitted:
        with errors.catch(kinds={"link": "name"}):
            link = create_local_link(orca_settings(), current_actor(), name.strip())
            flash(f"Linked {link.name!r} to the local sandbox (bucket {link.bucket}).")
            st.rerun()  # after the commit: the list above shows the new link


def _kit_section() -> None:
    st.subheader("Link an AWS account")
    st.markdown(
        "**1. Get the kit**: a CloudFormation stack in your account creates the role Orca assumes."
    )
    errors = FieldErrors("kit")
    with st.form("kit"):
        with errors.field("region"):
            region = st.text_input("Your AWS region", value="us-east-1")
        with errors.field("account"):
            account = st.text_input("Your AWS account id (optional, 12 digits)")
        submitted = st.form_submit_button("Generate the kit")
        errors.general()
    if submitted:
        with errors.catch():
            st.session_state[KIT_KEY] = generate_kit(
                orca_settings(),
                current_actor(),
                region=region.strip(),
                user_account_id=account.strip() or None,
            )
    result = st.session_state.get(KIT_KEY)
    if result is not None:
        kit = result.kit
        st.markdown(
            "**ExternalId** (shown once: Orca keeps it for step 2, copy it if you deploy by hand)"
        )
        st.code(kit.external_id, language=None)
        st.download_button(
            "Download the template (orca-link.json)",
            kit.template_json,
            "orca-link.json",
            "application/json",
        )
        st.link_button("Open the quick-create page in the AWS console", kit.quick_create_url)
        st.markdown("Or deploy it with the AWS CLI:")
        st.code("\n".join(kit.cli_commands), language="bash")
    _create_form(result.role_arn if result else None)


def _create_form(role_arn: str | None) -> None:
    st.markdown("**2. Link it** with the stack's `RoleArn` output.")
    errors = FieldErrors("create")
    with st.form("create"):
        with errors.field("name"):
            name = st.text_input("Link name", placeholder="prod")
        with errors.field("role_arn"):
            arn = st.text_input(
                "Role ARN",
                value=role_arn or "",
                placeholder="arn:aws:iam::123456789012:role/OrcaAccess",
            )
        with errors.field("region"):
            region = st.text_input("Region", value="us-east-1")
        with errors.field("external_id"):
            external_id = st.text_input(
                "ExternalId (leave empty to use your newest kit's)", type="password"
            )
        submitted = st.form_submit_button("Create the link", type="primary")
        errors.general()
    if submitted:
        with errors.catch(kinds={"link": "name"}):
            try:
                link = create_link(
                    orca_settings(),
                    current_actor(),
                    name.strip(),
                    role_arn=arn.strip(),
                    region=region.strip() or None,
                    external_id=external_id.strip() or None,
                )
            except InvalidInputError as error:  # malformed, not issued, in use, none
                if error.field != "external_id":
                    raise
                no_kit = isinstance(error, ExternalIdNotIssuedError) and error.no_kit
                raise InvalidInputError(
                    "external_id", _NO_KIT if no_kit else _NOT_ISSUED
                ) from error
            st.session_state.pop(KIT_KEY, None)  # the ExternalId is not shown again
            flash(f"Linked {link.name!r}. Run its check above to verify every step.")
            st.rerun()


st.title("Cloud Setup")
st.caption("Orca reaches your AWS account only through a role you create, never with your keys.")
show_flash()
links = list_links(orca_settings(), current_actor())
sandbox_running = sandbox_available(orca_settings())

st.subheader("Your links")
if not links:
    st.info("No links yet: link the local sandbox or an AWS account below.")
for link in links:
    _link_panel(link)
_sandbox_section(sandbox_running)
_kit_section()
