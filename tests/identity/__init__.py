"""Tests of participant identity: keys, did:web, tokens, credentials, proofs, agreements."""
