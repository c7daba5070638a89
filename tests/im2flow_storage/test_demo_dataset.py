from im2flow_core.synthetic_actions import ACTIONS
from im2flow_core.video import VideoStatus, probe_video
from im2flow_storage.datasets import DatasetLayout, detect_layout, scan_dataset
from im2flow_storage.demo_dataset import write_demo_dataset


def test_demo_dataset_is_a_real_ucf101_style_tree(tmp_path):
    root = write_demo_dataset(tmp_path / "demo", seed=3, groups_per_class=3, clips_per_group=1, test_groups=1,
                              size=48, n_frames=5)
    assert detect_layout(root) is DatasetLayout.ucf101
    entries = scan_dataset(root)
    assert len(entries) == len(ACTIONS) * 3 and len({e.label for e in entries}) == len(ACTIONS)
    assert sum(e.split == "test" for e in entries) == len(ACTIONS)  # the last group of each class
    assert {e.path.rsplit(".", 1)[1] for e in entries} == {"mp4", "avi"}  # two real containers
    probe = probe_video(entries[0].path)
    assert probe.status is VideoStatus.ok and probe.n_frames == 5 and (probe.width, probe.height) == (48, 48)
    again = write_demo_dataset(tmp_path / "again", seed=3, groups_per_class=3, clips_per_group=1, test_groups=1,
                               size=48, n_frames=5)
    first, second = (sorted(p.read_bytes() for p in r.rglob("*.avi"))[0] for r in (root, again))
    assert first == second  # deterministic by seed
