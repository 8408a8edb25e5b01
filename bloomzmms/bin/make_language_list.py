"""Stage 6: language-ID targets: the list of languages of the training set.

Every utterance of every given data dir must have a language in ``utt2lang``; the training
set's languages, sorted, become the classes of the LID head (index = line number). A validation
or test language absent from training is reported: the LID head cannot predict it.

Usage:
    python -m bloomzmms.bin.make_language_list --train_dir dump/raw/train_t_sp \\
        --other_dirs dump/raw/dev_fleurs --output data/lang_list
"""

import argparse
import logging
import sys
from pathlib import Path

from bloomzmms.datadir import read_kv


def languages_of(data_dir: str) -> set:
    utt2lang, utt2spk = Path(data_dir) / "utt2lang", read_kv(str(Path(data_dir) / "utt2spk"))
    if not utt2lang.exists():
        raise FileNotFoundError(f"{utt2lang}: missing (language-ID targets need one language per utterance)")
    mapping = read_kv(str(utt2lang))
    missing = sorted(set(utt2spk) - set(mapping))
    if missing:
        raise ValueError(f"{utt2lang}: {len(missing)} utterances have no language, e.g. {missing[:3]}")
    empty = sorted(utt for utt, code in mapping.items() if not code.strip())
    if empty:
        raise ValueError(f"{utt2lang}: {len(empty)} utterances have an empty language, e.g. {empty[:3]}")
    return set(mapping.values())


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_dir", required=True)
    parser.add_argument("--other_dirs", nargs="*", default=[])
    parser.add_argument("--output", required=True)
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    languages = sorted(languages_of(args.train_dir))
    for other in args.other_dirs:
        unseen = sorted(languages_of(other) - set(languages))
        if unseen:
            logging.warning(f"{other}: languages not in training, the LID head cannot predict them: {unseen}")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(code + "\n" for code in languages), encoding="utf-8")
    logging.info(f"{output}: {len(languages)} languages")


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError) as error:
        sys.exit(f"make_language_list: error: {error}")
