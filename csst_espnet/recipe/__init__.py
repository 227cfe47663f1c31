"""Support of the csst recipe (egs2/TEMPLATE/csst1/csst.sh): job launcher, data-dir operations, configs, results."""
