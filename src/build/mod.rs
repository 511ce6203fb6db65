//! Pod construction from a validated task, with the operator's exact semantics (pure).
