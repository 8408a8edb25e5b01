"""Tests of local/make_standin_models.py: the smoke config built on a tiny data set that the test
synthesizes with espeak-ng (2 languages), plus unit tests of the pretraining examples."""

import importlib.util
import json
import math
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from scipy.signal import resample_poly

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "conf" / "mini" / "standin.yaml"
VOICES = {"en_us": "en-us", "de_de": "de"}
SENTENCES = {  # sentence id -> (split, English, German)
    "1": ("train", "The cat sleeps on the bed.", "Die Katze schläft auf dem Bett."),
    "2": ("train", "The dog drinks cold water.", "Der Hund trinkt kaltes Wasser."),
    "3": ("train", "The cat drinks warm milk.", "Die Katze trinkt warme Milch."),
    "4": ("dev", "The dog sleeps.", "Der Hund schläft."),
    "5": ("test", "The cat drinks cold water.", "Die Katze trinkt kaltes Wasser."),
}


def load_local_module(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "local" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


standin = load_local_module("make_standin_models")


def synthesize(text, voice, path):
    raw = path.with_suffix(".22k.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
    audio, rate = soundfile.read(raw, dtype="float32")
    raw.unlink()
    audio = resample_poly(audio, 160, rate // 100) if rate != 16000 else audio
    soundfile.write(path, audio.astype(np.float32), 16000, subtype="PCM_16")
    return len(audio)


def write_data_dirs(root):
    rows = {"train": [], "dev": [], "test": []}
    for sid, (split, *texts) in SENTENCES.items():
        for (lang, voice), text in zip(VOICES.items(), texts):
            utt = f"{lang}-{split}-{sid}-0"
            wav = root / "audio" / f"{utt}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            rows[split].append((utt, text, lang, sid, wav, synthesize(text, voice, wav)))
    for split, utts in rows.items():
        directory = root / f"{split}_fleurs"
        directory.mkdir(parents=True)
        utts.sort()
        files = {
            "text": [u[1] for u in utts], "utt2lang": [u[2] for u in utts], "utt2sentence": [u[3] for u in utts],
            "wav.scp": [str(u[4]) for u in utts], "utt2num_samples": [str(u[5]) for u in utts],
            "utt2spk": [u[0] for u in utts], "spk2utt": [u[0] for u in utts],
        }
        for name, values in files.items():
            (directory / name).write_text("".join(f"{u[0]} {v}\n" for u, v in zip(utts, values)), encoding="utf-8")
    return {split: root / f"{split}_fleurs" for split in rows}


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    return write_data_dirs(tmp_path_factory.mktemp("standin_data"))


@pytest.fixture(scope="module")
def built(data_dirs, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("standin") / "exp"
    config = standin.load_config(CONFIG, smoke=True)
    summary = standin.build(config, data_dirs["train"], data_dirs["dev"], output_dir, data_dirs["test"])
    return {"dir": output_dir, "summary": summary, "config": config}


# ------------------------------------------------------------------------- the build ---


def test_artifacts_load_like_hub_models(built):
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer, BloomForCausalLM, Wav2Vec2Model

    llm_dir, speech_dir = built["dir"] / "llm", built["dir"] / "speech_encoder"
    tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    assert [tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id] == [0, 1, 2, 3]
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<unk>", "<s>", "</s>", "<pad>"]
    text = "Die Katze schläft auf dem Bett."
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text

    llm = AutoModelForCausalLM.from_pretrained(llm_dir)
    assert isinstance(llm, BloomForCausalLM)
    assert llm.config.hidden_size == built["config"]["llm"]["hidden_size"]
    assert llm.get_input_embeddings().weight.shape[0] == len(tokenizer) + built["config"]["llm"]["vocab_padding"]
    assert llm.config.hidden_dropout == llm.config.attention_dropout == 0.0

    encoder = AutoModel.from_pretrained(speech_dir)
    assert isinstance(encoder, Wav2Vec2Model)
    config = encoder.config
    assert config.feat_extract_norm == "layer" and config.do_stable_layer_norm
    assert config.num_hidden_layers == built["config"]["speech_encoder"]["num_layers"]
    assert config.hidden_size == built["config"]["speech_encoder"]["hidden_size"]
    assert int(np.prod(config.conv_stride)) == 320  # 20 ms frames at 16 kHz
    vocab = json.loads((speech_dir / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["<pad>"] == config.pad_token_id == 0 and config.vocab_size == len(vocab)
    assert {"ä", "|"} <= set(vocab)


def test_eval_reports_and_summary(built):
    llm_eval = json.loads((built["dir"] / "llm" / "eval.json").read_text(encoding="utf-8"))
    assert llm_eval["repeat"]["utterances"] == 2  # the test sentence in 2 languages
    assert 0 <= llm_eval["repeat"]["exact_match"] <= 1 and llm_eval["repeat"]["cer"] >= 0
    assert set(llm_eval["translation"]["directions"]) == {"en_us-de_de"}
    assert llm_eval["eval_set"].endswith("test_fleurs")
    speech_eval = json.loads((built["dir"] / "speech_encoder" / "eval.json").read_text(encoding="utf-8"))
    assert speech_eval["utterances"] == 2 and speech_eval["cer"] >= 0
    stamp = json.loads((built["dir"] / ".done").read_text())
    assert set(stamp["hashes"]) == {"llm", "speech_encoder"}
    assert stamp["summary"]["llm"]["steps"] == built["config"]["llm"]["train"]["steps"]
    assert not list(built["dir"].glob("*.partial"))


def test_rerun_is_a_no_op(built, data_dirs, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("rebuilt although up to date")

    monkeypatch.setattr(standin, "make_llm", fail)
    monkeypatch.setattr(standin, "make_speech_encoder", fail)
    mtimes = {path: path.stat().st_mtime_ns for path in built["dir"].rglob("*")}
    summary = standin.build(built["config"], data_dirs["train"], data_dirs["dev"], built["dir"], data_dirs["test"])
    assert summary == json.loads(json.dumps(built["summary"]))
    assert {path: path.stat().st_mtime_ns for path in built["dir"].rglob("*")} == mtimes


def test_changed_section_rebuilds_only_its_model_and_interrupted_run_reruns(built, data_dirs, monkeypatch, tmp_path):
    output_dir = tmp_path / "exp"
    shutil.copytree(built["dir"], output_dir)
    # An interrupted LLM rebuild: a leftover partial directory, no top-level stamp.
    (output_dir / "llm.partial").mkdir()
    (output_dir / "llm.partial" / "garbage").write_text("x")
    (output_dir / ".done").unlink()
    config = json.loads(json.dumps(built["config"]))
    config["llm"]["train"]["steps"] += 1
    monkeypatch.setattr(standin, "make_speech_encoder", lambda *a, **k: pytest.fail("speech encoder rebuilt"))
    summary = standin.build(config, data_dirs["train"], data_dirs["dev"], output_dir, data_dirs["test"])
    assert summary["llm"]["steps"] == config["llm"]["train"]["steps"]
    assert not (output_dir / "llm.partial").exists() and not (output_dir / "llm" / "garbage").exists()
    assert json.loads((output_dir / "llm" / ".done").read_text())["summary"]["steps"] == config["llm"]["train"]["steps"]


def test_models_work_in_the_recipe_components(built):
    from bloomzmms.asr.frontend import HFSpeechEncoderFrontend
    from bloomzmms.asr.llm_decoder import HFCausalLMDecoder, pad_token_lists

    frontend = HFSpeechEncoderFrontend(model_name_or_path=str(built["dir"] / "speech_encoder"))
    waveform = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([16000, 9000])
    feats, feats_lengths = frontend(waveform, lengths)
    hidden = built["config"]["speech_encoder"]["hidden_size"]
    # 20 ms frames: one per 320 samples, fewer at the end by the kernels' overhang.
    section = built["config"]["speech_encoder"]
    assert math.prod(section["conv_stride"]) == 320
    expected = lengths.tolist()
    for kernel, stride in zip(section["conv_kernel"], section["conv_stride"]):
        expected = [(n - kernel) // stride + 1 for n in expected]
    assert feats.shape == (2, expected[0], hidden) and feats_lengths.tolist() == expected
    assert torch.isfinite(feats).all()

    llm_hidden = built["config"]["llm"]["hidden_size"]
    decoder = HFCausalLMDecoder(vocab_size=500, encoder_output_size=llm_hidden,
                                model_name_or_path=str(built["dir"] / "llm"))
    speech = torch.randn(2, 5, llm_hidden)
    targets, target_lengths = pad_token_lists([[5, 6, 7], [8]])
    logits, logit_lengths = decoder(speech, torch.tensor([5, 3]), targets, target_lengths)
    assert logits.shape[:2] == (2, 4) and logit_lengths.tolist() == [4, 2]
    assert len(decoder.generate(speech, torch.tensor([5, 3]), max_new_tokens=3)) == 2


# ---------------------------------------------------------------- pretraining examples ---


def tiny_table():
    return {sid: {"en_us": en, "de_de": de} for sid, (split, en, de) in SENTENCES.items() if split == "train"}


def held_out_texts():
    return {text for split, *texts in SENTENCES.values() if split != "train" for text in texts}


def forms():
    return standin.load_forms(REPO_ROOT / "conf" / "instructions" / "mini_pretraining.yaml")


NAMES = {"en_us": "English", "de_de": "German"}


def test_loss_masks_the_instruction_and_covers_response_and_eos(tmp_path):
    from bloomzmms.standin import train_tokenizer

    texts = [t for texts in tiny_table().values() for t in texts.values()] + ["Repeat the sentence: ", ". "]
    tokenizer = train_tokenizer(texts * 3, 300, str(tmp_path / "tokenizer"))
    encoder = standin.ExampleEncoder(tokenizer)
    example = standin.Example("translation", "Translate the following text from English to German\n",
                              "The cat sleeps on the bed.", "\n", "Die Katze schläft auf dem Bett.", "1")
    response = tokenizer(example.response, add_special_tokens=False)["input_ids"]
    for joint in (True, False):
        ids, labels = encoder(example, joint=joint)
        prompt = encoder.prompt_ids(example, joint)
        assert ids == prompt + response + [tokenizer.eos_token_id]
        assert labels == [-100] * len(prompt) + response + [tokenizer.eos_token_id]
        assert tokenizer.decode(ids[: len(prompt)]) == example.prefix + example.source + example.postfix
    segments = encoder.prompt_ids(example, joint=False)
    assert segments == sum((tokenizer(t, add_special_tokens=False)["input_ids"]
                            for t in (example.prefix, example.source, example.postfix)), [])
    input_ids, attention_mask, labels = standin.collate([encoder(example, True), ([7], [7])], tokenizer.pad_token_id)
    assert attention_mask[1].tolist() == [1] + [0] * (input_ids.shape[1] - 1)
    assert labels[1, 1:].eq(-100).all() and input_ids[1, 1:].eq(tokenizer.pad_token_id).all()


def test_examples_come_from_training_sentences_only():
    task_forms, weights = forms()
    table = tiny_table()
    held_out = held_out_texts()
    # Replacing every word makes recombinations likely to hit the held-out sentences.
    sampler = standin.ExampleSampler(table, task_forms, {"repeat": 1.0, "translation": 1.0,
                                     "language_identification": 0.2}, NAMES, recombine_prob=1.0,
                                     replace_prob=0.5, concat_prob=0.3, exclude=held_out)
    rng = random.Random(0)
    train_texts = {text for texts in table.values() for text in texts.values()}
    train_words = {w.rstrip(".").lower() for text in train_texts for w in text.split()}
    seen_tasks = set()
    for _ in range(3000):
        example = sampler.sample(rng)
        seen_tasks.add(example.task)
        assert example.source not in held_out and example.response not in held_out
        assert example.sentence_id in table
        assert {w.rstrip(".").lower() for w in example.source.split()} <= train_words
        if example.task == "repeat":
            assert example.response == example.source
        elif example.task == "translation":
            assert example.source in train_texts or " " in example.source
            assert "{" not in example.prefix + example.postfix
        else:
            assert example.response in NAMES.values()
    assert seen_tasks == {"repeat", "translation", "language_identification"}


def test_recombinations_that_hit_a_held_out_sentence_are_redrawn():
    task_forms, _ = forms()
    table = {"1": {"en_us": "A b.", "de_de": "X y."}, "2": {"en_us": "B a.", "de_de": "Y x."}}
    held_out = {"A a.", "X x.", "B b."}
    sampler = standin.ExampleSampler(table, task_forms, {"repeat": 1.0}, NAMES, recombine_prob=1.0,
                                     replace_prob=0.5, exclude=held_out)
    rng = random.Random(0)
    sources = {sampler.sample(rng).source for _ in range(500)}
    assert sampler.redraws > 0 and not sources & held_out
    assert sources == {"A b.", "B a.", "X y.", "Y x.", "Y y."}  # every combination but the held-out ones


def test_held_out_sentence_ids_must_not_be_in_training():
    table = tiny_table()
    standin.check_held_out(table, {"5": {"en_us": "The cat drinks cold water."}})
    with pytest.raises(ValueError, match="both"):
        standin.check_held_out(table, {"2": {"en_us": "Another text."}})


def test_smoke_config_overrides_nested_keys():
    full, smoke = standin.load_config(CONFIG), standin.load_config(CONFIG, smoke=True)
    assert smoke["llm"]["train"]["steps"] < full["llm"]["train"]["steps"]
    assert smoke["llm"]["train"]["lr"] == full["llm"]["train"]["lr"]  # kept from the full config
    assert smoke["llm"]["instructions"] == full["llm"]["instructions"]
    assert "smoke" not in smoke and "smoke" not in full


def test_transcript_normalization_and_ctc_decoding():
    assert standin.normalize_transcript("L'eau est  froide.") == "l'eau est froide"
    assert standin.normalize_transcript("Die Katze, schläft!") == "die katze schläft"
    vocab = standin.character_vocabulary(["ab c"])
    assert vocab == {"<pad>": 0, "<unk>": 1, "|": 2, "a": 3, "b": 4, "c": 5}
    assert standin.encode_characters("ab c", vocab) == [3, 4, 2, 5]
    id_to_char = {i: c for c, i in vocab.items()}
    frames = torch.tensor([[3, 3, 0, 3, 4, 2, 2, 5, 0]])
    logits = torch.nn.functional.one_hot(frames, len(vocab)).float()
    assert standin.ctc_greedy(logits, torch.tensor([9]), id_to_char) == ["aab c"]
    assert standin.ctc_greedy(logits, torch.tensor([4]), id_to_char) == ["aa"]
