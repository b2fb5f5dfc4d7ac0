import numpy as np
import pandas as pd
import pytest
import torch

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES
from twostream.datasets import (ClipArray, FlowDataset, FrameDataset, LazyArray, SeededSampler, SubsetArrays,
                                TwoStreamDataset, hmdb51_subset, hmdb51_test_clips, sample_seed, stanford40_subset)
from twostream.errors import InputError, ListError, MissingInputError
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
    labels = [0, 1, 2, 3][:n]
    manifest = pd.DataFrame({"path": [f"{HMDB51_CLASSES[k]}/{i}.avi" for i, k in enumerate(labels)],
                             "label": labels, "class": [HMDB51_CLASSES[k] for k in labels]})
    manifest.to_csv(frames / "hmdb51_train.csv", index=False)
    manifest.to_csv(flow / "hmdb51_train.csv", index=False)
    return frames, flow, positions, flows


def expected_normalised(image_hwc):
    x = torch.from_numpy(image_hwc).permute(2, 0, 1).float() / 255
    return (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]


def test_flow_stack_is_24_normalised_channels_in_order(tmp_path):
    frames, flow, _, flows = write_hmdb51(tmp_path)
    dataset = FlowDataset(hmdb51_subset(None, flow, "train"))
    stack, label = dataset[2]
    assert stack.shape == (24, 32, 32) and stack.dtype == torch.float32 and label == 2
    for k in range(8):
        torch.testing.assert_close(stack[3 * k:3 * k + 3], expected_normalised(flows[2, k]))


def test_frame_dataset_picks_the_position(tmp_path):
    frames, _, positions, _ = write_hmdb51(tmp_path)
    dataset = FrameDataset(hmdb51_subset(frames, None, "train"), None, position="middle_last")
    image, label = dataset[1]
    torch.testing.assert_close(image, expected_normalised(positions[1, 3]))


def test_two_stream_pairs_the_same_clip(tmp_path):
    frames, flow, positions, flows = write_hmdb51(tmp_path)
    dataset = TwoStreamDataset(hmdb51_subset(frames, flow, "train"), None, position="middle")
    (image, stack), label = dataset[3]
    torch.testing.assert_close(image, expected_normalised(positions[3, 2]))
    torch.testing.assert_close(stack[:3], expected_normalised(flows[3, 0]))
    assert label == 3


def test_augmentation_only_when_asked(tmp_path):
    frames, _, positions, _ = write_hmdb51(tmp_path)
    split = hmdb51_subset(frames, None, "train")
    plain = FrameDataset(split, None, position="middle")
    augmented = FrameDataset(split, AUGMENT, position="middle")
    torch.manual_seed(0)
    assert torch.equal(plain[0][0], plain[0][0])
    draws = [augmented[0][0] for _ in range(4)]
    assert all(not torch.allclose(d, plain[0][0]) for d in draws)
    assert draws[0].shape == plain[0][0].shape


def test_length_mismatch_names_the_manifest(tmp_path):
    with pytest.raises(InputError, match=r"m.csv: 3 rows but flow array has 2"):
        SubsetArrays({"flow": np.zeros((2, 8, 4, 4, 3), np.uint8)}, np.zeros(3), tmp_path / "m.csv")


def test_missing_array_says_what_to_run(tmp_path):
    with pytest.raises(MissingInputError, match=r"hmdb51_val.npy: array not found; run `dvc repro`"):
        hmdb51_subset(None, tmp_path, "val")


def test_frames_and_flow_manifests_must_list_the_same_clips(tmp_path):
    frames, flow, _, _ = write_hmdb51(tmp_path)
    other = pd.read_csv(flow / "hmdb51_train.csv")
    other.loc[0, "path"] = "clap/other.avi"  # same class and label: only the clip differs
    other.to_csv(flow / "hmdb51_train.csv", index=False)
    with pytest.raises(InputError, match="list different clips"):
        hmdb51_subset(frames, flow, "train")


def write_test_clips(tmp_path, n=3, k=4, size=32):
    """Test-clip arrays as sample_frames and flow write them: (N, K, S, S, 3) frames, (N, K, 8, S, S, 3) flow."""
    rng = np.random.default_rng(1)
    frames, flow = tmp_path / "frames", tmp_path / "flow"
    frames.mkdir(exist_ok=True)
    flow.mkdir(exist_ok=True)
    clip_frames = rng.integers(0, 256, (n, k, size, size, 3), dtype=np.uint8)
    clip_flows = rng.integers(0, 256, (n, k, 8, size, size, 3), dtype=np.uint8)
    np.save(frames / "hmdb51_test_clip_frames.npy", clip_frames)
    np.save(flow / "hmdb51_test_clips.npy", clip_flows)
    labels = [5, 0, 11][:n]
    manifest = pd.DataFrame({"path": [f"{HMDB51_CLASSES[c]}/t{i}.avi" for i, c in enumerate(labels)],
                             "label": labels, "class": [HMDB51_CLASSES[c] for c in labels]})
    manifest.to_csv(frames / "hmdb51_test.csv", index=False)
    manifest.to_csv(flow / "hmdb51_test.csv", index=False)
    return frames, flow, clip_frames, clip_flows


def test_test_clips_are_consecutive_samples_of_each_video(tmp_path):
    frames, flow, clip_frames, clip_flows = write_test_clips(tmp_path)
    clips, k = hmdb51_test_clips(frames, flow)
    assert k == 4 and clips.labels.tolist() == [5] * 4 + [0] * 4 + [11] * 4 and clips.image_size == 32
    dataset = TwoStreamDataset(clips, None, None)  # the frame of each clip, not a study position
    assert len(dataset) == 12
    (image, stack), label = dataset[6]  # video 1, clip 2
    torch.testing.assert_close(image, expected_normalised(clip_frames[1, 2]))
    torch.testing.assert_close(stack[21:], expected_normalised(clip_flows[1, 2, 7]))
    assert label == 0
    image, label = FrameDataset(hmdb51_test_clips(frames, None)[0], None)[11]
    torch.testing.assert_close(image, expected_normalised(clip_frames[2, 3]))
    stack, label = FlowDataset(hmdb51_test_clips(None, flow)[0])[4]
    torch.testing.assert_close(stack[:3], expected_normalised(clip_flows[1, 0, 0]))
    assert label == 0


def test_test_clip_arrays_must_match_the_manifest_and_each_other(tmp_path):
    frames, flow, _, _ = write_test_clips(tmp_path)
    np.save(flow / "hmdb51_test_clips.npy", np.zeros((3, 5, 8, 32, 32, 3), np.uint8))  # 5 clips, frames have 4
    with pytest.raises(InputError, match=r"hmdb51_test.csv: 3 test videos, but the test-clip arrays hold .* 3 x 4, "
                                         r".* 3 x 5; re-run the data stages"):
        hmdb51_test_clips(frames, flow)
    np.save(frames / "hmdb51_test_clip_frames.npy", np.zeros((2, 4, 32, 32, 3), np.uint8))  # 2 videos, manifest 3
    with pytest.raises(InputError, match="3 test videos"):
        hmdb51_test_clips(frames, None)
    np.save(frames / "hmdb51_test_clip_frames.npy", np.zeros((3,), np.uint8))
    with pytest.raises(InputError, match=r"hmdb51_test_clip_frames.npy: expected \(videos, clips, ...\)"):
        ClipArray(frames / "hmdb51_test_clip_frames.npy")
    (frames / "hmdb51_test_clip_frames.npy").unlink()
    with pytest.raises(MissingInputError, match="hmdb51_test_clip_frames.npy: array not found"):
        hmdb51_test_clips(frames, None)


def test_clip_array_pickles_as_its_path(tmp_path):
    import pickle
    np.save(tmp_path / "clips.npy", np.arange(2 * 3 * 1000, dtype=np.int64).reshape(2, 3, 1000))
    clips = ClipArray(tmp_path / "clips.npy")
    assert len(clips) == 6 and clips.shape == (6, 1000)
    restored = pickle.loads(pickle.dumps(clips))
    assert len(pickle.dumps(clips)) < 10_000
    assert restored[4][0] == 4000 and clips[5][-1] == 5999


def test_lazy_array_pickles_as_its_path(tmp_path):
    import pickle
    np.save(tmp_path / "big.npy", np.arange(100_000, dtype=np.int64))
    array = LazyArray(tmp_path / "big.npy")
    assert array[5] == 5 and len(array) == 100_000  # opened in this process
    restored = pickle.loads(pickle.dumps(array))
    assert len(pickle.dumps(array)) < 10_000  # not the 800 kB of data
    assert restored[99_999] == 99_999


def test_manifests_are_checked_against_the_class_table(tmp_path):
    frames, _, _, _ = write_hmdb51(tmp_path)
    manifest = pd.read_csv(frames / "hmdb51_train.csv")
    manifest.loc[2, "label"] = 7
    manifest.to_csv(frames / "hmdb51_train.csv", index=False)
    with pytest.raises(ListError, match=r"hmdb51_train.csv:4: drink/2.avi: label 7 contradicts class drink"):
        hmdb51_subset(frames, None, "train")


def test_stanford40_subset_and_image_size(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    np.save(tmp_path / "stanford40_val.npy", images)
    pd.DataFrame({"path": [f"JPEGImages/{STANFORD40_CLASSES[k]}_001.jpg" for k in (0, 5, 11)], "label": [0, 5, 11],
                  "class": [STANFORD40_CLASSES[k] for k in (0, 5, 11)]}).to_csv(tmp_path / "stanford40_val.csv",
                                                                              index=False)
    subset = stanford40_subset(tmp_path, "val")
    assert subset.image_size == 48 and subset.labels.tolist() == [0, 5, 11]
    assert subset.manifest_path == tmp_path / "stanford40_val.csv"
    image, label = FrameDataset(subset, None)[2]
    torch.testing.assert_close(image, expected_normalised(images[2]))
    assert label == 11


def test_hmdb51_subset_needs_a_directory():
    with pytest.raises(ValueError, match="needs frames_dir or flow_dir"):
        hmdb51_subset(None, None, "train")


# ----------------------------------------------------------------------------- keys (index, seed)

def test_keyed_augmentation_is_drawn_from_the_key_alone(tmp_path):
    """The same (index, seed) gives the same augmented sample, whatever the process RNG holds;
    the process RNG is left as it was; another seed gives another draw; a plain index is the
    index without a seed."""
    frames, _, positions, _ = write_hmdb51(tmp_path)
    augmented = FrameDataset(hmdb51_subset(frames, None, "train"), AUGMENT, position="middle")
    torch.manual_seed(0)
    first, label = augmented[(1, 1234)]
    assert label == 1
    torch.manual_seed(99)
    state = torch.get_rng_state()
    again, _ = augmented[(1, 1234)]
    assert torch.equal(torch.get_rng_state(), state)  # process RNG untouched
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    others = [augmented[(1, seed)][0] for seed in (1, 2, 3)]
    assert all(not torch.equal(first, o) for o in others)
    plain = FrameDataset(hmdb51_subset(frames, None, "train"), None, position="middle")
    torch.testing.assert_close(plain[(1, 1234)][0], plain[1][0], rtol=0, atol=0)  # no augmentation: seed unused
    torch.testing.assert_close(plain[(1, 1234)][0], expected_normalised(positions[1, 2]))


def test_two_stream_keys_pair_the_same_clip(tmp_path):
    frames, flow, positions, flows = write_hmdb51(tmp_path)
    dataset = TwoStreamDataset(hmdb51_subset(frames, flow, "train"), AUGMENT, position="middle")
    (image, stack), label = dataset[(3, 5)]
    (image2, stack2), _ = dataset[(3, 5)]
    assert label == 3 and torch.equal(image, image2)
    torch.testing.assert_close(stack, stack2, rtol=0, atol=0)
    # the flow stack is translated (one shift for the whole stack): a window of the clip's edge-padded stack
    padded = torch.nn.functional.pad(FlowDataset(hmdb51_subset(None, flow, "train"))[3][0], (4,) * 4,
                                     mode="replicate")
    assert any(torch.equal(padded[:, i:i + 32, j:j + 32], stack) for i in range(9) for j in range(9))
    plain = TwoStreamDataset(hmdb51_subset(frames, flow, "train"), None, position="middle")
    torch.testing.assert_close(plain[3][0][1][:3], expected_normalised(flows[3, 0]))  # without augment: as is


def test_sample_seed_depends_on_seed_epoch_and_index():
    seeds = {sample_seed(s, e, i) for s in (0, 1) for e in (0, 1) for i in (0, 1, 2)}
    assert len(seeds) == 12
    assert sample_seed(0, 3, 7) == sample_seed(0, 3, 7)
    assert all(0 <= s < 2**32 for s in seeds)


def test_seeded_sampler_is_a_function_of_seed_and_epoch():
    data = list(range(20))

    def epoch(sampler, number):
        sampler.set_epoch(number)
        return list(sampler)

    one = SeededSampler(data, num_replicas=1, rank=0, shuffle=True, seed=7)
    two = SeededSampler(data, num_replicas=1, rank=0, shuffle=True, seed=7)
    assert epoch(one, 0) == epoch(two, 0) == epoch(one, 0)
    pairs = epoch(one, 0)
    assert sorted(i for i, _ in pairs) == data  # a permutation
    assert [i for i, _ in pairs] != data  # shuffled
    assert all(s == sample_seed(7, 0, i) for i, s in pairs)
    assert epoch(one, 1) != pairs  # another epoch: another order and other seeds
    other = SeededSampler(data, num_replicas=1, rank=0, shuffle=True, seed=8)
    assert epoch(other, 0) != pairs


def test_seeded_sampler_splits_the_permutation_between_ranks():
    data = list(range(20))
    whole = SeededSampler(data, num_replicas=1, rank=0, shuffle=True, seed=3)
    ranks = [SeededSampler(data, num_replicas=2, rank=r, shuffle=True, seed=3) for r in (0, 1)]
    for sampler in (whole, *ranks):
        sampler.set_epoch(2)
    parts = [list(sampler) for sampler in ranks]
    assert [len(part) for part in parts] == [10, 10] and len(ranks[0]) == 10
    indices = [{i for i, _ in part} for part in parts]
    assert not indices[0] & indices[1]
    assert indices[0] | indices[1] == set(data)
    # the same permutation as one process, dealt out; every sample keeps its seed
    assert sorted(parts[0] + parts[1]) == sorted(whole)


def test_flow_augmentation_shifts_the_whole_stack_alike_and_keeps_the_vectors(tmp_path):
    frames, flow, _, flows = write_hmdb51(tmp_path, size=32)
    plain = FlowDataset(hmdb51_subset(None, flow, "train"))
    augmented = FlowDataset(hmdb51_subset(None, flow, "train"), augment=True)
    reference = plain[1][0].reshape(8, 3, 32, 32)
    pad = 32 // 8
    # the reference stack edge-padded: every augmented stack is a 32x32 window of it
    padded = torch.nn.functional.pad(reference, (pad,) * 4, mode="replicate")
    offsets = set()
    for seed in range(40):
        stack, label = augmented[(1, seed)]
        assert label == 1 and stack.shape == (24, 32, 32)
        images = stack.reshape(8, 3, 32, 32)
        found = [(i, j) for i in range(2 * pad + 1) for j in range(2 * pad + 1)
                 if torch.allclose(padded[..., i:i + 32, j:j + 32], images)]
        assert len(found) >= 1, "an augmented stack is not one shift of the whole stack"
        offsets.add(found[0])
        assert torch.equal(augmented[(1, seed)][0], stack)  # the sample seed decides the shift
    assert len(offsets) > 10  # the shifts vary, in both directions
    assert {i for i, _ in offsets} >= {0, 2 * pad} and {j for _, j in offsets} >= {0, 2 * pad}
