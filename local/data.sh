#!/usr/bin/env bash
# Stage 1 of the recipe: corpus-specific data preparation.
# Writes data/train_t (the transcription training set), data/dev_fleurs, data/test_fleurs and
# the FLEURS speech-translation sets data/test_fleurs_<src>-<tgt>. On the bundled default it
# first synthesizes the mini corpus and builds the stand-in models (conf/mini/).
set -euo pipefail

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"; }

fleurs=downloads/mini_fleurs   # FLEURS root (db.sh)
languages=""                   # FLEURS language codes ("" = every language found)
translation_pairs=""           # e.g. "en_us:de_de de_de:en_us"
llm=""                         # the LLM dir the stand-in models are written to (mini corpus)
smoke=false                    # smallest size (mini corpus)

while [ $# -gt 0 ]; do
    case "$1" in
        --fleurs) fleurs="$2" ;; --languages) languages="$2" ;;
        --translation_pairs) translation_pairs="$2" ;; --llm) llm="$2" ;; --smoke) smoke="$2" ;;
        *) echo "$0: unknown option $1" >&2; exit 1 ;;
    esac
    shift 2
done

smoke_opt=""; [ "${smoke}" = true ] && smoke_opt="--smoke"

if [ "${fleurs}" = downloads/mini_fleurs ]; then
    log "Synthesizing the mini FLEURS corpus with espeak-ng into ${fleurs}"
    python3 local/make_mini_fleurs.py --config conf/mini/corpus.yaml --output_dir "${fleurs}" ${smoke_opt}
fi
[ -d "${fleurs}" ] || { echo "$0: FLEURS root '${fleurs}' not found: set FLEURS in db.sh" >&2; exit 1; }

log "Preparing FLEURS from ${fleurs}"
language_opt=""; [ -n "${languages}" ] && language_opt="--languages ${languages}"
# shellcheck disable=SC2086
python3 local/prepare_fleurs.py --fleurs_root "${fleurs}" --output_dir data ${language_opt}
python3 utils/copy_data_dir.py data/train_fleurs data/train_t

if [ -n "${translation_pairs}" ]; then
    log "FLEURS speech-translation test sets: ${translation_pairs}"
    # shellcheck disable=SC2086
    python3 local/make_fleurs_pairs.py --data_dir data/test_fleurs --pairs ${translation_pairs} \
        --translation_template conf/instructions/translation.yaml --output_dir data
fi

if [ "${fleurs}" = downloads/mini_fleurs ]; then
    standin_dir=$(dirname "${llm}")
    log "Stand-in models for the mini corpus: ${standin_dir}"
    python3 local/make_standin_models.py --config conf/mini/standin.yaml --train_dir data/train_fleurs \
        --dev_dir data/dev_fleurs --output_dir "${standin_dir}" ${smoke_opt}
fi
log "Data preparation done: data/train_t data/dev_fleurs data/test_fleurs${translation_pairs:+ and translation sets}"
