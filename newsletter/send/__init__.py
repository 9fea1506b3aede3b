"""Sending: the one pipeline every mail takes (build → sign → transport), the bulk loop, pacing."""
