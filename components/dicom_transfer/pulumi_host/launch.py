"""Start a ``pulumi_host`` module without running ``dicom_transfer/__init__.py``.

The plugin shims and ``scripts/pulumi-env.sh`` run ``python launch.py MODULE ARGS...`` by path.
The package's ``__init__`` imports the whole library (pulumi-gcp, googleapiclient, ...); the CLI
plumbing needs none of it and must keep working even while the library cannot be imported, so
this registers a bare ``dicom_transfer`` package object (only its ``__path__``) before importing
``dicom_transfer.pulumi_host.MODULE`` and calling its ``main(argv) -> int``.
"""

from __future__ import annotations

import importlib
import os
import sys
import types

MODULES = ("language", "environment")


def main(argv: list[str]) -> int:
    """Import ``dicom_transfer.pulumi_host.<argv[0]>`` and run its ``main(argv[1:])``.

    Args:
        argv: Module name followed by its arguments.

    Returns:
        The module's exit code.
    """
    if not argv or argv[0] not in MODULES:
        sys.stderr.write(f"usage: launch.py {{{','.join(MODULES)}}} [ARGS...]\n")
        return 2
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    if "dicom_transfer" not in sys.modules:
        package = types.ModuleType("dicom_transfer")
        package.__path__ = [os.path.dirname(here)]
        sys.modules["dicom_transfer"] = package
    module = importlib.import_module(f"dicom_transfer.pulumi_host.{argv[0]}")
    exit_code: int = module.main(argv[1:])
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
