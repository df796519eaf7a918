"""Retraining: fresh labelled data in, a better champion out (and only when it is better).

Pure core
    :mod:`retrain.dataset`   time-ordered train / validation / holdout splits
    :mod:`retrain.metrics`   accuracy, F1, precision, recall; MSE, MAE
    :mod:`retrain.decision`  champion vs challenger, and the automatic-rollback verdict

Training
    :mod:`retrain.trainer`   the ``Trainer`` protocol, loading one by import path
    :mod:`retrain.mlp`       the built-in PyTorch tabular MLP (``retrain.mlp:MLPTrainer``)
    :mod:`retrain.scoring`   runs an artifact on a split the way serving does

Registry and records (SQLite / PostgreSQL, Alembic branch ``retrain``)
    :mod:`retrain.tables`    the tables; one champion per model enforced by a partial index
    :mod:`retrain.registry`  versions, promotion, rollback, audit log and its outbox
    :mod:`retrain.runs`      every run and every retrain request, claimed at most once

Process (``driftloop retrain``)
    :mod:`retrain.runner`    one run end to end
    :mod:`retrain.scheduler` APScheduler 3 with the job store in the database
    :mod:`retrain.jobs`      the module-level functions the pickled jobs call
    :mod:`retrain.publisher` sends the outbox to the model-updates topic
    :mod:`retrain.rollback`  follows DriftReports and rolls a worse champion back
    :mod:`retrain.process`   wires it all: ``run_retrain(settings)``
"""
