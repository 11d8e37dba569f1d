//! The Helm chart against the real API server (once charts/phi-guard exists): install with the
//! webhook pointed at the local phi-guard, upgrade, uninstall, and the API stays usable.
