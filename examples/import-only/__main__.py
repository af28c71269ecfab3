"""Import DICOM files into an existing store; the counters become stack outputs."""

import pulumi
from dicom_transfer import DicomImport

config = pulumi.Config()
load = DicomImport(
    "load",
    dicom_store=config.require("dicomStore"),
    gcs_uri=config.require("sourceUri"),
    max_failures=config.get_int("maxFailures") or 0,
)
pulumi.export("operation", load.operation_name)
pulumi.export("imported", load.success_count)
pulumi.export("failed", load.failure_count)
