"""Norm-bound zero-knowledge proofs on petlib: Pedersen commitments, Bulletproofs, norm proofs."""
