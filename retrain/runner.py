"""One retraining run, start to finish: data, training, champion vs challenger, decision.

:class:`Retrainer` is what every trigger (a schedule, a ``RetrainRequested``, a person)
ends up calling. A run

1. claims the model (a second run of the same model at the same time is recorded as skipped),
2. builds the dataset from the stored labelled examples (too few: the run fails),
   and, on a drift request, promotes an archived version again when it beats the champion on
   the held-out slice, and stops there (:mod:`retrain.reuse`),
3. chooses where the weights begin (fine-tuned from the champion or a checkpoint, or from
   scratch: :mod:`retrain.start`), allocates the next version as a candidate and lets the
   trainer write its artifact; a run from scratch that is not a refresh may train a pool of
   candidates instead (``retrain.search.trials``, :mod:`retrain.search`), and the best on
   validation becomes the version (a candidate that crashes is recorded and the others go on),
4. reloads the artifact the way serving will, scores it and the champion on the same held-out
   slice, and decides,
5. promotes it (one transaction, then ``on_change`` publishes) or records it as rejected.

Any exception on the way (a trainer bug, NaN losses, out of memory, a corrupt artifact) marks
the version and the run failed, with the error and the run's log; the champion is only ever
touched by the promotion in step 5, so a failed run leaves it as it was.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import math
import shutil
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from retrain.concept import Concept, Scored, concept_start, latest_since
from retrain.dataset import Dataset, DatasetPlan, Example, Split, build_dataset, infer_task
from retrain.decision import Decision, Evaluation, RunScores, decide, promotion_metric
from retrain.registry import Registry, VersionInfo
from retrain.reuse import Paired, candidates, pick
from retrain.runs import RunStore
from retrain.scoring import HoldoutScore, score
from retrain.search import Outcome, Plan, Searcher
from retrain.space import Candidate, settings_candidate
from retrain.start import Start, champion_predates, checkpoint_folder, choose_start, start_from
from retrain.trainer import EpochReport, Trainer, TrainingJob
from streams.artifacts import Artifact, artifact_path, load_artifact
from streams.clock import Clock, utc_now
from streams.errors import ArtifactError, DriftloopError, RegistryError, SchemaError, TrainingError
from streams.events import ModelPromoted
from streams.lineage import Lineage, Origin, TriggerLineage
from streams.nn import pick_device
from streams.scores import Task, label_key
from streams.settings import RetrainSettings
from streams.statuses import RequestStatus, RunStatus, VersionStatus
from streams.store import EventStore, ExampleRow

log = logging.getLogger(__name__)

ACTOR = "driftloop"


@dataclass(frozen=True)
class Trigger:
    """Why a run happens: ``request`` (with the request's reasons), ``schedule`` or ``manual``."""

    kind: str
    request_id: str | None = None
    reasons: tuple[str, ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def lineage(self) -> TriggerLineage:
        return TriggerLineage(kind=self.kind, request_id=self.request_id, reasons=self.reasons,
                              evidence=dict(self.evidence))


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    status: RunStatus
    decision: str | None = None
    version: int | None = None
    reason: str = ""
    event: ModelPromoted | None = None


class Journal:
    """The log of one run, kept with the run in the database."""

    def __init__(self, clock: Clock) -> None:
        self._now = clock
        self._lines: list[str] = []

    def write(self, message: str) -> None:
        self._lines.append(f"{self._now().isoformat(timespec='seconds')} {message}")
        log.debug(message)

    def epoch(self, report: EpochReport) -> None:
        self.write(f"epoch {report.epoch}/{report.epochs} train_loss={report.train_loss:.5f} "
                   f"val_loss={report.val_loss:.5f} best={report.best_epoch}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def code_version() -> str:
    """driftloop's package version, plus the git commit when running from a checkout."""
    try:
        version = importlib.metadata.version("driftloop")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    git = Path(__file__).resolve().parents[1] / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            head = (git / head[5:]).read_text().strip()
        return f"{version}+{head[:12]}"
    except OSError:
        return version


def examples_of(rows: list[ExampleRow]) -> list[Example]:
    return [Example(r.request_id, r.features, r.label, r.prediction_timestamp, r.label_source,
                    version=r.model_version, predicted=r.predicted, id=r.id)
            for r in rows]


#: Triggers whose runs date a drift in the champion's errors (others inherit the concept).
DETECTING_TRIGGERS = frozenset({"request"})
#: Triggers whose runs first try to promote an archived version again (see :mod:`retrain.reuse`).
REUSING_TRIGGERS = frozenset({"request"})
#: Triggers whose runs never search a challenger pool: a refresh adjusts the champion.
UNSEARCHED_TRIGGERS = frozenset({"refresh"})
#: Most examples the champion is scored on to date a drift.
ERROR_STREAM_LIMIT = 20_000


def _error(predicted: Any, label: Any, task: Task) -> float | None:
    if predicted is None or label is None:
        return None
    if task == "classification":
        return float(label_key(predicted) != label_key(label))
    try:
        return abs(float(predicted) - float(label))
    except (TypeError, ValueError):
        return None


Defer = Callable[[str, str, float], object]
"""Queue a request's run again: (event id, model, seconds from now)."""


class Retrainer:
    """Runs retraining for any model; safe to call from several threads at once."""

    def __init__(
        self,
        settings: RetrainSettings,
        *,
        artifacts: Path,
        store: EventStore,
        registry: Registry,
        runs: RunStore,
        trainer: Trainer,
        trainer_name: str,
        on_change: Callable[[], object] = lambda: None,
        clock: Clock = utc_now,
        stop: threading.Event | None = None,
        version_of_code: str | None = None,
        defer: Defer | None = None,
        search: Searcher | None = None,
    ) -> None:
        self.settings = settings
        self.artifacts = artifacts
        self.store = store
        self.registry = registry
        self.runs = runs
        self.trainer = trainer
        self.trainer_name = trainer_name
        self._on_change = on_change
        self._now = clock
        self._stop = stop or threading.Event()
        self._code_version = version_of_code or code_version()
        self._plan = DatasetPlan.from_settings(settings)
        self._defer = defer
        self._search = search

    def run_request(self, event_id: str) -> RunOutcome | None:
        """Serve one stored RetrainRequested, unless it was already claimed (then None).

        When the drift it reports is dated but fewer than ``min_examples`` labelled examples
        have arrived since, the request goes back to pending and ``defer`` queues it again
        (also None), for at most ``drift_wait_s`` after it was made. So it does while another
        run of the model (a refresh) is in progress, instead of being skipped.
        """
        request = self.runs.claim_request(event_id)
        if request is None:
            log.info("retrain request already handled", extra={"request": event_id})
            return None
        trigger = Trigger("request", event_id, request.reasons, request.evidence)
        if self._defer is not None and self.runs.running(request.model) is not None:
            # Another run (a refresh, a follow-up) holds the model: this one comes next.
            self.runs.release_request(event_id)
            self._defer(event_id, request.model, self.settings.drift_retry_s)
            return None
        examples = self.examples(request.model)
        if self._defer is not None and self._waits(request.model, trigger, examples,
                                                   request.requested_at):
            self.runs.release_request(event_id)
            self._defer(event_id, request.model, self.settings.drift_retry_s)
            return None
        outcome = self.run(request.model, trigger, examples=examples)
        self.runs.finish_request(event_id, status=RequestStatus.after(outcome.status),
                                 run_id=outcome.run_id)
        return outcome

    def examples(self, model: str) -> list[Example]:
        """The newest ``max_examples`` stored labelled examples of ``model``, oldest first."""
        return examples_of(self.store.examples(model, limit=self.settings.max_examples))

    def concept(self, model: str, trigger: Trigger, examples: list[Example]) -> Concept:
        """Where the current concept of ``model`` starts (see :mod:`retrain.concept`)."""
        champion = self.registry.champion(model)
        if champion is None:
            return Concept(None, "none")
        inherited = latest_since(v.lineage for v in self.registry.versions(model))
        labelled = sorted((e for e in examples if e.label is not None),
                          key=lambda e: (e.timestamp, e.request_id))
        detect = trigger.kind in DETECTING_TRIGGERS and bool(labelled)
        stream: list[Scored] = []
        if detect:
            task = infer_task([e.label for e in labelled]) if self._plan.task == "auto" \
                else self._plan.task
            stream = self._error_stream(champion, labelled, task)
        return concept_start(stream, inherited=inherited, evidence=trigger.evidence,
                             detect=detect, z_min=self.settings.change_point_z)

    def _error_stream(self, champion: VersionInfo, labelled: list[Example],
                      task: Task) -> list[Scored]:
        """The champion's errors on the examples after the data it learnt from (scored
        again from its artifact; the predictions it served itself if that fails)."""
        until = champion.lineage.learnt_until
        after = [e for e in labelled if until is None or e.timestamp > until]
        after = after[-ERROR_STREAM_LIMIT:]
        predicted: list[Any] | None = None
        if champion.artifact_uri is not None and after:
            try:
                artifact = load_artifact(champion.artifact_uri, expected_sha256=champion.sha256)
                predicted = score(artifact, Split(tuple(after)), pick_device("cpu")).predictions
            except (ArtifactError, SchemaError) as exc:
                log.info("champion not re-scored for dating the drift", extra={"error": str(exc)})
        if predicted is None:
            after = [e for e in after if e.version == champion.version]
            predicted = [e.predicted for e in after]
        stream = []
        for example, guess in zip(after, predicted, strict=True):
            error = _error(guess, example.label, task)
            if error is not None:
                stream.append(Scored(example.timestamp, example.id, error))
        return stream

    def _waits(self, model: str, trigger: Trigger, examples: list[Example],
               requested_at: datetime) -> bool:
        """Whether a drift-triggered run should wait for more labels of the new concept."""
        concept = self.concept(model, trigger, examples)
        if concept.since is None or concept.source != "change_point":
            return False
        since = concept.since
        fresh = sum(1 for e in examples if e.label is not None and e.timestamp >= since)
        if fresh >= self.settings.min_examples:
            return False
        waited = (self._now() - requested_at).total_seconds()
        if waited > self.settings.drift_wait_s:
            log.warning("gave up waiting for labels after the drift",
                        extra={"model": model, "request": trigger.request_id, "fresh": fresh})
            return False
        log.info("waiting for labels after the drift", extra={
            "model": model, "request": trigger.request_id, "fresh": fresh,
            "needed": self.settings.min_examples, "since": since.isoformat()})
        return True

    def run(self, model: str, trigger: Trigger, *,
            examples: list[Example] | None = None) -> RunOutcome:
        start = self.runs.start(model, trigger.kind, trigger.request_id)
        if start.skipped is not None:
            log.warning("retraining skipped", extra={"model": model, "reason": start.skipped})
            return RunOutcome(start.run_id, RunStatus.SKIPPED, reason=start.skipped)
        journal = Journal(self._now)
        journal.write(f"run {start.run_id} of {model} ({trigger.kind}"
                      f"{': ' + ', '.join(trigger.reasons) if trigger.reasons else ''})")
        allocated: list[int] = []
        try:
            return self._run(model, trigger, start.run_id, journal, allocated, examples)
        except Exception as exc:  # every failure is recorded; the champion stays as it was
            version = allocated[0] if allocated else None
            error = f"{type(exc).__name__}: {exc}"
            journal.write(f"failed: {error}")
            if not isinstance(exc, DriftloopError):
                journal.write(traceback.format_exc())
            if (version is not None
                    and self.registry.version(model, version).status == VersionStatus.CANDIDATE):
                self.registry.fail(model, version, note=error)
            self.runs.finish(start.run_id, status=RunStatus.FAILED, version=version,
                             device=self.trainer.device, error=error, log=journal.text())
            log.warning("retraining failed", extra={"model": model, "error": error})
            return RunOutcome(start.run_id, RunStatus.FAILED, version=version, reason=error)

    def _run(
        self, model: str, trigger: Trigger, run_id: int, journal: Journal, allocated: list[int],
        examples: list[Example] | None,
    ) -> RunOutcome:
        rows = examples if examples is not None else self.examples(model)
        concept = self.concept(model, trigger, rows)
        dataset = build_dataset(model, rows, self._plan, since=concept.since)
        if concept.since is not None:
            how = (f"z {concept.z:.1f}, error {concept.error_before:.3f} -> "
                   f"{concept.error_after:.3f}" if concept.source == "change_point"
                   else "from the champion's lineage")
            use = ("training on them" if dataset.since_used
                   else f"too few (< {self._plan.min_examples}), using the usual split")
            journal.write(f"current concept since {concept.since.isoformat()} ({how}): "
                          f"{dataset.since_examples} examples, {use}")
        journal.write(
            f"{len(rows)} labelled examples: train {len(dataset.train)} (older "
            f"{dataset.older_sampled}), validation {len(dataset.validation)}, holdout "
            f"{len(dataset.holdout)}; task {dataset.task}"
        )
        self.registry.ensure_model(model, dataset.task)
        champion = self.registry.champion(model)
        reused = self._reuse(model, trigger, run_id, dataset, champion, journal)
        if reused is not None:
            return reused
        data = dataset.lineage()
        if data.concept is not None:
            data = data.model_copy(update={
                "concept": data.concept.model_copy(update={"found_by": concept.finding()})})
        lineage = Lineage(
            data=data, trigger=trigger.lineage(),
            parent_version=champion.version if champion is not None else None,
            code_version=self._code_version, run_id=run_id,
        )
        start, origin = self._start(model, trigger, concept, dataset, champion)
        journal.write(f"start: {origin.describe()}")
        version = self.registry.create_version(
            model, trainer=self.trainer_name, hyperparameters=self.trainer.hyperparameters(),
            code_version=self._code_version, run_id=run_id,
            lineage=lineage.model_copy(update={"origin": origin}),
            parent_version=champion.version if champion is not None else None,
        )
        allocated.append(version)
        journal.write(f"training {model} v{version} with {self.trainer_name} on "
                      f"{self.trainer.device}")
        # A trainer that ignores the start copies this origin: it trained from scratch.
        told = origin.fell_back(f"{self.trainer_name} did not fine-tune") if start else origin
        job = TrainingJob(dataset, version, artifact_path(self.artifacts, model, version),
                          lineage.model_copy(update={"origin": told}), progress=journal.epoch,
                          should_stop=self._stop.is_set, start=start)
        hyperparameters, outcome = None, None
        searcher = self._searcher(trigger, start)
        if searcher is not None:
            written, outcome, best = self._fit_pool(searcher, run_id, job, journal)
            hyperparameters = {**self.trainer.hyperparameters(), **best.hyperparameters()}
        else:
            written = self.trainer.fit(job)
        artifact = load_artifact(written.path, expected_sha256=written.sha256)
        recorded_lineage = artifact.manifest.lineage
        if outcome is not None:
            recorded_lineage = recorded_lineage.model_copy(update={"search": outcome.lineage()})
        recorded = recorded_lineage.origin
        if recorded != origin:
            journal.write("trained: " + (recorded.describe() if recorded is not None
                                         else "the trainer recorded no origin"))
        self.registry.attach_artifact(
            model, version, artifact_uri=artifact.uri, sha256=artifact.sha256,
            metrics=artifact.manifest.metrics, lineage=recorded_lineage,
            hyperparameters=hyperparameters,
        )
        journal.write(f"artifact {artifact.uri} sha256 {artifact.sha256}")
        decision = self._decide(dataset, artifact, champion, journal)
        journal.write(("promote: " if decision.promote else "reject: ") + decision.reason)
        metrics: RunScores = {"validation": dict(artifact.manifest.metrics),
                              "holdout": decision.record()}
        event = None
        if decision.promote:
            event = self.registry.promote(
                model, version, actor=ACTOR, reason=f"{trigger.kind}: {decision.reason}",
                evaluation=decision.record(),
            )
            self._publish(journal)
        else:
            self.registry.reject(model, version, evaluation=decision.record(),
                                 note=decision.reason)
        verdict = "promoted" if decision.promote else "rejected"
        self.runs.finish(run_id, status=RunStatus.SUCCEEDED, decision=verdict, version=version,
                         device=self.trainer.device, metrics=metrics, log=journal.text())
        log.info("retraining finished", extra={"model": model, "version": version,
                                                "decision": verdict})
        return RunOutcome(run_id, RunStatus.SUCCEEDED, verdict, version, decision.reason, event)

    def _searcher(self, trigger: Trigger, start: Start | None) -> Searcher | None:
        """The search this run trains a pool of candidates with (None: one candidate, also
        when this Retrainer was built without a searcher)."""
        if (self.settings.search.trials > 1 and start is None
                and trigger.kind not in UNSEARCHED_TRIGGERS):
            return self._search
        return None

    def _fit_pool(self, searcher: Searcher, run_id: int, job: TrainingJob, journal: Journal,
                  ) -> tuple[Artifact, Outcome, Candidate]:
        """Train the candidates of a search next to ``job.path``; move the best there.

        Raises TrainingError when every candidate failed or the process is stopping."""
        data = job.dataset
        metric = promotion_metric(data.task, self.settings.promotion_metric)
        pool = job.path.with_name(f"{job.path.name}.pool")
        shutil.rmtree(pool, ignore_errors=True)
        plan = Plan(model=data.model, run_id=run_id, metric=metric,
                    trials=self.settings.search.trials, timeout_s=self.settings.search.timeout_s,
                    seed=self.settings.seed, train_rows=len(data.train),
                    first=settings_candidate(self.settings))
        journal.write(f"search: study {plan.study}, up to {plan.trials} candidates in "
                      f"{plan.timeout_s:g} s, ranked by validation {metric}")

        def fit(candidate: Candidate, number: int) -> float:
            trial = dataclasses.replace(
                job, dataset=candidate.data(data), path=pool / f"trial-{number}",
                hyperparameters=candidate.hyperparameters(), progress=None)
            try:
                written = self.trainer.fit(trial)
            except Exception as exc:
                journal.write(f"trial {number} failed: {type(exc).__name__}: {exc}")
                raise
            value = written.manifest.metrics.get(metric)
            if value is None or not math.isfinite(value):
                journal.write(f"trial {number} failed: validation {metric} is {value}")
                raise TrainingError(f"validation {metric} is {value}")
            journal.write(f"trial {number}: validation {metric} {value:.4g} with "
                          f"{candidate.hyperparameters()}")
            return value

        try:
            outcome = searcher.search(plan, fit, self._stop.is_set)
            journal.write(outcome.describe())
            if self._stop.is_set():
                raise TrainingError("stopped during the search")
            best = outcome.best
            if best is None:
                first = outcome.errors[0] if outcome.errors else "no trial ran"
                raise TrainingError(f"every candidate of study {outcome.study} failed ({first})")
            shutil.rmtree(job.path, ignore_errors=True)
            (pool / f"trial-{outcome.best_trial}").rename(job.path)
        finally:
            shutil.rmtree(pool, ignore_errors=True)
        log.info("challenger pool searched", extra={
            "model": data.model, "study": outcome.study, "trials": outcome.trials,
            "failed": outcome.failed, "best": best.hyperparameters()})
        return load_artifact(job.path), outcome, best

    def _reuse(
        self, model: str, trigger: Trigger, run_id: int, dataset: Dataset,
        champion: VersionInfo | None, journal: Journal,
    ) -> RunOutcome | None:
        """Promote the archived version that beats the champion on the holdout (the newest
        examples, since the drift when the run dated it), before any training (see
        :mod:`retrain.reuse`); None when none does: the run trains."""
        if trigger.kind not in REUSING_TRIGGERS or champion is None:
            return None
        archived = candidates(self.registry.versions(model), self.settings.reuse_candidates)
        if not archived:
            return None
        device = pick_device(self.settings.device)
        metric = promotion_metric(dataset.task, self.settings.promotion_metric)
        theirs, error = self._score_version(champion, dataset, metric, device)
        if theirs is None:
            journal.write(f"reuse: not tried, the champion cannot be scored ({error})")
            return None
        journal.write(f"reuse: on the holdout of {len(dataset.holdout)}, champion "
                      f"v{champion.version}: {dict(theirs.evaluation.metrics)}")
        truth = dataset.holdout.labels
        scored = []
        for version in archived:
            mine, error = self._score_version(version, dataset, metric, device)
            if mine is None:
                journal.write(f"reuse: archived v{version.version}: {error}")
                continue
            paired = Paired.of(dataset.task, truth, mine.predictions, theirs.predictions)
            journal.write(f"reuse: archived v{version.version}: {dict(mine.evaluation.metrics)}, "
                          f"{paired.describe()}")
            scored.append((version.version, mine.evaluation, paired))
        found = pick(scored, theirs.evaluation, task=dataset.task, metric=metric,
                     margin=self.settings.promotion_margin,
                     confidence=self.settings.reuse_confidence)
        if found is None:
            journal.write("reuse: no archived version beats the champion; training")
            return None
        try:
            event = self.registry.promote(model, found.version, actor=ACTOR,
                                          reason=f"{trigger.kind}: {found.reason()}")
        except RegistryError as exc:  # refused before anything changed: train as usual
            journal.write(f"reuse: v{found.version} cannot be promoted ({exc}); training")
            return None
        journal.write(found.reason())
        self._publish(journal)
        self.runs.finish(run_id, status=RunStatus.SUCCEEDED, decision="reused",
                         version=found.version, metrics={"holdout": found.decision.record()},
                         log=journal.text())
        log.info("reused an archived version", extra={"model": model,
                                                       "version": found.version})
        return RunOutcome(run_id, RunStatus.SUCCEEDED, "reused", found.version, found.reason(),
                          event)

    def _start(
        self, model: str, trigger: Trigger, concept: Concept, dataset: Dataset,
        champion: VersionInfo | None,
    ) -> tuple[Start | None, Origin]:
        """Where this run's weights begin, and the origin its version records (a planned
        fine-tune whose artifact does not load or fit the data falls back, saying why)."""
        choice = choose_start(
            self.settings.fine_tune, trigger.kind,
            dated_drift=concept.source == "change_point",
            champion_predates=champion is not None
            and champion_predates(champion.lineage, concept.since),
        )
        fresh = Origin(mode="fresh", reason=choice.reason)
        if not choice.fine_tune:
            return None, fresh
        checkpoint = self.settings.checkpoints.get(model)
        if checkpoint is not None:
            folder = checkpoint_folder(checkpoint)
            origin = Origin(mode="fine-tuned", reason=choice.reason,
                            checkpoint=folder.resolve().as_uri())
            location: str | Path = folder
            expected = None
        elif champion is not None and champion.artifact_uri is not None:
            origin = Origin(mode="fine-tuned", reason=choice.reason,
                            parent_version=champion.version, parent_sha256=champion.sha256)
            location, expected = champion.artifact_uri, champion.sha256
        else:
            return None, fresh.model_copy(update={"fallback": "there is nothing to start from"})
        try:
            artifact = load_artifact(location, expected_sha256=expected)
        except ArtifactError as exc:
            log.warning("fine-tuning falls back to training from scratch",
                        extra={"model": model, "error": str(exc)})
            return None, origin.fell_back(f"its artifact does not load: {exc}")
        start, origin = start_from(artifact, dataset,
                                   origin.model_copy(update={"parent_sha256": artifact.sha256}))
        if start is None:
            log.warning("fine-tuning falls back to training from scratch",
                        extra={"model": model, "error": origin.fallback})
        return start, origin

    def _decide(
        self, dataset: Dataset, artifact: Artifact, champion: VersionInfo | None,
        journal: Journal,
    ) -> Decision:
        device = pick_device(self.settings.device)
        metric = promotion_metric(dataset.task, self.settings.promotion_metric)
        challenger = score(artifact, dataset.holdout, device).evaluation
        if challenger.finite and metric not in challenger.metrics:
            raise TrainingError(f"promotion metric {metric!r} does not apply to {dataset.task}")
        journal.write(f"challenger on holdout: {dict(challenger.metrics)}")
        theirs: Evaluation | None = None
        error: str | None = None
        if champion is not None:
            theirs, error = self._score_champion(champion, dataset, metric, device)
            journal.write(f"champion v{champion.version} on holdout: "
                          f"{dict(theirs.metrics) if theirs else error}")
        return decide(challenger, theirs, task=dataset.task, metric=metric,
                      margin=self.settings.promotion_margin, champion_error=error)

    def _score_champion(
        self, champion: VersionInfo, dataset: Dataset, metric: str, device: Any
    ) -> tuple[Evaluation | None, str | None]:
        scored, error = self._score_version(champion, dataset, metric, device)
        return (scored.evaluation if scored is not None else None), error

    def _score_version(
        self, version: VersionInfo, dataset: Dataset, metric: str, device: Any
    ) -> tuple[HoldoutScore | None, str | None]:
        """``version`` on the holdout, or why it cannot be judged there."""
        if version.artifact_uri is None:
            return None, "it has no artifact"
        try:
            artifact = load_artifact(version.artifact_uri, expected_sha256=version.sha256)
            if artifact.manifest.task != dataset.task:
                return None, f"it is a {artifact.manifest.task} model"
            scored = score(artifact, dataset.holdout, device)
        except (ArtifactError, SchemaError) as exc:
            return None, str(exc)
        problems = scored.evaluation.problems(dataset.task)
        if problems or metric not in scored.evaluation.metrics:
            return None, "; ".join(problems) or f"no {metric}"
        return scored, None

    def _publish(self, journal: Journal) -> None:
        try:
            self._on_change()
        except DriftloopError as exc:  # the outbox keeps the event; it is re-sent later
            journal.write(f"publishing deferred: {exc}")
            log.warning("could not publish a model update yet", extra={"error": str(exc)})
