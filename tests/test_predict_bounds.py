"""twostream predict's work-sizing argument is bounded like the param it stands for."""
import pytest

from twostream.errors import InputError
from twostream.params import MAX_TEST_CLIPS
from twostream.predict import Predictor


@pytest.mark.parametrize("clips", [0, MAX_TEST_CLIPS + 1, 100_000])
def test_clips_outside_the_bound_of_video_test_clips_are_refused_in_one_line(clips):
    with pytest.raises(InputError) as caught:
        Predictor([object()], clips=clips)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"--clips must be 1 to {MAX_TEST_CLIPS}") and message.endswith(f"got {clips}")
