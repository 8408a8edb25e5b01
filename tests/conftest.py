"""Tiny models built once per test session with the project's stand-in builders."""

import pytest

from bloomzmms.standin import build_causal_lm, build_speech_encoder, train_tokenizer

SENTENCES = [
    "the red cat sees the small dog.",
    "der rote Hund sieht die kleine Katze.",
    "le chat rouge voit le petit chien.",
    "el perro rojo ve al gato pequeño.",
    "Repeat the sentence: ",
    "Translate the following text from English to German\n",
] * 4


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    train_tokenizer(SENTENCES, vocab_size=300, output_dir=str(root / "tokenizer"))
    build_causal_lm("bloom", str(root / "tokenizer"), str(root / "bloom"), hidden_size=32)
    build_causal_lm("llama", str(root / "tokenizer"), str(root / "llama"), hidden_size=32)
    build_speech_encoder(str(root / "speech_encoder"))
    return {name: str(root / name) for name in ("tokenizer", "bloom", "llama", "speech_encoder")}
