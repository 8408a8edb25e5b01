"""Building the LLM input ``[prefix, speech, postfix, target]`` per utterance, for a whole batch.

The batch is assembled with tensor scatter/gather (one step per segment kind, none per
utterance); ``reference_*`` are the plain per-utterance versions the vectorized ones are tested
and benchmarked against.
"""

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch

Segment = Tuple[torch.Tensor, torch.Tensor]  # (values (B, L, H), lengths (B,))


@dataclass
class LLMInputs:
    embeds: torch.Tensor  # (B, N, H)
    attention_mask: torch.Tensor  # (B, N), 1 on real positions
    segment_starts: torch.Tensor  # (B, K) position of each segment's first element
    total_lengths: torch.Tensor  # (B,)


def build_llm_inputs(segments: Sequence[Segment], padding_side: str = "right") -> LLMInputs:
    """Concatenate each utterance's segments without gaps; pad on ``padding_side``.

    Right padding keeps the default positions 0..n-1 of every row correct (training); left
    padding lets generation append to every row at once.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    values0 = segments[0][0]
    batch_size, hidden_size, device = values0.size(0), values0.size(2), values0.device
    lengths = torch.stack([segment_lengths for _, segment_lengths in segments], dim=1)
    total_lengths = lengths.sum(1)
    max_length = int(total_lengths.max())
    shift = max_length - total_lengths if padding_side == "left" else torch.zeros_like(total_lengths)
    segment_starts = shift[:, None] + torch.cumsum(lengths, dim=1) - lengths

    embeds = values0.new_zeros(batch_size, max_length, hidden_size)
    for index, (values, segment_lengths) in enumerate(segments):
        offsets = torch.arange(values.size(1), device=device)
        valid = offsets[None, :] < segment_lengths[:, None]
        rows = torch.arange(batch_size, device=device)[:, None].expand_as(valid)[valid]
        columns = (segment_starts[:, index : index + 1] + offsets[None, :])[valid]
        embeds = embeds.index_put((rows, columns), values[valid].to(embeds.dtype))
    positions = torch.arange(max_length, device=device)[None, :]
    attention_mask = (positions >= shift[:, None]) & (positions < (shift + total_lengths)[:, None])
    return LLMInputs(embeds, attention_mask.long(), segment_starts, total_lengths)


def gather_positions(hidden: torch.Tensor, start: torch.Tensor, count: int) -> torch.Tensor:
    """``hidden[b, start[b] + j]`` for j < count, as (B, count, H); out-of-range reads clamp."""
    positions = (start[:, None] + torch.arange(count, device=hidden.device)[None, :])
    positions = positions.clamp(0, hidden.size(1) - 1)
    return torch.gather(hidden, 1, positions[..., None].expand(-1, -1, hidden.size(2)))


def reference_build_llm_inputs(segments: Sequence[Segment], padding_side: str = "right") -> LLMInputs:
    """Per-utterance loop computing the same as :func:`build_llm_inputs`."""
    values0 = segments[0][0]
    rows: List[torch.Tensor] = []
    starts = []
    for b in range(values0.size(0)):
        pieces, row_starts, position = [], [], 0
        for values, lengths in segments:
            row_starts.append(position)
            pieces.append(values[b, : int(lengths[b])].to(values0.dtype))
            position += int(lengths[b])
        rows.append(torch.cat(pieces, dim=0))
        starts.append(row_starts)
    max_length = max(row.size(0) for row in rows)
    embeds, masks, shifted_starts = [], [], []
    for row, row_starts in zip(rows, starts):
        pad = values0.new_zeros(max_length - row.size(0), values0.size(2))
        ones = torch.ones(row.size(0), dtype=torch.long, device=row.device)
        zeros = torch.zeros(pad.size(0), dtype=torch.long, device=row.device)
        if padding_side == "left":
            embeds.append(torch.cat([pad, row]))
            masks.append(torch.cat([zeros, ones]))
            shifted_starts.append([s + pad.size(0) for s in row_starts])
        else:
            embeds.append(torch.cat([row, pad]))
            masks.append(torch.cat([ones, zeros]))
            shifted_starts.append(row_starts)
    device = values0.device
    return LLMInputs(
        torch.stack(embeds),
        torch.stack(masks),
        torch.tensor(shifted_starts, device=device),
        torch.tensor([row.size(0) for row in rows], device=device),
    )


def reference_gather_positions(hidden: torch.Tensor, start: torch.Tensor, count: int) -> torch.Tensor:
    """Per-utterance slicing computing the same as :func:`gather_positions` on valid positions."""
    out = hidden.new_zeros(hidden.size(0), count, hidden.size(2))
    for b in range(hidden.size(0)):
        piece = hidden[b, int(start[b]) : int(start[b]) + count]
        out[b, : piece.size(0)] = piece
    return out
