"""Train a csst-espnet model with ESPnet's trainer (multi-GPU, DDP, torchrun as ESPnet allows).

    python -m csst_espnet.bin.csst_train --config conf/train.yaml --output_dir exp/x \
        --train_data_path_and_name_and_type dump/raw/train/wav.scp,speech,sound ...
"""

from csst_espnet.tasks.csst import CSSTTask


def get_parser():
    return CSSTTask.get_parser()


def main(cmd=None):
    CSSTTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
