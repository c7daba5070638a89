import torch

from im2flow_core.flow_classifier import ClassifierConfig, FlowClassifier
from im2flow_core.training import ClassifierTrainable, FitState, fit


def _setup():
    torch.manual_seed(0)
    model = FlowClassifier(ClassifierConfig(num_classes=2, base_width=4, blocks=(1, 1, 1, 1), stem="small"))
    x = torch.randn(16, 3, 8, 8)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    batches = [{"flow": x[i : i + 4], "label": y[i : i + 4]} for i in range(0, 16, 4)]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, opt, batches


def test_fit_resumes_and_continues_the_step_count():
    model, opt, batches = _setup()
    trainable = ClassifierTrainable(model, opt, "flow", torch.device("cpu"))
    seen = []
    state = fit(trainable, lambda e: batches, lambda: batches[:1], max_epochs=2, patience=10,
                on_epoch_end=lambda s, m, improved: seen.append((s.epoch, s.step)))
    assert (state.epoch, state.step) == (2, 8) and seen == [(1, 4), (2, 8)]
    restored = FitState(**state.as_dict())
    state = fit(trainable, lambda e: batches, lambda: batches[:1], max_epochs=3, patience=10, state=restored)
    assert (state.epoch, state.step) == (3, 12) and len(state.history) == 3
    assert state.history[-1]["train_loss"] < state.history[0]["train_loss"]


def test_early_stopping_counts_epochs_without_improvement():
    model, opt, batches = _setup()
    for group in opt.param_groups:
        group["lr"] = 0.0  # nothing changes: validation never improves after the first epoch
    trainable = ClassifierTrainable(model, opt, "flow", torch.device("cpu"))
    state = fit(trainable, lambda e: batches, lambda: batches, max_epochs=20, patience=3)
    assert state.stopped_early and state.epoch == 4 and state.best_epoch == 1
    # Patience running out on the last epoch stops nothing: every epoch ran
    model, opt, batches = _setup()
    for group in opt.param_groups:
        group["lr"] = 0.0
    state = fit(ClassifierTrainable(model, opt, "flow", torch.device("cpu")), lambda e: batches, lambda: batches,
                max_epochs=4, patience=3)
    assert state.epoch == 4 and state.bad_epochs == 3 and not state.stopped_early


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    from im2flow_storage.checkpoints import load_checkpoint, save_checkpoint

    model, _, batches = _setup()
    model.eval()
    save_checkpoint(str(tmp_path / "c.pt"), {"model": model.state_dict(), "state": FitState(epoch=3).as_dict()})
    other, _, _ = _setup()
    torch.manual_seed(5)
    other = FlowClassifier(model.config)
    blob = load_checkpoint(str(tmp_path / "c.pt"))
    other.load_state_dict(blob["model"])
    other.eval()
    torch.testing.assert_close(model(batches[0]["flow"]), other(batches[0]["flow"]), rtol=0, atol=0)
    assert blob["state"]["epoch"] == 3 and not list(tmp_path.glob("*.tmp"))
