"""Search at scale: maintained counts and bounded counting and ranking, against brute force."""
