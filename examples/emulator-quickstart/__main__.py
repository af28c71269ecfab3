"""The README Quickstart's transfers against the local emulator: an import and a PNG export.

No pulumi-gcp: `dicom-transfer-emulator seed` has created the store and buckets this program
names, and the emulator checks no IAM unless started with ``--permission-checks``, so the
Quickstart's ``ServiceAgentGrants`` is left out. The providers find the emulator through
``HEALTHCARE_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST``.
"""

import pulumi
from dicom_transfer import DicomExport, DicomImport

config = pulumi.Config()
store = config.require("dicomStore")
source = config.require("sourceBucket")
out = config.require("exportBucket")

load = DicomImport("load", dicom_store=store, gcs_uri=f"gs://{source}/corpus/**.dcm")
png = DicomExport(
    "cohort-png",
    dicom_store=store,
    gcs_destination={"uri_prefix": f"gs://{out}/png", "mime_type": "image/png"},
    filter_resource_paths=[f"/studies/{uid}" for uid in config.require_object("studies")],
    filter_staging_uri=f"gs://{out}/filters",
    opts=pulumi.ResourceOptions(depends_on=[load]),
)
pulumi.export("imported", load.success_count)
pulumi.export("exported", png.success_count)
pulumi.export("pngPrefix", f"gs://{out}/png")
