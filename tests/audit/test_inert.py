"""audit/inert.py: only logging statements are left out of a function the audit lifts, and the tree
read from source is not changed."""
from __future__ import annotations

import ast

from sumonce.audit.inert import is_logging, without_logging

SOURCE = """
def guard(self, size):
    logger.debug("size %d", size)
    self.calls.append(size)
    if size > 1:
        logging.info("reducing")
        warnings.warn("slow")
    else:
        print("one rank")
    log.warning_once("x")
    self.log("kept: a method of the model")
    return size > 1
"""


def test_logging_statements_are_left_out_and_others_kept():
    fn = ast.parse(SOURCE).body[0]
    before = ast.dump(fn)
    kept = without_logging(fn.body)
    assert [type(s).__name__ for s in kept] == ["Expr", "If", "Expr", "Return"]
    assert ast.unparse(kept[0]) == "self.calls.append(size)"
    assert ast.unparse(kept[2]) == "self.log('kept: a method of the model')"
    branch = kept[1]
    assert [type(s).__name__ for s in branch.body] == ["Pass"] and branch.orelse == []
    assert branch.lineno == fn.body[2].lineno
    assert ast.dump(fn) == before  # NOTE: the parsed tree is shared (audit/memo.py): never changed


def test_a_call_whose_value_is_used_is_no_logging_statement():
    assert not is_logging(ast.parse("x = logger.debug('a')").body[0])
    assert not is_logging(ast.parse("logger.level").body[0])
    assert is_logging(ast.parse("logger.debug('a')").body[0])
