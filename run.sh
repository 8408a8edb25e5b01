#!/usr/bin/env bash
# BLOOMZMMS: teaching a multilingual LLM to understand multilingual speech (Denisov & Vu, 2024).
#
#   ./run.sh                       the whole method on the bundled mini corpus (CPU, laptop)
#   ./run.sh --smoke true          the same stages at the smallest size
#   ./run.sh --asr_config X [...]  one ESPnet-style run of asr.sh with config X (e.g. the paper's
#                                  `--stage 11 --stop_stage 11 --asr_config ..._aed.yaml --train_set train_tmi ...`)
#
# Without --asr_config, run.sh runs the method's two training phases in turn, each through
# asr.sh (see ./asr.sh --help for stages and options; they all pass through):
#   ctc: stages 1-13 with the CTC config, initialized from the LLM's token embeddings;
#   llm: stages 10-13 with the cross-entropy config on the TMI set, initialized from the
#        CTC model (all but its CTC head), decoding ASR and zero-shot speech translation.
# --stage/--stop_stage select stages within both; --phases "ctc" or "llm" runs one of them.
# A --pretrained_model without --asr_config (the seed's CTC pretraining command) runs phase ctc.
set -euo pipefail

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh) $*"; }

. ./db.sh

smoke=false
phases="ctc llm"
stage=1
stop_stage=13
expdir=exp

if [ "${FLEURS}" = downloads/mini_fleurs ]; then
    # The bundled default: a mini corpus and stand-in models made here (see conf/mini/).
    llm=exp/standin/llm
    ctc_config=conf/mini/train_ctc.yaml
    llm_config=conf/mini/train_aed.yaml
    mini_languages="en_us de_de fr_fr es_419 it_it nl_nl pt_br pl_pl"
    translation_pairs="en_us:de_de de_de:en_us fr_fr:es_419 es_419:en_us"
    extra_opts=(--nj 2 --inference_nj 1 --parallel_sets 2 --ngpu 0 --mi_templates conf/instructions/mi_templates_mini.yaml --mi_batch_size 128 --mi_max_new_tokens 48
                --inference_config conf/mini/decode_asr.yaml)
else
    llm=bigscience/bloomz-7b1
    ctc_config=conf/tuning/train_asr_e_branchformer_mms1b-asr_bloomz7b_ctc.yaml
    llm_config=conf/tuning/train_asr_e_branchformer_mms1b-asr_bloomz7b_aed.yaml
    mini_languages=""
    translation_pairs="en_us:de_de de_de:en_us"
    extra_opts=(--ngpu 2 --gpu_inference true --mi_templates conf/instructions/mi_templates_xp3.yaml)
fi

# Options of run.sh itself; everything else goes to asr.sh.
passthrough=()
asr_config_given=false
pretrained_given=false
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) smoke="$2"; shift 2 ;;
        --phases) phases="$2"; shift 2 ;;
        --stage) stage="$2"; shift 2 ;;
        --stop_stage|--stop-stage) stop_stage="$2"; shift 2 ;;
        --expdir) expdir="$2"; shift 2 ;;
        --llm) llm="$2"; shift 2 ;;
        --asr_config) asr_config_given=true; passthrough+=("$1" "$2"); shift 2 ;;
        --pretrained_model) pretrained_given=true; passthrough+=("$1" "$2"); shift 2 ;;
        --help|-h) sed -n '2,16p' "$0"; echo; ./asr.sh --help; exit 0 ;;
        *) [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
           passthrough+=("$1" "$2"); shift 2 ;;
    esac
done

data_opts="--fleurs ${FLEURS} --languages '${mini_languages}' --translation_pairs '${translation_pairs}'"
data_opts+=" --llm ${llm} --smoke ${smoke}"
[ "${smoke}" = true ] && extra_opts+=(--speed_perturb_factors "1.0" --mi_max_new_tokens 16
                                      --inference_config conf/mini/decode_smoke.yaml)
test_sets="test_fleurs"
for pair in ${translation_pairs}; do test_sets+=" test_fleurs_${pair/:/-}"; done
corpus_sets=$(local/corpus_test_sets.sh)  # VoxPopuli, MLS, CoVoST 2 when set in db.sh
[ -n "${corpus_sets}" ] && test_sets+=" ${corpus_sets}"

common=(--llm "${llm}" --expdir "${expdir}" --local_data_opts "${data_opts}" --test_sets "${test_sets}"
        --results_file RESULTS.md "${extra_opts[@]}")

if [ "${asr_config_given}" = true ]; then
    exec ./asr.sh "${common[@]}" --stage "${stage}" --stop_stage "${stop_stage}" "${passthrough[@]}"
fi

# The seed's CTC command (--pretrained_model <LLM embeddings>, no config) is the ctc phase alone.
[ "${pretrained_given}" = true ] && phases=ctc
ctc_exp="${expdir}/asr_$(basename "${ctc_config}" .yaml)_train_t_sp"
llm_exp="${expdir}/asr_$(basename "${llm_config}" .yaml)_train_tmi_sp"
smoke_args=()
[ "${smoke}" = true ] && smoke_args=(--asr_args "--max_epoch 1 --num_iters_per_epoch 2")

if [[ " ${phases} " == *" ctc "* ]]; then
    log "Phase ctc: CTC pretraining with ${ctc_config} (stages ${stage}-${stop_stage})"
    init=(--init_from_llm_embeddings true)
    [ "${pretrained_given}" = true ] && init=()
    ./asr.sh "${common[@]}" --stage "${stage}" --stop_stage "${stop_stage}" \
        --asr_config "${ctc_config}" --train_set train_t --asr_exp "${ctc_exp}" \
        "${init[@]}" "${smoke_args[@]}" "${passthrough[@]}"
fi

if [[ " ${phases} " == *" llm "* ]] && [ "${stop_stage}" -ge 10 ]; then
    ctc_model=$(python3 -c 'import sys, yaml; c = yaml.safe_load(open(sys.argv[1])); p, m, _ = c["best_model_criterion"][0]; print(f"{p}.{m}.best.pth")' "${ctc_config}")
    log "Phase llm: cross-entropy training through ${llm} with ${llm_config} on TMI, from ${ctc_exp}/${ctc_model}"
    ./asr.sh "${common[@]}" --stage "$(( stage > 10 ? stage : 10 ))" --stop_stage "${stop_stage}" \
        --asr_config "${llm_config}" --train_set train_tmi --asr_exp "${llm_exp}" \
        --auxiliary_data_tags "decoder_prefix decoder_postfix" --train_text_type text_int \
        --pretrained_model "${ctc_exp}/${ctc_model}:::ctc" "${smoke_args[@]}" "${passthrough[@]}"
fi
log "Done. Results: RESULTS.md"
