"""Builders the tests share: worlds assembled from fakes, and the data and helpers several test
modules use, so that no test module imports another."""
