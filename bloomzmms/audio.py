"""Reading the audio of a ``wav.scp`` entry: a file path, a command ending in ``|``, or an
``ark:offset`` entry of a dumped ``flac.ark``/``wav.ark``."""

import io
import re
import shlex
import subprocess
from typing import Tuple

import kaldiio
import numpy as np
import soundfile

ARK_ENTRY = re.compile(r".+\.ark:\d+$")


def sox_resample_pipe(path, sample_rate: int = 16000) -> str:
    """A ``wav.scp`` pipe giving the file as mono 16-bit WAV at ``sample_rate``. ``-R`` makes
    sox's dither repeatable: without it, each read of the entry gives other samples (up to 1 LSB
    apart), so two decodings of one recording could differ."""
    return f"sox -R {shlex.quote(str(path))} -t wav -r {sample_rate} -c 1 -b 16 - |"


def read_audio(value: str) -> Tuple[np.ndarray, int]:
    """Samples (float32; (time,) mono or (time, channels)) and the sampling rate."""
    value = value.strip()
    if value.endswith("|"):
        result = subprocess.run(value[:-1], shell=True, capture_output=True, check=False)
        if result.returncode != 0:
            raise OSError(f"command failed ({result.returncode}): {value[:-1]}: {result.stderr.decode(errors='replace')[-300:]}")
        samples, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32")
    elif ARK_ENTRY.match(value):
        rate, samples = kaldiio.load_mat(value)
        samples = np.asarray(samples)
        if samples.dtype.kind == "i":
            samples = samples / float(np.iinfo(samples.dtype).max + 1)
        samples = samples.astype(np.float32)
    else:
        samples, rate = soundfile.read(value, dtype="float32")
    return samples, int(rate)
