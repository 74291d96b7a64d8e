"""A throwaway PKI and a real OCSP responder, shared by the tests, the demo and the benchmarks."""
