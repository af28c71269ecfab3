"""Export a few studies as PNG; the filter file is written and passed by the provider."""

import pulumi
from dicom_transfer import DicomExport

config = pulumi.Config()
export = DicomExport(
    "cohort-png",
    dicom_store=config.require("dicomStore"),
    gcs_destination={"uri_prefix": config.require("destinationUri"), "mime_type": "image/png"},
    filter_resource_paths=config.require_object("paths"),
    filter_staging_uri=config.require("stagingUri"),
)
pulumi.export("operation", export.operation_name)
pulumi.export("exported", export.success_count)
pulumi.export("filterFile", export.filter_uri)
