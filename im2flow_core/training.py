"""A small, explicit training loop shared by φ, G and the recognition streams.

Epoch-granular: after each epoch it validates, keeps the best, counts epochs without improvement
(early stopping) and hands the state to `on_epoch_end`, which the caller uses to checkpoint and
log. No file or tracking I/O happens here. Mixed precision (bfloat16 autocast) is used on CUDA.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from im2flow_core.losses import LossTerms


@dataclass
class FitState:
    """Where training stands; saved in checkpoints so a re-run continues from here."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken
    best: float = math.inf  # best validation value of the monitored metric
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the best
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form for checkpoints."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Trainable(Protocol):
    """What `fit` trains: its steps return named scalar metrics."""

    monitor: str  # validation metric to minimise

    def train_mode(self, training: bool) -> None:
        """Put the modules in train or eval mode."""
        ...

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimiser step on a batch; returns metrics of that batch."""
        ...

    def val_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Metrics of a validation batch (means over its samples)."""
        ...


def autocast(device: torch.device) -> torch.autocast:
    """bfloat16 autocast on CUDA (no loss scaling needed); a no-op context elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _mean_metrics(batches: list[tuple[int, dict[str, float]]]) -> dict[str, float]:
    total = sum(n for n, _ in batches) or 1
    keys = batches[0][1].keys() if batches else []
    return {k: sum(n * m[k] for n, m in batches) / total for k in keys}


def _batch_size(batch: dict[str, torch.Tensor]) -> int:
    return int(next(iter(batch.values())).shape[0])


def fit(trainable: Trainable, train_batches: Callable[[int], Iterable[dict[str, torch.Tensor]]],
        val_batches: Callable[[], Iterable[dict[str, torch.Tensor]]], *, max_epochs: int, patience: int,
        state: FitState | None = None,
        on_epoch_end: Callable[[FitState, dict[str, float], bool], None] | None = None,
        on_step: Callable[[int], None] | None = None) -> FitState:
    """Train until `max_epochs` or `patience` epochs without a better `trainable.monitor`.

    `train_batches(epoch)` yields the batches of one epoch (seeded by the epoch, so a resumed run
    sees the same order); `val_batches()` the validation batches. Resumes from `state`.
    """
    state = state or FitState()
    while state.epoch < max_epochs and not state.stopped_early:
        started = time.perf_counter()
        trainable.train_mode(True)
        seen: list[tuple[int, dict[str, float]]] = []
        for batch in train_batches(state.epoch):
            seen.append((_batch_size(batch), trainable.train_step(batch)))
            state.step += 1
            if on_step is not None:
                on_step(state.step)
        trainable.train_mode(False)
        with torch.no_grad():
            val = [(_batch_size(b), trainable.val_step(b)) for b in val_batches()]
        metrics = {f"train_{k}": v for k, v in _mean_metrics(seen).items()}
        metrics.update({f"val_{k}": v for k, v in _mean_metrics(val).items()})
        samples = sum(n for n, _ in seen)
        metrics["samples_per_s"] = samples / max(time.perf_counter() - started, 1e-9)
        state.epoch += 1
        monitored = metrics.get(f"val_{trainable.monitor}", metrics.get(f"train_{trainable.monitor}", math.inf))
        improved = monitored < state.best
        if improved:
            state.best, state.best_epoch, state.bad_epochs = monitored, state.epoch, 0
        else:
            state.bad_epochs += 1
            # Stopped early only if epochs were left to run: patience running out on the last one stops nothing.
            state.stopped_early = state.bad_epochs >= patience and state.epoch < max_epochs
        state.history.append({"epoch": state.epoch, **metrics})
        if on_epoch_end is not None:
            on_epoch_end(state, metrics, improved)
    return state


class ClassifierTrainable:
    """Cross-entropy training of a classifier on one input key ("flow" or "rgb")."""

    monitor = "loss"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, input_key: str,
                 device: torch.device) -> None:
        self.model, self.optimizer, self.input_key, self.device = model, optimizer, input_key, device
        self.criterion = nn.CrossEntropyLoss()

    def train_mode(self, training: bool) -> None:
        """See Trainable."""
        self.model.train(training)

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x = batch[self.input_key].to(self.device, non_blocking=True)
        y = batch["label"].to(self.device, non_blocking=True)
        with autocast(self.device):
            logits = self.model(x)
        return self.criterion(logits.float(), y), (logits.argmax(1) == y).float().mean()

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """See Trainable."""
        loss, acc = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch's stubs leave Tensor.backward untyped
        self.optimizer.step()
        return {"loss": loss.item(), "acc": acc.item()}

    def val_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """See Trainable."""
        loss, acc = self._loss(batch)
        return {"loss": loss.item(), "acc": acc.item()}


class GeneratorTrainable:
    """Training of G with the Im2Flow loss (φ frozen inside the loss)."""

    monitor = "loss"

    def __init__(self, generator: nn.Module, loss: nn.Module, optimizer: torch.optim.Optimizer,
                 device: torch.device) -> None:
        self.generator, self.loss, self.optimizer, self.device = generator, loss, optimizer, device

    def train_mode(self, training: bool) -> None:
        """See Trainable."""
        self.generator.train(training)
        self.loss.train(training)

    def _terms(self, batch: dict[str, torch.Tensor]) -> LossTerms:
        rgb = batch["rgb"].to(self.device, non_blocking=True)
        target = batch["flow"].to(self.device, non_blocking=True)
        with autocast(self.device):
            pred = self.generator(rgb)
        return self.loss(pred.float(), target)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """See Trainable."""
        terms = self._terms(batch)
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()  # type: ignore[no-untyped-call]  # torch's stubs leave Tensor.backward untyped
        self.optimizer.step()
        return {"loss": terms.total.item(), "loss_pixel": terms.pixel.item(), "loss_content": terms.content.item(),
                "loss_potential": terms.potential.item()}

    def val_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """See Trainable."""
        terms = self._terms(batch)
        return {"loss": terms.total.item(), "loss_pixel": terms.pixel.item(), "loss_content": terms.content.item(),
                "loss_potential": terms.potential.item()}
