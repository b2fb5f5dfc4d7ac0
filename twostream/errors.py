"""The project's exception types: the failures a user can fix, each ending a stage with one line.

Every stage script catches `TwostreamError` (see `twostream.cli`): the message names the file,
line or params key and what to do, the exit status is 1 and there is no traceback. Anything
else is a bug and keeps its traceback. This module imports nothing of the project, so a stage
that only needs the error types does not pull the library into its dependencies.
"""
from __future__ import annotations


class TwostreamError(Exception):
    """Base of the expected failures: bad params, bad or missing input, an unavailable resource."""


class ParamsError(TwostreamError, ValueError):
    """A missing, unknown or invalid key in params.yaml or runtime.yaml."""


class MissingInputError(TwostreamError, FileNotFoundError):
    """An input file or directory a stage needs does not exist (an earlier stage did not run)."""


class InputError(TwostreamError, ValueError):
    """A prepared input (manifest, array, model file) that is malformed or inconsistent."""


class ListError(TwostreamError, ValueError):
    """A split list or manifest that is missing, malformed, or contradicts the class table."""


class ImageError(TwostreamError, ValueError):
    """An image file that is missing, truncated or cannot be decoded."""


class VideoError(TwostreamError, ValueError):
    """A video that cannot be opened, decodes with errors, is truncated, or is too short."""


class SourceError(TwostreamError, RuntimeError):
    """A real-data download or archive that cannot be fetched, verified or extracted."""


class WeightsUnavailable(TwostreamError, RuntimeError):
    """Pretrained weights are neither cached nor downloadable."""


class DeviceUnavailable(TwostreamError, RuntimeError):
    """The settings ask for a device this machine does not have."""


class TrainingError(TwostreamError, RuntimeError):
    """Training that produced no usable model (e.g. a loss that is NaN in every epoch)."""
