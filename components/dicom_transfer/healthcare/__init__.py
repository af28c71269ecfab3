"""Talking to the Cloud Healthcare API: clients, retries, polling, journal, transfers.

No Pulumi imports here; the dynamic providers build on :func:`transfer.run_transfer`.

* :mod:`.client` -- :class:`~.client.ApiConfig`, :class:`~.client.HealthcareApi`,
  :class:`~.client.StorageApi` (static discovery, lazy per-thread clients, endpoint override).
* :mod:`.retrying` -- transient-error and permission-propagation retry policies.
* :mod:`.operations` -- parse and poll long-running operations; the failure policy.
* :mod:`.journal` -- on-disk record of in-flight operations.
* :mod:`.transfer` -- submit-once/resume + wait; filter-file staging.
"""
