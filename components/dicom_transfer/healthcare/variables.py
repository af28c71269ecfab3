"""The environment variables that say where calls and records go, and their wrong spellings.

A variable that is set but not read retargets calls without a word: a stack that still sets
``DICOM_TRANSFER_HEALTHCARE_ENDPOINT`` (the emulator variable before
``HEALTHCARE_EMULATOR_HOST``, retired in f490334) would call Google's public endpoint with the
machine's credentials. :func:`target_variable_problems` finds such variables, so that the
providers' ``check`` fails ``pulumi preview`` naming the variable to use instead:

* a **retired** variable (:data:`RETIRED`): set at all;
* a **misspelling** of one of :data:`TARGET_VARIABLES` (a close name, any letter case);
* an unknown ``DICOM_TRANSFER_*`` variable whose name speaks of an endpoint, host, emulator,
  URL or journal.

Other tools' variables are left alone: ``*_EMULATOR_HOST`` of other services (Pub/Sub,
Firestore, Datastore, ...) count as a misspelling only one typo away from ours.

Imports nothing heavy: ``check`` runs for every resource during a preview.
"""

from __future__ import annotations

import difflib
import os
import urllib.parse
from collections.abc import Mapping

from dicom_transfer.healthcare.journal import JOURNAL_ENV, STATE_DIR_ENV

__all__ = [
    "HEALTHCARE_EMULATOR_ENV",
    "RETIRED",
    "STORAGE_EMULATOR_ENV",
    "TARGET_VARIABLES",
    "mixed_target_problem",
    "target_variable_problems",
    "without_credentials",
]

HEALTHCARE_EMULATOR_ENV = "HEALTHCARE_EMULATOR_HOST"
"""Declares a Healthcare API emulator (``host:port`` or URL); calls to it are anonymous."""
STORAGE_EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
"""python-storage's variable for a Cloud Storage emulator; calls to it are anonymous."""

TARGET_VARIABLES = {
    HEALTHCARE_EMULATOR_ENV: "a Healthcare API emulator (host:port or URL)",
    STORAGE_EMULATOR_ENV: "a Cloud Storage emulator (host:port or URL)",
    JOURNAL_ENV: "the shared resume journal (gs://BUCKET[/PREFIX])",
    STATE_DIR_ENV: "the local resume journal's directory",
}
"""The variables dicom_transfer reads that choose where calls or records go."""

RETIRED = {
    "DICOM_TRANSFER_HEALTHCARE_ENDPOINT": (
        HEALTHCARE_EMULATOR_ENV,
        "for a local emulator; for another endpoint of the real API (Private Service "
        "Connect, regional) set the resource's `endpoint` input instead",
    ),
}
"""Variables no longer read: name -> (the variable to use instead, when to use which)."""

_OTHER_EMULATOR_SUFFIX = "_EMULATOR_HOST"
_CLOSE = 0.88
"""difflib ratio from which a name reads as a misspelling (``HEALTHCARE_EMULATOR`` is 0.884,
``FIRESTORE_EMULATOR_HOST`` vs ``STORAGE_EMULATOR_HOST`` 0.864)."""
_ONE_TYPO = 0.95
_TARGET_WORDS = ("ENDPOINT", "EMULATOR", "HOST", "URL", "URI", "JOURNAL", "BUCKET")
_OUR_PREFIX = "DICOM_TRANSFER_"
_SUBJECT_WORDS = (
    ("JOURNAL", JOURNAL_ENV),
    ("STATE", STATE_DIR_ENV),
    ("STORAGE", STORAGE_EMULATOR_ENV),
    ("GCS", STORAGE_EMULATOR_ENV),
    ("HEALTHCARE", HEALTHCARE_EMULATOR_ENV),
)
"""Words in an unknown ``DICOM_TRANSFER_*`` name and the variable they point to, first match
wins (``..._JOURNAL_BUCKET`` is the journal's, ``..._STORAGE_ENDPOINT`` Cloud Storage's)."""


def without_credentials(url: str) -> str:
    """``url`` as a message may show it: without any ``user:password@`` part.

    Args:
        url: A URL (or ``host:port``) from an input or a variable.

    Returns:
        The same text, its userinfo (if any) removed.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
    except ValueError:  # an unclosed IPv6 bracket, a port out of range
        return url.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _shown(value: str) -> str:
    """The value as a message may show it, quoted: a URL loses any user:password part."""
    return repr(without_credentials(value.strip()))


def _intended(name: str) -> str | None:
    """The variable of ours that ``name`` misspells, if it reads as one."""
    upper = name.upper()
    if upper in TARGET_VARIABLES:
        return None if upper == name else upper  # right name, wrong letter case
    scores = {ours: difflib.SequenceMatcher(None, upper, ours).ratio() for ours in TARGET_VARIABLES}
    best = max(scores, key=scores.__getitem__)
    needed = _ONE_TYPO if upper.endswith(_OTHER_EMULATOR_SUFFIX) else _CLOSE
    if scores[best] >= needed:
        return best
    if upper.startswith(_OUR_PREFIX) and any(word in upper for word in _TARGET_WORDS):
        # Unknown, about an endpoint or journal: the variable of what its name speaks of.
        named = (ours for word, ours in _SUBJECT_WORDS if word in upper[len(_OUR_PREFIX) :])
        return next(named, best)
    return None


def target_variable_problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """Messages for set variables that would silently change where calls go.

    Args:
        environ: The environment to inspect (default ``os.environ``).

    Returns:
        One message per offending variable (empty when all is well), each naming the
        variable, its value (without credentials), where calls go instead, and the variable
        to set.
    """
    env = os.environ if environ is None else environ
    problems = []
    for name in sorted(env):
        value = env[name]
        if not value.strip():
            continue
        if name in RETIRED:
            replacement, when = RETIRED[name]
            now = env.get(replacement, "").strip()
            goes = f"{replacement}={now}" if now else "Google's public endpoint"
            problems.append(
                f"{name}={_shown(value)} is set but no longer read: calls go to {goes} "
                f"instead. Set {replacement} {when}; then unset {name}"
            )
            continue
        if name in TARGET_VARIABLES:
            continue
        intended = _intended(name)
        if intended is not None:
            problems.append(
                f"{name}={_shown(value)} is not a variable dicom-transfer reads; did you mean "
                f"{intended} ({TARGET_VARIABLES[intended]})? Without it calls and records "
                f"do not go where {name} says. Rename it to {intended}, or unset it"
            )
    return problems


def mixed_target_problem(
    *, stages_filter: bool, endpoint_inputs: bool, environ: Mapping[str, str] | None = None
) -> str | None:
    """The message for an export that would stage its filter file across an emulator boundary.

    With only one of ``HEALTHCARE_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST`` set, the filter
    file of ``filter_resource_paths`` goes to one world (Google's Cloud Storage, with this
    machine's credentials, or the emulator's) and the export runs in the other, which cannot
    read it (the emulator reads only its own buckets, Google only Google's). Endpoint inputs
    say where calls go themselves, so they are left alone.

    Args:
        stages_filter: The export stages a filter file (``filter_resource_paths``).
        endpoint_inputs: The resource sets ``endpoint`` or ``storage_endpoint``.
        environ: The environment to inspect (default ``os.environ``).

    Returns:
        The message naming the variable set, the one missing and what to do; None when the
        targets agree or no filter file is staged.
    """
    if not stages_filter or endpoint_inputs:
        return None
    env = os.environ if environ is None else environ
    healthcare = env.get(HEALTHCARE_EMULATOR_ENV, "").strip()
    storage = env.get(STORAGE_EMULATOR_ENV, "").strip()
    if bool(healthcare) == bool(storage):
        return None
    if healthcare:
        return (
            f"{HEALTHCARE_EMULATOR_ENV}={_shown(healthcare)} is set but {STORAGE_EMULATOR_ENV} "
            "is not: the filter file would be written to Google's Cloud Storage (with this "
            "machine's credentials), where the emulator cannot read it. Set "
            f"{STORAGE_EMULATOR_ENV} to the emulator's Cloud Storage (dicom-transfer-emulator "
            "seed prints both)"
        )
    return (
        f"{STORAGE_EMULATOR_ENV}={_shown(storage)} is set but {HEALTHCARE_EMULATOR_ENV} is not: "
        "Google's Healthcare API would be asked to read the filter file from the emulator, "
        f"which it cannot reach. Set {HEALTHCARE_EMULATOR_ENV} too, or unset "
        f"{STORAGE_EMULATOR_ENV}"
    )
