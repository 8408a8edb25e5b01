"""Tests of bloomzmms.bin.llm_generate: batched generation, resume, instruction files."""

import json

import pytest
import torch

from bloomzmms.bin import llm_generate
from bloomzmms.datadir import read_kv, write_kv
from bloomzmms.instructions import escape_instruction

PROMPTS = [
    "Repeat the sentence: the red cat sees the small dog.. ",
    "A text in English: der rote Hund\nThe same text in German:",
    "le chat",
    "el perro rojo ve al gato pequeño. The previous text is in Spanish. Here is a translation to English:",
    "x",
    "",
    "Translate the following text from English to German\nthe small dog\n",
]
TEXTS = {"b": "the small dog", "a": "der rote Hund sieht", "c": "", "d": "le chat rouge voit le petit chien."}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: threads only contend (much slower on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bloom(tiny_models):
    return llm_generate.load_llm(tiny_models["bloom"])


def test_batched_equals_one_at_a_time(bloom):
    llm, tokenizer = bloom
    batched = llm_generate.generate_responses(llm, tokenizer, PROMPTS, batch_size=3, max_new_tokens=12,
                                              progress=False)
    single = [llm_generate.generate_responses(llm, tokenizer, [p], batch_size=1, max_new_tokens=12,
                                              progress=False)[0] for p in PROMPTS]
    assert batched == single
    assert batched[PROMPTS.index("")] == ""
    assert all("\n" not in r and r == r.strip() for r in batched)
    # Bounded: never more new tokens than asked.
    assert all(len(tokenizer(r, add_special_tokens=False)["input_ids"]) <= 12 + 1 for r in batched)


@pytest.mark.parametrize("num_beams", [1, 2])
def test_batched_equals_one_at_a_time_llama(tiny_models, num_beams):
    llm, tokenizer = llm_generate.load_llm(tiny_models["llama"])
    batched = llm_generate.generate_responses(llm, tokenizer, PROMPTS, batch_size=4, num_beams=num_beams,
                                              max_new_tokens=6, progress=False)
    single = [llm_generate.generate_responses(llm, tokenizer, [p], num_beams=num_beams, max_new_tokens=6,
                                              progress=False)[0] for p in PROMPTS]
    assert batched == single
    assert len(set(batched)) > 3  # not a degenerate model


def test_plan_is_longest_first_and_skips_empty():
    plan = llm_generate.plan_batches([[1], [1, 2, 3], [], [4, 5], [6, 7, 8]], batch_size=2)
    assert plan == [[1, 4], [3, 0]]
    with pytest.raises(ValueError):
        llm_generate.plan_batches([[1]], 0)


def write_inputs(tmp_path):
    write_kv(str(tmp_path / "text"), TEXTS)
    write_kv(str(tmp_path / "prefix"), {k: escape_instruction(p) for k, p in
                                         {"a": "A text in German: ", "b": "Repeat the sentence: ", "c": "",
                                          "d": "Translate the following text from French to English\n"}.items()})
    write_kv(str(tmp_path / "postfix"), {k: escape_instruction(p) for k, p in
                                          {"a": "\nThe same text in English:", "b": ". ", "c": " Here:",
                                           "d": "\n"}.items()})


def test_read_prompts_files_and_strings(tmp_path):
    write_inputs(tmp_path)
    prompts = llm_generate.read_prompts(str(tmp_path / "text"), prefix_file=str(tmp_path / "prefix"),
                                        postfix_file=str(tmp_path / "postfix"))
    assert prompts == {"a": "A text in German: der rote Hund sieht\nThe same text in English:",
                       "b": "Repeat the sentence: the small dog. ", "c": " Here:",
                       "d": "Translate the following text from French to English\nle chat rouge voit le petit chien.\n"}
    same = llm_generate.read_prompts(str(tmp_path / "text"), prefix="Repeat the sentence:\\s", postfix=".\\n")
    assert same["b"] == "Repeat the sentence: the small dog.\n" and same["c"] == "Repeat the sentence: .\n"
    write_kv(str(tmp_path / "short"), {"a": "x"})
    with pytest.raises(ValueError, match="no prefix"):
        llm_generate.read_prompts(str(tmp_path / "text"), prefix_file=str(tmp_path / "short"))


def run_cli(tiny_models, tmp_path, output, *extra):
    llm_generate.main(["--llm", tiny_models["bloom"], "--input", str(tmp_path / "text"), "--output", str(output),
                       "--prefix_file", str(tmp_path / "prefix"), "--postfix_file", str(tmp_path / "postfix"),
                       "--batch_size", "2", "--max_new_tokens", "8", "--device", "cpu", "--no_progress", *extra])


def test_cli_output_sorted_and_resume_gives_same_output(tiny_models, tmp_path, bloom):
    write_inputs(tmp_path)
    full = tmp_path / "full" / "responses"
    run_cli(tiny_models, tmp_path, full)
    expected = read_kv(str(full))
    assert list(expected) == sorted(TEXTS)
    assert full.read_text(encoding="utf-8").count("\n") == len(TEXTS)
    assert not (full.parent / "responses.partial").exists()
    prompts = llm_generate.read_prompts(str(tmp_path / "text"), prefix_file=str(tmp_path / "prefix"),
                                        postfix_file=str(tmp_path / "postfix"))
    llm, tokenizer = bloom
    keys = sorted(prompts)
    direct = llm_generate.generate_responses(llm, tokenizer, [prompts[k] for k in keys], batch_size=2,
                                             max_new_tokens=8, progress=False)
    assert expected == dict(zip(keys, direct))

    # An interrupted run: the partial file holds the first batch (the two longest prompts) and a
    # torn line; a resumed run must write exactly the same and not regenerate what is done.
    resumed = tmp_path / "resumed" / "responses"
    resumed.parent.mkdir()
    partial = resumed.parent / "responses.partial"
    settings = {"llm": tiny_models["bloom"], "dtype": "float32", "quantization": None, "device_type": "cpu",
                "batch_size": 2, "num_beams": 1, "max_new_tokens": 8}
    first_batch = llm_generate.plan_batches(llm_generate.encode_prompts(tokenizer, [prompts[k] for k in keys]), 2)[0]
    lines = [json.dumps({"format": llm_generate.PARTIAL_FORMAT, "settings": settings})]
    marker = "DONE-BEFORE"
    for i in first_batch:
        lines.append(json.dumps({"key": keys[i], "prompt": llm_generate.prompt_digest(prompts[keys[i]]),
                                 "response": marker + keys[i]}))
    partial.write_text("\n".join(lines) + '\n{"key": "torn', encoding="utf-8")
    run_cli(tiny_models, tmp_path, resumed)
    got = read_kv(str(resumed))
    assert {keys[i] for i in first_batch} == {k for k, v in got.items() if v.startswith(marker)}
    assert {k: v for k, v in got.items() if not v.startswith(marker)} == \
        {k: v for k, v in expected.items() if k not in {keys[i] for i in first_batch}}
    assert not partial.exists()

    # A genuine interruption: the real first batch's results, then resume -> identical file.
    lines = lines[:1] + [json.dumps({"key": keys[i], "prompt": llm_generate.prompt_digest(prompts[keys[i]]),
                                     "response": expected[keys[i]]}) for i in first_batch]
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_cli(tiny_models, tmp_path, resumed)
    assert resumed.read_bytes() == full.read_bytes()


def test_partial_from_other_settings_is_not_reused(tiny_models, tmp_path):
    write_inputs(tmp_path)
    output = tmp_path / "out" / "responses"
    output.parent.mkdir()
    partial = output.parent / "responses.partial"
    header = {"format": llm_generate.PARTIAL_FORMAT, "settings": {"llm": "other"}}
    partial.write_text(json.dumps(header) + "\n" + json.dumps({"key": "a", "prompt": "x", "response": "stale"})
                       + "\n", encoding="utf-8")
    run_cli(tiny_models, tmp_path, output)
    assert "stale" not in output.read_text(encoding="utf-8")
    assert (output.parent / "responses.partial.stale").exists()


def test_cli_instruction_strings(tiny_models, tmp_path):
    write_kv(str(tmp_path / "text"), TEXTS)
    output = tmp_path / "out"
    llm_generate.main(["--llm", tiny_models["bloom"], "--input", str(tmp_path / "text"), "--output", str(output),
                       "--instruction_prefix", "Repeat the sentence:\\s", "--instruction_postfix", ". ",
                       "--max_new_tokens", "4", "--device", "cpu", "--no_progress"])
    assert set(read_kv(str(output))) == set(TEXTS)
