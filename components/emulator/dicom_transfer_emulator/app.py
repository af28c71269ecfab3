"""The emulator's composition root: both servers, what they serve, admin endpoints.

:class:`Emulator` builds every part once and wires them explicitly (no registry, no import
hooks):

* the Cloud Storage backend (:func:`~.storage.port.open_storage`), served by
  :class:`~.storage.json_api.StorageApi` on the Cloud Storage server (``--storage-port``);
* the Healthcare side, :class:`~.healthcare.api.HealthcareService` (state, BigQuery tables,
  operation runner), given that backend, the fault injector and the clock, served on the
  Healthcare server (``--port``) with the admin endpoints below.

Admin endpoints (Healthcare port; never faulted, not in the request log)::

    GET    /_emulator/health          {"healthcare": url, "storage": url}
    POST   /_emulator/reset           forget all state, faults and the request log
    GET    /_emulator/faults          {"faults": [{"id", "spec", "hits"}]}: see .faults
    POST   /_emulator/faults          {"spec": "POST:.*:import=503x2", "scope": "ID"}, or
                                      GET's answer
    DELETE /_emulator/faults          remove all faults; ?scope=ID: only the rules of that scope
    DELETE /_emulator/faults/{id}     remove one request-fault rule
    GET    /_emulator/requests        {"requests": [{"api","method","path","query","status",…}]}
                                      optional ?method=POST&path=REGEX&api=healthcare
    DELETE /_emulator/requests        clear the request log

In-process use (tests)::

    with run_emulator() as emu:
        emu.healthcare_url, emu.storage_url
        emu.storage.create_bucket("b", "my-project")
        emu.faults.fail_requests("POST", r":import$", 429)
        emu.faults.fail_requests(api_method="storage.objects.insert", scope="my-test")
        emu.requests.count("POST", r":import$")
        emu.healthcare.state.list_instances(store), emu.healthcare.read_table("p.d.t")
        emu.reset()
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from dicom_transfer_emulator.errors import invalid_argument, not_found
from dicom_transfer_emulator.faults import Faults
from dicom_transfer_emulator.healthcare.api import HealthcareService
from dicom_transfer_emulator.server.http import (
    DEFAULT_MAX_BODY_BYTES,
    EmulatorHTTPServer,
    Request,
    RequestLog,
    Response,
    Router,
)
from dicom_transfer_emulator.server.routing import Handler
from dicom_transfer_emulator.storage.json_api import StorageApi
from dicom_transfer_emulator.storage.port import open_storage


class Emulator:
    """The whole emulator: Healthcare server, Cloud Storage server, shared state.

    Servers bind in the constructor (so real ports are known, port 0 picks free ones) and
    serve once :meth:`start` is called; use it as a context manager or call :meth:`stop`.

    Args:
        host: Address both servers bind (loopback by default: the emulator has no auth).
        port: Healthcare API port (0 = any free port).
        storage_port: Cloud Storage JSON API port (0 = any free port).
        data_dir: Persistence directory; None keeps all state in memory.
        permission_checks: Emulate bucket IAM checks in import/export.
        propagation_delay_s: Seconds before a new bucket IAM grant takes effect.
        clock: Wall clock for timestamps and IAM propagation.
        log_stream: Where one line per request goes (None: silent).
        max_body_bytes: Largest request body accepted (larger: 413).
        faults: Fault specs applied at start (text syntax of :mod:`.faults`).

    Attributes:
        storage: The Cloud Storage backend (buckets, objects, bucket IAM).
        healthcare: The Healthcare side (``state``, ``tables``, ``runner``,
            ``read_table()``).
        faults: Request faults (both servers) and operation faults (the Healthcare side).
        requests: The log of requests served by both servers.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        storage_port: int = 0,
        data_dir: str | Path | None = None,
        permission_checks: bool = False,
        propagation_delay_s: float = 0.0,
        clock: Callable[[], float] = time.time,
        log_stream: IO[str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        faults: Iterable[str] = (),
    ) -> None:
        self._defaults = (permission_checks, propagation_delay_s)
        self._fault_specs = tuple(faults)
        data_path = Path(data_dir) if data_dir is not None else None
        if data_path is not None:
            data_path.mkdir(parents=True, exist_ok=True)
        self.storage = open_storage(data_path, clock=clock, propagation_delay_s=propagation_delay_s)
        self.faults = Faults()
        self.requests = RequestLog()
        for spec in self._fault_specs:
            self.faults.add_spec(spec)
        self.healthcare_router = Router()
        self.storage_router = Router()
        common: dict[str, Any] = {
            "faults": self.faults.requests,
            "request_log": self.requests,
            "max_body_bytes": max_body_bytes,
            "log_stream": log_stream,
        }
        self._healthcare_server = EmulatorHTTPServer(
            host, port, self.healthcare_router, api="healthcare", **common
        )
        try:
            self._storage_server = EmulatorHTTPServer(
                host, storage_port, self.storage_router, api="storage", **common
            )
        except BaseException:
            self._healthcare_server.server_close()
            raise
        self.storage_api = StorageApi(self.storage)
        self.storage_api.register_routes(self.storage_router)
        self._register_admin_routes(self.healthcare_router)
        try:
            self.healthcare = HealthcareService(
                storage=self.storage,
                faults=self.faults.operations,
                clock=clock,
                data_dir=data_path,
                healthcare_url=self._healthcare_server.url,
                permission_checks=permission_checks,
            )
            self.healthcare.register(self.healthcare_router)
        except BaseException:
            self._healthcare_server.server_close()
            self._storage_server.server_close()
            raise
        self._started = False
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def healthcare_url(self) -> str:
        """``http://host:port`` of the Healthcare API (``/v1/…``, ``/v1beta1/…``)."""
        return self._healthcare_server.url

    @property
    def storage_url(self) -> str:
        """``http://host:port`` of the Cloud Storage JSON API (``STORAGE_EMULATOR_HOST``)."""
        return self._storage_server.url

    @property
    def port(self) -> int:
        """The Healthcare server's port."""
        return self._healthcare_server.port

    @property
    def storage_port(self) -> int:
        """The Cloud Storage server's port."""
        return self._storage_server.port

    @property
    def permission_checks(self) -> bool:
        """Whether import/export check bucket IAM (settable at run time)."""
        return self.healthcare.permission_checks

    @permission_checks.setter
    def permission_checks(self, value: bool) -> None:
        self.healthcare.permission_checks = value

    @property
    def propagation_delay_s(self) -> float:
        """Seconds before a new bucket IAM grant counts (kept by the storage backend)."""
        return self.storage.propagation_delay_s

    @propagation_delay_s.setter
    def propagation_delay_s(self, value: float) -> None:
        self.storage.propagation_delay_s = value

    def endpoints(self) -> dict[str, str]:
        """Return ``{"healthcare": url, "storage": url}``."""
        return {"healthcare": self.healthcare_url, "storage": self.storage_url}

    def start(self) -> Emulator:
        """Start serving both APIs in background threads; returns self."""
        with self._lock:
            if not self._started:
                self._healthcare_server.start()
                self._storage_server.start()
                self._started = True
        return self

    def stop(self) -> None:
        """Stop both servers and the Healthcare side's background work (idempotent)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        with contextlib.suppress(Exception):
            self.healthcare.shutdown()
        self._healthcare_server.stop()
        self._storage_server.stop()

    def reset(self) -> None:
        """Forget everything: buckets, objects, Healthcare state, faults, the request log,
        pending uploads; restore the start-up permission settings and fault specs."""
        self.faults.reset()
        self.healthcare.reset()
        self.storage.reset()
        self.storage_api.reset()
        self.requests.clear()
        self.permission_checks, self.propagation_delay_s = self._defaults
        for spec in self._fault_specs:
            self.faults.add_spec(spec)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- admin endpoints ------------------------------------------------------------------

    def _register_admin_routes(self, router: Router) -> None:
        routes: list[tuple[str, str, Handler, str]] = [
            ("GET", "/_emulator/health", self._admin_health, "health"),
            ("POST", "/_emulator/reset", self._admin_reset, "reset"),
            ("GET", "/_emulator/faults", self._admin_faults, "faults.list"),
            ("POST", "/_emulator/faults", self._admin_add_faults, "faults.add"),
            ("DELETE", "/_emulator/faults", self._admin_clear_faults, "faults.clear"),
            (
                "DELETE",
                "/_emulator/faults/<int:rule_id>",
                self._admin_remove_fault,
                "faults.delete",
            ),
            ("GET", "/_emulator/requests", self._admin_requests, "requests.list"),
            ("DELETE", "/_emulator/requests", self._admin_clear_requests, "requests.clear"),
        ]
        for method, rule, handler, name in routes:
            router.add(method, rule, handler, api_method=f"emulator.{name}")

    def _admin_health(self, _request: Request) -> Response:
        return Response.json_response(self.endpoints())

    def _admin_faults(self, _request: Request) -> Response:
        return Response.json_response(self.faults.to_json())

    def _admin_reset(self, _request: Request) -> Response:
        self.reset()
        return Response.json_response({})

    def _admin_add_faults(self, request: Request) -> Response:
        self.faults.apply_json(request.json())
        return Response.json_response(self.faults.to_json())

    def _admin_clear_faults(self, request: Request) -> Response:
        scope = request.arg("scope")
        if scope is None:
            self.faults.reset()
        else:
            self.faults.remove_scope(scope)
        return Response.json_response(self.faults.to_json())

    def _admin_remove_fault(self, request: Request) -> Response:
        if not self.faults.remove(int(request.params["rule_id"])):
            raise not_found(f"No fault rule {request.params['rule_id']}.")
        return Response.json_response(self.faults.to_json())

    def _admin_requests(self, request: Request) -> Response:
        path = request.arg("path")
        if path is not None:
            try:
                re.compile(path)
            except re.error as exc:
                raise invalid_argument(f"Invalid path regex: {exc}") from None
        records = self.requests.matching(request.arg("method"), path, request.arg("api"))
        return Response.json_response({"requests": [r.to_json() for r in records]})

    def _admin_clear_requests(self, _request: Request) -> Response:
        self.requests.clear()
        return Response.json_response({})


@contextlib.contextmanager
def run_emulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    storage_port: int = 0,
    data_dir: str | Path | None = None,
    permission_checks: bool = False,
    propagation_delay_s: float = 0.0,
    clock: Callable[[], float] = time.time,
    log_stream: IO[str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    faults: Iterable[str] = (),
) -> Iterator[Emulator]:
    """Run the emulator in this process for the duration of a ``with`` block.

    Arguments are those of :class:`Emulator` (free ports by default).

    Yields:
        The running :class:`Emulator` (``healthcare_url``, ``storage_url``, ``reset()``,
        ``requests``, ``faults``, ``storage``, ``healthcare``).
    """
    emulator = Emulator(
        host=host,
        port=port,
        storage_port=storage_port,
        data_dir=data_dir,
        permission_checks=permission_checks,
        propagation_delay_s=propagation_delay_s,
        clock=clock,
        log_stream=log_stream,
        max_body_bytes=max_body_bytes,
        faults=faults,
    )
    with emulator:
        yield emulator


__all__ = ["Emulator", "run_emulator"]
