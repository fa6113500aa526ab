"""What the tests and the benchmarks both build and drive: the scan stack on loopback, consumers, receivers, load."""
