"""Training time and examples/s of the built-in MLP trainer, against a bare PyTorch loop.

    .venv/bin/python benchmarks/bench_train.py [--rows 10000 100000] [--epochs 5]
                                               [--device auto|cpu|cuda|all]

Data: River's Agrawal stream (concept 2, seeded), split as retraining splits it (time-ordered:
15% validation, 20% holdout). For each device (the CPU, and CUDA when a GPU is present) and
each size it measures, in the same run:

* baseline: a bare loop over the already-encoded training matrix (the same MLP, Adam, batch
  size and epochs; no preprocessing, validation, early stopping or artifact);
* trainer: ``MLPTrainer.fit`` end to end (fits the preprocessing, encodes the rows, trains
  with a validation pass per epoch, keeps the best weights, writes and hashes the artifact),
  with early stopping off so both run the same number of epochs;
* on the CPU also the trainer with torch's default thread count (``cpu_threads=None``), to
  show why one thread is the default for small tabular networks.

It prints seconds, training examples/s (rows x epochs / s) and each row's speed as a ratio of
the baseline's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from river.datasets import synth

from retrain.dataset import DatasetPlan, Example, build_dataset
from retrain.mlp import MLPTrainer
from retrain.trainer import TrainingJob
from streams.artifacts import Preprocessor
from streams.nn import MLP
from streams.settings import RetrainSettings

console = Console(width=max(Console().width, 100))
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _examples(n: int) -> list[Example]:
    rows = synth.Agrawal(classification_function=2, seed=7).take(n)
    return [Example(f"r{i}", dict(x), int(y), T0 + timedelta(seconds=i))
            for i, (x, y) in enumerate(rows)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _baseline(x: torch.Tensor, y: torch.Tensor, settings: RetrainSettings,
              device: torch.device) -> float:
    torch.manual_seed(settings.seed)
    model = MLP(x.shape[1], 2, hidden=settings.hidden).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = x.to(device), y.to(device)
    _sync(device)
    start = time.perf_counter()
    for _ in range(settings.epochs):
        order = torch.randperm(x.shape[0], device=device)
        for i in range(0, x.shape[0], settings.batch_size):
            idx = order[i : i + settings.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
    _sync(device)
    return time.perf_counter() - start


def _trainer(dataset: object, settings: RetrainSettings, device: torch.device) -> float:
    trainer = MLPTrainer(settings.model_copy(update={"device": str(device)}))
    with tempfile.TemporaryDirectory() as folder:
        _sync(device)
        start = time.perf_counter()
        trainer.fit(TrainingJob(dataset, 1, Path(folder) / "v1"))  # type: ignore[arg-type]
        _sync(device)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "all"], default="all")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if args.device == "cuda" and not cuda:
        parser.error("no CUDA device is present")
    devices = {"cpu": ["cpu"], "cuda": ["cuda"], "auto": ["cuda" if cuda else "cpu"],
               "all": ["cpu", *(["cuda"] if cuda else [])]}[args.device]
    console.print(f"torch {torch.__version__}; CUDA: "
                  f"{torch.cuda.get_device_name(0) if cuda else 'not present'}; "
                  f"CPU threads available to torch: {torch.get_num_threads()}")
    settings = RetrainSettings(epochs=args.epochs, patience=args.epochs + 1, older_share=0.0,
                               recent_examples=max(args.rows), min_examples=10)
    default_threads = torch.get_num_threads()

    table = Table("device", "rows", "train rows", "what", "seconds", "examples/s", "vs baseline")
    with Progress(console=console, transient=True) as progress:
        steps = len(args.rows) * sum(3 if d == "cpu" else 2 for d in devices) + len(args.rows)
        task = progress.add_task("benchmark", total=steps)
        for n in args.rows:
            progress.update(task, description=f"generating {n} Agrawal rows")
            dataset = build_dataset("bench", _examples(n), DatasetPlan.from_settings(
                settings.model_copy(update={"recent_examples": n, "max_examples": n})))
            pre = Preprocessor.fit(dataset.train.features)
            x = torch.from_numpy(pre.transform(dataset.train.features))
            y = torch.tensor(dataset.train.labels)
            progress.advance(task)
            trained = len(dataset.train) * args.epochs
            for name in devices:
                device = torch.device(name)
                cases = [("baseline", settings, 1), ("trainer", settings, 1)]
                if name == "cpu":
                    cases.append(("trainer, torch default threads",
                                  settings.model_copy(update={"cpu_threads": None}),
                                  default_threads))
                base = 0.0
                for label, config, threads in cases:
                    progress.update(task, description=f"{name} {n} rows: {label}")
                    torch.set_num_threads(threads)
                    seconds = (_baseline(x, y, config, device) if label == "baseline"
                               else _trainer(dataset, config, device))
                    base = base or seconds
                    table.add_row(name, f"{n:,}", f"{len(dataset.train):,}", label,
                                  f"{seconds:.2f}", f"{trained / seconds:,.0f}",
                                  f"{base / seconds:.2f}x")
                    progress.advance(task)
    console.print(table)
    console.print(f"{args.epochs} epochs, batch {settings.batch_size}, hidden "
                  f"{list(settings.hidden)}; baseline and trainer with 1 CPU thread.")


if __name__ == "__main__":
    main()
