import pytest
import torch

from bloomzmms.asr.llm_inputs import (
    build_llm_inputs,
    gather_positions,
    reference_build_llm_inputs,
    reference_gather_positions,
)


def random_segments(generator, batch_size, hidden_size=8):
    segments = []
    for max_length, allow_empty in ((4, True), (9, False), (3, True), (6, False)):
        lengths = torch.randint(0 if allow_empty else 1, max_length + 1, (batch_size,), generator=generator)
        lengths[0] = 0 if allow_empty else lengths[0]  # always one empty prefix/postfix
        width = max(1, int(lengths.max()))
        segments.append((torch.randn(batch_size, width, hidden_size, generator=generator), lengths))
    return segments


@pytest.mark.parametrize("padding_side", ["left", "right"])
@pytest.mark.parametrize("seed", range(5))
def test_vectorized_builder_equals_per_utterance_reference(padding_side, seed):
    generator = torch.Generator().manual_seed(seed)
    segments = random_segments(generator, batch_size=6)
    fast = build_llm_inputs(segments, padding_side)
    slow = reference_build_llm_inputs(segments, padding_side)
    assert torch.equal(fast.attention_mask, slow.attention_mask)
    assert torch.equal(fast.segment_starts, slow.segment_starts)
    assert torch.equal(fast.total_lengths, slow.total_lengths)
    assert torch.equal(fast.embeds, slow.embeds)


def test_builder_places_each_segment_contiguously():
    prefix = torch.tensor([[[1.0], [2.0]], [[0.0], [0.0]]])
    speech = torch.tensor([[[5.0], [0.0]], [[6.0], [7.0]]])
    segments = [(prefix, torch.tensor([2, 0])), (speech, torch.tensor([1, 2]))]
    right = build_llm_inputs(segments, "right")
    assert right.embeds[..., 0].tolist() == [[1.0, 2.0, 5.0], [6.0, 7.0, 0.0]]
    assert right.attention_mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    left = build_llm_inputs(segments, "left")
    assert left.embeds[..., 0].tolist() == [[1.0, 2.0, 5.0], [0.0, 6.0, 7.0]]
    assert left.segment_starts.tolist() == [[0, 2], [1, 1]]


def test_builder_gradient_reaches_speech():
    speech = torch.randn(2, 3, 4, requires_grad=True)
    prefix = torch.randn(2, 2, 4)
    inputs = build_llm_inputs([(prefix, torch.tensor([2, 1])), (speech, torch.tensor([3, 2]))])
    inputs.embeds.sum().backward()
    assert speech.grad[0].abs().sum() > 0
    assert speech.grad[1, 2].abs().sum() == 0  # padded speech frame is not used


def test_gather_equals_reference_on_valid_positions():
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(4, 12, 5, generator=generator)
    start = torch.tensor([0, 3, 5, 2])
    count = 6
    fast = gather_positions(hidden, start, count)
    slow = reference_gather_positions(hidden, start, count)
    assert torch.equal(fast, slow)
