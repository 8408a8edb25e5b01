"""Small stand-in models built locally: a byte-level BPE tokenizer, tiny causal LMs of the BLOOM
and Llama architectures, and a tiny wav2vec2 speech encoder.

They load back with ``from_pretrained`` exactly like hub models, so the real loading code runs
on machines without network access (the bundled mini recipe and the tests).
"""

from pathlib import Path
from typing import Iterable, Optional, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    BloomConfig,
    BloomForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Wav2Vec2Config,
    Wav2Vec2Model,
)

# BLOOM's special-token ids, kept so that configs written for BLOOMZ (blank <pad> = 3) hold.
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]


def train_tokenizer(texts: Iterable[str], vocab_size: int, output_dir: str) -> PreTrainedTokenizerFast:
    """Byte-level BPE tokenizer trained on ``texts``, saved to ``output_dir``."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",
    )
    wrapped.save_pretrained(output_dir)
    return wrapped


def causal_lm_config(
    architecture: str,
    tokenizer,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    vocab_padding: int = 8,
):
    """Config of a ``bloom`` or ``llama`` causal LM over ``tokenizer``'s vocabulary.

    The embedding matrix gets ``vocab_padding`` extra rows, as BLOOM's has (250,880 rows for
    250,680 tokens), so the CTC head's slicing is exercised.
    """
    vocab_size = len(tokenizer) + vocab_padding
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    if architecture == "bloom":
        return BloomConfig(vocab_size=vocab_size, hidden_size=hidden_size, n_layer=num_layers, n_head=num_heads, **ids)
    if architecture == "llama":
        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 2,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=max(1, num_heads // 2),
            max_position_embeddings=2048,
            tie_word_embeddings=False,
            **ids,
        )
    raise ValueError(f"architecture must be 'bloom' or 'llama', got {architecture!r}")


def build_causal_lm(
    architecture: str,
    tokenizer_dir: str,
    output_dir: str,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    vocab_padding: int = 8,
    seed: int = 0,
):
    """A randomly initialized ``bloom`` or ``llama`` causal LM (see ``causal_lm_config``), saved
    with its tokenizer to ``output_dir``."""
    import torch

    torch.manual_seed(seed)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    config = causal_lm_config(architecture, tokenizer, hidden_size, num_layers, num_heads, vocab_padding)
    model = (BloomForCausalLM if architecture == "bloom" else LlamaForCausalLM)(config)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return model


def speech_encoder_config(
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    conv_dim: Optional[Sequence[int]] = None,
    conv_kernel: Sequence[int] = (10, 3, 3, 3, 3, 2, 2),
    conv_stride: Sequence[int] = (5, 2, 2, 2, 2, 2, 2),
    intermediate_size: Optional[int] = None,
    num_conv_pos_embeddings: int = 16,
    num_conv_pos_embedding_groups: int = 4,
    vocab_size: int = 32,
    mask_time_prob: float = 0.0,
) -> Wav2Vec2Config:
    """Config of a tiny wav2vec2 encoder laid out like MMS: layer-normalized conv feature encoder
    (20 ms frames at 16 kHz with the default strides), pre-LN transformer, no dropout or layer
    drop. ``vocab_size`` is the CTC head's (blank = pad id 0) when built as Wav2Vec2ForCTC."""
    conv_dim = tuple(conv_dim or (32,) * len(conv_stride))
    if not len(conv_dim) == len(conv_kernel) == len(conv_stride):
        raise ValueError("conv_dim, conv_kernel and conv_stride must have one entry per conv layer")
    return Wav2Vec2Config(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size or hidden_size * 2,
        conv_dim=conv_dim,
        conv_kernel=tuple(conv_kernel),
        conv_stride=tuple(conv_stride),
        conv_bias=True,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=num_conv_pos_embeddings,
        num_conv_pos_embedding_groups=num_conv_pos_embedding_groups,
        mask_time_prob=mask_time_prob,
        layerdrop=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        vocab_size=vocab_size,
        pad_token_id=0,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )


def build_speech_encoder(
    output_dir: str,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    conv_dim: Optional[tuple] = None,
    seed: int = 0,
):
    """A tiny wav2vec2 encoder (20 ms frames at 16 kHz, like MMS), randomly initialized."""
    import torch

    torch.manual_seed(seed)
    config = speech_encoder_config(hidden_size, num_layers, num_heads, conv_dim)
    model = Wav2Vec2Model(config)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    return model
