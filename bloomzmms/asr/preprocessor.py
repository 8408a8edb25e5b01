"""Turns one utterance's raw data into arrays: LLM token ids, instruction ids, language index."""

from typing import Dict, List, Optional, Union

import numpy as np
from espnet2.text.cleaner import TextCleaner
from espnet2.train.preprocessor import AbsPreprocessor

from bloomzmms.asr.llm import load_tokenizer
from bloomzmms.instructions import unescape_instruction

TOKEN_KEYS = ("text", "decoder_prefix", "decoder_postfix")


class BloomzmmsPreprocessor(AbsPreprocessor):
    """Tokenizes with the LLM's own tokenizer (no special tokens), so ids are LLM ids.

    Args:
        train: training mode (ESPnet passes it; nothing here is random).
        tokenizer_name_or_path: the LLM's tokenizer.
        language_list: language codes; ``utt2lang`` values become their index.
        token_id_input: the ``text``/``decoder_prefix``/``decoder_postfix`` values are already
            space-separated token ids (the published multi-instruction targets), possibly empty.
        text_cleaner: ESPnet cleaner applied to ``text`` given as text (e.g. ``whisper_basic``).
        vocab_size: ids must be below it (the token list's size).
    """

    def __init__(
        self,
        train: bool,
        tokenizer_name_or_path: str,
        language_list: Optional[List[str]] = None,
        token_id_input: bool = False,
        text_cleaner: Optional[Union[str, List[str]]] = None,
        vocab_size: Optional[int] = None,
    ):
        super().__init__(train)
        self.tokenizer = load_tokenizer(tokenizer_name_or_path)
        self.language_index = {code: index for index, code in enumerate(language_list or [])}
        self.token_id_input = token_id_input
        self.text_cleaner = TextCleaner(text_cleaner) if text_cleaner else None
        self.vocab_size = vocab_size

    def token_ids(self, uid: str, key: str, value) -> np.ndarray:
        if not isinstance(value, str):
            ids = np.asarray(value, dtype=np.int64)
        elif self.token_id_input:
            try:
                ids = np.array([int(token) for token in value.split()], dtype=np.int64)
            except ValueError as error:
                raise ValueError(f"utterance {uid}: {key} is not a token-id sequence: {value!r}") from error
        else:
            if key == "text" and self.text_cleaner is not None:
                value = self.text_cleaner(value)
            elif key != "text":
                value = unescape_instruction(value)
            ids = np.array(self.tokenizer(value, add_special_tokens=False)["input_ids"], dtype=np.int64)
        if self.vocab_size is not None and ids.size and ids.max() >= self.vocab_size:
            raise ValueError(f"utterance {uid}: {key} has token id {ids.max()} >= token list size {self.vocab_size}")
        return ids

    def __call__(self, uid: str, data: Dict[str, Union[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        data = dict(data)
        for key in TOKEN_KEYS:
            if key in data:
                data[key] = self.token_ids(uid, key, data[key])
        if "utt2lang" in data:
            code = data["utt2lang"].strip()
            if code not in self.language_index:
                raise ValueError(f"utterance {uid}: language {code!r} is not in the language list")
            data["utt2lang"] = np.array([self.language_index[code]], dtype=np.int64)
        if "speech" in data and data["speech"].ndim > 1:
            raise ValueError(f"utterance {uid}: speech has shape {data['speech'].shape}, expected mono")
        return data
