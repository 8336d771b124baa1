"""Distributed decisions (pure): proposals, votes, policies, conflicts, resolution, audit.

A deterministic state machine replicated through the consensus log (DESIGN.md section 2a);
nothing here does I/O or reads a clock.
"""
