"""sumonce.spec: z3 proofs over proto's own functions, and the audit of real SGLang source."""
