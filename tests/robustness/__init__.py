"""Cross-cutting robustness: hostile input to every route of every app, over real HTTP."""
