"""Changing the provider-shard pool moves transfers between providers without re-running them.

``DICOM_TRANSFER_PROVIDER_SHARDS`` decides which ``pulumi-python`` provider serves each
transfer (the fallback where the provider process's pool cannot be widened; the default
provider otherwise). The shards' configuration is identical, so the engine must see a moved
transfer as unchanged: no replace, no new operation.
"""

from __future__ import annotations

import pytest
from support.e2e.dicom_stack import DicomStack

pytestmark = pytest.mark.e2e

SHARDS = "DICOM_TRANSFER_PROVIDER_SHARDS"


def _providers(stack: DicomStack) -> list[str]:
    return [resource["provider"] for resource in stack.import_resources()]


def test_resharding_moves_transfers_without_replacing_them(stack: DicomStack) -> None:
    stack.configure(imports=6, trigger="same-files")
    default_env = dict(stack.cli.extra_env)
    stack.cli.extra_env = {**default_env, SHARDS: "4"}
    stack.cli.run("up", "--yes")  # four on shard 0, two on shard 1
    before = stack.imports()
    spread = _providers(stack)
    assert len(set(spread)) == 2, f"six imports on two shards: {spread}"
    posts = stack.emulator.import_posts()
    assert posts == 6

    stack.cli.extra_env = default_env  # the default provider
    preview = stack.cli.run("preview", "--diff")
    assert "replace" not in preview.stdout, preview.stdout
    stack.cli.run("up", "--yes")
    assert stack.imports() == before
    assert stack.emulator.import_posts() == posts, "resharding re-ran an import"
    moved = _providers(stack)
    assert len(set(moved)) == 1 and not set(moved) & set(spread), moved
