//! The pod lifecycle against a Kubernetes API server: create, start, logs, completion, XCom, outcome, cleanup.
