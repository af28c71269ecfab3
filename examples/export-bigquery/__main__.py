"""Grant the service agent BigQuery access, then export the store's metadata (replacing rows)."""

import pulumi
from dicom_transfer import DicomExport, ServiceAgentGrants

config = pulumi.Config()
project = config.require("gcpProject")
dataset = config.require("bigqueryDataset")
grants = ServiceAgentGrants("agent", project=project, bigquery_datasets=[dataset])
export = DicomExport(
    "metadata",
    dicom_store=config.require("dicomStore"),
    bigquery_destination={
        "table_uri": f"bq://{project}.{dataset}.{config.get('table') or 'dicom_metadata'}",
        "write_disposition": "WRITE_TRUNCATE",
    },
    opts=pulumi.ResourceOptions(depends_on=[grants]),
)
pulumi.export("agent", grants.agent_email)
pulumi.export("rows", export.success_count)
