"""Previews stay cheap: the program and the provider processes import no API client to
declare, check and diff transfers (every shard process of a preview pays for its imports)."""

from __future__ import annotations

import subprocess
import sys

API_LAYER = ("googleapiclient", "google_auth_httplib2", "httplib2", "google.auth.impersonated")


def test_declaring_checking_and_diffing_imports_no_api_client() -> None:
    script = f"""
import sys
from dicom_transfer import DicomExport, DicomImport, DicomImportProvider
provider = DicomImportProvider()
props = {{"dicom_store": "projects/my-project/locations/us-central1/datasets/d/dicomStores/s",
          "gcs_uri": "gs://bucket/dir/**.dcm", "timeout_seconds": 60}}
assert provider.check({{}}, props).failures == []
assert not provider.diff("op", props, props).changes
loaded = sorted(m for m in sys.modules if m.startswith({API_LAYER!r}))
print(",".join(loaded))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"imported at preview: {result.stdout.strip()}"
