"""A whole pipeline: storage and store from pulumi-gcp, transfers ordered by DicomPipeline."""

import pulumi
import pulumi_gcp as gcp
from dicom_transfer import DicomPipeline, ExportStep, ImportStep

config = pulumi.Config()
project = config.require("gcpProject")
region = config.get("region") or "us-central1"

raw = gcp.storage.Bucket(
    "raw", project=project, location=region.upper(), uniform_bucket_level_access=True
)
out = gcp.storage.Bucket(
    "out", project=project, location=region.upper(), uniform_bucket_level_access=True
)
dataset = gcp.healthcare.Dataset("imaging", location=region, project=project)
store = gcp.healthcare.DicomStore("archive", dataset=dataset.id)

pipeline = DicomPipeline(
    "archive",
    project=project,
    dicom_store=store.id,
    imports=[ImportStep("load", gcs_uri=raw.url.apply(lambda url: f"{url}/incoming/**.dcm"))],
    exports=[
        ExportStep(
            "deidentified-copy",
            gcs_destination={
                "uri_prefix": out.url.apply(lambda url: f"{url}/copy"),
                "mime_type": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
            },
        ),
        ExportStep(
            "thumbnails",
            gcs_destination={
                "uri_prefix": out.url.apply(lambda url: f"{url}/png"),
                "mime_type": "image/png",
            },
            max_failures=None,
        ),
    ],
)
pulumi.export("imported", pipeline.imports["load"].success_count)
pulumi.export("copied", pipeline.exports["deidentified-copy"].success_count)
pulumi.export("thumbnails", pipeline.exports["thumbnails"].success_count)
