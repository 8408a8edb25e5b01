"""Train a BLOOMZMMS model with ESPnet's trainer (stage 1 CTC or stage 2 cross-entropy).

Everything ESPnet's ``asr_train`` offers works: ``--config``, ``--ngpu`` (DDP per node),
``--dist_*``/``--multiprocessing_distributed`` for several nodes, ``--resume``, ``--init_param``
(``path:src_key:dst_key:exclude``), ``--best_model_criterion``, ``--keep_nbest_models``
(averaged at the end), ``--collect_stats``.

Usage:
    python -m bloomzmms.bin.train --config conf/tuning/train_..._ctc.yaml \\
        --token_list data/token_list/llm/tokens.txt --language_list data/lang_list \\
        --train_data_path_and_name_and_type dump/raw/train/wav.scp,speech,sound ... \\
        --output_dir exp/asr_train
"""

from bloomzmms.tasks.asr import BloomzmmsASRTask


def get_parser():
    return BloomzmmsASRTask.get_parser()


def main(cmd=None):
    BloomzmmsASRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
