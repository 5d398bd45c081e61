# shellcheck shell=bash
# How jobs run (utils/run.sh). The driver uses train_cmd for training, decode_cmd for
# inference and scoring. Pick one block.

# On this machine: jobs run in parallel, one log each.
export train_cmd="utils/run.sh --backend local"
export decode_cmd="utils/run.sh --backend local"

# On a slurm cluster (multi-GPU and multi-node training; see README "More than one GPU"):
# export train_cmd="utils/run.sh --backend slurm --partition gpu --mem 32G --num_threads 8 --time 3-00:00:00"
# export decode_cmd="utils/run.sh --backend slurm --partition cpu --mem 8G"
