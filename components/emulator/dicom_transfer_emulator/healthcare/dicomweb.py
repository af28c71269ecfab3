"""DICOMweb on the emulated Healthcare API (``…/dicomStores/{store}/dicomWeb/…``).

Served on the v1 and v1beta1 paths (methods and paths of the bundled discovery documents;
behaviour of Google's DICOM conformance statement,
https://cloud.google.com/healthcare-api/docs/dicom, and DICOM PS3.18)::

    POST   …/dicomWeb/studies[/{study}]                        STOW-RS (store instances)
    GET    …/dicomWeb/{studies|series|instances}               QIDO-RS (search, see .qido)
    GET    …/studies/{study}/{series|instances}, …/series/{series}/instances
    GET    …/studies/{study}[/series/{series}[/instances/{instance}]]         WADO-RS
    GET    …/{same}/metadata                                   DICOM JSON
    GET    …/instances/{instance}/frames/{1,2,…}               frames (multipart)
    GET    …/instances/{instance}[/frames/{n}]/rendered        JPEG or PNG
    DELETE …/studies/{study}[/series/{series}] (→ Operation), …/instances/{instance} (→ {})

Instances live in the same store as imported ones (:class:`~.healthcare.state.HealthcareState`), so
import, export and BigQuery export see what STOW-RS stored and the reverse.

Decisions (documented behaviour where known, else the emulator's choice noted here):

- STOW-RS accepts ``application/dicom`` (one instance, a Google convenience) and
  ``multipart/related; type="application/dicom"``. It answers 200 when every instance was
  stored, 202 when some failed, 409 when none was (PS3.18 §10.5.3), with a DICOM JSON body
  of ``ReferencedSOPSequence``/``FailedSOPSequence``. An instance whose SOP Instance UID is
  already stored is never overwritten; the rule shared with import is
  :class:`~.healthcare.state.AddResult`'s: the same file again (byte-identical, Google
  compares an MD5) counts as stored, so a re-upload of what is there answers 200 — referenced
  with its RetrieveURL and without a Warning Reason (the emulator's choice: Google documents
  none) — while other bytes under the same UIDs, or the UID under another study or series,
  fail. The Failure Reason Google gives those is not
  documented; the emulator's is 0x0111 (Duplicate SOP Instance, PS3.7 Annex C). An
  unreadable instance, or one outside the study of the request path, fails with 0xC000
  (Cannot understand, PS3.4 Annex B).
- A QIDO-RS search without matches answers 204 No Content, as Google's service does
  (PS3.18 §10.6.3.2 allows that or 200 with an empty array).
- Retrieval transcodes to explicit VR little endian by default and keeps the stored
  syntax for ``transfer-syntax=*`` (conformance statement, "Retrieve transaction"); any
  other ``transfer-syntax`` is written by the export transcoder
  (:mod:`dicom_transfer_emulator.dicom.transcoding`: implicit/explicit/deflated little endian,
  RLE, JPEG-LS, JPEG 2000, JPEG baseline). A syntax it has no encoder for is served only
  when the instance is stored in it, else 406 naming ``transfer-syntax=*``.
- Metadata leaves out binary values over 1 KiB (bulk data, whose retrieval is not
  emulated); rendered instances of multi-frame images show frame 1.
- ``studies.delete`` and ``series.delete`` answer an Operation that is already done
  (the real API deletes in the background); ``instances.delete`` answers ``{}``.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from dicom_transfer_emulator.dicom.dicom_json import dicom_json
from dicom_transfer_emulator.dicom.export_formats import ExportFormat, export_format
from dicom_transfer_emulator.dicom.parsing import (
    BINARY_VRS,
    DicomParseError,
    RenderError,
    parse_instance,
    read_dataset,
)
from dicom_transfer_emulator.dicom.qido import (
    Level,
    QidoError,
    needs_full_metadata,
    parse_search,
    result_row,
)
from dicom_transfer_emulator.dicom.records import InstanceRecord
from dicom_transfer_emulator.dicom.rendering import render_instance
from dicom_transfer_emulator.dicom.search_index import result_json
from dicom_transfer_emulator.errors import ApiException, invalid_argument, not_found
from dicom_transfer_emulator.healthcare.state import AddResult, HealthcareState, NotFound
from dicom_transfer_emulator.server.http import Request, Response
from dicom_transfer_emulator.server.multipart import (
    MediaType,
    MultipartError,
    build_related,
    parse_accept,
    parse_media_type,
    parse_related,
)
from dicom_transfer_emulator.server.routing import Route

DICOM_JSON = "application/dicom+json"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
#: Transfer syntaxes a retrieval may ask for (conformance statement, "Retrieve transaction").
RETRIEVE_SYNTAXES = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "*",
)
_BULK_THRESHOLD = 1024
#: Instances whose full metadata is kept for reuse (least recently used go first): a
#: viewer's working set; tens of KB each, so a 10,000-instance store stays within 300 MB.
_METADATA_CACHE_SIZE = 500
#: Instances whose search-result attributes are kept (~1 KB each; oldest go first).
_RESULT_CACHE_SIZE = 100_000
#: Failure reasons of FailedSOPSequence (see the module docstring for their sources).
DUPLICATE_SOP_INSTANCE = 0x0111
CANNOT_UNDERSTAND = 0xC000
#: Outcomes STOW-RS reports as stored: a byte-identical copy of a stored instance is
#: answered like a new one (see :class:`~.healthcare.state.AddResult`).
_STORED = (AddResult.ADDED, AddResult.DUPLICATE)

_UID = r"(?P<{}>[^/:]+)"


def _not_acceptable(accept: str | None, supported: str) -> ApiException:
    return ApiException(
        406, f"Accept {accept!r} names no supported media type; supported: {supported}."
    )


class DicomWeb:
    """The DICOMweb surface of one emulator (shares the Healthcare state).

    Args:
        state: the Healthcare state (stores and their instances).
        store_name: validated store name of a request (``projects/…/dicomStores/S``).
        new_done_operation: records an already-done Operation and returns its JSON;
            called with ``(request, dataset name, method name)``.
        server_url: ``http://host:port`` of the Healthcare server, for RetrieveURLs when the
            request's ``Host`` header has no port (dicomweb-client sends the bare host).
    """

    def __init__(
        self,
        state: HealthcareState,
        *,
        store_name: Callable[[Request], str],
        new_done_operation: Callable[[Request, str, str], dict[str, Any]],
        server_url: Callable[[], str],
    ) -> None:
        self.state = state
        self._server_url = server_url
        self._store_name = store_name
        self._new_done_operation = new_done_operation
        self._metadata: OrderedDict[tuple[str, InstanceRecord], dict[str, Any]] = OrderedDict()
        self._results: OrderedDict[tuple[str, InstanceRecord], str] = OrderedDict()
        self._lock = threading.Lock()

    def routes(self, store_rule: str) -> list[Route]:
        """The routes under ``store_rule`` (werkzeug rule of ``{v}/…/dicomStores/{store}``),
        named after ``healthcare.projects.locations.`` by their discovery ids."""
        web = store_rule + "/dicomWeb"
        study = web + "/studies/<id:study>"
        series = study + "/series/<id:series>"
        instance = series + "/instances/<id:instance>"
        frames = instance + "/frames/<id:frames>"
        ds = "datasets.dicomStores."
        return [
            ("POST", web + "/studies", self.store_instances, ds + "storeInstances"),
            ("POST", study, self.store_instances, ds + "studies.storeInstances"),
            ("GET", web + "/studies", self._search("study"), ds + "searchForStudies"),
            ("GET", web + "/series", self._search("series"), ds + "searchForSeries"),
            ("GET", web + "/instances", self._search("instance"), ds + "searchForInstances"),
            ("GET", study + "/series", self._search("series"), ds + "studies.searchForSeries"),
            (
                "GET",
                study + "/instances",
                self._search("instance"),
                ds + "studies.searchForInstances",
            ),
            (
                "GET",
                series + "/instances",
                self._search("instance"),
                ds + "studies.series.searchForInstances",
            ),
            ("GET", study, self.retrieve, ds + "studies.retrieveStudy"),
            ("GET", series, self.retrieve, ds + "studies.series.retrieveSeries"),
            ("GET", instance, self.retrieve, ds + "studies.series.instances.retrieveInstance"),
            ("GET", study + "/metadata", self.metadata, ds + "studies.retrieveMetadata"),
            ("GET", series + "/metadata", self.metadata, ds + "studies.series.retrieveMetadata"),
            (
                "GET",
                instance + "/metadata",
                self.metadata,
                ds + "studies.series.instances.retrieveMetadata",
            ),
            (
                "GET",
                instance + "/rendered",
                self.rendered,
                ds + "studies.series.instances.retrieveRendered",
            ),
            ("GET", frames, self.frames, ds + "studies.series.instances.frames.retrieveFrames"),
            (
                "GET",
                frames + "/rendered",
                self.rendered,
                ds + "studies.series.instances.frames.retrieveRendered",
            ),
            ("DELETE", study, self.delete, ds + "studies.delete"),
            ("DELETE", series, self.delete, ds + "studies.series.delete"),
            ("DELETE", instance, self.delete, ds + "studies.series.instances.delete"),
        ]

    # -- helpers -------------------------------------------------------------------------

    def _records(self, request: Request) -> tuple[str, list[InstanceRecord]]:
        """The store and the instances the path names (404 when none)."""
        store = self._store_name(request)
        p = request.params
        records = self.state.find_instances(store, p["study"], p.get("series"), p.get("instance"))
        if not records:
            raise not_found(f"{_resource_path(p)} not found in DICOM store {store}.")
        return store, records

    def instance_metadata(self, store: str, record: InstanceRecord) -> dict[str, Any]:
        """DICOM JSON (PS3.18 Annex F) of a stored instance, without large binary values.

        Raises:
            NotFound: the instance is gone.
        """
        key = (store, record)
        with self._lock:
            cached = self._metadata.get(key)
            if cached is not None:
                self._metadata.move_to_end(key)
        if cached is not None:
            return cached
        ds = read_dataset(
            self.state.read_instance(store, record.sop_instance_uid), stop_before_pixels=True
        )
        for elem in list(ds):
            value = elem.value
            if elem.VR in BINARY_VRS and isinstance(value, bytes) and len(value) > _BULK_THRESHOLD:
                del ds[elem.tag]
        metadata = dicom_json(ds)
        with self._lock:
            self._metadata[key] = metadata
            while len(self._metadata) > _METADATA_CACHE_SIZE:
                self._metadata.popitem(last=False)
        return metadata

    def result_metadata(self, store: str, record: InstanceRecord) -> dict[str, Any]:
        """DICOM JSON of the :data:`~.dicom.qido.RESULT_TAGS` of a stored instance (search results).

        Read from the instance's bytes the first time a search returns it, then kept (as
        compact JSON text), so repeated searches read no files.

        Raises:
            NotFound: the instance is gone.
        """
        key = (store, record)
        with self._lock:
            text = self._results.get(key)
        if text is None:
            data = self.state.read_instance(store, record.sop_instance_uid)
            text = result_json(read_dataset(data, stop_before_pixels=True))
            with self._lock:
                self._results[key] = text
                while len(self._results) > _RESULT_CACHE_SIZE:
                    self._results.popitem(last=False)
        metadata: dict[str, Any] = json.loads(text)
        return metadata

    def _web_base(self, request: Request) -> str:
        host = request.header("host") or ""
        origin = request.base_url if ":" in host.rsplit("]", 1)[-1] else self._server_url()
        return origin + request.path.split("/dicomWeb", 1)[0] + "/dicomWeb"

    # -- STOW-RS -------------------------------------------------------------------------

    def store_instances(self, request: Request) -> Response:
        """``storeInstances``: store DICOM instances (STOW-RS)."""
        store = self._store_name(request)
        self.state.get_store(store)
        content_type = request.header("content-type") or ""
        media = parse_media_type(content_type) if content_type else MediaType("")
        if media.type == "application/dicom":
            bodies = [request.body]
        elif media.type == "multipart/related":
            try:
                parts = parse_related(content_type, request.body)
            except MultipartError as exc:
                raise invalid_argument(str(exc)) from None
            unsupported = sorted({m.type for m, _ in parts if m.type != "application/dicom"})
            if unsupported:
                raise ApiException(
                    415,
                    f"Parts of type {', '.join(unsupported)} are not supported by the emulator; "
                    'send multipart/related; type="application/dicom".',
                )
            bodies = [data for _, data in parts]
        else:
            raise ApiException(
                415,
                f"Content-Type {content_type!r} is not supported; expected application/dicom "
                'or multipart/related; type="application/dicom".',
            )
        base = self._web_base(request)
        path_study = request.params.get("study")
        stored: list[Dataset] = []
        failed: list[Dataset] = []
        studies: set[str] = set()
        for data in bodies:
            item = Dataset()
            try:
                parsed = parse_instance(data)
            except DicomParseError:
                item.FailureReason = CANNOT_UNDERSTAND
                failed.append(item)
                continue
            item.ReferencedSOPClassUID = parsed.sop_class_uid
            item.ReferencedSOPInstanceUID = parsed.sop_instance_uid
            if path_study is not None and parsed.study_uid != path_study:
                item.FailureReason = CANNOT_UNDERSTAND
                failed.append(item)
                continue
            if self.state.add_instance(store, parsed, data) not in _STORED:
                item.FailureReason = DUPLICATE_SOP_INSTANCE
                failed.append(item)
                continue
            item.RetrieveURL = (
                f"{base}/studies/{parsed.study_uid}/series/{parsed.series_uid}"
                f"/instances/{parsed.sop_instance_uid}"
            )
            studies.add(parsed.study_uid)
            stored.append(item)
        result = Dataset()
        if len(studies) == 1:
            result.RetrieveURL = f"{base}/studies/{next(iter(studies))}"
        if failed:
            result.FailedSOPSequence = DicomSequence(failed)
        if stored:
            result.ReferencedSOPSequence = DicomSequence(stored)
        status = 200 if not failed else 202 if stored else 409
        return _dicom_json(result.to_json_dict(), status)

    # -- QIDO-RS -------------------------------------------------------------------------

    def _search(self, level: Level) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            _accept_json(request)
            store = self._store_name(request)
            self.state.get_store(store)  # a missing store is a 404 before any query error
            p = request.params
            scope = {
                keyword: p[name]
                for keyword, name in (
                    ("StudyInstanceUID", "study"),
                    ("SeriesInstanceUID", "series"),
                )
                if name in p
            }
            try:
                query = parse_search(request.query, level, scope)
            except QidoError as exc:
                raise invalid_argument(str(exc)) from None
            full = needs_full_metadata(query)
            base = self._web_base(request)
            results = []
            for hit in self.state.search_instances(store, query):
                record = hit.record
                try:
                    metadata = (
                        self.instance_metadata(store, record)
                        if full
                        else self.result_metadata(store, record)
                    )
                except NotFound:  # deleted since found
                    continue
                results.append(
                    result_row(query, hit, metadata, lambda *uids: base + _uid_path(uids))
                )
            if not results:
                # PS3.18 §10.6.3.2 allows 200 with an empty array or 204 No Content for a
                # search without matches; Google's service answers 204 (issue 17).
                return Response.empty(204)
            return _dicom_json(results)

        return handler

    # -- WADO-RS -------------------------------------------------------------------------

    def retrieve(self, request: Request) -> Response:
        """``retrieveStudy``/``retrieveSeries``/``retrieveInstance`` (multipart DICOM)."""
        store, records = self._records(request)
        single_allowed = "instance" in request.params
        accept = request.header("accept")
        choice: tuple[bool, str] | None = None
        for media in parse_accept(accept):
            part_type = media.param("type", "application/dicom") or "application/dicom"
            multipart = media.type in ("multipart/related", "*/*", "multipart/*")
            if not (multipart and part_type == "application/dicom") and not (
                single_allowed and media.type == "application/dicom"
            ):
                continue
            syntax = media.param("transfer-syntax", EXPLICIT_VR_LITTLE_ENDIAN)
            if syntax in RETRIEVE_SYNTAXES:
                choice = (multipart, syntax or EXPLICIT_VR_LITTLE_ENDIAN)
                break
        if choice is None:
            raise _not_acceptable(
                accept,
                'multipart/related; type="application/dicom"; transfer-syntax='
                + "|".join(RETRIEVE_SYNTAXES)
                + (" (or application/dicom for one instance)" if single_allowed else ""),
            )
        multipart, syntax = choice
        fmt = export_format("application/dicom", {"transfer-syntax": syntax})
        parts: list[tuple[str, bytes]] = []
        for record in records:
            data = self._render(store, record, fmt, syntax)[0]
            actual = record.transfer_syntax_uid if syntax == "*" else syntax
            parts.append((f"application/dicom; transfer-syntax={actual}", data))
        if not multipart:
            return Response(body=parts[0][1], content_type=parts[0][0])
        content_type, body = build_related(parts, "application/dicom")
        return Response(body=body, content_type=content_type)

    def _render(
        self, store: str, record: InstanceRecord, fmt: ExportFormat, asked: str
    ) -> list[bytes]:
        data = self.state.read_instance(store, record.sop_instance_uid)
        try:
            return [f.data for f in render_instance(data, fmt)]
        except RenderError as exc:
            if fmt.mime_type != "application/dicom":  # no pixel data, no decoder
                raise invalid_argument(
                    f"Instance {record.sop_instance_uid} cannot be served as {fmt.mime_type}: {exc}"
                ) from None
            raise ApiException(
                406,
                f"Instance {record.sop_instance_uid} is stored as {record.transfer_syntax_uid} "
                f"and cannot be served as transfer-syntax={asked}: {exc}. "
                "Ask for transfer-syntax=* to get it as stored.",
            ) from None

    def metadata(self, request: Request) -> Response:
        """``retrieveMetadata`` of a study, series or instance (DICOM JSON array)."""
        _accept_json(request)
        store, records = self._records(request)
        return _dicom_json([self.instance_metadata(store, r) for r in records])

    def frames(self, request: Request) -> Response:
        """``frames.retrieveFrames``: the listed frames (numbered from 1), multipart."""
        store, records = self._records(request)
        record = records[0]
        wanted = _frame_numbers(request.params["frames"], record)
        accept = request.header("accept")
        fmt: ExportFormat | None = None
        for media in parse_accept(accept):
            part_type = media.param("type", "application/octet-stream") or ""
            if media.type in ("*/*", "multipart/*") or (
                media.type == "multipart/related"
                and part_type in ("application/octet-stream", "*/*")
            ):
                syntax = media.param("transfer-syntax", EXPLICIT_VR_LITTLE_ENDIAN)
                if syntax in (EXPLICIT_VR_LITTLE_ENDIAN, "*"):
                    fmt = export_format("application/octet-stream", {"transfer-syntax": syntax})
                    break
            if media.type == "multipart/related" and part_type in ("image/jpeg", "image/png"):
                fmt = export_format(part_type)
                break
        if fmt is None:
            raise _not_acceptable(
                accept,
                'multipart/related; type="application/octet-stream"; transfer-syntax='
                f"{EXPLICIT_VR_LITTLE_ENDIAN}|*, or type image/jpeg or image/png",
            )
        rendered = self._render(store, record, fmt, fmt.transfer_syntax or "*")
        part_type = fmt.mime_type
        if fmt.mime_type == "application/octet-stream":
            syntax = fmt.transfer_syntax or record.transfer_syntax_uid
            part_type += f"; transfer-syntax={syntax}"
        content_type, body = build_related(
            [(part_type, rendered[n - 1]) for n in wanted], fmt.mime_type
        )
        return Response(body=body, content_type=content_type)

    def rendered(self, request: Request) -> Response:
        """``retrieveRendered`` of an instance (frame 1) or of one frame: JPEG or PNG."""
        store, records = self._records(request)
        record = records[0]
        frame = 1
        if "frames" in request.params:
            numbers = _frame_numbers(request.params["frames"], record)
            if len(numbers) != 1:
                raise invalid_argument("A rendered frame request names exactly one frame.")
            frame = numbers[0]
        accept = request.header("accept")
        mime: str | None = None
        for media in parse_accept(accept):
            if media.type in ("*/*", "image/*", "image/jpeg"):
                mime = "image/jpeg"  # the default (conformance statement, rendered resources)
                break
            if media.type == "image/png":
                mime = "image/png"
                break
        if mime is None:
            raise _not_acceptable(accept, "image/jpeg, image/png")
        images = self._render(store, record, export_format(mime), "")
        if frame > len(images):
            raise not_found(f"Frame {frame} not found: the instance has {len(images)} frame(s).")
        return Response(body=images[frame - 1], content_type=mime)

    # -- delete --------------------------------------------------------------------------

    def delete(self, request: Request) -> Response:
        """``studies.delete``/``series.delete`` (→ done Operation), ``instances.delete``."""
        store = self._store_name(request)
        p = request.params
        gone = self.state.delete_instances(store, p["study"], p.get("series"), p.get("instance"))
        with self._lock:
            for record in gone:
                self._metadata.pop((store, record), None)
                self._results.pop((store, record), None)
        if "instance" in p:
            return Response.json_response({})
        method = "DeleteSeries" if "series" in p else "DeleteStudy"
        dataset = store.split("/dicomStores/", 1)[0]
        return Response.json_response(self._new_done_operation(request, dataset, method))


def _frame_numbers(text: str, record: InstanceRecord) -> list[int]:
    """Frame numbers of a ``frames/{list}`` path segment (PS3.18: from 1, comma-separated)."""
    numbers: list[int] = []
    for item in text.split(","):
        if not item.strip().isdigit() or int(item) < 1:
            raise invalid_argument(
                f"Invalid frame list {text!r}: expected frame numbers from 1, comma-separated."
            )
        if int(item) > record.number_of_frames:
            raise not_found(
                f"Frame {int(item)} not found: instance {record.sop_instance_uid} has "
                f"{record.number_of_frames} frame(s)."
            )
        numbers.append(int(item))
    return numbers


def _accept_json(request: Request) -> None:
    accept = request.header("accept")
    for media in parse_accept(accept):
        if media.type in (DICOM_JSON, "application/json", "*/*", "application/*"):
            return
    raise _not_acceptable(accept, f"{DICOM_JSON}, application/json")


def _dicom_json(value: Any, status: int = 200) -> Response:
    response = Response.json_response(value, status=status)
    response.content_type = DICOM_JSON
    return response


def _uid_path(uids: tuple[str, ...]) -> str:
    names = ("studies", "series", "instances")
    return "".join(f"/{name}/{uid}" for name, uid in zip(names, uids, strict=False))


def _resource_path(params: dict[str, str]) -> str:
    uids = tuple(params[k] for k in ("study", "series", "instance") if k in params)
    return _uid_path(uids)


__all__ = ["DicomWeb"]
