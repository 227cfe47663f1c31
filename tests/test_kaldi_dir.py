"""Kaldi-style data directory tools: validate, drop_invalid, fix, combine, subset, split."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from csst_espnet.bin import data_dir as cli
from csst_espnet.data import kaldi_dir as kd


def _wav(path, seconds, fs=16000):
    t = np.arange(int(seconds * fs)) / fs
    soundfile.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), fs, subtype="PCM_16")


def make_dir(root, name="d", spk_utts=None, durs=None):
    """A valid data dir: speakers A and B, 3 and 2 utterances, 1 s of audio each."""
    spk_utts = spk_utts or {"spkA": ["spkA-u1", "spkA-u2", "spkA-u3"], "spkB": ["spkB-u1", "spkB-u2"]}
    d = os.path.join(str(root), name)
    wavs = os.path.join(str(root), name + "_wav")
    os.makedirs(wavs, exist_ok=True)
    dd = kd.DataDir()
    for n in ("wav.scp", "utt2spk", "text", "src_text", "utt2lang", "utt2task", "utt2dur"):
        dd.utt[n] = {}
    for spk, utts in spk_utts.items():
        for i, u in enumerate(utts):
            dur = (durs or {}).get(u, 1.0)
            p = os.path.join(wavs, f"{u}.wav")
            _wav(p, dur)
            dd.utt["wav.scp"][u] = p
            dd.utt["utt2spk"][u] = spk
            dd.utt["text"][u] = f"sentence {u}"
            dd.utt["src_text"][u] = f"句子 {u}"
            dd.utt["utt2lang"][u] = "cs" if i % 2 else "zh"
            dd.utt["utt2task"][u] = "st"
            dd.utt["utt2dur"][u] = f"{dur}"
    dd.write(d)
    return d


def lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def set_line(path, utt, new_line):
    out = [new_line if (l.split() or [""])[0] == utt else l for l in lines(path)]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def kinds_for(res, utt):
    return {i.kind for i in res.issues if i.utt == utt}


def test_valid_dir_passes(tmp_path):
    d = make_dir(tmp_path)
    res = kd.validate(d, min_dur=0.5, max_dur=2.0, languages=["zh", "en", "cs"], fs=16000, progress=False)
    assert res.ok, res.report()
    assert res.num_utts == 5
    assert cli.main(["validate", d]) == 0
    # spk2utt is derived and sorted
    assert lines(os.path.join(d, "spk2utt")) == ["spkA spkA-u1 spkA-u2 spkA-u3", "spkB spkB-u1 spkB-u2"]


def test_validate_catches_each_defect_and_names_utterance(tmp_path, capsys):
    d = make_dir(tmp_path, spk_utts={"spkA": [f"spkA-u{i}" for i in range(1, 8)],
                                     "spkB": ["spkB-u1", "spkB-u2", "spkB-u3"]},
                 durs={"spkA-u6": 0.2, "spkA-u7": 3.0})
    wav = kd.read_table(os.path.join(d, "wav.scp"))
    os.remove(wav["spkA-u1"])                                    # missing audio
    with open(wav["spkA-u2"], "w") as f:                         # unreadable audio
        f.write("not a wav file")
    set_line(os.path.join(d, "text"), "spkA-u3", "spkA-u3")      # empty text
    set_line(os.path.join(d, "utt2lang"), "spkA-u4", "spkA-u4 fr")  # unknown language
    set_line(os.path.join(d, "utt2task"), "spkA-u5", "spkA-u5 tts")  # unknown task
    # spkA-u6 too short, spkA-u7 too long (from utt2dur and audio)
    set_line(os.path.join(d, "utt2lang"), "spkB-u1", "")         # missing from one file
    with open(os.path.join(d, "src_text"), "a", encoding="utf-8") as f:
        f.write("spkA-u0 多余\n")                                # unsorted + only in one file
    with open(os.path.join(d, "text"), "a", encoding="utf-8") as f:
        f.write("spkB-u2 another value\n")                       # duplicate id
    set_line(os.path.join(d, "utt2spk"), "spkB-u3", "spkB-u3 spkA")  # speaker prefix wrong

    res = kd.validate(d, min_dur=0.5, max_dur=2.0, languages=["zh", "en", "cs"], progress=False)
    assert not res.ok
    assert "missing_audio" in kinds_for(res, "spkA-u1")
    assert "unreadable_audio" in kinds_for(res, "spkA-u2")
    assert "empty_text" in kinds_for(res, "spkA-u3")
    assert "unknown_language" in kinds_for(res, "spkA-u4")
    assert "unknown_task" in kinds_for(res, "spkA-u5")
    assert "too_short" in kinds_for(res, "spkA-u6")
    assert "too_long" in kinds_for(res, "spkA-u7")
    assert "missing_id" in kinds_for(res, "spkB-u1")
    assert "missing_id" in kinds_for(res, "spkA-u0")
    assert any(i.kind == "unsorted" and i.file == "src_text" for i in res.issues)
    assert "duplicate_id" in kinds_for(res, "spkB-u2")
    assert "speaker_prefix" in kinds_for(res, "spkB-u3")
    report = res.report()
    # the report names file, line and utterance
    assert os.path.join(d, "text") + ":3: utt spkA-u3: empty_text" in report
    assert os.path.join(d, "utt2lang") + ":4: utt spkA-u4: unknown_language" in report

    rep = tmp_path / "report.txt"
    assert cli.main(["validate", d, "--min_dur", "0.5", "--max-dur", "2.0",
                     "--languages", "zh,en,cs", "--report", str(rep)]) == 1
    err = capsys.readouterr().err
    assert "spkA-u1" in err and "missing_audio" in err
    assert "unknown_language" in rep.read_text()


def test_drop_invalid_writes_dropped_and_leaves_valid_dir(tmp_path):
    d = make_dir(tmp_path)
    before = {n: lines(os.path.join(d, n)) for n in ("text", "wav.scp", "utt2lang")}
    set_line(os.path.join(d, "text"), "spkA-u2", "spkA-u2")          # empty text
    set_line(os.path.join(d, "utt2lang"), "spkB-u1", "spkB-u1 xx")   # bad language
    os.remove(kd.read_table(os.path.join(d, "wav.scp"))["spkB-u2"])  # missing audio
    rc = cli.main(["validate", d, "--languages", "zh,en,cs", "--drop_invalid", "true"])
    assert rc == 0
    dropped = dict(l.split("\t", 1) for l in lines(os.path.join(d, "dropped.txt")))
    assert set(dropped) == {"spkA-u2", "spkB-u1", "spkB-u2"}
    assert "empty_text" in dropped["spkA-u2"] and "unknown_language" in dropped["spkB-u1"]
    assert "missing_audio" in dropped["spkB-u2"]
    assert kd.validate(d, languages=["zh", "en", "cs"], progress=False).ok
    # nothing else lost: the remaining utterances keep their exact lines
    for n, old in before.items():
        kept = [l for l in old if l.split()[0] in {"spkA-u1", "spkA-u3"}]
        assert lines(os.path.join(d, n)) == kept
    assert lines(os.path.join(d, "spk2utt")) == ["spkA spkA-u1 spkA-u3"]


def test_fix_sorts_rebuilds_and_restricts(tmp_path, capsys):
    d = make_dir(tmp_path)
    t = os.path.join(d, "text")
    with open(t, "w", encoding="utf-8") as f:   # unsorted, with a duplicate line and an extra id
        f.write("spkB-u2 b2\nspkA-u1 a1\nspkA-u1 a1\nspkA-u2 a2\nspkA-u3 a3\nspkB-u1 b1\nspkC-u9 orphan\n")
    set_line(os.path.join(d, "utt2lang"), "spkA-u3", "")   # spkA-u3 lacks a language
    with open(os.path.join(d, "spk2utt"), "w") as f:
        f.write("stale line\n")
    assert cli.main(["fix", d]) == 0
    out = capsys.readouterr().out
    assert "spkC-u9" in out and "spkA-u3" in out
    assert lines(t) == ["spkA-u1 a1", "spkA-u2 a2", "spkB-u1 b1", "spkB-u2 b2"]
    assert lines(os.path.join(d, "spk2utt")) == ["spkA spkA-u1 spkA-u2", "spkB spkB-u1 spkB-u2"]
    assert kd.validate(d, progress=False).ok


def test_combine_and_duplicates(tmp_path, capsys):
    a = make_dir(tmp_path, "a")
    b = make_dir(tmp_path, "b", spk_utts={"spkC": ["spkC-u1", "spkC-u2"]})
    out = str(tmp_path / "ab")
    assert cli.main(["combine", out, a, b]) == 0
    assert len(kd.DataDir.read(out)) == 7
    assert kd.validate(out, progress=False).ok
    assert lines(os.path.join(out, "spk2utt"))[-1] == "spkC spkC-u1 spkC-u2"
    # a file missing in one input is left out rather than made inconsistent
    os.remove(os.path.join(b, "src_text"))
    assert cli.main(["combine", out, a, b]) == 0
    assert not os.path.exists(os.path.join(out, "src_text"))
    # duplicate ids are an error naming the utterance
    c = make_dir(tmp_path, "c", spk_utts={"spkA": ["spkA-u2"]})
    assert cli.main(["combine", str(tmp_path / "ac"), a, c]) == 1
    assert "spkA-u2" in capsys.readouterr().err


def test_subset(tmp_path):
    d = make_dir(tmp_path)
    ids = kd.DataDir.read(d).utt_ids()
    o1 = str(tmp_path / "first")
    assert cli.main(["subset", d, o1, "--first", "2"]) == 0
    assert kd.DataDir.read(o1).utt_ids() == ids[:2]
    assert lines(os.path.join(o1, "spk2utt")) == ["spkA spkA-u1 spkA-u2"]
    o2 = str(tmp_path / "n")
    assert cli.main(["subset", d, o2, "--n", "3"]) == 0
    got = kd.DataDir.read(o2).utt_ids()
    assert len(got) == 3 and len({u.split("-")[0] for u in got}) == 2   # spread over speakers
    lst = tmp_path / "list"
    lst.write_text("spkB-u2\nspkA-u3\n")
    o3 = str(tmp_path / "list_out")
    assert cli.main(["subset", d, o3, "--utt_list", str(lst)]) == 0
    assert kd.DataDir.read(o3).utt_ids() == ["spkA-u3", "spkB-u2"]
    for o in (o1, o2, o3):
        assert kd.validate(o, progress=False).ok
    assert cli.main(["subset", d, str(tmp_path / "big"), "--n", "99"]) == 1


def test_split_keeps_speakers_together(tmp_path):
    spk_utts = {f"s{k}": [f"s{k}-u{i}" for i in range(n)] for k, n in enumerate([5, 3, 3, 2, 1, 1])}
    d = make_dir(tmp_path, spk_utts=spk_utts)
    assert cli.main(["split", d, "3"]) == 0
    parts = [kd.DataDir.read(os.path.join(d, "split3", str(j))) for j in (1, 2, 3)]
    all_ids = [u for p in parts for u in p.utt_ids()]
    assert sorted(all_ids) == kd.DataDir.read(d).utt_ids()          # complete and disjoint
    owner = {}
    for j, p in enumerate(parts):
        assert len(p) > 0 and kd.validate(os.path.join(d, "split3", str(j + 1)), progress=False).ok
        for s in p.speakers():
            assert s not in owner
            owner[s] = j
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    # fewer speakers than parts: split by utterance
    d2 = make_dir(tmp_path, "few", spk_utts={"x": ["x-1", "x-2", "x-3", "x-4"]})
    dirs, together = kd.write_split(d2, 2)
    assert not together and [len(kd.DataDir.read(p)) for p in dirs] == [2, 2]
    with pytest.raises(ValueError):
        kd.write_split(d2, 5)


def test_utt2dur_and_segments(tmp_path):
    d = make_dir(tmp_path, durs={"spkA-u1": 0.5, "spkA-u2": 1.25})
    os.remove(os.path.join(d, "utt2dur"))
    assert cli.main(["utt2dur", d]) == 0
    durs = kd.read_table(os.path.join(d, "utt2dur"))
    assert float(durs["spkA-u1"]) == pytest.approx(0.5) and float(durs["spkA-u2"]) == pytest.approx(1.25)
    # segments: wav.scp becomes per recording, and a segment past the audio end is caught
    seg = os.path.join(d, "segments")
    wav = kd.read_table(os.path.join(d, "wav.scp"))
    kd.write_table(os.path.join(d, "wav.scp"), {"rec1": wav["spkA-u3"]})
    kd.write_table(seg, {u: f"rec1 0.0 {0.2 + 0.1 * i:.1f}" for i, u in enumerate(sorted(wav))})
    os.remove(os.path.join(d, "utt2dur"))
    res = kd.validate(d, progress=False)
    assert res.ok, res.report()
    kd.write_table(seg, {**kd.read_table(seg), "spkB-u2": "rec1 0.5 1.5"})
    res = kd.validate(d, progress=False)
    assert kinds_for(res, "spkB-u2") == {"segment_out_of_range"}
    assert kd.compute_utt2dur(kd.DataDir.read(d))["spkB-u2"] == "1"


def test_module_entry_point(tmp_path):
    d = make_dir(tmp_path)
    set_line(os.path.join(d, "text"), "spkA-u2", "spkA-u2")
    r = subprocess.run([sys.executable, "-m", "csst_espnet.bin.data_dir", "validate", d],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "spkA-u2" in r.stderr and "empty_text" in r.stderr


def add_phone_ali(d, frames=None):
    """phone_ali of 1 s utterances: 100 frames of ids 0..4 (``frames``: other lengths per utterance)."""
    ids = kd.DataDir.read(d).utt_ids()
    kd.write_table(os.path.join(d, "phone_ali"),
                   {u: " ".join(str(j % 5) for j in range((frames or {}).get(u, 100))) for u in ids})


def test_phone_ali_is_validated_per_utterance(tmp_path, capsys):
    d = make_dir(tmp_path)
    add_phone_ali(d, frames={"spkA-u1": 98, "spkA-u2": 103})  # 2 frames off is fine, 3 is not
    res = kd.validate(d, progress=False)
    assert kinds_for(res, "spkA-u2") == {"alignment_length"} and len(res.bad_utts()) == 1
    assert os.path.join(d, "phone_ali") + ":2: utt spkA-u2: alignment_length: 103 frames" in res.report()
    set_line(os.path.join(d, "phone_ali"), "spkA-u3", "spkA-u3 0 1 x 2")
    set_line(os.path.join(d, "phone_ali"), "spkB-u1", "spkB-u1 0 -1 2")
    set_line(os.path.join(d, "phone_ali"), "spkB-u2", "spkB-u2")
    with open(os.path.join(d, "phone_ali")) as f:
        rows = f.read().splitlines()
    with open(os.path.join(d, "phone_ali"), "w") as f:  # spkA-u1 loses its alignment
        f.write("\n".join(rows[1:]) + "\n")
    res = kd.validate(d, progress=False)
    assert kinds_for(res, "spkA-u1") == {"missing_id"}
    assert kinds_for(res, "spkB-u2") == {"empty_alignment"}
    report = res.report()
    assert os.path.join(d, "phone_ali") + ":2: utt spkA-u3: bad_alignment: frame 2: 'x'" in report
    assert os.path.join(d, "phone_ali") + ":3: utt spkB-u1: bad_alignment: frame 1: '-1'" in report
    # without audio the duration comes from utt2dur
    assert kinds_for(kd.validate(d, check_audio=False, progress=False), "spkA-u2") == {"alignment_length"}
    assert cli.main(["validate", d, "--drop_invalid", "true"]) == 0
    assert kd.DataDir.read(d).utt_ids() == []  # every utterance had a bad alignment
    capsys.readouterr()



def test_lang_ali_is_validated_per_utterance(tmp_path, capsys):
    d = make_dir(tmp_path)
    ids = kd.DataDir.read(d).utt_ids()
    path = os.path.join(d, "lang_ali")
    kd.write_table(path, {u: " ".join(["-"] * 20 + ["zh"] * 40 + ["en"] * 38 + ["-"] * 2) for u in ids})
    assert kd.validate(d, progress=False).ok  # codes of the languages (not cs) and '-'
    set_line(path, "spkA-u1", "spkA-u1 " + " ".join(["zh"] * 103))  # 3 frames more than 1 s of audio
    set_line(path, "spkA-u2", "spkA-u2 " + " ".join(["zh"] * 50 + ["cs"] * 50))  # cs is no frame language
    set_line(path, "spkA-u3", "spkA-u3 " + " ".join(["zh"] * 99 + ["fr"]))
    set_line(path, "spkB-u1", "spkB-u1")
    res = kd.validate(d, languages=["zh", "en", "cs"], progress=False)
    report = res.report()
    assert path + ":1: utt spkA-u1: alignment_length: 103 frames" in report
    assert path + ":2: utt spkA-u2: bad_alignment: frame 50: 'cs' is not a language code of zh,en or '-'" in report
    assert path + ":3: utt spkA-u3: bad_alignment: frame 99: 'fr' is not a language code of zh,en" in report
    assert kinds_for(res, "spkB-u1") == {"empty_alignment"}
    assert set(res.bad_utts()) == {"spkA-u1", "spkA-u2", "spkA-u3", "spkB-u1"}
    # without a language list any code is accepted (fix), frame counts still count
    res = kd.validate(d, languages=None, progress=False)
    assert set(res.bad_utts()) == {"spkA-u1", "spkB-u1"}
    with open(path) as f:
        rows = f.read().splitlines()
    with open(path, "w") as f:  # spkB-u2 loses its entry
        f.write("\n".join(rows[:-1]) + "\n")
    assert kinds_for(kd.validate(d, progress=False), "spkB-u2") == {"missing_id"}
    assert kd.is_utt_file("lang_ali", has_segments=True)  # carried with its utterances (subset, combine...)
    capsys.readouterr()


def test_phone_ali_follows_subset_split_combine_and_fix(tmp_path):
    a = make_dir(tmp_path, "a")
    add_phone_ali(a)
    ali = kd.read_table(os.path.join(a, "phone_ali"))
    o = str(tmp_path / "sub")
    assert cli.main(["subset", a, o, "--first", "2"]) == 0
    assert kd.read_table(os.path.join(o, "phone_ali")) == {u: ali[u] for u in ("spkA-u1", "spkA-u2")}
    dirs, _ = kd.write_split(a, 2)
    assert [set(kd.read_table(os.path.join(p, "phone_ali"))) for p in dirs] == [
        set(kd.DataDir.read(p).utt_ids()) for p in dirs]
    b = make_dir(tmp_path, "b", spk_utts={"spkC": ["spkC-u1"]})
    add_phone_ali(b)
    out = str(tmp_path / "ab")
    assert cli.main(["combine", out, a, b]) == 0
    assert len(kd.read_table(os.path.join(out, "phone_ali"))) == 6 and kd.validate(out, progress=False).ok
    os.remove(os.path.join(b, "phone_ali"))  # one input without alignments: left out
    assert cli.main(["combine", out, a, b]) == 0
    assert not os.path.exists(os.path.join(out, "phone_ali")) and kd.validate(out, progress=False).ok
    set_line(os.path.join(a, "phone_ali"), "spkB-u1", "")  # fix drops an utterance without one
    kd.fix(a)
    assert "spkB-u1" not in kd.DataDir.read(a).utt_ids() and kd.validate(a, progress=False).ok


def test_ali_frames_and_resampling():
    assert kd.ali_num_frames(16000, 16000) == 100 and kd.ali_num_frames(16001, 16000) == 101
    assert kd.ali_num_frames(22050, 22050) == 100 and kd.ali_num_frames(8000 * 3 + 1, 8000) == 301
    ali = ["0"] * 4 + ["1"] * 4 + ["2"] * 2
    assert kd.resample_ali(ali, 5) == ["0", "0", "1", "1", "2"]
    assert kd.resample_ali(ali, 20) == ["0"] * 8 + ["1"] * 8 + ["2"] * 4


def test_text_pairs_make_a_text_only_dir_that_combines_with_speech(tmp_path, capsys):
    """A TSV of translation pairs -> task mt utterances without audio; combined with a speech dir, the
    speech files cover the speech utterances and the result validates (mt needs its src_text)."""
    tsv = tmp_path / "es2en.tsv"
    tsv.write_text("hola mundo\thello world\nel modelo\tthe model\nhola mundo\thello world\n", encoding="utf-8")
    mt = str(tmp_path / "mt")
    assert cli.main(["text-pairs", str(tsv), mt, "--lang", "es"]) == 0
    assert lines(os.path.join(mt, "text")) == ["mt_es-000001 hello world", "mt_es-000002 the model"]
    assert lines(os.path.join(mt, "src_text"))[1] == "mt_es-000002 el modelo"
    assert set(lines(os.path.join(mt, "utt2task"))) == {"mt_es-000001 mt", "mt_es-000002 mt"}
    assert not os.path.exists(os.path.join(mt, "wav.scp"))
    assert kd.DataDir.read(mt).is_text_only()
    assert kd.validate(mt, languages=["es", "en"], required=["text", "src_text", "utt2task"], progress=False).ok

    speech = make_dir(tmp_path, "speech")
    both = str(tmp_path / "both")
    assert cli.main(["combine", both, speech, mt]) == 0
    assert len(lines(os.path.join(both, "text"))) == 7
    assert len(lines(os.path.join(both, "wav.scp"))) == 5 and len(lines(os.path.join(both, "utt2dur"))) == 5
    assert kd.validate(both, languages=["zh", "es", "en", "cs"], progress=False).ok
    # a text-only utterance without its source text cannot be trained on
    os.remove(os.path.join(both, "src_text"))
    res = kd.validate(both, languages=["zh", "es", "en", "cs"], required=(), progress=False)
    assert kinds_for(res, "mt_es-000002") == {"text_only_without_source"}
    # a speech utterance missing from wav.scp still is an error
    d = kd.DataDir.read(both)
    del d.utt["wav.scp"]["spkA-u1"]
    d.write(both)
    assert "missing_id" in kinds_for(kd.validate(both, progress=False), "spkA-u1")


def test_text_pairs_name_a_bad_line(tmp_path, capsys):
    tsv = tmp_path / "p.tsv"
    tsv.write_text("uno\tone\ndos two\n", encoding="utf-8")
    assert cli.main(["text-pairs", str(tsv), str(tmp_path / "mt"), "--lang", "es"]) == 1
    assert f"{tsv}:2: expected 'source<TAB>target'" in capsys.readouterr().err
