"""Telemetry: process sampling, the V8 GC trace parser, start-up and footprint probes."""
