"""The audit never passes what it did not read (issue 15): each unreadable file is named, the
exit code is 4 (1 where a site differs), the SARIF has a result for it, and the rest is audited."""
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parents[1] / "audit" / "fixtures" / "tree"
MODELS = "sglang/srt/models"
UTILS = "sglang/srt/layers/moe/utils.py"
REDUCE = "tensor_model_parallel_all_reduce(x)\n"


def tree(tmp_path, with_sites=False) -> Path:
    root = tmp_path / "tree"
    if with_sites:  # the audit fixture: 9 sites, one file that does not parse
        shutil.copytree(FIXTURE, root)
    else:  # its utils only: the era is read from them (audit/era.py; a tree without one is exit 2)
        (root / UTILS).parent.mkdir(parents=True)
        shutil.copy(FIXTURE / UTILS, root / UTILS)
    (root / MODELS).mkdir(parents=True, exist_ok=True)
    (root / MODELS / "ok.py").write_text("x = 1\n")
    return root


def bad_symlink_loop(m):
    os.symlink("loop.py", m / "loop.py")
    return "loop.py", "symlink loop"


def bad_dangling(m):
    os.symlink("nowhere.py", m / "x.py")
    return "x.py", "dangling symlink"


def bad_directory(m):
    (m / "x.py").mkdir()
    return "x.py", "directory"


def bad_fifo(m):
    os.mkfifo(m / "x.py")
    return "x.py", "not a regular file"


def bad_nul(m):
    (m / "x.py").write_bytes(b"x = 1\0\n" + REDUCE.encode())
    return "x.py", "NUL"


def bad_syntax(m):
    (m / "x.py").write_text("def f(:\n" + REDUCE)
    return "x.py", ""


def bad_deep(m):
    (m / "x.py").write_text("y = " + "+".join(["a"] * 100000) + "\n" + REDUCE)
    return "x.py", ""


def bad_huge(m):
    with open(m / "x.py", "wb") as f:
        f.truncate(9 << 20)
    return "x.py", "over"


def bad_not_utf8(m):
    (m / "x.py").write_bytes(b"x = '\xff'\n" + REDUCE.encode())
    return "x.py", "not UTF-8"


def bad_utils(m):
    utils = m.parent / "layers" / "moe" / "utils.py"
    utils.parent.mkdir(parents=True, exist_ok=True)
    utils.write_text("def should_use_dp_reduce_scatterv(:\n")
    return "../layers/moe/utils.py", "does not parse"


BAD = [bad_symlink_loop, bad_dangling, bad_directory, bad_fifo, bad_nul, bad_syntax, bad_deep,
       bad_huge, bad_not_utf8, bad_utils]


def audit(capsys, target, *flags):
    from sumonce.audit.command import main
    code = main([str(target), "--json", *flags])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


@pytest.mark.parametrize("make", BAD, ids=[f.__name__ for f in BAD])
def test_an_unread_tree_file_fails_the_audit(capsys, tmp_path, make):
    root = tree(tmp_path)
    name, why = make(root / MODELS)
    sarif = tmp_path / "out.sarif"
    code, data, err = audit(capsys, root, "--sarif", str(sarif))
    rel = os.path.normpath(f"{MODELS}/{name}")
    assert code == 4, (code, err)
    (entry,) = [u for u in data["unparsed"] if u["file"] == rel]
    assert why in entry["error"], entry
    run = json.loads(sarif.read_text())["runs"][0]
    (rule,) = [r["id"] for r in run["tool"]["driver"]["rules"] if r["name"] == "SourceFileNotAudited"]
    assert any(r["ruleId"] == rule and rel in r["message"]["text"] for r in run["results"])


@pytest.mark.parametrize("make", [bad_fifo, bad_nul, bad_dangling], ids=["fifo", "nul", "dangling"])
def test_the_other_files_are_still_audited(capsys, tmp_path, make):
    root = tree(tmp_path, with_sites=True)
    make(root / MODELS)
    code, data, _ = audit(capsys, root)
    assert code == 1 and len(data["sites"]) == 9
    assert sorted(u["file"].rsplit("/", 1)[-1] for u in data["unparsed"]) == ["broken.py", "x.py"]


def patch_method(data: bytes, name: bytes, method: int) -> bytes:
    """Set the compression method of entry `name` in its local and central headers."""
    out = bytearray(data)
    for sig, name_at, method_at in ((b"PK\x03\x04", 30, 8), (b"PK\x01\x02", 46, 10)):
        i = out.find(sig)
        while i >= 0:
            if out[i + name_at: i + name_at + len(name)] == name:
                out[i + method_at: i + method_at + 2] = method.to_bytes(2, "little")
            i = out.find(sig, i + 1)
    return bytes(out)


def wheel(tmp_path, kind: str) -> Path:
    bad = f"{MODELS}/bad.py"
    path = tmp_path / "sglang-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{MODELS}/ok.py", "x = 1\n")
        info = zipfile.ZipInfo(bad)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, REDUCE * 200)
        z.writestr(UTILS, (FIXTURE / UTILS).read_text())  # last: "corrupt" damages the second entry
    data = path.read_bytes()
    if kind == "corrupt":
        local = data.find(b"PK\x03\x04", data.find(b"PK\x03\x04") + 1)
        start = local + 30 + len(bad)
        data = data[:start + 5] + b"\xff" * 40 + data[start + 45:]
    elif kind == "encrypted":
        out = bytearray(data)
        for sig, name_at, flag_at in ((b"PK\x03\x04", 30, 6), (b"PK\x01\x02", 46, 8)):
            i = out.find(sig)
            while i >= 0:
                if out[i + name_at: i + name_at + len(bad)] == bad.encode():
                    out[flag_at + i] |= 1
                i = out.find(sig, i + 1)
        data = bytes(out)
    elif kind == "method":
        data = patch_method(data, bad.encode(), 99)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind,why", [("corrupt", "corrupt"), ("encrypted", "encrypted"), ("method", "unknown method")])
def test_an_unreadable_wheel_entry_fails_the_audit(capsys, tmp_path, kind, why):
    code, data, err = audit(capsys, wheel(tmp_path, kind))
    assert code == 4, (code, err)
    (entry,) = data["unparsed"]
    assert entry["file"] == f"{MODELS}/bad.py" and why in entry["error"], entry
