//! Task file model, templating and validation (pure: no network, no hooks).
