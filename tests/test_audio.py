import shutil

import numpy as np
import pytest
import soundfile

from bloomzmms.audio import read_audio, sox_resample_pipe

pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox")


def test_a_resampling_pipe_gives_the_same_samples_on_every_read(tmp_path):
    # Stereo 22.05 kHz noise: sox resamples, downmixes and dithers down to 16 bits.
    path = tmp_path / "clip with space.wav"
    samples = np.random.default_rng(0).uniform(-0.5, 0.5, (22050, 2)).astype(np.float32)
    soundfile.write(path, samples, 22050, subtype="PCM_16")
    entry = sox_resample_pipe(path)
    first, rate = read_audio(entry)
    second, _ = read_audio(entry)
    assert rate == 16000 and first.ndim == 1 and abs(len(first) - 16000) <= 1
    np.testing.assert_array_equal(first, second)
