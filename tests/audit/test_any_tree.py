"""Any tree: a git checkout of SGLang (python/sglang/srt), its srt directory, or `sglang` (the newest
release on the registry). The era is read from the code and named in the output."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from sumonce.audit.command import main

from .conftest import FIXTURES

SITE = '''"""Synthetic MoE block calling the one-argument helper (sumonce test fixture)."""


class TinyMoeBlock:
    def __init__(self):
        self.tp_size = get_tensor_model_parallel_world_size()

    def forward(self, hidden_states):
        out = self.experts(hidden_states)
        if self.tp_size > 1 and not should_skip_post_experts_all_reduce(is_tp_path=True):
            out = tensor_model_parallel_all_reduce(out)
        return out
'''


def git_tree(tmp_path, era="0.5.23"):
    root = tmp_path / "sglang"
    shutil.copytree(FIXTURES / "eras" / era, root)
    (root / "python/sglang/srt/models/tiny_moe.py").write_text(SITE)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "tree"]):
        subprocess.run(["git", "-C", str(root), *cmd], check=True, env=env, capture_output=True)
    return root


def audit_json(capsys, target):
    code = main([str(target), "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else None, err


def test_a_git_checkout_is_audited_in_the_era_its_code_has(capsys, tmp_path):
    root = git_tree(tmp_path)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    _code, data, err = audit_json(capsys, root)
    assert data is not None, err
    assert data["target"] == f"{root} (git {head})"
    assert data["era"] == "0.5.23" and data["era_reason"].startswith("era 0.5.23 (one-argument helper")
    (site,) = data["sites"]
    assert site["model"] == "tiny_moe" and site["verdict"] == "calls the helper"
    assert "F and R from the per-forward context" in site["detail"]


def test_the_srt_directory_is_a_tree(capsys, tmp_path):
    root = git_tree(tmp_path, "0.5.17")
    _code, data, err = audit_json(capsys, root / "python" / "sglang" / "srt")
    assert data is not None and data["era"] == "0.5.17", err


def test_the_same_block_in_the_0_5_11_shape_lacks_the_flags(capsys, tmp_path):
    """A one-argument call in a three-keyword tree is the #23748 helper called without F and R."""
    root = git_tree(tmp_path, "0.5.11")
    _code, data, err = audit_json(capsys, root)
    assert data["era"] == "0.5.11", err
    (site,) = data["sites"]
    assert site["verdict"] == "calls the helper" and site["detail"].startswith("passes neither F nor R")


def test_a_tree_of_no_shape_is_exit_2(capsys, tmp_path):
    code = main([str(FIXTURES / "eras" / "none-no-utils")])
    _out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "utils.py is missing" in err


@pytest.mark.sglang
def test_sglang_alone_is_the_newest_release_named(capsys):
    _code, data, err = audit_json(capsys, "sglang")
    assert data is not None, err
    assert data["target"].startswith("sglang==") and data["target"].endswith("(the newest on the registry)")
    assert data["era"]


def test_registry_unreachable_is_one_line_exit_2(tmp_path):
    env = {**os.environ, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2",
           "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "SUMONCE_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "sumonce.cli", "audit", "sglang"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "package registry" in out.stderr and "Traceback" not in out.stderr
