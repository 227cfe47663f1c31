# Job launchers of the recipe, as ESPnet's cmd.sh:
#   ${train_cmd} [--gpu N] [--mem 4G] [--num_threads N] [JOB=1:N] LOG COMMAND ...
# Backends of csst_espnet.bin.launch: local (this machine) or slurm (sbatch array jobs).
# Choose with cmd_backend=slurm here or in the environment; site options of sbatch
# (partition, account, ...) go to slurm_opts.
cmd_backend=${cmd_backend:-local}
csst_launch() { "${PYTHON:-python3}" -m csst_espnet.bin.launch "$@"; }  # an interpreter path may have spaces
export CSST_SLURM_OPTS="${slurm_opts:-${CSST_SLURM_OPTS:-}}"

case "${cmd_backend}" in
    local)
        train_cmd="csst_launch --backend local"
        cuda_cmd="${train_cmd}"
        decode_cmd="${train_cmd}" ;;
    slurm)
        train_cmd="csst_launch --backend slurm --mem 8G"
        cuda_cmd="csst_launch --backend slurm --mem 32G"
        decode_cmd="csst_launch --backend slurm --mem 8G" ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2
        return 1 ;;
esac
