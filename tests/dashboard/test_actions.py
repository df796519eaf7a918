"""Promotion and rollback from the dashboard: who may, with what reason, and what is published."""

from __future__ import annotations

import pytest

from dashboard.actions import ModelActions, ReasonRequiredError
from dashboard.audit import AuditLog
from dashboard.auth import Access, AccessDeniedError, User
from retrain.publisher import UpdatePublisher
from retrain.registry import Registry
from streams.codec import Decoder
from streams.errors import RegistryError
from streams.events import ModelUpdate
from streams.producer import Producer
from streams.topics import Topic
from tests.dashboard.conftest import NOW
from tests.dashboard.seed import CHURN, seed_retraining
from tests.retrain.helpers import tamper
from tests.streams.kafka_helpers import read_all


@pytest.fixture
def deployment_and_actions(memory_broker, deployment_factory, database, tmp_path):
    seed_retraining(database, NOW, artifacts=tmp_path / "artifacts")
    dep = deployment_factory(memory_broker, partitions=1)
    registry = Registry(database)
    producer = Producer(dep.kafka)
    publisher = UpdatePublisher(registry, producer, dep.names(Topic.MODEL_UPDATES))
    actions = ModelActions(registry, AuditLog(database), Access(open_viewing=True),
                           lambda: publisher)
    yield dep, registry, actions
    producer.close()


def _updates(dep, expect):
    messages = read_all(dep.broker.bootstrap, dep.names(Topic.MODEL_UPDATES), expect=expect,
                        timeout_s=10 if expect else 2)
    decoder = Decoder(ModelUpdate, max_bytes=1_000_000)
    return [decoder.decode(m.value) for m in messages]


def test_an_unsigned_visitor_cannot_promote_or_roll_back(deployment_and_actions, database):
    dep, registry, actions = deployment_and_actions
    with pytest.raises(AccessDeniedError):
        actions.promote(None, CHURN, 4, "because")
    with pytest.raises(AccessDeniedError):
        actions.rollback(None, CHURN, "because")
    assert registry.champion(CHURN).version == 2
    assert _updates(dep, 0) == []
    refused = AuditLog(database).recent()
    assert [(e.actor, e.action, e.reason) for e in refused] == [
        ("anonymous", "refused", "roll back without signing in"),
        ("anonymous", "refused", "promote without signing in"),
    ]


@pytest.mark.parametrize("reason", ["", "   \n"])
def test_a_reason_is_required(deployment_and_actions, reason):
    dep, registry, actions = deployment_and_actions
    with pytest.raises(ReasonRequiredError):
        actions.promote(User("alice"), CHURN, 4, reason)
    with pytest.raises(ReasonRequiredError):
        actions.rollback(User("alice"), CHURN, reason)
    assert registry.champion(CHURN).version == 2


def test_promote_and_roll_back_are_published_and_audited(deployment_and_actions, database):
    dep, registry, actions = deployment_and_actions
    alice = User("alice")
    promoted = actions.promote(alice, CHURN, 4, "  fresher data  ")
    assert promoted.published
    assert registry.champion(CHURN).version == 4
    back = actions.rollback(alice, CHURN, "support complaints")
    assert (back.event.version, back.event.from_version) == (2, 4)
    assert registry.champion(CHURN).version == 2
    events = _updates(dep, 2)
    assert [(e.type, e.version, e.actor, e.reason) for e in events] == [
        ("model_promoted", 4, "alice", "fresher data"),
        ("model_rolled_back", 2, "alice", "support complaints"),
    ]
    audit = [(e.action, e.target, e.reason) for e in AuditLog(database).recent()]
    assert audit == [("rollback", "2", "support complaints"), ("promote", "4", "fresher data")]


def test_a_refused_change_is_audited_and_reported(deployment_and_actions, database):
    dep, registry, actions = deployment_and_actions
    with pytest.raises(RegistryError, match="already the champion"):
        actions.promote(User("alice"), CHURN, 2, "again")
    (entry,) = AuditLog(database).recent()
    assert (entry.action, entry.target) == ("promote_failed", "2")
    assert "already the champion" in entry.detail["error"]


def test_a_tampered_artifact_is_refused_before_the_registry_changes(
    deployment_and_actions, database
):
    dep, registry, actions = deployment_and_actions
    tamper(registry.version(CHURN, 4).artifact_uri)
    tamper(registry.version(CHURN, 1).artifact_uri)
    versions, audit = registry.versions(CHURN), registry.audit(CHURN)
    alice = User("alice")

    with pytest.raises(RegistryError, match="churn v4 cannot become the champion: its "
                       "artifact failed verification"):
        actions.promote(alice, CHURN, 4, "fresher data")
    with pytest.raises(RegistryError, match="churn v1 cannot become the champion"):
        actions.rollback(alice, CHURN, "support complaints")

    assert (registry.versions(CHURN), registry.audit(CHURN)) == (versions, audit)
    assert registry.champion(CHURN).version == 2
    assert _updates(dep, 0) == []
    attempts = AuditLog(database).recent()
    assert [(e.action, e.target) for e in attempts] == [
        ("rollback_failed", None), ("promote_failed", "4")]
    assert all("does not match its sha256" in e.detail["error"] for e in attempts)
