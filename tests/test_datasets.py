import numpy as np
import pandas as pd
import pytest
import torch

from twostream.datasets import FlowDataset, FrameDataset, LazyArray, Split, TwoStreamDataset, hmdb51_split
from twostream.io import InputError
from twostream.params import load_params
from twostream.transforms import IMAGENET_MEAN, IMAGENET_STD

AUGMENT = load_params("params.yaml").augment


def write_hmdb51(tmp_path, n=4, size=32):
    rng = np.random.default_rng(0)
    frames, flow = tmp_path / "frames", tmp_path / "flow"
    frames.mkdir()
    flow.mkdir()
    positions = rng.integers(0, 256, (n, 5, size, size, 3), dtype=np.uint8)
    flows = rng.integers(0, 256, (n, 8, size, size, 3), dtype=np.uint8)
    np.save(frames / "hmdb51_train_positions.npy", positions)
    np.save(flow / "hmdb51_train.npy", flows)
    manifest = pd.DataFrame({"path": [f"clap/{i}.avi" for i in range(n)], "label": [0, 1, 2, 3][:n],
                             "class": ["clap"] * n})
    manifest.to_csv(frames / "hmdb51_train.csv", index=False)
    manifest.to_csv(flow / "hmdb51_train.csv", index=False)
    return frames, flow, positions, flows


def expected_normalised(image_hwc):
    x = torch.from_numpy(image_hwc).permute(2, 0, 1).float() / 255
    return (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]


def test_flow_stack_is_24_normalised_channels_in_order(tmp_path):
    frames, flow, _, flows = write_hmdb51(tmp_path)
    dataset = FlowDataset(hmdb51_split(None, flow, "train"))
    stack, label = dataset[2]
    assert stack.shape == (24, 32, 32) and stack.dtype == torch.float32 and label == 2
    for k in range(8):
        torch.testing.assert_close(stack[3 * k:3 * k + 3], expected_normalised(flows[2, k]))


def test_frame_dataset_picks_the_position(tmp_path):
    frames, _, positions, _ = write_hmdb51(tmp_path)
    dataset = FrameDataset(hmdb51_split(frames, None, "train"), None, position="middle_last")
    image, label = dataset[1]
    torch.testing.assert_close(image, expected_normalised(positions[1, 3]))


def test_two_stream_pairs_the_same_clip(tmp_path):
    frames, flow, positions, flows = write_hmdb51(tmp_path)
    dataset = TwoStreamDataset(hmdb51_split(frames, flow, "train"), None, position="middle")
    (image, stack), label = dataset[3]
    torch.testing.assert_close(image, expected_normalised(positions[3, 2]))
    torch.testing.assert_close(stack[:3], expected_normalised(flows[3, 0]))
    assert label == 3


def test_augmentation_only_when_asked(tmp_path):
    frames, _, positions, _ = write_hmdb51(tmp_path)
    split = hmdb51_split(frames, None, "train")
    plain = FrameDataset(split, None, position="middle")
    augmented = FrameDataset(split, AUGMENT, position="middle")
    torch.manual_seed(0)
    assert torch.equal(plain[0][0], plain[0][0])
    draws = [augmented[0][0] for _ in range(4)]
    assert all(not torch.allclose(d, plain[0][0]) for d in draws)
    assert draws[0].shape == plain[0][0].shape


def test_length_mismatch_names_the_manifest(tmp_path):
    with pytest.raises(InputError, match=r"m.csv: 3 rows but flow array has 2"):
        Split({"flow": np.zeros((2, 8, 4, 4, 3), np.uint8)}, np.zeros(3), tmp_path / "m.csv")


def test_missing_array_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"hmdb51_val.npy: array not found; run `dvc repro`"):
        hmdb51_split(None, tmp_path, "val")


def test_frames_and_flow_manifests_must_list_the_same_clips(tmp_path):
    frames, flow, _, _ = write_hmdb51(tmp_path)
    other = pd.read_csv(flow / "hmdb51_train.csv")
    other.loc[0, "path"] = "clap/other.avi"
    other.to_csv(flow / "hmdb51_train.csv", index=False)
    with pytest.raises(InputError, match="list different clips"):
        hmdb51_split(frames, flow, "train")


def test_lazy_array_pickles_as_its_path(tmp_path):
    import pickle
    np.save(tmp_path / "big.npy", np.arange(100_000, dtype=np.int64))
    array = LazyArray(tmp_path / "big.npy")
    assert array[5] == 5 and len(array) == 100_000  # opened in this process
    restored = pickle.loads(pickle.dumps(array))
    assert len(pickle.dumps(array)) < 10_000  # not the 800 kB of data
    assert restored[99_999] == 99_999
