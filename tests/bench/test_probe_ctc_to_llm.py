"""The probe's CTC segmentation: what the LLM is given when frames are grouped by CTC segment."""

from types import SimpleNamespace

import torch

from bench.probe_ctc_to_llm import compress, ctc_segments

BLANK = 0


def test_segments_merge_repeated_frames_and_drop_blanks_within_the_length():
    best = torch.tensor([0, 5, 5, 0, 5, 7, 7, 0, 9, 9])
    # The frames past the length (a padded tail) belong to no segment.
    assert ctc_segments(best, 8, BLANK) == [(1, 3, 5), (4, 5, 5), (5, 7, 7)]
    assert ctc_segments(torch.tensor([0, 0, 0]), 3, BLANK) == []


def fake_ctc_model(embedding_matrix: torch.Tensor):
    return SimpleNamespace(ctc=SimpleNamespace(
        blank_id=BLANK, embedding_matrix=embedding_matrix, logits=lambda hidden: hidden @ embedding_matrix.T))


def test_segment_vectors_are_frame_means_or_token_embeddings_and_padded_per_utterance():
    embedding_matrix = torch.eye(3) * 2.0  # token t's embedding points along axis t
    model = fake_ctc_model(embedding_matrix)
    frames = torch.tensor([
        [[0.0, 1.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],  # 1 1 blank 2
        [[1.0, 0.0, 0.0], [0.0, 0.0, 5.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],  # blank 2 | padding
    ])
    lengths = torch.tensor([4, 2])

    means, mean_lengths = compress(model, frames, lengths, "segment_mean")
    assert mean_lengths.tolist() == [2, 1]
    assert torch.equal(means[0], torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]))
    assert torch.equal(means[1], torch.tensor([[0.0, 0.0, 5.0], [0.0, 0.0, 0.0]]))

    tokens, token_lengths = compress(model, frames, lengths, "segment_token")
    assert token_lengths.tolist() == [2, 1]
    assert torch.equal(tokens[0], embedding_matrix[[1, 2]])
    assert torch.equal(tokens[1, 0], embedding_matrix[2])
