import pytest
import torch

from bloomzmms.asr.llm_decoder import HFCausalLMDecoder, pad_token_lists


@pytest.fixture(scope="module", params=["bloom", "llama"])
def decoder(request, tiny_models):
    return HFCausalLMDecoder(vocab_size=300, encoder_output_size=32, model_name_or_path=tiny_models[request.param])


def speech_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 9, 2, 7])
    return torch.randn(4, 9, 32, generator=generator), lengths


@pytest.mark.parametrize("num_beams", [1, 3])
def test_batched_generation_equals_one_at_a_time(decoder, num_beams):
    speech, lengths = speech_batch()
    prefixes = [decoder.encode_text(text).tolist() for text in ("Repeat the sentence: ", "", "Translate", "le")]
    postfixes = [decoder.encode_text(text).tolist() for text in (". ", "\n", "", ". ")]
    prefix, prefix_lengths = pad_token_lists(prefixes)
    postfix, postfix_lengths = pad_token_lists(postfixes)
    batched = decoder.generate(
        speech, lengths, prefix, prefix_lengths, postfix, postfix_lengths, num_beams=num_beams, max_new_tokens=6
    )
    for index in range(4):
        one_prefix, one_prefix_lengths = pad_token_lists([prefixes[index]])
        one_postfix, one_postfix_lengths = pad_token_lists([postfixes[index]])
        single = decoder.generate(
            speech[index : index + 1, : lengths[index]],
            lengths[index : index + 1],
            one_prefix,
            one_prefix_lengths,
            one_postfix,
            one_postfix_lengths,
            num_beams=num_beams,
            max_new_tokens=6,
        )
        assert batched[index] == single[0]
    assert any(len(tokens) > 0 for tokens in batched)


def test_default_instruction_is_used_without_per_utterance_instructions(decoder):
    speech, lengths = speech_batch(1)
    prefix, prefix_lengths = pad_token_lists([decoder.default_prefix_ids.tolist()] * 4)
    postfix, postfix_lengths = pad_token_lists([decoder.default_postfix_ids.tolist()] * 4)
    explicit = decoder.generate(speech, lengths, prefix, prefix_lengths, postfix, postfix_lengths, max_new_tokens=4)
    assert decoder.generate(speech, lengths, max_new_tokens=4) == explicit


def test_training_logits_match_the_llm_run_on_each_utterance_alone(decoder):
    """The target span's logits equal a plain HF forward over one utterance's full input."""
    speech, lengths = speech_batch(2)
    targets, target_lengths = pad_token_lists([[5, 6, 7], [8], [9, 10], [11, 12, 13]])
    logits, logit_lengths = decoder(speech, lengths, targets, target_lengths)
    assert logit_lengths.tolist() == [4, 2, 3, 4]
    llm = decoder.llm
    embed = llm.get_input_embeddings()
    for index in range(4):
        pieces = [
            embed(decoder.default_prefix_ids),
            speech[index, : lengths[index]],
            embed(decoder.default_postfix_ids),
            embed(targets[index, : target_lengths[index]]),
        ]
        row = torch.cat(pieces)[None]
        expected = llm(inputs_embeds=row).logits[0, -(int(target_lengths[index]) + 1) :]
        torch.testing.assert_close(logits[index, : logit_lengths[index]], expected, rtol=1e-4, atol=1e-5)


def test_hidden_size_mismatch_is_reported(tiny_models):
    with pytest.raises(ValueError, match="hidden size 32"):
        HFCausalLMDecoder(vocab_size=300, encoder_output_size=64, model_name_or_path=tiny_models["bloom"])


def test_quantization_needs_cuda(tiny_models):
    decoder = HFCausalLMDecoder(
        vocab_size=300, encoder_output_size=32, model_name_or_path=tiny_models["bloom"], quantization="8bit"
    )
    with pytest.raises(RuntimeError, match="CUDA"):
        decoder.llm_on(torch.device("cpu"))
