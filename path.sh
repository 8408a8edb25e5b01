# Environment of the recipe for a pip install of this project (./setup.sh): nothing to build.
export LC_ALL=C.UTF-8           # C byte order for Kaldi-style sorting, UTF-8 text
export PYTHONIOENCODING=UTF-8
export PYTHONUNBUFFERED=1        # logs appear as they are written
export PYTHONPATH="${PWD}${PYTHONPATH:+:${PYTHONPATH}}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
