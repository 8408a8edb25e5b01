import subprocess

import pytest
import soundfile
import torch
from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

from bloomzmms.bin.infer import main as infer_main
from tests.asr.helpers import build_tiny_model

SENTENCES = {"en_us-1": ("en", "the red cat."), "de_de-2": ("de", "der rote Hund."), "fr_fr-3": ("fr", "le chat rouge voit.")}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    wav_lines = []
    for utt, (voice, text) in SENTENCES.items():
        raw = root / f"{utt}.22k.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
        samples, rate = soundfile.read(raw)
        soundfile.write(root / f"{utt}.wav", samples, rate)  # "sound" type reads any rate as is
        wav_lines.append(f"{utt} {root / f'{utt}.wav'}\n")
    (root / "wav.scp").write_text("".join(wav_lines))
    (root / "utt2spk").write_text("".join(f"{utt} {utt}\n" for utt in SENTENCES))
    return root


def trained_model_dir(tmp_path, tiny_models, stage):
    model, args = build_tiny_model(tmp_path / "build", tiny_models, stage)
    exp = tmp_path / "exp"
    exp.mkdir()
    with open(exp / "config.yaml", "w", encoding="utf-8") as f:
        yaml_no_alias_safe_dump(vars(args), f, indent=4, sort_keys=False)
    torch.save(model.state_dict(), exp / "model.pth")
    return exp


def read_lines(path):
    return dict(line.rstrip("\n").split(" ", 1) for line in open(path, encoding="utf-8"))


def test_llm_decoding_does_not_depend_on_batch_size(tmp_path, tiny_models, data_dir):
    exp = trained_model_dir(tmp_path, tiny_models, "llm")
    outputs = []
    for batch_size in (1, 3):
        out = tmp_path / f"decode_b{batch_size}"
        infer_main(["--asr_model_file", str(exp / "model.pth"), "--data_dir", str(data_dir), "--output_dir", str(out),
                    "--batch_size", str(batch_size), "--num_beams", "2", "--max_new_tokens", "4", "--device", "cpu"])
        outputs.append(read_lines(out / "text"))
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == set(SENTENCES)


def test_instruction_from_command_line_equals_same_instruction_per_utterance(tmp_path, tiny_models, data_dir):
    exp = trained_model_dir(tmp_path, tiny_models, "llm")
    prefix_file, postfix_file = tmp_path / "decoder_prefix", tmp_path / "decoder_postfix"
    prefix_file.write_text("".join(f"{utt} Translate the following text from English to German\n" for utt in SENTENCES))
    postfix_file.write_text("".join(f"{utt} \n" for utt in SENTENCES))
    common = ["--asr_model_file", str(exp / "model.pth"), "--data_dir", str(data_dir), "--batch_size", "2",
              "--num_beams", "1", "--max_new_tokens", "4", "--device", "cpu"]
    infer_main(common + ["--output_dir", str(tmp_path / "cli"), "--instruction_prefix", "Translate the following text from English to German",
                         "--instruction_postfix", ""])
    infer_main(common + ["--output_dir", str(tmp_path / "files"), "--instruction_prefix_file", str(prefix_file),
                         "--instruction_postfix_file", str(postfix_file)])
    infer_main(common + ["--output_dir", str(tmp_path / "default")])
    assert read_lines(tmp_path / "cli" / "text") == read_lines(tmp_path / "files" / "text")
    info = (tmp_path / "default" / "decode_info.yaml").read_text()
    assert "Repeat the sentence" in info


def test_ctc_model_decodes_greedily_and_predicts_languages(tmp_path, tiny_models, data_dir):
    exp = trained_model_dir(tmp_path, tiny_models, "ctc")
    out = tmp_path / "decode"
    infer_main(["--asr_model_file", str(exp / "model.pth"), "--data_dir", str(data_dir), "--output_dir", str(out),
                "--device", "cpu"])
    assert set(read_lines(out / "text")) == set(SENTENCES)
    assert set(read_lines(out / "utt2lang_hyp").values()) <= {"de_de", "en_us", "fr_fr"}
    with pytest.raises(ValueError, match="no LLM decoder"):
        infer_main(["--asr_model_file", str(exp / "model.pth"), "--data_dir", str(data_dir), "--output_dir", str(out),
                    "--decoding", "llm", "--device", "cpu"])


def test_decode_config_file_sets_defaults_and_rejects_unknown_keys(tmp_path):
    from bloomzmms.bin.infer import get_parser
    from bloomzmms.cli import parse_args_with_config

    config = tmp_path / "decode.yaml"
    config.write_text("num_beams: 3\nmax_new_tokens: 9\n")
    required = ["--asr_model_file", "m", "--data_dir", "d", "--output_dir", "o", "--config", str(config)]
    args = parse_args_with_config(get_parser(), required + ["--num_beams", "2"])
    assert (args.num_beams, args.max_new_tokens) == (2, 9)
    config.write_text("beam: 3\n")
    with pytest.raises(ValueError, match="beam"):
        parse_args_with_config(get_parser(), required)
    assert parse_args_with_config(get_parser(), required, strict=False).num_beams == 5
