"""Methods the real Cloud Healthcare API has and the emulator does not: 501 UNIMPLEMENTED.

A request for one of them answers 501 ``UNIMPLEMENTED`` naming the method, so a client
can tell "not emulated" from "not found". Paths not in the API stay 404.

Source: the discovery documents bundled with google-api-python-client 2.202.0
(``healthcare`` v1 revision 20261013, v1beta1 revision 20260924): every method (HTTP
method and ``flatPath``) the emulator does not serve.
``tests/emulator/healthcare/test_healthcare_gaps.py`` derives the list from those documents
and checks that this table covers every method the emulator does not serve, and names only
real ones. The table is the tab-separated
file ``not_emulated.tsv`` beside this module (regenerate it when the discovery documents or
the served routes change).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from dicom_transfer_emulator.errors import ApiException
from dicom_transfer_emulator.server.http import Request, Response
from dicom_transfer_emulator.server.routing import Route


@dataclass(frozen=True)
class NotEmulated:
    """One real method the emulator does not serve.

    Attributes:
        http_method: e.g. ``POST``.
        versions: API versions that have it (``v1``, ``v1beta1``).
        path: ``flatPath`` after the version with ``{}`` for each ID.
        method_id: discovery id, e.g. ``healthcare.projects.locations.datasets.deidentify``.
    """

    http_method: str
    versions: tuple[str, ...]
    path: str
    method_id: str

    def rule(self) -> str:
        """werkzeug rule of the raw request path (IDs: one segment without ``:``)."""
        parts = self.path.split("{}")
        body = parts[0] + "".join(f"<id:id{index}>{part}" for index, part in enumerate(parts[1:]))
        return "/<any(" + ", ".join(self.versions) + "):version>/" + body


def _load() -> tuple[NotEmulated, ...]:
    table = resources.files(__package__).joinpath("not_emulated.tsv").read_text("utf-8")
    rows = []
    for line in table.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        method, versions, path, method_id = line.split("\t")
        rows.append(
            NotEmulated(
                method,
                tuple(versions.split(",")),
                path,
                "healthcare.projects.locations." + method_id,
            )
        )
    return tuple(rows)


NOT_EMULATED: tuple[NotEmulated, ...] = _load()


def _handler(entry: NotEmulated) -> Callable[[Request], Response]:
    def answer(request: Request) -> Response:
        raise ApiException(
            501,
            f"{entry.method_id} ({entry.http_method} {request.params['version']}/"
            f"{entry.path.replace('{}', '*')}) is a method of the Cloud Healthcare API that "
            "the emulator does not implement.",
            "UNIMPLEMENTED",
        )

    return answer


def routes() -> list[Route]:
    """One route per not-emulated method; register them after every served route."""
    prefix = "healthcare.projects.locations."
    return [
        (e.http_method, e.rule(), _handler(e), e.method_id.removeprefix(prefix))
        for e in NOT_EMULATED
    ]


__all__ = ["NOT_EMULATED", "NotEmulated", "routes"]
