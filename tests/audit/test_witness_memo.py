"""audit.witness.find remembers answers per world by the z3 ids of the question's terms; z3 hands
the id of a freed term to the next one made, so the memo must keep its terms alive. Without that,
`sumonce audit` read a release's V as "equivalent" to 0.5.11's when earlier reports were kept
alive (tests/audit/test_releases.py, run as a whole, caught it)."""
import z3

from sumonce.audit.release_world import AuditWorld
from sumonce.audit.witness import find


def test_each_question_gets_its_own_answer_while_terms_come_and_go():
    w = AuditWorld()
    wrong = 0
    for i in range(200):
        x = z3.Bool(f"x{i}")
        # built, asked and dropped: the next question's terms may get these ids
        if i % 2:
            answer = find(w, z3.And(x, z3.Not(x), w.F), [])
            wrong += answer is not None
        else:
            answer = find(w, z3.Or(x, w.F), [])
            wrong += answer is None
    assert wrong == 0
