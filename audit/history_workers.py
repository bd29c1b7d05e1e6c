"""`--history`'s workers: processes that each audit consecutive releases, handed one at a time
(audit/history.py's _serve is what a worker runs)."""
from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.connection

from .source import TargetError


class Workers:
    """Workers 2b and 2b+1 share block b of consecutive releases: 2b takes them from its first on,
    2b+1 from its last back, until they meet, so each worker's releases are consecutive and the two
    end together wherever the work splits. The parent hands out one release at a time."""

    def __init__(self, ctx, serve, todo: list[tuple], jobs: int, watch=None):
        n = min(jobs, len(todo))
        blocks = (n + 1) // 2
        cuts = [round(i * len(todo) / blocks) for i in range(blocks + 1)]
        self.blocks = [list(todo[a:b]) for a, b in itertools.pairwise(cuts)]
        self.ctx, self.serve, self.n, self.running, self.out, self.watch = ctx, serve, n, {}, [], watch

    def _next(self, worker: int) -> tuple | None:
        block = self.blocks[worker // 2]
        if not block:
            return None
        return block.pop() if worker % 2 else block.pop(0)

    def run(self) -> list[dict]:
        try:
            for worker in range(self.n):
                receive, send = self.ctx.Pipe()
                child = self.ctx.Process(target=self.serve, args=(send,))
                child.start()
                send.close()
                self.running[receive] = child, worker, None
                self._hand(receive)
            while self.running:
                for ready in multiprocessing.connection.wait([*self.running, *self.watch[:1]] if self.watch else
                                                             list(self.running)):
                    if ready in self.running:
                        self._collect(ready)
                    else:
                        self._answered()
            return self.out
        finally:
            for receive, (child, _w, _a) in self.running.items():
                child.terminate()
                child.join()
                receive.close()

    def _answered(self) -> None:
        """The watch is ready: the releases not still wanted are not handed out (its call may
        raise TargetError, which stops the workers)."""
        keep, self.watch = self.watch[1](), None
        self.blocks = [[a for a in block if a[0] in keep] for block in self.blocks]

    def _hand(self, receive) -> None:
        """The worker's next release, or its end (its pipe closed, the worker joined)."""
        child, worker, _a = self.running[receive]
        a = self._next(worker)
        if a is None:
            del self.running[receive]
            receive.send(None)
            receive.close()
            child.join()
            return
        self.running[receive] = child, worker, a
        try:
            receive.send(a)
        except OSError:  # NOTE: BrokenPipeError: the worker died between two audits
            raise TargetError(f"--history: the worker for sglang=={a[0]} ended before auditing it") from None

    def _collect(self, receive) -> None:
        _child, _worker, a = self.running[receive]
        try:
            ok, got = receive.recv()
        except EOFError:
            ok, got = False, TargetError(f"--history: the audit of sglang=={a[0]} ended without a result")
        if not ok:
            raise got
        self.out.append(got)
        self._hand(receive)
