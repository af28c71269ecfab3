"""`make demo`: a real `pulumi up` of the root project's `local` stack against the emulator.

Starts the emulator (state kept in .emulator-data between runs), seeds the DICOM store and a
source bucket with pydicom's corpus, runs `pulumi up --yes` on the `local` stack (state in
.pulumi-state), prints the stack outputs and a summary, lists the imported studies with one
DICOMweb search (QIDO-RS, the call a viewer or app makes), and stops the emulator. Running it
again changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from dicom_transfer_emulator.launch import EmulatorProcess
from dicom_transfer_emulator.seed import DEMO_PLAN, seed
from dicom_transfer_pulumi_host.environment import checkout_environment

ROOT = Path(__file__).resolve().parent.parent
STACK = "local"
PLAN = DEMO_PLAN


def pulumi_environment() -> dict[str, str]:
    """The offline Pulumi environment (CLI on PATH, file backend, passphrase, no downloads)."""
    try:
        return checkout_environment(ROOT, state_dir=ROOT / ".pulumi-state")
    except RuntimeError as error:
        raise SystemExit(f"demo: {error}") from None


def pulumi(env: dict[str, str], *args: str, capture: bool = False) -> str:
    """Runs the Pulumi CLI in the project root; raises with its output on failure."""
    result = subprocess.run(
        ["pulumi", *args, "--non-interactive"],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=capture,
    )
    if result.returncode != 0:
        detail = f"\n{result.stdout}\n{result.stderr}" if capture else ""
        raise SystemExit(f"demo: `pulumi {' '.join(args)}` failed ({result.returncode}){detail}")
    return result.stdout if capture else ""


def summary(outputs: dict[str, Any]) -> str:
    """A few human lines from the stack outputs."""
    lines = [f"DICOM store: {outputs.get('dicomStore')}"]
    for key, verb in (
        ("import", "imported"),
        ("export-gcs", "exported to Cloud Storage"),
        ("export-bq", "exported to BigQuery"),
    ):
        step = outputs.get(key)
        if step:
            lines.append(
                f"{step['success']:>4} instances {verb} ({step['failure']} failed) "
                f"by {step['operation'].rsplit('/', 1)[-1]}"
            )
    return "\n".join(lines)


def changes(resource_changes: dict[str, int]) -> str:
    """What the update did, from ``pulumi stack history``'s ``resourceChanges``."""
    changed = {op: n for op, n in resource_changes.items() if op != "same" and n}
    if not changed:
        return "demo: no changes: the stack was already up to date (nothing was resubmitted)."
    unchanged = resource_changes.get("same", 0)
    return (
        "demo: "
        + ", ".join(f"{n} {op}" for op, n in sorted(changed.items()))
        + (f" ({unchanged} unchanged)" if unchanged else "")
    )


def dicomweb_studies(healthcare_url: str) -> tuple[str, list[dict[str, Any]]]:
    """One QIDO-RS search for the studies of the demo store: ``(URL, DICOM JSON results)``."""
    store = (
        f"projects/{PLAN.project}/locations/{PLAN.location}/datasets/{PLAN.dataset}"
        f"/dicomStores/{PLAN.store}"
    )
    url = f"{healthcare_url}/v1/{store}/dicomWeb/studies?limit=1000"
    request = urllib.request.Request(url, headers={"Accept": "application/dicom+json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        studies: list[dict[str, Any]] = json.load(response)
    return url, studies


def study_lines(studies: list[dict[str, Any]]) -> str:
    """One line per study: UID, patient name, number of instances (DICOM JSON tags)."""

    def first(study: dict[str, Any], tag: str) -> Any:
        value = study.get(tag, {}).get("Value", [""])[0]
        return value.get("Alphabetic", "") if isinstance(value, dict) else value

    return "\n".join(
        f"  {first(s, '0020000D')}  {first(s, '00100010') or '(no name)'}  "
        f"{first(s, '00201208')} instance(s)"
        for s in studies
    )


def main() -> int:
    """Runs the demo; returns the process exit code."""
    started = time.monotonic()
    env = pulumi_environment()
    with EmulatorProcess(data_dir=ROOT / ".emulator-data") as emulator:
        files = seed(PLAN, healthcare_url=emulator.healthcare_url, storage_url=emulator.storage_url)
        print(
            f"demo: emulator at {emulator.healthcare_url} (storage {emulator.storage_url}); "
            f"{len(files)} DICOM files in gs://{PLAN.source_bucket}/{PLAN.source_prefix}/"
        )
        env.update(
            HEALTHCARE_EMULATOR_HOST=emulator.healthcare_url,
            STORAGE_EMULATOR_HOST=emulator.storage_url,
        )
        pulumi(env, "stack", "select", STACK, "--create")
        pulumi(env, "up", "--yes", "--stack", STACK)
        outputs = json.loads(
            pulumi(env, "stack", "output", "--json", "--stack", STACK, capture=True)
        )
        history = json.loads(
            pulumi(
                env,
                "stack",
                "history",
                "--json",
                "--page-size",
                "1",
                "--stack",
                STACK,
                capture=True,
            )
        )
        search_url, studies = dicomweb_studies(emulator.healthcare_url)
    print(json.dumps(outputs, indent=2))
    print(summary(outputs))
    print(changes(history[0].get("resourceChanges") or {}))
    print(f"demo: DICOMweb search GET {search_url}\n{len(studies)} studies:")
    print(study_lines(studies))
    print(f"demo: done in {time.monotonic() - started:.0f} s; emulator stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
