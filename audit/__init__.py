"""`sumonce audit`: read real SGLang model files, lift every post-experts all-reduce guard into z3
and judge it against the helper, in the semantics of its own release. Entry: sumonce.audit.command.main. A layer above spec: proto <- spec <- audit.
"""
