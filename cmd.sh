# cmd.sh: the job backends of the recipe; sourced by run.sh / asr.sh.
#
# Every parallel or long-running step runs through one of the commands below, called the Kaldi way:
#   ${train_cmd} [--gpu N] [--mem 8G] [--num_threads N] [JOB=1:N] LOGFILE COMMAND [ARGS...]
# (see utils/launch.py --help). Options given by the caller override the defaults set here.
#
# Choose the backend with the environment variable cmd_backend:
#   ./run.sh ...                      # cmd_backend=local (default): jobs run on this machine
#   cmd_backend=slurm ./run.sh ...    # each step becomes a (blocking) sbatch job array;
#                                     # edit conf/slurm.conf for your cluster (partition, time, account)
#
#   train_cmd   CPU jobs: data preparation, feature dumping, statistics collection, token lists.
#   cuda_cmd    model training; adds no GPU itself: the driver (and espnet2.bin.launch) passes --gpu N.
#   decode_cmd  inference and scoring; the driver passes --gpu N when decoding on GPUs.
#
# The --mem values are starting points for a 7B-parameter LLM with a 1B-parameter speech encoder
# (the weights are loaded in host memory first); lower or raise them here for other model sizes.

cmd_backend=${cmd_backend:-local}

case "${cmd_backend}" in
    local)
        # At most as many jobs at a time as this machine has CPUs (override: --max_jobs_run N).
        export train_cmd="utils/launch.py --backend local"
        export cuda_cmd="utils/launch.py --backend local"
        export decode_cmd="utils/launch.py --backend local"
        ;;
    slurm)
        export train_cmd="utils/launch.py --backend slurm --config conf/slurm.conf --mem 16G"
        export cuda_cmd="utils/launch.py --backend slurm --config conf/slurm.conf --mem 64G"
        export decode_cmd="utils/launch.py --backend slurm --config conf/slurm.conf --mem 32G"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend='${cmd_backend}': use cmd_backend=local or cmd_backend=slurm" >&2
        return 1 2>/dev/null || exit 1
        ;;
esac
