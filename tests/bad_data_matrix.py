"""Print the bad-data matrix as a Markdown table: each fault of tests/test_bad_data.py (CASES), the exit
status of ``data_dir validate`` and the line that names it (the issue notes quote it).

    .venv/bin/python tests/bad_data_matrix.py | grep '^|'   # (sentencepiece prints blank lines)
"""

import contextlib
import io
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import build_tokenizer  # noqa: E402
from test_bad_data import CASES, UTT  # noqa: E402
from test_kaldi_dir import make_dir  # noqa: E402

from csst_espnet.bin import data_dir as cli  # noqa: E402


def main() -> None:
    print("| input | exit | what validate printed (file:line: utt: kind: message) |\n|---|---|---|")
    for case, (make_fault, kind, _file, _status) in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            d = make_dir(tmp)
            extra = make_fault(d) or []
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                if "TOKENIZER" in extra:
                    build_tokenizer(os.path.join(tmp, "tokenizer"))
                    extra = [os.path.join(tmp, "tokenizer") if a == "TOKENIZER" else a for a in extra]
                rc = cli.main(["validate", d, "--languages", "zh,en,cs", "--fs", "16000", "--min_dur", "0.1", *extra])
            line = next(ln for ln in out.getvalue().splitlines() if f"utt {UTT}:" in ln and f" {kind}: " in ln)
            print(f"| {case} | {rc} | `{line.replace(tmp, 'TMP').replace('|', '/')}` |")


if __name__ == "__main__":
    main()
