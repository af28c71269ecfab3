"""A Pulumi project of ``DicomImport`` resources, driven by the real CLI against the emulator.

``SeededEmulator`` is an emulator process seeded with pydicom's corpus, plus plain-HTTP access
to its admin endpoints (request log, faults) and to the emulated APIs. ``DicomStack`` is a
project written into a temporary directory whose ``__main__.py`` declares ``imports`` copies of
one ``DicomImport`` from stack config, with a ``PulumiCli`` whose environment points the
providers at the emulator and at a private resume journal.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dicom_transfer_emulator.testing.launch import EmulatorProcess
from dicom_transfer_emulator.testing.seed import DEMO_PLAN, CorpusFile, seed

from support.e2e.pulumi_cli import PulumiCli

PLAN = replace(
    DEMO_PLAN,
    project="e2e-project",
    source_bucket="e2e-dicom-source",
    export_bucket="e2e-dicom-export",
)
PROJECT_NAME = "dicom-e2e"
STACK_NAME = "e2e"
PASSPHRASE = "e2e-passphrase-0f3c9a"
"""The stack's secrets passphrase (a test checks that it never reaches the state)."""
IMPORT_PATH = r"/dicomStores/[^/]+:import$"

PROGRAM = """\
import pulumi
from dicom_transfer import DicomImport

config = pulumi.Config()
trigger = config.get("trigger")
imports = [
    DicomImport(
        f"import-{index}",
        dicom_store=config.require("store"),
        gcs_uri=config.require("gcsUri"),
        timeout_seconds=config.get_float("timeoutSeconds") or 600.0,
        max_failures=config.get_int("maxFailures") or 0,
        triggers={"run": trigger} if trigger else None,
    )
    for index in range(config.get_int("imports") or 1)
]
pulumi.export(
    "imports",
    [
        {
            "operation": item.operation_name,
            "success": item.success_count,
            "failure": item.failure_count,
            "createTime": item.create_time,
            "endTime": item.end_time,
            "logsUrl": item.logs_url,
        }
        for item in imports
    ],
)
"""


@dataclass
class SeededEmulator:
    """A running emulator holding ``PLAN``'s store and buckets and the uploaded corpus."""

    healthcare_url: str
    storage_url: str
    corpus: list[CorpusFile]

    @property
    def store_name(self) -> str:
        """The seeded DICOM store's full name."""
        return PLAN.store_name

    @property
    def dataset_name(self) -> str:
        """The seeded dataset's full name."""
        return PLAN.store_name.rsplit("/dicomStores/", 1)[0]

    @property
    def source_uri(self) -> str:
        """``gs://`` pattern matching exactly the uploaded corpus."""
        return f"gs://{PLAN.source_bucket}/{PLAN.source_prefix}/**"

    def call(self, method: str, url: str, body: Any = None) -> Any:
        """One JSON request; raises ``urllib.error.HTTPError`` on an error status."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def healthcare(self, method: str, path: str, body: Any = None) -> Any:
        """A request to the Healthcare port (``path`` starts with ``/``)."""
        return self.call(method, self.healthcare_url + path, body)

    # -- admin ---------------------------------------------------------------------------

    def requests(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """The request log (both APIs), optionally filtered by method and path regex."""
        query = {key: value for key, value in (("method", method), ("path", path)) if value}
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        records: list[dict[str, Any]] = self.healthcare("GET", "/_emulator/requests" + suffix)[
            "requests"
        ]
        return records

    def import_posts(self) -> int:
        """How many ``dicomStores.import`` calls the emulator has served."""
        return len(self.requests("POST", IMPORT_PATH))

    def clear_requests(self) -> None:
        """Forget the request log."""
        self.healthcare("DELETE", "/_emulator/requests")

    def add_faults(self, **body: Any) -> None:
        """``POST /_emulator/faults``: ``spec`` (fault specs) and ``scope``, see
        ``dicom_transfer_emulator.faults``."""
        self.healthcare("POST", "/_emulator/faults", body)

    # -- public API ----------------------------------------------------------------------

    def operations(self) -> list[dict[str, Any]]:
        """The seeded dataset's operations (``datasets.operations.list``)."""
        found: list[dict[str, Any]] = []
        token = ""
        while True:
            query = urllib.parse.urlencode({"pageSize": 100, "pageToken": token})
            page = self.healthcare("GET", f"/v1/{self.dataset_name}/operations?{query}")
            found += page.get("operations", [])
            token = page.get("nextPageToken") or ""
            if not token:
                return found

    def import_operations(self) -> list[dict[str, Any]]:
        """The dataset's ``dicomStores.import`` operations."""
        return [
            operation
            for operation in self.operations()
            if operation["metadata"]["apiMethodName"].endswith(".ImportDicomData")
        ]

    def wait_for_operation(self, name: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Polls ``operations.get`` until the operation is done."""
        deadline = time.monotonic() + timeout_s
        while True:
            operation: dict[str, Any] = self.healthcare("GET", f"/v1/{name}")
            if operation.get("done"):
                return operation
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} not done after {timeout_s:.0f} s: {operation}")
            time.sleep(0.2)

    def stored_instance_uids(self) -> set[str]:
        """SOP Instance UIDs in the store, found by exporting it and listing the files.

        The emulator serves no DICOMweb search, so the store's content is observed through the
        public API: ``dicomStores.export`` writes ``{prefix}/{study}/{series}/{sop}.dcm``.
        """
        prefix = f"check-{time.monotonic_ns()}"
        operation = self.healthcare(
            "POST",
            f"/v1/{self.store_name}:export",
            {"gcsDestination": {"uriPrefix": f"gs://{PLAN.export_bucket}/{prefix}"}},
        )
        done = self.wait_for_operation(operation["name"])
        assert "error" not in done, done
        query = urllib.parse.urlencode({"prefix": f"{prefix}/", "maxResults": 1000})
        listing = self.call(
            "GET", f"{self.storage_url}/storage/v1/b/{PLAN.export_bucket}/o?{query}"
        )
        assert "nextPageToken" not in listing, "more exported files than one page holds"
        names = [item["name"] for item in listing.get("items", [])]
        return {name.rsplit("/", 1)[-1].removesuffix(".dcm") for name in names}

    def upload(self, name: str, data: bytes, content_type: str) -> None:
        """Uploads one object to the source bucket (JSON API media upload)."""
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        request = urllib.request.Request(
            f"{self.storage_url}/upload/storage/v1/b/{PLAN.source_bucket}/o?{query}",
            data=data,
            method="POST",
        )
        request.add_header("Content-Type", content_type)
        with urllib.request.urlopen(request, timeout=30):
            pass


@contextmanager
def seeded_emulator(log_path: Path) -> Iterator[SeededEmulator]:
    """Starts an emulator (request lines logged to ``log_path``), seeds it, clears its log."""
    with log_path.open("w") as log, EmulatorProcess(log=log) as process:
        corpus = seed(PLAN, healthcare_url=process.healthcare_url, storage_url=process.storage_url)
        emulator = SeededEmulator(process.healthcare_url, process.storage_url, corpus)
        emulator.clear_requests()
        yield emulator


@dataclass
class DicomStack:
    """One project directory with one initialised stack, bound to a seeded emulator."""

    cli: PulumiCli
    emulator: SeededEmulator
    journal_dir: Path

    def configure(self, **values: str | int | float) -> None:
        """Sets plaintext stack config (``store``, ``gcsUri``, ``imports``, ``trigger``, …)."""
        pairs = [f"--plaintext={key}={value}" for key, value in values.items()]
        self.cli.run("config", "set-all", *pairs)

    def imports(self) -> list[dict[str, Any]]:
        """The ``imports`` stack output: one dict per import, in declaration order."""
        outputs: list[dict[str, Any]] = self.cli.stack_outputs()["imports"]
        return outputs

    def import_resources(self, state: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The ``DicomImport`` resources of ``state`` (default: a fresh ``stack export``)."""
        deployment = (state or self.cli.export())["deployment"]
        return [
            resource
            for resource in deployment.get("resources") or []
            if resource["type"] == "pulumi-python:dynamic:Resource"
        ]


def dicom_stack(
    root: Path, emulator: SeededEmulator, *, stack: str = STACK_NAME, program: str = PROGRAM
) -> DicomStack:
    """Writes the project under ``root``, inits ``stack`` and configures one import of the corpus.

    Args:
        root: Empty directory for the project, the Pulumi state and the journal.
        emulator: Where the providers send their requests.
        stack: The stack's name.
        program: The project's ``__main__.py`` (default :data:`PROGRAM`, the imports).

    Returns:
        The stack, configured with ``store`` and ``gcsUri`` (the whole corpus).
    """
    project = root / "project"
    project.mkdir(parents=True)
    (project / "Pulumi.yaml").write_text(f"name: {PROJECT_NAME}\nruntime: python\n")
    (project / "__main__.py").write_text(program)
    journal_dir = root / "journal"
    cli = PulumiCli(
        project_dir=project,
        state_dir=root / "state",
        extra_env={
            "HEALTHCARE_EMULATOR_HOST": emulator.healthcare_url,
            "STORAGE_EMULATOR_HOST": emulator.storage_url,
            "DICOM_TRANSFER_STATE_DIR": str(journal_dir),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        },
    )
    cli.run("stack", "init", stack)
    result = DicomStack(cli, emulator, journal_dir)
    result.configure(store=emulator.store_name, gcsUri=emulator.source_uri)
    return result


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Polls ``condition`` every 0.1 s; fails naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)
