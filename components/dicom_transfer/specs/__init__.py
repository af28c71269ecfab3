"""Typed, validated descriptions of DICOM import and export requests, by job.

* :mod:`.problems` -- collecting every problem; Pulumi's not-yet-computed values.
* :mod:`.gcs` -- Cloud Storage names, ``gs://`` URIs, import wildcards.
* :mod:`.mime_types` -- the documented export MIME types, their spellings and extensions.
* :mod:`.requests` -- :class:`~.requests.ImportSpec` / :class:`~.requests.ExportSpec` and their
  JSON bodies; store names, UIDs, enums, BigQuery tables.
* :mod:`.props` -- Pulumi props to specs and :class:`~.props.WaitPolicy`.
* :mod:`.fingerprint` -- the identity of a request in the journal.

Pure: no I/O, no Pulumi import. Imports go one way: problems <- gcs <- requests <- props,
mime_types <- requests, requests <- fingerprint.
"""
