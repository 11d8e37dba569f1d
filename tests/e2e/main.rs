//! End-to-end tests against a real kube-apiserver (started by hack/e2e.sh). TODO.
