import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from bloomzmms.asr.llm_ctc import LLMTiedCTC
from bloomzmms.tasks.asr import BloomzmmsASRTask
from tests.asr.helpers import build_tiny_model


def batch(vocab_size, seed=0):
    generator = torch.Generator().manual_seed(seed)
    text_lengths = torch.tensor([6, 4, 2])
    text = torch.randint(4, vocab_size, (3, 6), generator=generator)
    text[torch.arange(6)[None, :] >= text_lengths[:, None]] = -1
    return dict(
        speech=torch.randn(3, 16000, generator=generator),
        speech_lengths=torch.tensor([16000, 11000, 7000]),
        text=text,
        text_lengths=text_lengths,
        utt2lang=torch.tensor([[0], [1], [2]]),
        utt2lang_lengths=torch.ones(3, dtype=torch.long),
    )


@pytest.mark.parametrize("llm", ["bloom", "llama"])
@pytest.mark.parametrize("stage", ["ctc", "llm"])
def test_forward_backward_trains_only_the_trainable_parts(tmp_path, tiny_models, stage, llm):
    model, _ = build_tiny_model(tmp_path, tiny_models, stage, llm)
    loss, stats, weight = model(**batch(len(model.token_list)))
    assert torch.isfinite(loss) and loss > 0
    assert int(weight) == 3
    loss.backward()
    assert model.encoder.encoders[0].merge_proj.weight.grad.abs().sum() > 0
    assert model.adaptor.projection.weight.grad.abs().sum() > 0
    assert model.frontend.layer_weights.grad is not None
    assert all(p.grad is None for p in model.frontend.encoder.parameters())
    if stage == "llm":
        assert all(p.grad is None for p in model.decoder.llm.parameters())
        assert "loss_llm" in stats and "acc" in stats


def test_lid_loss_finite_and_positive_on_a_real_batch(tmp_path, tiny_models):
    model, _ = build_tiny_model(tmp_path, tiny_models, "ctc")
    model.eval()
    with torch.no_grad():
        _, stats, _ = model(**batch(len(model.token_list)))
    assert math.isfinite(float(stats["loss_lid"])) and float(stats["loss_lid"]) > 0
    assert 0.0 <= float(stats["acc_lid"]) <= 1.0
    assert math.isfinite(float(stats["cer_ctc"]))


def test_lid_targets_are_required_when_lid_is_trained(tmp_path, tiny_models):
    model, _ = build_tiny_model(tmp_path, tiny_models, "ctc")
    data = batch(len(model.token_list))
    del data["utt2lang"], data["utt2lang_lengths"]
    with pytest.raises(ValueError, match="utt2lang"):
        model(**data)


@pytest.mark.parametrize("llm", ["bloom", "llama"])
def test_ctc_head_is_the_llm_embedding_matrix_after_build_and_checkpoint_round_trip(tmp_path, tiny_models, llm):
    model, args = build_tiny_model(tmp_path / "a", tiny_models, "ctc", llm)
    embeddings = AutoModelForCausalLM.from_pretrained(tiny_models[llm]).get_input_embeddings().weight
    vocab_size = len(model.token_list)
    assert embeddings.size(0) > vocab_size  # the LLM has padding rows: the head slices them off
    assert torch.equal(model.ctc.embedding_matrix, embeddings[:vocab_size])
    assert not model.ctc.embedding_matrix.requires_grad

    checkpoint = tmp_path / "model.pth"
    torch.save(model.state_dict(), checkpoint)
    reloaded, _ = build_tiny_model(tmp_path / "b", tiny_models, "ctc", llm)
    reloaded.load_state_dict(torch.load(checkpoint))
    assert torch.equal(reloaded.ctc.embedding_matrix, embeddings[:vocab_size])
    for key, value in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def test_ctc_head_fails_loudly_on_shape_mismatch(tiny_models):
    with pytest.raises(ValueError, match="adaptor outputs 48"):
        LLMTiedCTC(100, 48, llm_name_or_path=tiny_models["bloom"])
    with pytest.raises(ValueError, match="token list has 5000 entries"):
        LLMTiedCTC(5000, 32, llm_name_or_path=tiny_models["bloom"])


def test_ctc_warns_once_about_utterances_it_cannot_align(tiny_models, caplog):
    head = LLMTiedCTC(100, 32, llm_name_or_path=tiny_models["bloom"])
    hidden = torch.randn(2, 4, 32)
    # 4 frames: 4 distinct tokens fit; 3 tokens with a repeat need a blank between them (4) and
    # fit; 4 tokens with a repeat (5 frames) do not.
    fitting = torch.tensor([[5, 6, 7, 8], [5, 5, 6, -1]])
    with caplog.at_level("WARNING"):
        head.loss(hidden, torch.tensor([4, 4]), fitting, torch.tensor([4, 3]))
        assert not caplog.records
        unalignable = torch.tensor([[5, 5, 6, 7], [5, 6, 7, 8]])
        loss = head.loss(hidden, torch.tensor([4, 4]), unalignable, torch.tensor([4, 4]))
        head.loss(hidden, torch.tensor([4, 4]), unalignable, torch.tensor([4, 4]))
    assert torch.isfinite(loss)
    assert len(caplog.records) == 1 and "1 of 2 utterances" in caplog.records[0].getMessage()


@pytest.mark.parametrize("stage", ["ctc", "llm"])
def test_no_frozen_pretrained_weight_in_checkpoint_or_optimizer(tmp_path, tiny_models, stage):
    model, args = build_tiny_model(tmp_path, tiny_models, stage)
    state = model.state_dict()
    assert not [key for key in state if key.startswith("frontend.encoder.")]
    assert "ctc.embedding_matrix" not in state
    assert not [key for key in state if key.startswith("decoder.")]
    args.optim, args.optim_conf = "adam", {"lr": 1e-3}
    (optimizer,) = BloomzmmsASRTask.build_optimizers(args, model)
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    frozen = list(model.frontend.encoder.parameters())
    if stage == "llm":
        frozen += list(model.decoder.llm.parameters())
    assert frozen and not any(id(p) in optimized for p in frozen)
    assert all(p.requires_grad for group in optimizer.param_groups for p in group["params"])


def test_loading_is_strict_about_trained_weights(tmp_path, tiny_models):
    model, _ = build_tiny_model(tmp_path, tiny_models, "ctc")
    state = model.state_dict()
    missing = dict(state)
    del missing["adaptor.projection.weight"]
    with pytest.raises(RuntimeError, match="adaptor.projection.weight"):
        model.load_state_dict(missing, strict=False)
    unexpected = dict(state, **{"decoder.stray.weight": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="decoder.stray.weight"):
        model.load_state_dict(unexpected, strict=False)


def test_exported_embedding_file_is_accepted_as_pretrained_model(tmp_path, tiny_models):
    model, _ = build_tiny_model(tmp_path, tiny_models, "ctc")
    wrong = {"ctc.ctc_lo.weight": torch.zeros(7, 32)}
    with pytest.raises(ValueError, match="ctc.embedding_matrix"):
        model.load_state_dict({**model.state_dict(), **wrong})
    exported = {"ctc.ctc_lo.weight": model.ctc.embedding_matrix * 2}
    model.load_state_dict({**model.state_dict(), **exported})
    assert torch.equal(model.ctc.embedding_matrix, exported["ctc.ctc_lo.weight"])
