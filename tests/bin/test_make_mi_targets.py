"""Tests of bloomzmms.bin.make_mi_targets: seeded template sampling, generation, drops."""

import random

import pytest
import torch
import yaml

from bloomzmms.bin import make_mi_targets as mi
from bloomzmms.datadir import DataDir, read_kv, save_data_dir, speed_perturb_combined
from bloomzmms.instructions import Template, dump_templates, unescape_instruction

SENTENCES = {
    "en_us": ["the red cat sees the small dog.", "the small dog."],
    "de_de": ["der rote Hund sieht die kleine Katze."],
    "fr_fr": ["le chat rouge voit le petit chien."],
    "pl_pl": ["kot."],
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_t_dir(directory, speed_perturbation=True):
    """A FLEURS-like T dir (speaker = utterance), two recordings of one sentence, sp copies."""
    files = {name: {} for name in ("wav.scp", "text", "utt2spk", "utt2lang", "utt2sentence", "utt2num_samples")}
    sentence_id = 0
    for language, sentences in SENTENCES.items():
        for text in sentences:
            sentence_id += 1
            for recording in ("1001", "1002")[: 2 if sentence_id == 1 else 1]:
                utt = f"{language}-train-{sentence_id}-{recording}"
                files["wav.scp"][utt] = f"/audio/{utt}.wav"
                files["text"][utt] = text
                files["utt2spk"][utt] = utt
                files["utt2lang"][utt] = language
                files["utt2sentence"][utt] = str(sentence_id)
                files["utt2num_samples"][utt] = "16000"
    data = DataDir(files, {"feats_type": b"raw\n", "audio_format": b"wav\n"}, "t")
    if speed_perturbation:
        data = speed_perturb_combined(data, [0.9, 1.0, 1.1])
    save_data_dir(data, str(directory))
    return data


def write_templates(path, extra=()):
    templates = [
        Template(0, "Translate the following text from English to German\n", "\n", "en_us", "de_de", "translation"),
        Template(1, "A text in English: ", "\nThe same text in French:", "en_us", "fr_fr", "translation"),
        Template(2, "", " The previous text is in German. Here is a translation to English:", "de_de", "en_us",
                 "translation"),
        Template(3, "A text in German: ", "\nThe same text in French:", "de_de", "fr_fr", "translation"),
        Template(4, "", " Here is the same text in German:", "any", "de_de", "translation"),
        Template(5, "Paraphrase: ", "\nParaphrase:", "any", None, "paraphrase"),
        Template(6, "", "", "any", None, "empty"),  # dropped: nothing around the text
        Template(7, "Translate from French to German\n", "\n", "fr_fr", "de_de", "translation"),
        *extra,
    ]
    path.write_text(dump_templates(templates), encoding="utf-8")
    return templates


def fake_generate(empty_when=lambda prompt: False):
    """Stands in for llm_generate.generate_to_file: a response derived from the prompt."""
    calls = []

    def generate(llm, tokenizer, prompts, output, settings, batch_size, num_beams, max_new_tokens, progress=True):
        calls.append(dict(prompts))
        return {key: "" if empty_when(prompt) else f"R[{prompt}]".replace("\n", " ") for key, prompt in prompts.items()}

    generate.calls = calls
    return generate


def utt2lang_of(data):
    return {utt: lang for utt, lang in data.files["utt2lang"].items()}


def test_sampling_seeded_order_independent_and_per_language(tmp_path):
    data = write_t_dir(tmp_path / "t")
    templates = mi.usable_templates(write_templates(tmp_path / "templates.yaml"))
    assert all(t.task != "empty" for t in templates)
    utt2lang = utt2lang_of(data)
    chosen = mi.sample_templates(utt2lang, templates, copies=2, seed=0)
    # Same seed, other insertion order -> same draws; a subset draws the same for its utterances.
    shuffled = list(utt2lang.items())
    random.Random(1).shuffle(shuffled)
    assert mi.sample_templates(dict(shuffled), templates, 2, 0) == chosen
    some = dict(shuffled[:5])
    assert mi.sample_templates(some, templates, 2, 0) == {u: chosen[u] for u in some}
    # Another seed -> other draws.
    assert mi.sample_templates(utt2lang, templates, 2, 1) != chosen
    for utt, picks in chosen.items():
        assert len(picks) == 2 and picks[0] != picks[1]
        assert all(t.source_language in ("any", utt2lang[utt]) for t in picks)
    # Speed-perturbed copies take their recording's templates.
    assert chosen["sp0.9-en_us-train-1-1001"] == chosen["en_us-train-1-1001"] == chosen["sp1.1-en_us-train-1-1001"]
    # Over many utterances, a language's draws cover its templates and never another language's.
    many = {f"de_de-train-{i}-1": "de_de" for i in range(200)}
    drawn = {t.index for picks in mi.sample_templates(many, templates, 2, 0).values() for t in picks}
    assert drawn == {2, 3, 4, 5}


def test_make_mi_targets_files_and_summary(tmp_path, monkeypatch):
    data = write_t_dir(tmp_path / "t")
    write_templates(tmp_path / "templates.yaml")
    generate = fake_generate(empty_when=lambda prompt: prompt.startswith("Paraphrase: kot."))
    monkeypatch.setattr(mi, "generate_to_file", generate)
    out = tmp_path / "mi"
    summary = mi.make_mi_targets(str(tmp_path / "t"), str(tmp_path / "templates.yaml"), str(out),
                                 llm=object(), tokenizer=object(), copies=2, seed=0)
    utts = set(data.utt2spk)
    chosen = mi.sample_templates(utt2lang_of(data), mi.usable_templates(mi.load_templates(
        str(tmp_path / "templates.yaml"))), 2, 0)
    # Polish utterances have one applicable template besides "any"-ones: 4, 5; "kot." + 5 -> empty response.
    polish = {u for u in utts if data.files["utt2lang"][u] == "pl_pl"}
    dropped = {(u, k) for u in polish for k in (1, 2) if chosen[u][k - 1].index == 5}
    assert dropped and len(dropped) == len(polish)  # both templates apply, one of them is 5
    for k in (1, 2):
        copy = {name: read_kv(str(out / f"copy{k}" / name))
                for name in ("text", "decoder_prefix", "decoder_postfix", "utt2template")}
        assert set(copy["text"]) == {u for u in utts if (u, k) not in dropped}
        for utt, response in copy["text"].items():
            template = chosen[utt][k - 1]
            prefix = unescape_instruction(copy["decoder_prefix"][utt])
            postfix = unescape_instruction(copy["decoder_postfix"][utt])
            assert (prefix, postfix) == (template.prefix, template.postfix)
            assert response == f"R[{prefix}{data.files['text'][utt]}{postfix}]".replace("\n", " ")
            assert copy["utt2template"][utt] == f"{template.index} {template.task}"
    # One generation per distinct prompt: speed-perturbed copies share their recording's prompts.
    (prompts,) = generate.calls
    assert len(prompts) == len({(chosen[u][k].index, data.files["text"][u]) for u in utts for k in (0, 1)})
    assert len(prompts) <= 2 * len(utts) // 3
    assert summary["utterances"] == len(utts) and summary["draws"] == 2 * len(utts)
    assert summary["distinct_prompts_generated"] == len(prompts)
    assert summary["templates_left_out_empty"] == 1
    assert sum(summary["copies_dropped_empty_response"].values()) == len(dropped)
    assert summary["utterances_with_all_copies"] == len(utts) - len(polish)
    assert yaml.safe_load((out / "summary.yaml").read_text()) == summary
    assert set(read_kv(str(out / "prompts"))) == set(prompts)


def test_utterances_without_template_are_dropped(tmp_path, monkeypatch):
    write_t_dir(tmp_path / "t", speed_perturbation=False)
    only_english = [Template(0, "A text in English: ", "\nThe same text in German:", "en_us", "de_de", "translation"),
                    Template(1, "English: ", "\nGerman:", "en_us", "de_de", "translation")]
    (tmp_path / "templates.yaml").write_text(dump_templates(only_english), encoding="utf-8")
    monkeypatch.setattr(mi, "generate_to_file", fake_generate())
    summary = mi.make_mi_targets(str(tmp_path / "t"), str(tmp_path / "templates.yaml"), str(tmp_path / "mi"),
                                 llm=object(), tokenizer=object(), copies=2, seed=3)
    kept = read_kv(str(tmp_path / "mi" / "copy1" / "text"))
    assert kept and all(u.startswith("en_us-") for u in kept)
    assert summary["utterances_without_template"] == summary["utterances"] - len(kept)


def test_cli_with_tiny_llm_reproducible(tiny_models, tmp_path):
    write_t_dir(tmp_path / "t")
    write_templates(tmp_path / "templates.yaml")

    def run(out, seed):
        mi.main(["--data_dir", str(tmp_path / "t"), "--templates", str(tmp_path / "templates.yaml"),
                 "--llm", tiny_models["llama"], "--output_dir", str(out), "--copies", "2", "--seed", str(seed),
                 "--batch_size", "4", "--max_new_tokens", "4", "--device", "cpu", "--no_progress"])
        return {k: {n: (out / f"copy{k}" / n).read_bytes() for n in ("text", "decoder_prefix", "decoder_postfix")}
                for k in (1, 2)}

    first = run(tmp_path / "a", 0)
    assert read_kv(str(tmp_path / "a" / "copy1" / "text"))
    assert not (tmp_path / "a" / "responses.partial").exists()
    assert run(tmp_path / "b", 0) == first  # same seed, same files
    assert run(tmp_path / "a", 0) == first  # re-run in place: idempotent
    assert run(tmp_path / "c", 5) != first
