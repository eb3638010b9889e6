"""The blocks pass Prefect's block suite, ship their logo and register with the Prefect CLI."""

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from PIL import Image
from prefect.blocks.core import Block
from prefect.plugins import load_prefect_collections
from prefect.testing.standard_test_suites import BlockStandardTestSuite

import orca_blocks
from orca_blocks import OrcaEc2Runner, OrcaLinkedCloud, OrcaLinkedCloudCredentials, OrcaRunQueue

_LOGO = Path(orca_blocks.__file__).parent / "assets" / "orca.png"


class _OfflineBlockSuite(BlockStandardTestSuite):
    @pytest.mark.skip(
        reason="Downloads _logo_url and the tests run offline; "
        "test_logo_url_names_the_shipped_square_image checks the file that URL serves."
    )
    def test_has_a_valid_image(self, block: type[Block]) -> None: ...


class TestOrcaLinkedCloudCredentials(_OfflineBlockSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return OrcaLinkedCloudCredentials


class TestOrcaRunQueue(_OfflineBlockSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return OrcaRunQueue


class TestOrcaEc2Runner(_OfflineBlockSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return OrcaEc2Runner


def test_orca_linked_cloud_is_the_credentials_block_type_not_a_second_one() -> None:
    # An alias: one class, one block type (slug unchanged), so documents saved before load.
    assert OrcaLinkedCloud is OrcaLinkedCloudCredentials
    assert OrcaLinkedCloud.get_block_type_slug() == "orca-linked-cloud-credentials"


@pytest.mark.parametrize("block", [OrcaLinkedCloudCredentials, OrcaRunQueue, OrcaEc2Runner])
def test_logo_url_names_the_shipped_square_image(block: type[Block]) -> None:
    assert str(block._logo_url).endswith("/orca_blocks/assets/orca.png")
    # The same checks as the suite's test_has_a_valid_image, on the local file.
    with Image.open(_LOGO) as logo:
        assert logo.width == logo.height
        assert 1000 > logo.width > 45


@pytest.mark.parametrize(
    ("block", "field"),
    [
        (OrcaLinkedCloudCredentials, "external_id"),
        (OrcaRunQueue, "credentials.external_id"),
    ],
)
def test_prefect_stores_the_external_id_as_a_secret(block: type[Block], field: str) -> None:
    assert field in block.model_json_schema()["secret_fields"]


def test_prefect_imports_the_blocks_as_a_collection() -> None:
    assert "orca_blocks" in entry_points(group="prefect.collections").names
    assert load_prefect_collections()["orca_blocks"] is orca_blocks


def test_prefect_block_register_registers_the_three_blocks_once_each(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path),
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }

    result = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "orca_blocks"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "Successfully registered 3 blocks" in result.stdout
    for block in (OrcaLinkedCloudCredentials, OrcaRunQueue, OrcaEc2Runner):
        assert result.stdout.count(block.get_block_type_name()) == 1, result.stdout
