"""Progress of driver stages: counted items, training totals, and no Prefect artifact outside a run."""

from __future__ import annotations

import torch

from im2flow_core.training import ClassifierTrainable, FitState, fit
from im2flow_tasks.progress import RunProgress, training_progress


def test_counted_advances_once_per_item_and_needs_no_run_outside_prefect():
    with RunProgress(3, "counting", show=False) as progress:
        assert progress._artifact is None  # `im2flow predict` runs no flow: nothing to attach to, no API call
        assert list(progress.counted("abc")) == ["a", "b", "c"]
        assert progress.done == 3


def test_training_progress_counts_every_batch_of_the_remaining_epochs():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    trainable = ClassifierTrainable(model, torch.optim.SGD(model.parameters(), lr=0.1), "rgb", torch.device("cpu"))
    batches = [{"rgb": torch.randn(4, 3, 2, 2), "label": torch.randint(0, 3, (4,))} for _ in range(5)]
    with training_progress("training", False, len(batches), max_epochs=3, epochs_done=1) as progress:
        assert progress.total == 10  # two epochs left of five batches
        state = fit(trainable, lambda epoch: batches, lambda: batches[:1], max_epochs=3, patience=10,
                    state=FitState(epoch=1), on_step=lambda _: progress.advance())  # resumed after epoch 1
    assert state.epoch == 3 and progress.done == progress.total  # one advance per batch fit trained on
