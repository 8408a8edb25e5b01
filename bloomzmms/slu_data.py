"""The on-disk format of a prepared SLU task (SpeechGLUE task, SpeechXNLI language).

One directory per task:

    speech/          a Kaldi-style data directory whose utterances are the spoken fields (kept
                     apart so data-dir tools and bloomzmms.bin.infer can use it as it is):
      wav.scp          <example id>-<field> <audio path, or a sox pipe resampling it to 16 kHz>
      text             <example id>-<field> <the field's text>  (for a cascade or an ASR check)
      utt2spk/spk2utt  speaker = utterance
    examples.jsonl   one JSON object per example, sorted by id:
                     {"id", "task", "label" (int class, or float for STS-B), "label_name",
                      "fields": [field, ...] (spoken, in the dataset's order),
                      "texts": {field: text}, "source": "<file>:<line>", ...extra keys}
    .dropped         one line per dropped item: <file>:<line>\t<reason>\t<detail>

Written to a temporary sibling and renamed, so a killed run leaves no half-written directory.
"""

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import soundfile

from bloomzmms.audio import sox_resample_pipe

SAMPLE_RATE = 16000


@dataclass
class SLUExample:
    id: str
    task: str
    label: float
    label_name: str
    fields: List[str]
    texts: Dict[str, str]
    audio: Dict[str, str]  # field -> wav.scp value
    source: str
    extra: Dict[str, str] = field(default_factory=dict)

    def key(self, field_name: str) -> str:
        return f"{self.id}-{field_name}"

    def record(self) -> Dict:
        return {"id": self.id, "task": self.task, "label": self.label, "label_name": self.label_name,
                "fields": self.fields, "texts": self.texts, "source": self.source, **self.extra}


@dataclass(frozen=True)
class Dropped:
    source: str  # <file>:<line>
    reason: str
    detail: str

    def __str__(self):
        return f"{self.source}\t{self.reason}\t{self.detail}"


def audio_entry(path: Path):
    """(wav.scp value, None) for a readable audio file, or (None, (reason, detail)).

    Audio not at 16 kHz becomes a sox pipe resampling it, so every reader of the directory
    gets what the speech encoder expects.
    """
    if any(char.isspace() for char in str(path)):
        return None, ("bad_audio_path", f"{path}: whitespace cannot be stored in wav.scp")
    try:
        info = soundfile.info(str(path))
    except RuntimeError as error:  # soundfile's errors derive from it
        return None, ("unreadable_audio", f"{path}: {error}")
    if info.frames == 0:
        return None, ("unreadable_audio", f"{path}: no samples")
    if info.samplerate == SAMPLE_RATE and info.channels == 1:
        return str(path), None
    return sox_resample_pipe(path, SAMPLE_RATE), None


def write_task_dir(task_dir: Path, examples: List[SLUExample], dropped: List[Dropped]) -> None:
    examples = sorted(examples, key=lambda example: example.id.encode("utf-8"))
    files = {"wav.scp": {}, "text": {}, "utt2spk": {}}
    for example in examples:
        for field_name in example.fields:
            key = example.key(field_name)
            files["wav.scp"][key] = example.audio[field_name]
            files["text"][key] = " ".join(example.texts[field_name].split())
            files["utt2spk"][key] = key
    files["spk2utt"] = files["utt2spk"]
    task_dir = Path(task_dir)
    partial = task_dir.with_name(f".{task_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "speech").mkdir()
    for name, mapping in files.items():
        lines = [f"{key} {mapping[key]}\n" for key in sorted(mapping, key=lambda k: k.encode("utf-8"))]
        (partial / "speech" / name).write_text("".join(lines), encoding="utf-8")
    (partial / "examples.jsonl").write_text(
        "".join(json.dumps(example.record(), ensure_ascii=False) + "\n" for example in examples), encoding="utf-8")
    (partial / ".dropped").write_text("".join(f"{item}\n" for item in dropped), encoding="utf-8")
    shutil.rmtree(task_dir, ignore_errors=True)
    partial.rename(task_dir)


def read_task_dir(task_dir: Path) -> List[Dict]:
    """The examples of a prepared task, each with ``audio``: {field: wav.scp value}."""
    task_dir = Path(task_dir)
    wav_scp = {}
    with open(task_dir / "speech" / "wav.scp", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            parts = line.rstrip("\n").split(" ", 1)
            if len(parts) != 2 or not parts[1].strip():
                raise ValueError(f"{task_dir / 'speech' / 'wav.scp'}:{number}: expected '<key> <audio>'")
            wav_scp[parts[0]] = parts[1]
    examples = []
    with open(task_dir / "examples.jsonl", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                example = json.loads(line)
                keys = {name: f"{example['id']}-{name}" for name in example["fields"]}
                example["label"]  # every example is labelled
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(f"{task_dir / 'examples.jsonl'}:{number}: malformed example ({error!r})") from error
            missing = [key for key in keys.values() if key not in wav_scp]
            if missing:
                raise ValueError(f"{task_dir / 'examples.jsonl'}:{number}: {missing[0]} is not in speech/wav.scp")
            example["audio"] = {name: wav_scp[key] for name, key in keys.items()}
            examples.append(example)
    if not examples:
        raise ValueError(f"{task_dir}: no examples")
    return examples
