"""sumonce.actors: MoE layers on Ray actors, one shard each, executing proto's decisions with real
collectives (gloo on CPU, NCCL on GPU), measured against a single-process reference.

Imports proto (never spec or z3). Holds no policy: every decision comes from proto.
"""
