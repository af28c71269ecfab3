"""Declarative Cloud Healthcare API DICOM import and export for Pulumi.

Resources: :class:`DicomImport`, :class:`DicomExport` (dynamic resources, one long-running
operation each), :class:`ServiceAgentGrants` (IAM for the Cloud Healthcare Service Agent) and
:class:`DicomPipeline` (grants, imports and exports of one store, ordered).

Names are imported on first use: the dynamic provider process, the emulator and the language
host import submodules of this package and must not pay for pulumi-gcp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dicom_transfer.access import ServiceAgentGrants
    from dicom_transfer.errors import (
        ApiError,
        AuthenticationFailed,
        CredentialsNotFound,
        DicomTransferError,
        InvalidSpec,
        JournalConflict,
        NotFound,
        OperationFailed,
        OperationForgotten,
        OperationTimedOut,
        PermissionDenied,
        Transient,
    )
    from dicom_transfer.pipeline import DicomPipeline, ExportStep, ImportStep
    from dicom_transfer.providers import DicomExportProvider, DicomImportProvider
    from dicom_transfer.resources import (
        BigQueryDestinationArgs,
        DicomExport,
        DicomExportArgs,
        DicomImport,
        DicomImportArgs,
        GcsDestinationArgs,
    )

_HOMES = {
    "ServiceAgentGrants": "access",
    "ApiError": "errors",
    "AuthenticationFailed": "errors",
    "CredentialsNotFound": "errors",
    "DicomTransferError": "errors",
    "InvalidSpec": "errors",
    "JournalConflict": "errors",
    "NotFound": "errors",
    "OperationFailed": "errors",
    "OperationForgotten": "errors",
    "OperationTimedOut": "errors",
    "PermissionDenied": "errors",
    "Transient": "errors",
    "DicomPipeline": "pipeline",
    "ExportStep": "pipeline",
    "ImportStep": "pipeline",
    "DicomExportProvider": "providers",
    "DicomImportProvider": "providers",
    "BigQueryDestinationArgs": "resources",
    "DicomExport": "resources",
    "DicomExportArgs": "resources",
    "DicomImport": "resources",
    "DicomImportArgs": "resources",
    "GcsDestinationArgs": "resources",
}

__all__ = [
    "ApiError",
    "AuthenticationFailed",
    "BigQueryDestinationArgs",
    "CredentialsNotFound",
    "DicomExport",
    "DicomExportArgs",
    "DicomExportProvider",
    "DicomImport",
    "DicomImportArgs",
    "DicomImportProvider",
    "DicomPipeline",
    "DicomTransferError",
    "ExportStep",
    "GcsDestinationArgs",
    "ImportStep",
    "InvalidSpec",
    "JournalConflict",
    "NotFound",
    "OperationFailed",
    "OperationForgotten",
    "OperationTimedOut",
    "PermissionDenied",
    "ServiceAgentGrants",
    "Transient",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'dicom_transfer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"dicom_transfer.{home}"), name)
