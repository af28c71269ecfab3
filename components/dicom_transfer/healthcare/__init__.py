"""Talking to the Cloud Healthcare API: clients, retries, polling, journal, transfers.

No Pulumi imports here; the dynamic providers reach all of it through
:class:`runtime.TransferRuntime`.

* :mod:`.client` -- :class:`~.client.ApiConfig`, :class:`~.client.HealthcareApi`,
  :class:`~.client.StorageApi` (static discovery, lazy per-thread clients, endpoint override).
* :mod:`.retrying` -- one retry policy type for transient errors and permission propagation.
* :mod:`.results` -- a long-running operation as parsed JSON (counters, times, errors).
* :mod:`.operations` -- poll long-running operations; the failure policy.
* :mod:`.journal` / :mod:`.gcs_journal` -- the record of in-flight operations (local or in
  Cloud Storage).
* :mod:`.transfer` -- submit-once/resume + wait; filter-file staging.
* :mod:`.runtime` -- :class:`~.runtime.TransferRuntime`: the factories and schedules the
  providers are given.
"""
