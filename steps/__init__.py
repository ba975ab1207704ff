"""Step definitions: parse a sentence, call drivers, record evidence. Thin by design."""
